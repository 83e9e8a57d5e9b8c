"""Web accounts, the real time of every audit record and visit outcome, and a task's revisit day (schema 5).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webuser",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("team", sa.String(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("session_version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_webuser_username", "webuser", ["username"], unique=True)
    with op.batch_alter_table("auditevent", schema=None) as batch_op:
        # `at` is the time the action was for (a drill's --now); real_at is when it was written, from the system clock.
        batch_op.add_column(sa.Column("real_at", sa.DateTime(), nullable=True))
        batch_op.create_index("ix_auditevent_real_at", ["real_at"], unique=False)
    with op.batch_alter_table("visittask", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recorded_real_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("revisit_on", sa.Date(), nullable=True))
    op.execute("UPDATE schemainfo SET version = 5 WHERE id = 1")


def downgrade() -> None:
    with op.batch_alter_table("visittask", schema=None) as batch_op:
        batch_op.drop_column("revisit_on")
        batch_op.drop_column("recorded_real_at")
    with op.batch_alter_table("auditevent", schema=None) as batch_op:
        batch_op.drop_index("ix_auditevent_real_at")
        batch_op.drop_column("real_at")
    op.drop_index("ix_webuser_username", table_name="webuser")
    op.drop_table("webuser")
    op.execute("UPDATE schemainfo SET version = 4 WHERE id = 1")
