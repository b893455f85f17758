"""A campaign's status, derived from its state, its prospects and its calls.

DESIGN.md §3: Running (active, calls in flight), Stopped (active, prospects
remain, nothing in flight), Completed (active, every prospect resolved),
Inactive (paused, inactive or archived). A campaign with no prospects yet is
Stopped: there is nothing to complete.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.lifecycle import (
    CampaignState,
    CampaignStatus,
    HopperStatus,
    PacingMode,
    ProspectStatus,
)
from campaigns.dialing import calls, hopper, runtime
from campaigns.dialing.history import call_counts
from campaigns.dialing.pace import ABANDON_PERIOD

RECENT_SPAN = timedelta(minutes=5)


@dataclass(frozen=True)
class PacingStatus:
    """How the campaign is paced, and what its pacer believed at its last tick."""

    mode: str
    target_abandon_rate: float
    abandon_rate_hour: float | None  # abandoned ÷ answered by a person, calls placed in the last hour
    abandon_rate_30d: float | None  # … in the last 30 days (the FTC TSR's measure)
    answered_hour: int
    answered_30d: int
    # From the last tick (None before the first): when, and what the pacer estimated and decided.
    estimated_at: datetime | None = None
    answer_rate: float | None = None
    expected_free_sessions: float | None = None
    margin: float | None = None  # predictive only
    guard: bool = False
    limited_by: str | None = None
    last_calls: int | None = None  # calls the last tick decided to place
    sessions_total: int | None = None
    sessions_idle: int | None = None
    sessions_wrap_up: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["estimated_at"] = self.estimated_at.isoformat() if self.estimated_at else None
        return out


def _rate(lost: int, answered: int) -> float | None:
    return lost / answered if answered else None


def pacing_status(conn: sa.Connection, campaign_id: int, mode: str, target: float, now: datetime) -> PacingStatus:
    lost_hour, answered_hour = calls.abandon_counts(conn, campaign_id, now - timedelta(hours=1), now)
    lost_30d, answered_30d = calls.abandon_counts(conn, campaign_id, now - ABANDON_PERIOD, now)
    status = PacingStatus(mode=mode, target_abandon_rate=target, abandon_rate_hour=_rate(lost_hour, answered_hour),
                          abandon_rate_30d=_rate(lost_30d, answered_30d), answered_hour=answered_hour,
                          answered_30d=answered_30d)
    stored = runtime.pacing_state(conn, campaign_id)
    last = stored.estimates
    if not last:
        return status
    estimates = last.get("estimates") or {}
    return replace(
        status, estimated_at=stored.updated_at, answer_rate=estimates.get("answer_rate"),
        expected_free_sessions=estimates.get("expected_free"),
        margin=stored.margin if mode == PacingMode.PREDICTIVE else None,
        guard=bool(estimates.get("guard")), limited_by=last.get("limited_by"), last_calls=last.get("calls"),
        sessions_total=last.get("sessions_total"), sessions_idle=last.get("idle"), sessions_wrap_up=last.get("wrap_up"),
    )


@dataclass(frozen=True)
class RecentCalls:
    """The campaign's calls over the last few minutes: the live view's throughput."""

    minutes: float
    calls: int  # calls the platform placed in the span
    answered: int  # calls a person answered and an agent took, in the span
    abandoned: int  # calls a person answered with no agent free in time, ended in the span


def recent_calls(conn: sa.Connection, campaign_id: int, now: datetime, span: timedelta = RECENT_SPAN) -> RecentCalls:
    """Calls placed, answered and abandoned in (now - span, now], counted as the pacer and the
    `call_attempts` sensor count them (`campaigns.dialing.history.call_counts`)."""
    counts = call_counts(conn, campaign_id, now - span, now)
    return RecentCalls(span.total_seconds() / 60, counts.placed, counts.answered, counts.abandoned)


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
    pacing: PacingStatus | None = None
    dialer_interval_s: int | None = None
    recent: RecentCalls | None = None

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
            "pacing": self.pacing.as_dict() if self.pacing else None,
            "dialer_interval_s": self.dialer_interval_s,
            "recent": asdict(self.recent) if self.recent else None,
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
            t.campaigns.c.pacing_mode,
            t.campaigns.c.target_abandon_rate,
            t.campaigns.c.dialer_interval_s,
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
        pacing=pacing_status(conn, campaign_id, head.pacing_mode, head.target_abandon_rate, now),
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
        dialer_interval_s=head.dialer_interval_s,
        recent=recent_calls(conn, campaign_id, now),
    )
