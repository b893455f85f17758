"""Initial schema: workspaces, campaigns, dispositions, DNC, uploads, prospects, hopper, calls, reports.

Revision ID: 0001
Revises: 
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from campaigns.core.types import BigId, JSONType, UTCDateTime

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('workspaces',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workspaces')),
    sa.UniqueConstraint('name', name=op.f('uq_workspaces_name'))
    )
    op.create_table('campaigns',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('workspace_id', BigId, nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('agent', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('dial_earliest_min', sa.Integer(), nullable=False),
    sa.Column('dial_latest_min', sa.Integer(), nullable=False),
    sa.Column('blocked_states', JSONType, nullable=False),
    sa.Column('holiday_filtering', sa.Boolean(), nullable=False),
    sa.Column('call_ratio', sa.Float(), nullable=False),
    sa.Column('dialer_interval_s', sa.Integer(), nullable=False),
    sa.Column('max_active_calls', sa.Integer(), nullable=False),
    sa.Column('max_calls_per_prospect', sa.Integer(), nullable=False),
    sa.Column('min_minutes_between_calls', sa.Integer(), nullable=False),
    sa.Column('wrap_up_s', sa.Integer(), nullable=False),
    sa.Column('hopper_expiry_min', sa.Integer(), nullable=False),
    sa.Column('fill_interval_min', sa.Integer(), nullable=False),
    sa.Column('damper_mode', sa.String(length=32), nullable=False),
    sa.Column('damper_threshold', sa.Float(), nullable=False),
    sa.Column('dupe_days', sa.Integer(), nullable=False),
    sa.Column('expire_days', sa.Integer(), nullable=False),
    sa.Column('list_priority', sa.Integer(), nullable=False),
    sa.Column('dnc_disposition', sa.String(length=100), nullable=True),
    sa.Column('check_on_dial', sa.Boolean(), nullable=False),
    sa.Column('report_schedule', sa.String(length=32), nullable=False),
    sa.Column('report_format', sa.String(length=8), nullable=False),
    sa.Column('report_compression', sa.String(length=8), nullable=False),
    sa.Column('report_recipients', JSONType, nullable=False),
    sa.Column('report_timezone', sa.String(length=64), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.CheckConstraint("state IN ('active', 'paused', 'inactive', 'archived')", name=op.f('ck_campaigns_state')),
    sa.CheckConstraint('dial_earliest_min < dial_latest_min', name=op.f('ck_campaigns_dial_window')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_campaigns_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns')),
    sa.UniqueConstraint('workspace_id', 'slug', name=op.f('uq_campaigns_workspace_id_slug'))
    )
    op.create_table('dnc_lists',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('workspace_id', BigId, nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_dnc_lists_workspace_id_workspaces')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dnc_lists')),
    sa.UniqueConstraint('workspace_id', 'name', name=op.f('uq_dnc_lists_workspace_id_name'))
    )
    op.create_table('campaign_dnc_lists',
    sa.Column('campaign_id', BigId, nullable=False),
    sa.Column('dnc_list_id', BigId, nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_dnc_lists_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['dnc_list_id'], ['dnc_lists.id'], name=op.f('fk_campaign_dnc_lists_dnc_list_id_dnc_lists')),
    sa.PrimaryKeyConstraint('campaign_id', 'dnc_list_id', name=op.f('pk_campaign_dnc_lists'))
    )
    op.create_table('dispositions',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('campaign_id', BigId, nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('qualified', sa.Boolean(), nullable=False),
    sa.Column('contacted', sa.Boolean(), nullable=False),
    sa.Column('callback', sa.Boolean(), nullable=False),
    sa.Column('dnc', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_dispositions_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dispositions')),
    sa.UniqueConstraint('campaign_id', 'title', name=op.f('uq_dispositions_campaign_id_title'))
    )
    op.create_table('dnc_numbers',
    sa.Column('dnc_list_id', BigId, nullable=False),
    sa.Column('phone_e164', sa.String(length=20), nullable=False),
    sa.Column('added_at', UTCDateTime(), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['dnc_list_id'], ['dnc_lists.id'], name=op.f('fk_dnc_numbers_dnc_list_id_dnc_lists'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('dnc_list_id', 'phone_e164', name=op.f('pk_dnc_numbers'))
    )
    op.create_table('prospect_lists',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('campaign_id', BigId, nullable=False),
    sa.Column('source_key', sa.String(length=1024), nullable=False),
    sa.Column('source_version', sa.String(length=200), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('dupe_days', sa.Integer(), nullable=False),
    sa.Column('expire_days', sa.Integer(), nullable=False),
    sa.Column('rows', sa.Integer(), server_default='0', nullable=False),
    sa.Column('loaded', sa.Integer(), server_default='0', nullable=False),
    sa.Column('duplicates', sa.Integer(), server_default='0', nullable=False),
    sa.Column('invalid', sa.Integer(), server_default='0', nullable=False),
    sa.Column('dnc', sa.Integer(), server_default='0', nullable=False),
    sa.Column('warnings', JSONType, nullable=False),
    sa.Column('rejects_file', sa.String(length=1024), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('completed_at', UTCDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('processing', 'loaded', 'rejected')", name=op.f('ck_prospect_lists_status')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_prospect_lists_campaign_id_campaigns')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prospect_lists')),
    sa.UniqueConstraint('campaign_id', 'source_key', 'source_version', name=op.f('uq_prospect_lists_campaign_id_source_key_source_version'))
    )
    op.create_table('reports_sent',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('campaign_id', BigId, nullable=False),
    sa.Column('report_date', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('recipients', JSONType, nullable=False),
    sa.Column('attachment', sa.String(length=1024), nullable=True),
    sa.Column('sent_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_reports_sent_campaign_id_campaigns')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reports_sent')),
    sa.UniqueConstraint('campaign_id', 'report_date', 'kind', name=op.f('uq_reports_sent_campaign_id_report_date_kind'))
    )
    op.create_table('prospects',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('campaign_id', BigId, nullable=False),
    sa.Column('list_id', BigId, nullable=False),
    sa.Column('source_row', sa.Integer(), nullable=False),
    sa.Column('phone_e164', sa.String(length=20), nullable=False),
    sa.Column('phone_ext', sa.String(length=20), nullable=True),
    sa.Column('first_name', sa.String(length=200), nullable=True),
    sa.Column('last_name', sa.String(length=200), nullable=True),
    sa.Column('address_state', sa.String(length=2), nullable=True),
    sa.Column('zip_code', sa.String(length=10), nullable=True),
    sa.Column('area_code_state', sa.String(length=2), nullable=True),
    sa.Column('candidate_zones', sa.Text(), nullable=False),
    sa.Column('zone_group', sa.Text(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('disposition', sa.String(length=100), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_attempt_at', UTCDateTime(), nullable=True),
    sa.Column('next_dial_at', UTCDateTime(), nullable=False),
    sa.Column('callback_at', UTCDateTime(), nullable=True),
    sa.Column('expires_at', UTCDateTime(), nullable=False),
    sa.Column('loaded_at', UTCDateTime(), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.Column('custom_fields', JSONType, nullable=False),
    sa.CheckConstraint("status IN ('ready', 'queued', 'dialing', 'callback', 'dnc', 'done', 'exhausted', 'expired')", name=op.f('ck_prospects_status')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_prospects_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['list_id'], ['prospect_lists.id'], name=op.f('fk_prospects_list_id_prospect_lists')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prospects')),
    sa.UniqueConstraint('list_id', 'source_row', name=op.f('uq_prospects_list_id_source_row'))
    )
    with op.batch_alter_table('prospects', schema=None) as batch_op:
        batch_op.create_index('ix_prospects_dedupe', ['campaign_id', 'phone_e164', 'loaded_at'], unique=False)
        batch_op.create_index('ix_prospects_expiry', ['status', 'expires_at'], unique=False)
        batch_op.create_index('ix_prospects_fill', ['campaign_id', 'status', 'zone_group', 'next_dial_at', 'priority'], unique=False)

    op.create_table('call_attempts',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('campaign_id', BigId, nullable=False),
    sa.Column('prospect_id', BigId, nullable=False),
    sa.Column('attempt_number', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=100), nullable=False),
    sa.Column('phone_e164', sa.String(length=20), nullable=False),
    sa.Column('platform_call_id', sa.String(length=100), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.Column('disposition', sa.String(length=100), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('placed_at', UTCDateTime(), nullable=True),
    sa.Column('answered_at', UTCDateTime(), nullable=True),
    sa.Column('ended_at', UTCDateTime(), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('callback_at', UTCDateTime(), nullable=True),
    sa.Column('failure_cause', sa.String(length=200), nullable=True),
    sa.Column('daemon_id', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_call_attempts_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['prospect_id'], ['prospects.id'], name=op.f('fk_call_attempts_prospect_id_prospects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_attempts')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_call_attempts_idempotency_key'))
    )
    with op.batch_alter_table('call_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_call_attempts_campaign_time', ['campaign_id', 'created_at'], unique=False)
        batch_op.create_index('ix_call_attempts_live', ['campaign_id', 'ended_at'], unique=False)
        batch_op.create_index('ix_call_attempts_prospect_time', ['prospect_id', 'created_at'], unique=False)

    op.create_table('hopper',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('campaign_id', BigId, nullable=False),
    sa.Column('prospect_id', BigId, nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('queued_at', UTCDateTime(), nullable=False),
    sa.Column('claimed_at', UTCDateTime(), nullable=True),
    sa.Column('claimed_by', sa.String(length=100), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'claimed')", name=op.f('ck_hopper_status')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_hopper_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['prospect_id'], ['prospects.id'], name=op.f('fk_hopper_prospect_id_prospects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hopper')),
    sa.UniqueConstraint('prospect_id', name=op.f('uq_hopper_prospect_id'))
    )
    with op.batch_alter_table('hopper', schema=None) as batch_op:
        batch_op.create_index('ix_hopper_claim', ['campaign_id', 'status', 'priority', 'id'], unique=False)
        batch_op.create_index('ix_hopper_expiry', ['status', 'queued_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('hopper', schema=None) as batch_op:
        batch_op.drop_index('ix_hopper_expiry')
        batch_op.drop_index('ix_hopper_claim')

    op.drop_table('hopper')
    with op.batch_alter_table('call_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_call_attempts_prospect_time')
        batch_op.drop_index('ix_call_attempts_live')
        batch_op.drop_index('ix_call_attempts_campaign_time')

    op.drop_table('call_attempts')
    with op.batch_alter_table('prospects', schema=None) as batch_op:
        batch_op.drop_index('ix_prospects_fill')
        batch_op.drop_index('ix_prospects_expiry')
        batch_op.drop_index('ix_prospects_dedupe')

    op.drop_table('prospects')
    op.drop_table('reports_sent')
    op.drop_table('prospect_lists')
    op.drop_table('dnc_numbers')
    op.drop_table('dispositions')
    op.drop_table('campaign_dnc_lists')
    op.drop_table('dnc_lists')
    op.drop_table('campaigns')
    op.drop_table('workspaces')
