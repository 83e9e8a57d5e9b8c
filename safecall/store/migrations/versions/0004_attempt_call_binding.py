"""Attempts record when their one IVR session began, whether they were a call-back, and a spoken answer (schema 4).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempt", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ivr_started_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("inbound", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("speech_text", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("speech_confidence", sa.Float(), nullable=True))
    op.execute("UPDATE schemainfo SET version = 4 WHERE id = 1")


def downgrade() -> None:
    with op.batch_alter_table("attempt", schema=None) as batch_op:
        for column in ("speech_confidence", "speech_text", "inbound", "ivr_started_at"):
            batch_op.drop_column(column)
    op.execute("UPDATE schemainfo SET version = 3 WHERE id = 1")
