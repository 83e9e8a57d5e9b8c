"""The schema as of SafeCall 0.1 (schema version 1): databases made before migrations existed are stamped with this.

Revision ID: 0001
Revises: 
"""

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('auditevent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(), nullable=False),
    sa.Column('action', sa.String(), nullable=False),
    sa.Column('subject', sa.String(), nullable=False),
    sa.Column('detail', sa.String(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('campaignrun',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign', sa.String(), nullable=False),
    sa.Column('week_start', sa.Date(), nullable=False),
    sa.Column('label', sa.String(), nullable=False),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('launched_at', sa.DateTime(), nullable=False),
    sa.Column('first_call_at', sa.DateTime(), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('lock_owner', sa.String(), nullable=True),
    sa.Column('lock_until', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('campaign', 'week_start', 'label')
    )
    with op.batch_alter_table('campaignrun', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaignrun_campaign'), ['campaign'], unique=False)

    op.create_table('delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('team', sa.String(), nullable=False),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(), nullable=True),
    sa.Column('next_try_at', sa.DateTime(), nullable=True),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.Column('files', sa.String(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('day', 'team', 'kind')
    )
    op.create_table('notification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(), nullable=False),
    sa.Column('channel', sa.String(), nullable=False),
    sa.Column('recipient', sa.String(), nullable=False),
    sa.Column('body', sa.String(), nullable=False),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(), nullable=True),
    sa.Column('next_try_at', sa.DateTime(), nullable=True),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    op.create_table('person',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_key', sa.String(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('phone', sa.String(), nullable=False),
    sa.Column('phone2', sa.String(), nullable=True),
    sa.Column('address', sa.String(), nullable=False),
    sa.Column('dong', sa.String(), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('team', sa.String(), nullable=False),
    sa.Column('guardian_name', sa.String(), nullable=True),
    sa.Column('guardian_phone', sa.String(), nullable=True),
    sa.Column('consent_date', sa.Date(), nullable=True),
    sa.Column('risk', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('paused_until', sa.Date(), nullable=True),
    sa.Column('closed_reason', sa.String(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_person_dong'), ['dong'], unique=False)
        batch_op.create_index(batch_op.f('ix_person_person_key'), ['person_key'], unique=True)
        batch_op.create_index(batch_op.f('ix_person_team'), ['team'], unique=False)

    op.create_table('schemainfo',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('runmember',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(), nullable=False),
    sa.Column('attempts_made', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=True),
    sa.Column('final_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['run_id'], ['campaignrun.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'person_id')
    )
    with op.batch_alter_table('runmember', schema=None) as batch_op:
        batch_op.create_index('ix_member_due', ['run_id', 'state', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_runmember_person_id'), ['person_id'], unique=False)

    op.create_table('signal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('imported_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('person_id', 'day', 'kind')
    )
    with op.batch_alter_table('signal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signal_person_id'), ['person_id'], unique=False)

    op.create_table('visittask',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('team', sa.String(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('weeks_without_ack', sa.Integer(), nullable=False),
    sa.Column('answered_without_key', sa.Boolean(), nullable=False),
    sa.Column('overdue', sa.Boolean(), nullable=False),
    sa.Column('outcome', sa.String(), nullable=True),
    sa.Column('note', sa.String(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(), nullable=True),
    sa.Column('recorded_by', sa.String(), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['run_id'], ['campaignrun.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'person_id', 'kind')
    )
    with op.batch_alter_table('visittask', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_visittask_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_visittask_team'), ['team'], unique=False)

    op.create_table('attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(), nullable=False),
    sa.Column('token', sa.String(), nullable=False),
    sa.Column('trunk_call_id', sa.String(), nullable=True),
    sa.Column('status', sa.String(), nullable=False),
    sa.Column('placed_at', sa.DateTime(), nullable=False),
    sa.Column('answered_at', sa.DateTime(), nullable=True),
    sa.Column('keyed_at', sa.DateTime(), nullable=True),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('disposition', sa.String(), nullable=True),
    sa.Column('digit', sa.String(), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['runmember.id'], ),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['run_id'], ['campaignrun.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('member_id', 'number'),
    sa.UniqueConstraint('token')
    )
    with op.batch_alter_table('attempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attempt_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attempt_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attempt_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attempt_trunk_call_id'), ['trunk_call_id'], unique=False)
    op.execute("INSERT INTO schemainfo (id, version) VALUES (1, 1)")


def downgrade() -> None:
    with op.batch_alter_table('attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attempt_trunk_call_id'))
        batch_op.drop_index(batch_op.f('ix_attempt_run_id'))
        batch_op.drop_index(batch_op.f('ix_attempt_person_id'))
        batch_op.drop_index(batch_op.f('ix_attempt_member_id'))

    op.drop_table('attempt')
    with op.batch_alter_table('visittask', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_visittask_team'))
        batch_op.drop_index(batch_op.f('ix_visittask_person_id'))

    op.drop_table('visittask')
    with op.batch_alter_table('signal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signal_person_id'))

    op.drop_table('signal')
    with op.batch_alter_table('runmember', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runmember_person_id'))
        batch_op.drop_index('ix_member_due')

    op.drop_table('runmember')
    op.drop_table('schemainfo')
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_person_team'))
        batch_op.drop_index(batch_op.f('ix_person_person_key'))
        batch_op.drop_index(batch_op.f('ix_person_dong'))

    op.drop_table('person')
    op.drop_table('notification')
    op.drop_table('delivery')
    with op.batch_alter_table('campaignrun', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaignrun_campaign'))

    op.drop_table('campaignrun')
    op.drop_table('auditevent')
