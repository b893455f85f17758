"""How a campaign's dialing goes while it goes: the figures of a live display.

`dialer demo` shows these on one line as its simulated day runs, and plans that day from
how many prospects may be dialed at each hour. The day's report (`reports`) is the
authoritative account once the day is over; these are the running totals before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.db import count_if
from campaigns.core.lifecycle import CallOutcome, ProspectStatus
from campaigns.dialing import calls, hopper
from campaigns.dialing.dialability import DialRules, Place, window_open

ALL_TIME = (datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC))


@dataclass
class Figures:
    """A campaign's calls so far, and its agents' occupancy over the last hour."""

    calls: int = 0
    not_placed: int = 0
    answered_by_a_person: int = 0  # reached an agent, or abandoned waiting for one (calls.abandon_counts)
    abandoned: int = 0
    in_flight: int = 0
    hopper: int = 0
    occupancy: float = 0.0  # the last hour

    @property
    def answered(self) -> int:
        """Answered and connected to an agent (the report's `answered`)."""
        return self.answered_by_a_person - self.abandoned

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.answered_by_a_person if self.answered_by_a_person else 0.0


def on_call_seconds(spans: Iterable[tuple[datetime, datetime | None]], since: datetime, until: datetime) -> float:
    """Seconds of (answered, ended) spans inside [since, until); a call still on uses `until`."""
    total = 0.0
    for answered, ended in spans:
        begin, finish = max(answered, since), min(ended or until, until)
        if finish > begin:
            total += (finish - begin).total_seconds()
    return total


def call_figures(conn: sa.Connection, campaign_id: int, now: datetime, sessions: int) -> Figures:
    """The campaign's figures at `now`, its occupancy measured against `sessions` agent sessions."""
    a = t.call_attempts
    total, not_placed = conn.execute(
        sa.select(sa.func.count(),
                  count_if(a.c.outcome == str(CallOutcome.NOT_PLACED)))
        .where(a.c.campaign_id == campaign_id)
    ).one()
    abandoned, people = calls.abandon_counts(conn, campaign_id, *ALL_TIME)
    _, in_flight = calls.live_counts(conn, campaign_id)
    hour_ago = now - timedelta(hours=1)
    spans = conn.execute(
        sa.select(a.c.answered_at, a.c.ended_at)
        .where(a.c.campaign_id == campaign_id, a.c.answered_at.is_not(None),
               sa.or_(a.c.ended_at.is_(None), a.c.ended_at > hour_ago))
    ).tuples().all()
    return Figures(calls=total - not_placed, not_placed=not_placed, answered_by_a_person=people,
                   abandoned=abandoned, in_flight=in_flight,
                   # Every hopper row, queued or claimed: what the daemon has still to work through.
                   hopper=hopper.depth(conn, campaign_id),
                   occupancy=on_call_seconds(spans, hour_ago, now) / (sessions * 3600))


def attempt_count(conn: sa.Connection, campaign_id: int) -> int:
    """Every call attempt the campaign has recorded, placed or not, whatever its day."""
    a = t.call_attempts
    return conn.execute(sa.select(sa.func.count()).select_from(a).where(a.c.campaign_id == campaign_id)).scalar_one()


def ready_open_at(conn: sa.Connection, campaign_id: int, instants: list[datetime]) -> tuple[int, list[int]]:
    """(the campaign's READY prospects, how many of them have their dial window open at each of `instants`).

    Decided once per zone group and instant, with the campaign's own rules: a plan of the day,
    not a promise (DNC, caps and call counts are left to the hopper fill).
    """
    p = t.prospects
    groups: dict[str, int] = dict(conn.execute(
        sa.select(p.c.zone_group, sa.func.count())
        .where(p.c.campaign_id == campaign_id, p.c.status == str(ProspectStatus.READY))
        .group_by(p.c.zone_group)
    ).tuples().all())
    rules = DialRules.from_campaign(conn.execute(sa.select(t.campaigns).where(t.campaigns.c.id == campaign_id)).one())
    places = {group: Place.from_group(group) for group in groups}
    open_counts = [sum(n for group, n in groups.items() if window_open(places[group], rules, moment))
                   for moment in instants]
    return sum(groups.values()), open_counts
