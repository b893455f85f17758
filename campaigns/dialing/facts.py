"""A stored prospect's facts for a dialing decision, read at the moment of the decision.

The rules (`dialability`) are pure functions of these facts and `now`; this module is the one
place that gathers them from the database: the prospect row, the DNC lists holding its number
and the calls made to that number within the frequency-cap window.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.dialing.dialability import (
    CAP_WINDOW,
    Place,
    ProspectFacts,
    Reason,
    dialed_clause,
)
from campaigns.dialing.dnc import dnc_lists_holding


def recent_calls(conn: sa.Connection, phone: str, now: datetime) -> tuple[datetime, ...]:
    a = t.call_attempts
    return tuple(conn.execute(
        sa.select(a.c.created_at)
        .where(a.c.phone_e164 == phone, a.c.created_at > now - CAP_WINDOW, a.c.created_at <= now,
               dialed_clause(a))
        .order_by(a.c.created_at)
    ).scalars())


def prospect_facts(conn: sa.Connection, campaign_id: int, row, now: datetime, *,
                   check_dnc: bool = True, registry: tuple[Reason, ...] = ()) -> ProspectFacts:
    """A stored prospect's facts for a decision at `now` (`row`: a `prospects` row; `registry`: the
    National DNC Registry's objections, `national_registry.objections_at_call`)."""
    return ProspectFacts(
        place=Place.from_group(row.zone_group), phone_e164=row.phone_e164, status=row.status,
        disposition=row.disposition, attempts=row.attempts, last_attempt_at=row.last_attempt_at,
        next_dial_at=row.next_dial_at, callback_at=row.callback_at, expires_at=row.expires_at,
        dnc_lists=dnc_lists_holding(conn, campaign_id, row.phone_e164) if check_dnc else (),
        recent_calls=recent_calls(conn, row.phone_e164, now), registry=registry,
    )
