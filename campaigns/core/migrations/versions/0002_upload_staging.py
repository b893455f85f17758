"""Upload staging: one row per uploaded row, so dedupe, DNC scrub and load are set-based SQL.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from campaigns.core.types import BigId, JSONType, UTCDateTime  # noqa: F401

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('upload_rows',
    sa.Column('upload_id', BigId, nullable=False),
    sa.Column('row_number', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('phone_raw', sa.Text(), nullable=True),
    sa.Column('phone_e164', sa.String(length=20), nullable=True),
    sa.Column('phone_ext', sa.String(length=20), nullable=True),
    sa.Column('first_name', sa.String(length=200), nullable=True),
    sa.Column('last_name', sa.String(length=200), nullable=True),
    sa.Column('address_state', sa.String(length=2), nullable=True),
    sa.Column('zip_code', sa.String(length=10), nullable=True),
    sa.Column('area_code_state', sa.String(length=2), nullable=True),
    sa.Column('candidate_zones', sa.Text(), nullable=True),
    sa.Column('zone_group', sa.Text(), nullable=True),
    sa.Column('custom_fields', sa.Text(), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('duplicate_of', sa.String(length=200), nullable=True),
    sa.Column('on_dnc', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.CheckConstraint("outcome IN ('valid', 'invalid', 'duplicate', 'dnc')", name=op.f('ck_upload_rows_outcome')),
    sa.ForeignKeyConstraint(['upload_id'], ['prospect_lists.id'], name=op.f('fk_upload_rows_upload_id_prospect_lists'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('upload_id', 'row_number', name=op.f('pk_upload_rows'))
    )
    with op.batch_alter_table('upload_rows', schema=None) as batch_op:
        batch_op.create_index('ix_upload_rows_phone', ['upload_id', 'phone_e164'], unique=False)

    with op.batch_alter_table('prospect_lists', schema=None) as batch_op:
        batch_op.add_column(sa.Column('file_format', JSONType, nullable=True))
        batch_op.add_column(sa.Column('sidecar_key', sa.String(length=1024), nullable=True))
        batch_op.add_column(sa.Column('archived_key', sa.String(length=1024), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('prospect_lists', schema=None) as batch_op:
        batch_op.drop_column('archived_key')
        batch_op.drop_column('sidecar_key')
        batch_op.drop_column('file_format')

    with op.batch_alter_table('upload_rows', schema=None) as batch_op:
        batch_op.drop_index('ix_upload_rows_phone')

    op.drop_table('upload_rows')
