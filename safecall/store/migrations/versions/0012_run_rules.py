"""A run keeps the rules it was launched with (its campaign and IVR flow as JSON) and their version (schema 11).

Open runs get a snapshot of the current files, when the upgrade is given a way to read them
(`safecall db upgrade` is); any run still without one takes it from the files the first time it is dialled.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaignrun", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rules", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("rules_version", sa.Integer(), nullable=False, server_default="1"))
    snapshot_of = context.config.attributes.get("rules_of_campaign")  # campaign name -> snapshot text, or None
    if snapshot_of is not None:
        run = sa.table("campaignrun", sa.column("id"), sa.column("campaign"), sa.column("status"), sa.column("rules"))
        connection = op.get_bind()
        for run_id, campaign in connection.execute(sa.select(run.c.id, run.c.campaign).where(run.c.status == "open")).all():
            text = snapshot_of(campaign)
            if text is not None:
                connection.execute(sa.update(run).where(run.c.id == run_id).values(rules=text))
    op.execute("UPDATE schemainfo SET version = 12 WHERE id = 1")


def downgrade() -> None:
    with op.batch_alter_table("campaignrun", schema=None) as batch_op:
        batch_op.drop_column("rules_version")
        batch_op.drop_column("rules")
    op.execute("UPDATE schemainfo SET version = 11 WHERE id = 1")
