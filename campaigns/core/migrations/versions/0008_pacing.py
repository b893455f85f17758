"""Predictive pacing: a pacing mode and an abandon-rate target per campaign, the pacer's state,
the dial rate each hopper fill was sized from.

- `campaigns.pacing_mode` (`ratio`, the seed's behaviour and the default, or
  `predictive`) and `campaigns.target_abandon_rate` (a fraction in (0, 0.03],
  default 0.02).
- `campaign_runtime` keeps the predictive pacer's state, so a daemon taking over a
  campaign's lease continues where the last one was: the safety margin's
  multiplier, the 30-day guard, the instant up to which answers and abandons
  have fed the margin, and the last tick's estimates (shown by `dialer campaign
  status`).
- `hopper_fills.dials_per_min`: the dial rate a fill's level was sized from (NULL on a
  cold start, when the level comes from the agent sessions).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

from campaigns.core.types import JSONType, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pacing_mode", sa.String(length=16), server_default="ratio", nullable=False))
        batch_op.add_column(sa.Column("target_abandon_rate", sa.Float(), server_default="0.02", nullable=False))
        batch_op.create_check_constraint(op.f("ck_campaigns_pacing_mode"), "pacing_mode IN ('ratio', 'predictive')")
        batch_op.create_check_constraint(
            op.f("ck_campaigns_target_abandon_rate"), "target_abandon_rate > 0 AND target_abandon_rate <= 0.03")
    with op.batch_alter_table("campaign_runtime", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pacing_margin", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("pacing_guard", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("pacing_counted_to", UTCDateTime, nullable=True))
        batch_op.add_column(sa.Column("pacing_estimates", JSONType, nullable=True))
        batch_op.add_column(sa.Column("pacing_updated_at", UTCDateTime, nullable=True))
    with op.batch_alter_table("hopper_fills", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dials_per_min", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hopper_fills", schema=None) as batch_op:
        batch_op.drop_column("dials_per_min")
    with op.batch_alter_table("campaign_runtime", schema=None) as batch_op:
        for column in ("pacing_updated_at", "pacing_estimates", "pacing_counted_to", "pacing_guard", "pacing_margin"):
            batch_op.drop_column(column)
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_campaigns_target_abandon_rate"), type_="check")
        batch_op.drop_constraint(op.f("ck_campaigns_pacing_mode"), type_="check")
        batch_op.drop_column("target_abandon_rate")
        batch_op.drop_column("pacing_mode")
