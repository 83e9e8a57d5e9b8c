"""Attempts name the dialer worker that placed them, so several workers can share one database (schema version 2).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempt", schema=None) as batch_op:
        batch_op.add_column(sa.Column("worker", sa.String(), nullable=True))
        batch_op.create_index(batch_op.f("ix_attempt_worker"), ["worker"], unique=False)
    op.execute("UPDATE schemainfo SET version = 2 WHERE id = 1")


def downgrade() -> None:
    with op.batch_alter_table("attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attempt_worker"))
        batch_op.drop_column("worker")
    op.execute("UPDATE schemainfo SET version = 1 WHERE id = 1")
