"""A task remembers the team it was moved from when a re-import moves its person to another team's dong (schema 10).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("visittask", schema=None) as batch_op:
        batch_op.add_column(sa.Column("moved_from", sa.String(), nullable=True))
    op.execute("UPDATE schemainfo SET version = 10 WHERE id = 1")


def downgrade() -> None:
    with op.batch_alter_table("visittask", schema=None) as batch_op:
        batch_op.drop_column("moved_from")
    op.execute("UPDATE schemainfo SET version = 9 WHERE id = 1")
