"""Dialing: the hopper fill index in dial order, fill history, runtime capacity, cap lookups.

- `ix_prospects_fill` becomes (campaign, status, zone group, priority DESC,
  attempts, last attempt, id): within each open zone group the index is
  already in dial order, so a fill merges the open groups' sorted ranges and
  stops once the hopper is full, instead of sorting every due prospect.
- `ix_prospects_dial_order` (the same without the zone group) serves the fill
  when many groups are open: read in dial order, keep the open groups' rows.
- `ix_prospects_expiry` goes: the daily expiry scans once a day, and every
  load no longer pays for an index only it used. `ix_hopper_expiry` goes too:
  a fill reads its campaign's queued rows through `ix_hopper_claim`.
- `campaigns.hopper_min_level`, `campaign_runtime` (agent sessions the
  platform reported) and `hopper_fills` (one row per fill, which also times
  the fill interval).
- `ix_call_attempts_phone_time` for state frequency caps, counted per number.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from campaigns.core.types import BigId, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("prospects", schema=None) as batch_op:
        batch_op.drop_index("ix_prospects_fill")
    op.create_index(
        "ix_prospects_fill",
        "prospects",
        ["campaign_id", "status", "zone_group", sa.literal_column("priority").desc(), "attempts",
         "last_attempt_at", "id"],
    )
    op.create_index(
        "ix_prospects_dial_order",
        "prospects",
        ["campaign_id", "status", sa.literal_column("priority").desc(), "attempts",
         "last_attempt_at", "id"],
    )
    op.drop_index("ix_prospects_expiry", table_name="prospects")
    op.drop_index("ix_hopper_expiry", table_name="hopper")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("hopper_min_level", sa.Integer(), server_default="100", nullable=False)
        )
    op.create_index("ix_call_attempts_phone_time", "call_attempts", ["phone_e164", "created_at"])
    op.create_table(
        "campaign_runtime",
        sa.Column("campaign_id", BigId, nullable=False),
        sa.Column("agent_sessions", sa.Integer(), nullable=True),
        sa.Column("sessions_reported_at", UTCDateTime, nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"],
            name=op.f("fk_campaign_runtime_campaign_id_campaigns"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_campaign_runtime")),
    )
    op.create_table(
        "hopper_fills",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("campaign_id", BigId, nullable=False),
        sa.Column("filled_at", UTCDateTime, nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("depth_before", sa.Integer(), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("returned_expired", sa.Integer(), nullable=False),
        sa.Column("returned_closed", sa.Integer(), nullable=False),
        sa.Column("marked_dnc", sa.Integer(), nullable=False),
        sa.Column("skipped_cap", sa.Integer(), nullable=False),
        sa.Column("open_groups", sa.Integer(), nullable=False),
        sa.Column("closed_groups", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"],
            name=op.f("fk_hopper_fills_campaign_id_campaigns"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hopper_fills")),
    )
    op.create_index("ix_hopper_fills_campaign_time", "hopper_fills", ["campaign_id", "filled_at"])


def downgrade() -> None:
    op.drop_index("ix_hopper_fills_campaign_time", table_name="hopper_fills")
    op.drop_table("hopper_fills")
    op.drop_table("campaign_runtime")
    op.drop_index("ix_call_attempts_phone_time", table_name="call_attempts")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("hopper_min_level")
    op.create_index("ix_prospects_expiry", "prospects", ["status", "expires_at"])
    op.create_index("ix_hopper_expiry", "hopper", ["status", "queued_at"])
    op.drop_index("ix_prospects_dial_order", table_name="prospects")
    op.drop_index("ix_prospects_fill", table_name="prospects")
    op.create_index(
        "ix_prospects_fill",
        "prospects",
        ["campaign_id", "status", "zone_group", "next_dial_at", "priority"],
    )
