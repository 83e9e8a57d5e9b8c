"""Attempts keep only the indexes the hot path needs (schema version 3).

member_id is served by the (member_id, number) key; trunk_call_id and worker
are read from an attempt already found, never searched by; a person's attempts
are found through their run members (runmember's person index, then the
(member_id, number) key). Each index dropped is one b-tree fewer for every
call's insert to write.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

DROPPED = (
    ("ix_attempt_member_id", ["member_id"]), ("ix_attempt_person_id", ["person_id"]),
    ("ix_attempt_trunk_call_id", ["trunk_call_id"]), ("ix_attempt_worker", ["worker"]),
)


def upgrade() -> None:
    for name, _ in DROPPED:
        op.drop_index(name, table_name="attempt")
    op.execute("UPDATE schemainfo SET version = 3 WHERE id = 1")


def downgrade() -> None:
    for name, columns in DROPPED:
        op.create_index(name, "attempt", columns)
    op.execute("UPDATE schemainfo SET version = 2 WHERE id = 1")
