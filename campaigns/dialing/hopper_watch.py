"""Is each active campaign's hopper being filled while it may dial?

The daemon holding a campaign's lease fills its hopper at least once per fill interval
(`hopper.campaigns_due`); no fill for two fill intervals while a dial window is open means
no daemon is filling it (none running, none holding the lease, or its fills failing), and
the campaign dials nothing more once the queued rows run out. The rule is `overdue`, a pure
function of what `hopper_watch` reads; Dagster's `hopper_filled_on_time` check reports it.

A window that opened less than two fill intervals ago does not count: the fill that was
not due before it opened is not late yet. "Open" is asked of the campaign's zone groups
(READY and CALLBACK prospects) at `now` and two fill intervals before; a campaign with no
such group has nothing to fill and is never overdue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.lifecycle import CampaignState
from campaigns.core.model import Campaign
from campaigns.dialing.dialability import DialRules, Place, window_open
from campaigns.dialing.hopper import zone_groups

# Fill intervals without a fill, while a window is open, after which the hopper is stale.
STALE_AFTER_INTERVALS = 2


@dataclass(frozen=True)
class HopperWatch:
    """What the rule needs to know of one active campaign at `now`."""

    campaign: str  # workspace/slug
    fill_interval: timedelta
    last_filled_at: datetime | None  # the newest fill at or before `now`
    open_groups: int  # zone groups whose window is open at `now`
    open_throughout: int  # of those, the ones also open STALE_AFTER_INTERVALS fill intervals ago

    @property
    def allowed_gap(self) -> timedelta:
        return STALE_AFTER_INTERVALS * self.fill_interval


def overdue(watch: HopperWatch, now: datetime) -> bool:
    """No fill for more than two fill intervals while a zone group's window has been open all that time."""
    if watch.open_throughout == 0:
        return False
    return watch.last_filled_at is None or now - watch.last_filled_at > watch.allowed_gap


def describe(watch: HopperWatch, now: datetime) -> str:
    """One sentence on the campaign's hopper, for the check's table and description."""
    last = ("never filled" if watch.last_filled_at is None
            else f"last filled {(now - watch.last_filled_at).total_seconds() / 60:.0f} min ago")
    interval = f"fill interval {watch.fill_interval.total_seconds() / 60:.0f} min"
    if watch.open_throughout == 0:
        return f"{watch.campaign}: {last}, no dial window open for two fill intervals ({interval})"
    if overdue(watch, now):
        return (f"{watch.campaign}: {last} while {watch.open_throughout} zone group(s) may be dialed ({interval}): "
                "no daemon is filling it; check that `dialer daemon` runs and holds the campaign")
    return f"{watch.campaign}: {last} ({interval})"


def hopper_watch(conn: sa.Connection, now: datetime) -> list[HopperWatch]:
    """Every active campaign's hopper as the rule sees it at `now`, by workspace and slug."""
    c, w, f = t.campaigns, t.workspaces, t.hopper_fills
    last_fill = (  # one probe of ix_hopper_fills_campaign_time per campaign
        sa.select(sa.func.max(f.c.filled_at)).where(f.c.campaign_id == c.c.id, f.c.filled_at <= now)
        .correlate(c).scalar_subquery()
    )
    rows = conn.execute(
        sa.select(c, w.c.name.label("workspace_name"), last_fill.label("last_filled_at"))
        .join(w, w.c.id == c.c.workspace_id)
        .where(c.c.state == str(CampaignState.ACTIVE)).order_by(w.c.name, c.c.slug)
    ).all()
    watched = []
    for row in rows:
        campaign = Campaign.from_row(row)
        rules = DialRules.from_campaign(campaign)
        interval = timedelta(minutes=campaign.fill_interval_min)
        before = now - STALE_AFTER_INTERVALS * interval
        places = [Place.from_group(g) for g in zone_groups(conn, campaign.id)]
        open_now = [p for p in places if window_open(p, rules, now)]
        watched.append(HopperWatch(
            campaign=f"{row.workspace_name}/{campaign.slug}", fill_interval=interval,
            last_filled_at=row.last_filled_at, open_groups=len(open_now),
            open_throughout=sum(window_open(p, rules, before) for p in open_now),
        ))
    return watched
