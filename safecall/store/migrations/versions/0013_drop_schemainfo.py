"""The schemainfo table goes: every migration wrote its version and nothing read it (alembic_version is the one record).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("schemainfo")


def downgrade() -> None:
    # As 0001 made it, holding the version an older release's migrations expect to update.
    op.create_table("schemainfo", sa.Column("id", sa.Integer(), nullable=False), sa.Column("version", sa.Integer(), nullable=False),
                    sa.PrimaryKeyConstraint("id"))
    op.execute("INSERT INTO schemainfo (id, version) VALUES (1, 12)")
