"""One outbox: the notification and delivery tables become one table, `outbox`, with the kind of each message
(schema 16). Every row moves; none is lost, and a downgrade moves them back.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# The values as this revision stores them, frozen here: a later change of the code's enums must not change them.
KIND_OF_KEY = """CASE
    WHEN key LIKE 'guardian:%' THEN 'guardian_text'
    WHEN key LIKE 'checkin:%' THEN 'checkin_link'
    WHEN key LIKE 'precall:%' THEN 'precall_notice'
    ELSE 'officer_alert' END"""
MESSAGE_COLUMNS = ("status", "attempts", "last_error", "next_try_at", "sent_at")
NOTIFICATION_COLUMNS = ("key", "channel", "recipient", "body", *MESSAGE_COLUMNS, "template", "variables", "provider_id",
                        "delivery_status", "delivered_at")
LIST_COLUMNS = ("day", "team", *MESSAGE_COLUMNS, "files")  # and its kind of list, which the outbox calls list_kind


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("recipient", sa.String(), nullable=False),
        sa.Column("body", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("next_try_at", sa.DateTime(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("template", sa.String(), nullable=True),
        sa.Column("variables", sa.String(), nullable=True),
        sa.Column("provider_id", sa.String(), nullable=True),
        sa.Column("delivery_status", sa.String(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column("team", sa.String(), nullable=True),
        sa.Column("list_kind", sa.String(), nullable=True),
        sa.Column("files", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_try_at"])
    # Notifications keep their ids; a team list's key is what made it one (day, team, list) in the delivery table.
    op.execute(f"""INSERT INTO outbox (id, kind, files, {", ".join(NOTIFICATION_COLUMNS)})
        SELECT id, {KIND_OF_KEY}, '', {", ".join(NOTIFICATION_COLUMNS)} FROM notification""")
    _sequence_past_ids("outbox")
    op.execute(f"""INSERT INTO outbox (key, kind, channel, recipient, body, list_kind, {", ".join(LIST_COLUMNS)})
        SELECT 'team-list:' || day || ':' || team || ':' || kind, 'team_list', 'email', '', '', kind,
               {", ".join(LIST_COLUMNS)} FROM delivery ORDER BY id""")
    op.drop_table("notification")
    op.drop_table("delivery")


def downgrade() -> None:
    op.create_table(
        "delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("team", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("next_try_at", sa.DateTime(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("files", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("day", "team", "kind"),
    )
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("recipient", sa.String(), nullable=False),
        sa.Column("body", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("next_try_at", sa.DateTime(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("template", sa.String(), nullable=True),
        sa.Column("variables", sa.String(), nullable=True),
        sa.Column("provider_id", sa.String(), nullable=True),
        sa.Column("delivery_status", sa.String(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.execute(f"""INSERT INTO notification (id, {", ".join(NOTIFICATION_COLUMNS)})
        SELECT id, {", ".join(NOTIFICATION_COLUMNS)} FROM outbox WHERE kind <> 'team_list'""")
    _sequence_past_ids("notification")
    op.execute(f"""INSERT INTO delivery (kind, {", ".join(LIST_COLUMNS)})
        SELECT list_kind, {", ".join(LIST_COLUMNS)} FROM outbox WHERE kind = 'team_list' ORDER BY id""")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_table("outbox")


def _sequence_past_ids(table: str) -> None:
    """PostgreSQL: rows were copied with their ids, not drawn from the sequence; the next one drawn goes past them."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST((SELECT MAX(id) FROM {table}), 1))")
