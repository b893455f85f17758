"""Do-not-call list membership: which of a campaign's lists hold a number, adding a number
(the DNC disposition), and how many numbers each list holds.

Importing a file of numbers into a list is ingestion's job (`campaigns.ingestion.dnc`).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.db import insert_for


def dnc_lists_holding(conn: sa.Connection, campaign_id: int, phone: str) -> tuple[str, ...]:
    link, lists, numbers = t.campaign_dnc_lists, t.dnc_lists, t.dnc_numbers
    return tuple(conn.execute(
        sa.select(lists.c.name)
        .join(link, link.c.dnc_list_id == lists.c.id)
        .join(numbers, numbers.c.dnc_list_id == lists.c.id)
        .where(link.c.campaign_id == campaign_id, numbers.c.phone_e164 == phone)
        .order_by(lists.c.name)
    ).scalars())


def add_number(conn: sa.Connection, list_id: int, phone_e164: str, now: datetime, source: str) -> bool:
    """Add one number (e.g. from a DNC disposition); returns False when it was already listed."""
    result = conn.execute(
        insert_for(conn, t.dnc_numbers).values(dnc_list_id=list_id, phone_e164=phone_e164, added_at=now, source=source)
        .on_conflict_do_nothing()
    )
    return result.rowcount == 1


def list_counts(conn: sa.Connection, workspace: str | None = None) -> list[dict]:
    d, n, w = t.dnc_lists, t.dnc_numbers, t.workspaces
    query = (
        sa.select(w.c.name.label("workspace"), d.c.name.label("list"), sa.func.count(n.c.phone_e164).label("numbers"))
        .select_from(d.join(w, w.c.id == d.c.workspace_id).outerjoin(n, n.c.dnc_list_id == d.c.id))
        .group_by(w.c.name, d.c.name)
        .order_by(w.c.name, d.c.name)
    )
    if workspace:
        query = query.where(w.c.name == workspace)
    return [dict(r._mapping) for r in conn.execute(query)]
