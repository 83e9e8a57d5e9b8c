"""One-tap check-in links, single use and expiring, and how a person is reached first (schema 14).

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkinlink",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("nonce", sa.String(), nullable=False, unique=True),
        sa.Column("member_id", sa.Integer(), sa.ForeignKey("runmember.id"), nullable=False),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("person.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("choice", sa.String(), nullable=True),
    )
    op.create_index("ix_checkinlink_member_id", "checkinlink", ["member_id"])
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact", sa.String(), nullable=False, server_default="phone"))


def downgrade() -> None:
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_column("contact")
    op.drop_index("ix_checkinlink_member_id", table_name="checkinlink")
    op.drop_table("checkinlink")
