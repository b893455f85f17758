"""Expiry: prospects not resolved within their upload's expire days stop being dialable."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.lifecycle import ProspectStatus


def expire_prospects(conn: sa.Connection, now: datetime) -> dict[int, int]:
    """Mark READY and CALLBACK prospects past `expires_at` as EXPIRED; returns counts per campaign.

    Queued prospects expire once they return from the hopper; the hopper
    never selects an expired prospect even before this runs.
    """
    p = t.prospects
    due = sa.and_(p.c.status.in_(ProspectStatus.waiting_states()), p.c.expires_at <= now)
    counts = {
        campaign_id: count
        for campaign_id, count in conn.execute(
            sa.select(p.c.campaign_id, sa.func.count()).where(due).group_by(p.c.campaign_id)
        )
    }
    if counts:
        conn.execute(
            sa.update(p).where(due).values(status=str(ProspectStatus.EXPIRED), updated_at=now)
        )
    return counts
