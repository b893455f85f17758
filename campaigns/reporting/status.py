"""A campaign's status, derived from its state, its prospects and its calls.

DESIGN.md §3: Running (active, calls in flight), Stopped (active, prospects
remain, nothing in flight), Completed (active, every prospect resolved),
Inactive (paused, inactive or archived). A campaign with no prospects yet is
Stopped: there is nothing to complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.lifecycle import (
    CampaignState,
    CampaignStatus,
    HopperStatus,
    ProspectStatus,
)
from campaigns.dialing import calls, hopper


@dataclass(frozen=True)
class CampaignStatusReport:
    workspace: str
    slug: str
    name: str
    state: str
    status: CampaignStatus
    prospects: dict[str, int]
    calls_in_flight: int
    hopper_depth: int
    uploads: int
    as_of: datetime
    # The daemon pacing it: its lease holder and when that lease runs out unless renewed.
    paced_by: str | None = None
    lease_expires_at: datetime | None = None

    def as_dict(self) -> dict:
        return {
            "workspace": self.workspace,
            "slug": self.slug,
            "name": self.name,
            "state": self.state,
            "status": str(self.status),
            "prospects": self.prospects,
            "prospects_total": sum(self.prospects.values()),
            "calls_in_flight": self.calls_in_flight,
            "hopper_depth": self.hopper_depth,
            "uploads": self.uploads,
            "as_of": self.as_of.isoformat(),
            "paced_by": self.paced_by,
            "lease_expires_at": self.lease_expires_at.isoformat() if self.lease_expires_at else None,
        }


def derive_status(
    state: str, prospects: dict[str, int], calls_in_flight: int
) -> CampaignStatus:
    if state != CampaignState.ACTIVE:
        return CampaignStatus.INACTIVE
    if calls_in_flight > 0:
        return CampaignStatus.RUNNING
    open_count = sum(prospects.get(str(s), 0) for s in ProspectStatus.open_states())
    if open_count == 0 and sum(prospects.values()) > 0:
        return CampaignStatus.COMPLETED
    return CampaignStatus.STOPPED


def campaign_status(conn: sa.Connection, campaign_id: int, now: datetime) -> CampaignStatusReport:
    head = conn.execute(
        sa.select(
            t.workspaces.c.name.label("workspace"),
            t.campaigns.c.slug,
            t.campaigns.c.name,
            t.campaigns.c.state,
        )
        .join(t.workspaces, t.workspaces.c.id == t.campaigns.c.workspace_id)
        .where(t.campaigns.c.id == campaign_id)
    ).one()
    counts = {str(s): 0 for s in ProspectStatus}
    for status, count in conn.execute(
        sa.select(t.prospects.c.status, sa.func.count())
        .where(t.prospects.c.campaign_id == campaign_id)
        .group_by(t.prospects.c.status)
    ):
        counts[status] = count
    # A queued prospect keeps its READY/CALLBACK row; its hopper row makes it queued.
    for status, count in conn.execute(
        sa.select(t.prospects.c.status, sa.func.count())
        .select_from(t.hopper)
        .join(t.prospects, t.prospects.c.id == t.hopper.c.prospect_id)
        .where(t.hopper.c.campaign_id == campaign_id, t.hopper.c.status == str(HopperStatus.QUEUED),
               t.prospects.c.status.in_(ProspectStatus.waiting_states()))
        .group_by(t.prospects.c.status)
    ):
        counts[status] -= count
        counts[str(ProspectStatus.QUEUED)] += count
    in_flight = calls.live_counts(conn, campaign_id).in_flight
    hopper_depth = hopper.depth(conn, campaign_id)  # claimed rows too: they are still in the hopper
    uploads = conn.execute(
        sa.select(sa.func.count())
        .select_from(t.prospect_lists)
        .where(t.prospect_lists.c.campaign_id == campaign_id)
    ).scalar_one()
    lease = conn.execute(
        sa.select(t.campaign_leases.c.holder, t.campaign_leases.c.expires_at)
        .where(t.campaign_leases.c.campaign_id == campaign_id)
    ).one_or_none()
    return CampaignStatusReport(
        paced_by=lease.holder if lease else None,
        lease_expires_at=lease.expires_at if lease else None,
        workspace=head.workspace,
        slug=head.slug,
        name=head.name,
        state=head.state,
        status=derive_status(head.state, counts, in_flight),
        prospects=counts,
        calls_in_flight=in_flight,
        hopper_depth=hopper_depth,
        uploads=uploads,
        as_of=now,
    )
