"""The campaigns a daemon paces: the short list it reads every loop, and one campaign in full
at the start of each of its ticks (with the name the voice platform knows it by).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.lifecycle import CampaignState
from campaigns.core.model import Campaign


@dataclass(frozen=True)
class RosterEntry:
    """What the daemon's loop needs of a campaign: whether to tick it, and how often."""

    id: int
    state: CampaignState
    dialer_interval_s: int
    name: str = ""  # qualified (`workspace/slug`): the name metrics and logs know it by


def roster(conn: sa.Connection, only: list[int] | None = None) -> list[RosterEntry]:
    """Every campaign (or those of `only`), archived ones included, by id."""
    c, w = t.campaigns, t.workspaces
    query = (
        sa.select(c.c.id, c.c.state, c.c.dialer_interval_s, (w.c.name + "/" + c.c.slug).label("qualified"))
        .join(w, w.c.id == c.c.workspace_id).order_by(c.c.id)
    )
    if only is not None:
        query = query.where(c.c.id.in_(only))
    return [RosterEntry(r.id, CampaignState(r.state), r.dialer_interval_s, r.qualified) for r in conn.execute(query)]


def paced_campaign(conn: sa.Connection, campaign_id: int) -> tuple[Campaign, str]:
    """The campaign, and its qualified name (`workspace/slug`): the platform's name for it."""
    c, w = t.campaigns, t.workspaces
    row = conn.execute(
        sa.select(c, (w.c.name + "/" + c.c.slug).label("qualified"))
        .join(w, w.c.id == c.c.workspace_id).where(c.c.id == campaign_id)
    ).one()
    return Campaign.from_row(row), row.qualified
