"""What the dialing side last learned about a campaign (`campaign_runtime`), as opposed to what
an operator set: how far its daemon has read the platform's events, and how many agent
sessions the platform last reported (which sizes the hopper's level).
"""

from __future__ import annotations

from datetime import datetime

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
