"""What pacing reads of a campaign's calls (`call_attempts`): recent dials and how they resolved,
recent talk times, the calls in flight, and the calls placed, answered, abandoned and ended over a
stretch of time (`call_counts`: the one counter the pacer's feedback, `dialer campaign status
--watch` and the `call_attempts` sensor share).

Every query is a short walk of `ix_call_attempts_campaign_time` (campaign, created_at) from the
newest end, or of `ix_call_attempts_live` for the calls in flight, so its cost does not grow with
the campaign's past.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.db import count_if
from campaigns.core.lifecycle import AttemptStatus, CallOutcome
from campaigns.dialing.predictive import COHORT_MAX, TALK_MAX, CallHistory, Dial, Talk

DIALS_READ = COHORT_MAX + 500  # the cohort is the settled part of the newest dials
# Not dials: the platform never placed them, or placed them after we gave up (not applied).
NOT_DIALS = (str(CallOutcome.NOT_PLACED), str(CallOutcome.PLACED_LATE))
# A person answers within seconds of the dial: attempts answered (or abandoned) after an instant
# were created at most this long before it, which bounds the index range of the feedback counts.
LONGEST_RING = timedelta(hours=1)


def _seconds(later: datetime, earlier: datetime) -> float:
    return max(0.0, (later - earlier).total_seconds())


def recent_dials(conn: sa.Connection, campaign_id: int, now: datetime) -> list[Dial]:
    """The campaign's newest dials up to `now`, newest first, each with its age and how it resolved."""
    a = t.call_attempts
    rows = conn.execute(
        sa.select(a.c.created_at, a.c.answered_at, a.c.ended_at, a.c.outcome)
        .where(a.c.campaign_id == campaign_id, a.c.created_at <= now)
        .order_by(a.c.created_at.desc())
        .limit(DIALS_READ)
    ).all()
    dials = []
    for created, answered, ended, outcome in rows:
        if outcome in NOT_DIALS:
            continue
        person = answered is not None or outcome == CallOutcome.ABANDONED
        resolved_at = answered if answered is not None else ended
        if resolved_at is not None and resolved_at > now:
            resolved_at = None  # resolved after the instant asked about (a replay with --at)
        dials.append(Dial(_seconds(now, created),
                          None if resolved_at is None else _seconds(resolved_at, created),
                          person and resolved_at is not None))
    return dials


def recent_talks(conn: sa.Connection, campaign_id: int, now: datetime) -> list[Talk]:
    """The newest answered calls: ended ones with their talk time, live ones with the talk so far."""
    a = t.call_attempts
    rows = conn.execute(
        sa.select(a.c.answered_at, a.c.ended_at)
        .where(a.c.campaign_id == campaign_id, a.c.created_at <= now, a.c.answered_at.is_not(None),
               a.c.answered_at <= now)
        .order_by(a.c.created_at.desc())
        .limit(TALK_MAX)
    ).all()
    return [Talk(_seconds(ended if ended is not None and ended <= now else now, answered),
                 ended is not None and ended <= now) for answered, ended in rows]


def calls_in_flight(conn: sa.Connection, campaign_id: int, now: datetime) -> tuple[list[float], list[float]]:
    """(seconds since the dial of each call no person has answered yet,
    seconds since the answer of each call a person is on)."""
    a = t.call_attempts
    ringing, talking = [], []
    for created, answered in conn.execute(
        sa.select(a.c.created_at, a.c.answered_at)
        .where(a.c.campaign_id == campaign_id, a.c.ended_at.is_(None), a.c.status.in_(AttemptStatus.live()))
    ):
        if answered is None:
            ringing.append(_seconds(now, created))
        else:
            talking.append(_seconds(now, answered))
    return ringing, talking


@dataclass(frozen=True)
class CallCounts:
    """A campaign's calls in (since, until], each count by when that thing happened."""

    placed: int  # the platform confirmed the call (placed_at)
    answered: int  # a person answered and reached a session (answered_at)
    abandoned: int  # a person answered and no session was free in time (ended then)
    ended: int  # every call that ended, whatever its outcome

    @property
    def any(self) -> bool:
        return bool(self.placed or self.answered or self.abandoned or self.ended)


def call_counts(conn: sa.Connection, campaign_id: int, since: datetime, until: datetime) -> CallCounts:
    """The campaign's calls placed, answered, abandoned and ended in (since, until].

    One range of `ix_call_attempts_campaign_time`, from the stretch's start less LONGEST_RING: a
    call answered or ended more than that after its dial is left out (the day's report, built from
    every attempt, still has it).
    """
    a = t.call_attempts

    def within(column: sa.Column) -> sa.ColumnElement[bool]:
        return sa.and_(column > since, column <= until)

    placed, answered, abandoned, ended = conn.execute(
        sa.select(count_if(within(a.c.placed_at)), count_if(within(a.c.answered_at)),
                  count_if(sa.and_(within(a.c.ended_at), a.c.outcome == str(CallOutcome.ABANDONED))),
                  count_if(within(a.c.ended_at)))
        .where(a.c.campaign_id == campaign_id, a.c.created_at > since - LONGEST_RING, a.c.created_at <= until)
    ).one()
    return CallCounts(int(placed), int(answered), int(abandoned), int(ended))


def call_history(conn: sa.Connection, campaign_id: int, now: datetime, *, counted_to: datetime | None,
                 answered_30d: int, abandoned_30d: int) -> CallHistory:
    """What the pacer reads at `now`; the feedback counts cover (counted_to, now] (nothing when None)."""
    ringing, talking = calls_in_flight(conn, campaign_id, now)
    connected = abandoned = 0
    if counted_to is not None and counted_to < now:
        counts = call_counts(conn, campaign_id, counted_to, now)
        connected, abandoned = counts.answered, counts.abandoned
    return CallHistory(
        dials=recent_dials(conn, campaign_id, now), talks=recent_talks(conn, campaign_id, now),
        ringing_ages=ringing, talking=talking, connected=connected, abandoned=abandoned,
        answered_30d=answered_30d, abandoned_30d=abandoned_30d,
    )
