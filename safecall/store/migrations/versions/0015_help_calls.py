"""A human on "help": what came of the transfer to the duty officer and the message left (schema 15).

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "helpcall",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("attempt_id", sa.Integer(), sa.ForeignKey("attempt.id"), nullable=False, unique=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("campaignrun.id"), nullable=False),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("person.id"), nullable=False),
        sa.Column("transfer", sa.String(), nullable=True),
        sa.Column("transfer_at", sa.DateTime(), nullable=True),
        sa.Column("connected_seconds", sa.Float(), nullable=True),
        sa.Column("message_ref", sa.String(), nullable=True),
        sa.Column("message_seconds", sa.Float(), nullable=True),
        sa.Column("message_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_helpcall_person_id", "helpcall", ["person_id"])


def downgrade() -> None:
    op.drop_index("ix_helpcall_person_id", table_name="helpcall")
    op.drop_table("helpcall")
