"""People may have a preferred call time that narrows the campaign's window for them (schema 7).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.add_column(sa.Column("call_window", sa.String(), nullable=True))
    op.execute("UPDATE schemainfo SET version = 7 WHERE id = 1")


def downgrade() -> None:
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_column("call_window")
    op.execute("UPDATE schemainfo SET version = 6 WHERE id = 1")
