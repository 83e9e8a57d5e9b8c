"""Notifications keep their 알림톡 template and variables, the provider's message id and its delivery report (schema 8).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS = ("template", "variables", "provider_id", "delivery_status")


def upgrade() -> None:
    with op.batch_alter_table("notification", schema=None) as batch_op:
        for column in COLUMNS:
            batch_op.add_column(sa.Column(column, sa.String(), nullable=True))
        batch_op.add_column(sa.Column("delivered_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE schemainfo SET version = 8 WHERE id = 1")


def downgrade() -> None:
    with op.batch_alter_table("notification", schema=None) as batch_op:
        for column in ("delivered_at", *reversed(COLUMNS)):
            batch_op.drop_column(column)
    op.execute("UPDATE schemainfo SET version = 7 WHERE id = 1")
