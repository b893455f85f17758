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
from campaigns.core.lifecycle import CallOutcome, CampaignState
from campaigns.dialing.history import LONGEST_RING


@dataclass(frozen=True)
class CampaignCalls:
    """One campaign's calls in (since, until]: each count by when that thing happened."""

    campaign: str  # workspace/slug
    placed: int  # the platform confirmed the call (placed_at)
    answered: int  # a person answered and reached an agent (answered_at)
    abandoned: int  # a person answered and no agent was free in time (ended then)
    ended: int  # every call that ended, whatever its outcome

    @property
    def any(self) -> bool:
        return bool(self.placed or self.answered or self.abandoned or self.ended)


def calls_between(conn: sa.Connection, since: datetime, until: datetime) -> list[CampaignCalls]:
    """Every campaign with a call placed, answered, abandoned or ended in (since, until], by workspace and slug.

    Each campaign's attempts are read by `ix_call_attempts_campaign_time`, from the stretch's start
    less LONGEST_RING (as the pacing history reads them), not through its whole past: a call
    answered or ended more than an hour after it was created is left out of these counts (the
    day's report, built from every attempt, still has it).
    """
    a, c, w = t.call_attempts, t.campaigns, t.workspaces

    def within(column):
        return sa.and_(column > since, column <= until)

    def count(condition):
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    # An archived campaign places no call: its past is not read on every evaluation (the ends of
    # calls still out when it was archived are left out here; its reports have them).
    campaigns = conn.execute(
        sa.select(c.c.id, (w.c.name + "/" + c.c.slug).label("name")).join(w, w.c.id == c.c.workspace_id)
        .where(c.c.state != str(CampaignState.ARCHIVED)).order_by(w.c.name, c.c.slug)
    ).all()
    found = []
    for campaign in campaigns:
        placed, answered, abandoned, ended = conn.execute(
            sa.select(count(within(a.c.placed_at)), count(within(a.c.answered_at)),
                      count(sa.and_(within(a.c.ended_at), a.c.outcome == str(CallOutcome.ABANDONED))),
                      count(within(a.c.ended_at)))
            .where(a.c.campaign_id == campaign.id, a.c.created_at > since - LONGEST_RING, a.c.created_at <= until)
        ).one()
        calls = CampaignCalls(campaign.name, int(placed), int(answered), int(abandoned), int(ended))
        if calls.any:
            found.append(calls)
    return found
