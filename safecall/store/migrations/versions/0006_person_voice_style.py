"""People have a voice style: prompts spoken normally, slowly or loudly (schema 6).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.add_column(sa.Column("voice_style", sa.String(), nullable=False, server_default="normal"))
    op.execute("UPDATE schemainfo SET version = 6 WHERE id = 1")


def downgrade() -> None:
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_column("voice_style")
    op.execute("UPDATE schemainfo SET version = 5 WHERE id = 1")
