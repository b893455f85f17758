"""The daemon: event cursor per campaign, calls found by platform id, callback delay.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("callback_delay_min", sa.Integer(), server_default="1440", nullable=False)
        )
    with op.batch_alter_table("campaign_runtime", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("events_cursor", sa.BigInteger(), server_default="0", nullable=False)
        )
    op.create_index(
        "ix_call_attempts_platform_call_id", "call_attempts", ["platform_call_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_call_attempts_platform_call_id", table_name="call_attempts")
    with op.batch_alter_table("campaign_runtime", schema=None) as batch_op:
        batch_op.drop_column("events_cursor")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("callback_delay_min")
