"""What the dialing side last learned about a campaign (`campaign_runtime`), as opposed to what
an operator set: how far its daemon has read the platform's events, how many agent
sessions the platform last reported (which sizes the hopper's level), and the pacer's state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.db import insert_for


def events_cursor(conn: sa.Connection, campaign_id: int) -> int:
    """The id of the last platform event applied for the campaign (0 before the first; the row is made)."""
    r = t.campaign_runtime
    cursor = conn.execute(sa.select(r.c.events_cursor).where(r.c.campaign_id == campaign_id)).scalar_one_or_none()
    if cursor is None:
        conn.execute(insert_for(conn, r).values(campaign_id=campaign_id, events_cursor=0)
                     .on_conflict_do_nothing(index_elements=["campaign_id"]))
        cursor = conn.execute(sa.select(r.c.events_cursor).where(r.c.campaign_id == campaign_id)).scalar_one()
    return int(cursor)


def advance_events_cursor(conn: sa.Connection, campaign_id: int, read_from: int, to: int) -> bool:
    """Move the cursor from `read_from` to `to`; False when it is no longer at `read_from`.

    Moved first, in the transaction that applies the events, and only from where it was
    read: should another daemon have applied them meanwhile (a lease changing hands
    mid-tick), nothing is applied twice. On PostgreSQL the row lock also makes a second
    applier wait.
    """
    r = t.campaign_runtime
    return conn.execute(
        sa.update(r).where(r.c.campaign_id == campaign_id, r.c.events_cursor == read_from)
        .values(events_cursor=to)
    ).rowcount == 1


def record_sessions(conn: sa.Connection, campaign_id: int, sessions: int, now: datetime) -> None:
    """The platform reported `sessions` agent sessions for the campaign at `now`."""
    r = t.campaign_runtime
    conn.execute(sa.update(r).where(r.c.campaign_id == campaign_id)
                 .values(agent_sessions=sessions, sessions_reported_at=now))


def agent_sessions(conn: sa.Connection, campaign_id: int) -> int | None:
    """The agent sessions last reported for the campaign (None: never reported)."""
    r = t.campaign_runtime
    return conn.execute(
        sa.select(r.c.agent_sessions).where(r.c.campaign_id == campaign_id)
    ).scalar_one_or_none()


@dataclass(frozen=True)
class StoredPacing:
    """The pacer's state as the last tick left it (`campaign_runtime.pacing_*`)."""

    margin: float | None = None  # None: the predictive pacer never ran for the campaign
    guard: bool = False
    counted_to: datetime | None = None  # answers and abandons up to here have fed the margin
    estimates: dict[str, Any] | None = None  # the last tick's estimates and decision, as stored
    updated_at: datetime | None = None


def pacing_state(conn: sa.Connection, campaign_id: int) -> StoredPacing:
    r = t.campaign_runtime
    row = conn.execute(
        sa.select(r.c.pacing_margin, r.c.pacing_guard, r.c.pacing_counted_to, r.c.pacing_estimates,
                  r.c.pacing_updated_at).where(r.c.campaign_id == campaign_id)
    ).one_or_none()
    if row is None:
        return StoredPacing()
    return StoredPacing(row.pacing_margin, bool(row.pacing_guard), row.pacing_counted_to, row.pacing_estimates,
                        row.pacing_updated_at)


def store_pacing(conn: sa.Connection, campaign_id: int, stored: StoredPacing) -> None:
    """Keep the pacer's state for the next tick, whichever daemon runs it."""
    r = t.campaign_runtime
    values = {"pacing_margin": stored.margin, "pacing_guard": stored.guard, "pacing_counted_to": stored.counted_to,
              "pacing_estimates": stored.estimates, "pacing_updated_at": stored.updated_at}
    if conn.execute(sa.update(r).where(r.c.campaign_id == campaign_id).values(**values)).rowcount == 0:
        conn.execute(insert_for(conn, r).values(campaign_id=campaign_id, events_cursor=0, **values)
                     .on_conflict_do_update(index_elements=["campaign_id"], set_=values))
