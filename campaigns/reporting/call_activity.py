"""The calls the daemons placed over a stretch of time, per campaign: what Dagster shows of them.

The daemons write `call_attempts` as they dial; Dagster's `call_attempts_sensor` reports what
changed since its last report as a materialization of the `call_attempts` asset, so the
daemons' work appears in the lineage between the hopper and the reports without a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.lifecycle import CampaignState
from campaigns.dialing.history import CallCounts, call_counts


@dataclass(frozen=True)
class CampaignCalls:
    """One campaign's calls over a stretch of time."""

    campaign: str  # workspace/slug
    counts: CallCounts


def calls_between(conn: sa.Connection, since: datetime, until: datetime) -> list[CampaignCalls]:
    """Every campaign with a call placed, answered, abandoned or ended in (since, until], by
    workspace and slug (each counted as `campaigns.dialing.history.call_counts` counts them)."""
    c, w = t.campaigns, t.workspaces
    # An archived campaign places no call: its past is not read on every evaluation (the ends of
    # calls still out when it was archived are left out here; its reports have them).
    campaigns = conn.execute(
        sa.select(c.c.id, (w.c.name + "/" + c.c.slug).label("name")).join(w, w.c.id == c.c.workspace_id)
        .where(c.c.state != str(CampaignState.ARCHIVED)).order_by(w.c.name, c.c.slug)
    ).all()
    found = []
    for campaign in campaigns:
        counts = call_counts(conn, campaign.id, since, until)
        if counts.any:
            found.append(CampaignCalls(campaign.name, counts))
    return found
