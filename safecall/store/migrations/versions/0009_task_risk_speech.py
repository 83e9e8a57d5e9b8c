"""Attempts and call-back tasks say whether the spoken answer had words of suicide or an emergency (schema 9).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("attempt", "visittask"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("risk_speech", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE schemainfo SET version = 9 WHERE id = 1")


def downgrade() -> None:
    for table in ("visittask", "attempt"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("risk_speech")
    op.execute("UPDATE schemainfo SET version = 8 WHERE id = 1")
