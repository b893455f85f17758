"""The dialing day hour by hour: the report's calls by clock hour, and how busy the agents were.

Hours are clock hours of the campaign's **report time zone** (`reports.timezone`), one clock for
every chart: the dials, answers and agent occupancy of a bar happened in the same hour, which a
prospect's local hour cannot give (agent sessions serve every zone at once). A call still belongs
to the dialing day of its prospect's local date, so a Honolulu call at 20:00 local on day D is in
D's report, in the hour 01:00 of D+1 on a New York clock; the day's hours may begin the evening
before (Guam) and end after midnight.

Dials, answers, abandons and outcomes per hour are counted from the detail rows the summary
reads, so they add up to the export's. Occupancy cannot come from those rows: agents spend an
hour on every call of the campaign in it, whichever dialing day the call belongs to (Guam's next
day overlaps the mainland's evening), so `on_call_seconds_by_hour` reads the calls from the
database. Its denominator is the agent sessions the voice platform last reported for the
campaign (`campaign_runtime.agent_sessions`): the database keeps no history of that count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.lifecycle import CallOutcome
from campaigns.reporting.progress import on_call_seconds

HOUR = timedelta(hours=1)


@dataclass
class Hour:
    """One clock hour of the dialing day: the calls placed in it, and agent time on calls in it."""

    start: datetime  # the hour's first instant, in the report time zone
    dials: int = 0
    answered: int = 0  # reached an agent (the summary's `answered`)
    abandoned: int = 0
    by_outcome: Counter = field(default_factory=Counter)
    on_call_s: float = 0.0  # agents' seconds on the campaign's calls in the hour, from the database

    def occupancy(self, sessions: int | None) -> float | None:
        """The share of `sessions` agent sessions' hour spent on calls; None without a session count."""
        return self.on_call_s / (sessions * HOUR.total_seconds()) if sessions else None

    def as_dict(self, sessions: int | None) -> dict:
        occupancy = self.occupancy(sessions)
        return {"hour": self.start.isoformat(), "dials": self.dials, "answered": self.answered,
                "abandoned": self.abandoned, "by_outcome": dict(self.by_outcome),
                "agent_seconds_on_calls": round(self.on_call_s, 1),
                "occupancy": None if occupancy is None else round(occupancy, 4)}


def hour_of(moment: datetime, zone: ZoneInfo) -> datetime:
    """The first instant of `moment`'s clock hour in `zone` (the repeated hour of a DST change
    stays apart: the fold is kept)."""
    return moment.astimezone(zone).replace(minute=0, second=0, microsecond=0)


def _instant(text: str) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def day_hours(rows: Iterable[dict], zone: ZoneInfo) -> list[Hour]:
    """The dialing day's hours in `zone`, from the first in which a call was placed to the last in
    which one ended, with empty hours between kept; each with the dials placed in it.

    `rows` are detail rows (as `detail_rows` makes them or as read back from the export); a call
    that was not placed is no dial and counts in no hour.
    """
    hours: dict[datetime, Hour] = {}  # by the hour's start in UTC: a fold's two hours stay apart
    ends: list[datetime] = []

    def hour(moment: datetime) -> Hour:
        start = hour_of(moment, zone)
        return hours.setdefault(start.astimezone(UTC), Hour(start))

    for row in rows:
        if row["outcome"] == CallOutcome.NOT_PLACED:
            continue
        placed = _instant(row["called_at_utc"])
        assert placed is not None
        bucket = hour(placed)
        bucket.dials += 1
        bucket.answered += bool(row["answered_at_utc"])
        bucket.abandoned += row["outcome"] == CallOutcome.ABANDONED
        bucket.by_outcome[row["outcome"]] += 1
        ended = _instant(row["ended_at_utc"])
        if ended is not None:
            ends.append(ended)
    if not hours:
        return []
    first = min(hours)
    # Calls end within hours of their dial; a call closed days later (reconciled after an outage)
    # must not stretch the charts over hundreds of empty hours: one day past the last dial at most.
    last = max([*hours, *(hour_of(e, zone).astimezone(UTC) for e in ends)])
    last = min(last, max(hours) + timedelta(days=1))
    moment = first
    while moment <= last:
        hour(moment)
        moment += HOUR
    return [hours[key] for key in sorted(hours)]


def on_call_seconds_by_hour(conn: sa.Connection, campaign_id: int, hours: list[Hour], now: datetime) -> None:
    """Set each hour's agent seconds on calls: every call of the campaign answered by a person and
    on in the hour, whatever its dialing day; a call still on counts up to `now`."""
    if not hours:
        return
    a = t.call_attempts
    since = hours[0].start.astimezone(UTC)
    until = min(hours[-1].start.astimezone(UTC) + HOUR, now)
    spans = [(answered, ended) for answered, ended in conn.execute(
        sa.select(a.c.answered_at, a.c.ended_at)
        .where(a.c.campaign_id == campaign_id, a.c.answered_at.is_not(None), a.c.answered_at < until,
               sa.or_(a.c.ended_at.is_(None), a.c.ended_at > since))
    )]
    for hour in hours:
        start = hour.start.astimezone(UTC)
        hour.on_call_s = on_call_seconds(spans, start, min(start + HOUR, now)) if start < now else 0.0
