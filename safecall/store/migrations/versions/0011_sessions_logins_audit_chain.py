"""Web sessions on the server, the login limiter's counts and the audit's hash chain (schema 12).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

from safecall.store.db import chain_hash

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


class _Row:
    def __init__(self, **fields):
        self.__dict__.update(fields)


def upgrade() -> None:
    op.create_table(
        "websession",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("webuser.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_websession_user_id", "websession", ["user_id"])
    op.create_table(
        "logincount",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("scope", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("checked", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.UniqueConstraint("scope", "key", "window_start"),
    )
    op.create_index("ix_logincount_window_start", "logincount", ["window_start"])
    op.create_table(
        "auditchain",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(), nullable=False),
    )
    with op.batch_alter_table("auditevent", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(), nullable=True))
        batch_op.create_index("ix_auditevent_seq", ["seq"], unique=True)
    # The rows written so far join the chain in the order they were written.
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, at, real_at, actor, action, subject, detail FROM auditevent ORDER BY id")).all()
    previous = ""
    for seq, row in enumerate(rows, start=1):
        event = _Row(seq=seq, at=_utc(row.at), real_at=_utc(row.real_at), actor=row.actor, action=row.action,
                     subject=row.subject, detail=row.detail)
        previous = chain_hash(previous, event)
        connection.execute(sa.text("UPDATE auditevent SET seq = :seq, hash = :hash WHERE id = :id"),
                           {"seq": seq, "hash": previous, "id": row.id})
    connection.execute(sa.text("INSERT INTO auditchain (id, seq, hash) VALUES (1, :seq, :hash)"),
                       {"seq": len(rows), "hash": previous})
    op.execute("UPDATE schemainfo SET version = 11 WHERE id = 1")


def _utc(value):
    """A stored timestamp as the models read it: aware UTC (SQLite hands back text)."""
    from datetime import datetime, timezone

    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc)


def downgrade() -> None:
    with op.batch_alter_table("auditevent", schema=None) as batch_op:
        batch_op.drop_index("ix_auditevent_seq")
        batch_op.drop_column("hash")
        batch_op.drop_column("seq")
    op.drop_table("auditchain")
    op.drop_index("ix_logincount_window_start", table_name="logincount")
    op.drop_table("logincount")
    op.drop_index("ix_websession_user_id", table_name="websession")
    op.drop_table("websession")
    op.execute("UPDATE schemainfo SET version = 10 WHERE id = 1")
