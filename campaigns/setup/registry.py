"""Campaigns in the database: apply a settings file, look one up, change its state.

`apply_campaign` is declarative and idempotent: the database ends up holding
exactly what the file says (dispositions and DNC list links included), and a
second apply of the same file writes nothing. `state` is the one exception:
it is applied only when the file names it, so re-applying a file never
resumes a campaign an operator paused from the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.errors import DialerError, NotFound
from campaigns.core.lifecycle import CampaignState
from campaigns.core.model import Campaign, Disposition
from campaigns.setup.settings import (
    CampaignSettings,
    SettingsError,
    hhmm_of,
    minutes_of,
)


class ApplyAction(StrEnum):
    """What applying a campaign file did to the campaign."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class ApplyResult:
    action: ApplyAction
    workspace: str
    slug: str
    campaign_id: int
    changes: list[str] = field(default_factory=list)
    created_dnc_lists: list[str] = field(default_factory=list)
    created_workspace: bool = False


def settings_to_row(s: CampaignSettings) -> dict[str, Any]:
    """The `campaigns` columns for a settings model (links and dispositions aside)."""
    return {
        "slug": s.resolved_slug,
        "name": s.name,
        "locale": s.locale,
        "agent": s.agent,
        "state": str(s.state),
        "dial_earliest_min": minutes_of(s.dial_window.earliest),
        "dial_latest_min": minutes_of(s.dial_window.latest),
        "blocked_states": list(s.blocked_states),
        "holiday_filtering": s.holiday_filtering,
        "call_ratio": s.dialing.call_ratio,
        "dialer_interval_s": s.dialing.dialer_interval_s,
        "max_active_calls": s.dialing.max_active_calls,
        "max_calls_per_prospect": s.dialing.max_calls_per_prospect,
        "min_minutes_between_calls": s.dialing.min_minutes_between_calls,
        "wrap_up_s": s.dialing.wrap_up_s,
        "hopper_expiry_min": s.dialing.hopper_expiry_min,
        "fill_interval_min": s.dialing.fill_interval_min,
        "hopper_min_level": s.dialing.hopper_min_level,
        "callback_delay_min": s.dialing.callback_delay_min,
        "damper_mode": s.dialing.damper.mode,
        "damper_threshold": s.dialing.damper.threshold,
        "pacing_mode": str(s.dialing.pacing),
        "target_abandon_rate": s.dialing.target_abandon_rate,
        "dupe_days": s.uploads.dupe_days,
        "expire_days": s.uploads.expire_days,
        "list_priority": s.uploads.priority,
        "max_upload_rows": s.uploads.max_rows,
        "max_upload_bytes": s.uploads.max_uncompressed_bytes,
        "dnc_disposition": s.dnc.dnc_disposition,
        "check_on_dial": s.dnc.check_on_dial,
        "dnc_national_registry": s.dnc.national_registry,
        "report_schedule": s.reports.schedule,
        "report_format": s.reports.format,
        "report_compression": s.reports.compression,
        "report_recipients": list(s.reports.recipients),
        "report_timezone": s.reports.timezone,
    }


def _disposition_rows(s: CampaignSettings) -> list[dict[str, Any]]:
    return [
        {
            "title": d.title,
            "qualified": d.qualified,
            "contacted": d.contacted,
            "callback": d.callback,
            "dnc": d.dnc,
            "position": i,
        }
        for i, d in enumerate(s.dispositions)
    ]


def ensure_workspace(conn: sa.Connection, name: str, now: datetime) -> tuple[int, bool]:
    """The workspace's id, creating it (empty) if needed; returns (id, created)."""
    found = conn.execute(
        sa.select(t.workspaces.c.id).where(t.workspaces.c.name == name)
    ).scalar_one_or_none()
    if found is not None:
        return found, False
    new_id = conn.execute(
        sa.insert(t.workspaces).values(name=name, created_at=now).returning(t.workspaces.c.id)
    ).scalar_one()
    return new_id, True


def workspace_names(conn: sa.Connection) -> list[str]:
    """Every workspace's name, in the order they were created."""
    return list(conn.execute(sa.select(t.workspaces.c.name).order_by(t.workspaces.c.id)).scalars())


def ensure_dnc_list(
    conn: sa.Connection, workspace_id: int, name: str, now: datetime
) -> tuple[int, bool]:
    found = conn.execute(
        sa.select(t.dnc_lists.c.id).where(
            t.dnc_lists.c.workspace_id == workspace_id, t.dnc_lists.c.name == name
        )
    ).scalar_one_or_none()
    if found is not None:
        return found, False
    new_id = conn.execute(
        sa.insert(t.dnc_lists)
        .values(workspace_id=workspace_id, name=name, created_at=now)
        .returning(t.dnc_lists.c.id)
    ).scalar_one()
    return new_id, True


def _linked_dnc_lists(conn: sa.Connection, campaign_id: int) -> list[str]:
    rows = conn.execute(
        sa.select(t.dnc_lists.c.name)
        .join(t.campaign_dnc_lists, t.campaign_dnc_lists.c.dnc_list_id == t.dnc_lists.c.id)
        .where(t.campaign_dnc_lists.c.campaign_id == campaign_id)
        .order_by(t.dnc_lists.c.name)
    )
    return [r.name for r in rows]


def dispositions(conn: sa.Connection, campaign_id: int) -> list[Disposition]:
    """The campaign's dispositions, in the campaign file's order."""
    d = t.dispositions
    return [Disposition.from_row(r) for r in conn.execute(
        sa.select(d).where(d.c.campaign_id == campaign_id).order_by(d.c.position)
    )]


def _dispositions(conn: sa.Connection, campaign_id: int) -> list[dict[str, Any]]:
    """The dispositions as the rows `apply_campaign` writes (title, flags, position), to compare."""
    return [
        {"title": d.title, "qualified": d.qualified, "contacted": d.contacted, "callback": d.callback,
         "dnc": d.dnc, "position": d.position}
        for d in dispositions(conn, campaign_id)
    ]


def apply_campaign(
    conn: sa.Connection,
    settings: CampaignSettings,
    now: datetime,
    *,
    keys_given: set[str] | None = None,
) -> ApplyResult:
    """Create or update the campaign so that it matches `settings`.

    Args:
        keys_given: the top-level keys the file set; `state` is applied to an
            existing campaign only when it is among them. None means all.
    """
    workspace_id, created_workspace = ensure_workspace(conn, settings.workspace, now)
    row = settings_to_row(settings)
    existing = conn.execute(
        sa.select(t.campaigns).where(
            t.campaigns.c.workspace_id == workspace_id, t.campaigns.c.slug == settings.resolved_slug
        )
    ).one_or_none()

    if existing is not None and existing.locale != settings.locale:
        raise SettingsError(
            f"campaign {settings.workspace}/{settings.slug}: `locale` is {existing.locale} and "
            f"cannot be changed to {settings.locale} after creation; create a new campaign "
            "(another slug) for the other locale."
        )
    if existing is not None and keys_given is not None and "state" not in keys_given:
        row["state"] = existing.state

    wanted_lists = sorted(settings.dnc.lists)
    wanted_dispositions = _disposition_rows(settings)

    if existing is None:
        campaign_id = conn.execute(
            sa.insert(t.campaigns)
            .values(workspace_id=workspace_id, created_at=now, updated_at=now, **row)
            .returning(t.campaigns.c.id)
        ).scalar_one()
        changes: list[str] = []
        action = ApplyAction.CREATED
        current_lists: list[str] = []
        current_dispositions: list[dict[str, Any]] = []
    else:
        campaign_id = existing.id
        current = existing._mapping
        changes = [
            f"{name}: {current[name]!r} → {value!r}"
            for name, value in row.items()
            if current[name] != value
        ]
        current_lists = _linked_dnc_lists(conn, campaign_id)
        current_dispositions = _dispositions(conn, campaign_id)
        if current_lists != wanted_lists:
            changes.append(f"dnc.lists: {current_lists} → {wanted_lists}")
        if current_dispositions != wanted_dispositions:
            changes.append(
                "dispositions: "
                f"{[d['title'] for d in current_dispositions]} → "
                f"{[d['title'] for d in wanted_dispositions]}"
            )
        action = ApplyAction.UPDATED if changes else ApplyAction.UNCHANGED
        if changes:
            conn.execute(
                sa.update(t.campaigns)
                .where(t.campaigns.c.id == campaign_id)
                .values(updated_at=now, **row)
            )
        if row["dnc_national_registry"] and not existing.dnc_national_registry:
            # Opting in: prospects loaded before were never checked against the National DNC
            # Registry, so the next fill re-checks them all, whatever version it last saw.
            conn.execute(sa.update(t.campaign_runtime).where(t.campaign_runtime.c.campaign_id == campaign_id)
                         .values(registry_checked_version_id=None))

    created_lists: list[str] = []
    if current_lists != wanted_lists:
        conn.execute(
            sa.delete(t.campaign_dnc_lists).where(t.campaign_dnc_lists.c.campaign_id == campaign_id)
        )
        for name in wanted_lists:
            list_id, created = ensure_dnc_list(conn, workspace_id, name, now)
            if created:
                created_lists.append(name)
            conn.execute(
                sa.insert(t.campaign_dnc_lists).values(campaign_id=campaign_id, dnc_list_id=list_id)
            )
    if current_dispositions != wanted_dispositions:
        conn.execute(sa.delete(t.dispositions).where(t.dispositions.c.campaign_id == campaign_id))
        if wanted_dispositions:
            conn.execute(
                sa.insert(t.dispositions),
                [{"campaign_id": campaign_id, **d} for d in wanted_dispositions],
            )
    return ApplyResult(
        action=action,
        workspace=settings.workspace,
        slug=settings.resolved_slug,
        campaign_id=campaign_id,
        changes=changes,
        created_dnc_lists=created_lists,
        created_workspace=created_workspace,
    )


@dataclass(frozen=True)
class CampaignRef:
    id: int
    workspace: str
    slug: str
    name: str
    state: str

    @property
    def qualified_slug(self) -> str:
        return f"{self.workspace}/{self.slug}"


def _ref_query():
    return sa.select(
        t.campaigns.c.id,
        t.workspaces.c.name.label("workspace"),
        t.campaigns.c.slug,
        t.campaigns.c.name,
        t.campaigns.c.state,
    ).join(t.workspaces, t.workspaces.c.id == t.campaigns.c.workspace_id)


def resolve_campaign(conn: sa.Connection, ref: str) -> CampaignRef:
    """Find a campaign by `slug` or `workspace/slug`."""
    workspace, _, slug = ref.rpartition("/")
    query = _ref_query().where(t.campaigns.c.slug == slug)
    if workspace:
        query = query.where(t.workspaces.c.name == workspace)
    rows = conn.execute(query).all()
    if not rows:
        raise NotFound(
            f"No campaign `{ref}`; `dialer campaign list` shows the campaigns, "
            "`dialer campaign apply FILE` creates one."
        )
    if len(rows) > 1:
        options = ", ".join(f"{r.workspace}/{r.slug}" for r in rows)
        raise DialerError(
            f"Campaign slug `{slug}` exists in several workspaces ({options}); "
            "name it as WORKSPACE/SLUG."
        )
    return CampaignRef(**rows[0]._mapping)


def list_campaigns(conn: sa.Connection, states: Iterable[CampaignState] | None = None) -> list[CampaignRef]:
    """Every campaign (or those in one of `states`), by workspace and slug."""
    query = _ref_query().order_by(t.workspaces.c.name, t.campaigns.c.slug)
    if states is not None:
        query = query.where(t.campaigns.c.state.in_([str(s) for s in states]))
    return [CampaignRef(**r._mapping) for r in conn.execute(query)]


@dataclass(frozen=True)
class ScheduledReports:
    """A campaign whose daily reports go out on a schedule, with what tells its first report day."""

    id: int
    qualified_slug: str
    created_at: datetime
    report_timezone: str


def report_scheduled_campaigns(conn: sa.Connection) -> list[ScheduledReports]:
    """Campaigns whose daily reports are due on a schedule (not archived, schedule not `disabled`), by id."""
    c, w = t.campaigns, t.workspaces
    rows = conn.execute(
        sa.select(c.c.id, w.c.name.label("workspace"), c.c.slug, c.c.created_at, c.c.report_timezone)
        .join(w, w.c.id == c.c.workspace_id)
        .where(c.c.state != str(CampaignState.ARCHIVED), c.c.report_schedule != "disabled")
        .order_by(c.c.id)
    ).all()
    return [ScheduledReports(r.id, f"{r.workspace}/{r.slug}", r.created_at, r.report_timezone) for r in rows]


def load_campaign(conn: sa.Connection, campaign_id: int) -> Campaign:
    """The campaign's stored settings as the typed model (`NoResultFound` if there is no such id)."""
    return Campaign.from_row(conn.execute(sa.select(t.campaigns).where(t.campaigns.c.id == campaign_id)).one())


def load_settings(conn: sa.Connection, campaign_id: int) -> CampaignSettings:
    """The campaign's effective settings, as the model a file would produce."""
    row = conn.execute(
        sa.select(t.campaigns, t.workspaces.c.name.label("workspace"))
        .join(t.workspaces, t.workspaces.c.id == t.campaigns.c.workspace_id)
        .where(t.campaigns.c.id == campaign_id)
    ).one()
    dispositions = [
        {k: d[k] for k in ("title", "qualified", "contacted", "callback", "dnc")}
        for d in _dispositions(conn, campaign_id)
    ]
    return CampaignSettings.model_validate(
        {
            "name": row.name,
            "slug": row.slug,
            "workspace": row.workspace,
            "locale": row.locale,
            "agent": row.agent,
            "state": row.state,
            "dial_window": {
                "earliest": hhmm_of(row.dial_earliest_min),
                "latest": hhmm_of(row.dial_latest_min),
            },
            "blocked_states": list(row.blocked_states),
            "holiday_filtering": row.holiday_filtering,
            "dialing": {
                "call_ratio": row.call_ratio,
                "dialer_interval_s": row.dialer_interval_s,
                "max_active_calls": row.max_active_calls,
                "max_calls_per_prospect": row.max_calls_per_prospect,
                "min_minutes_between_calls": row.min_minutes_between_calls,
                "wrap_up_s": row.wrap_up_s,
                "hopper_expiry_min": row.hopper_expiry_min,
                "fill_interval_min": row.fill_interval_min,
                "hopper_min_level": row.hopper_min_level,
                "callback_delay_min": row.callback_delay_min,
                "damper": {"mode": row.damper_mode, "threshold": row.damper_threshold},
                "pacing": row.pacing_mode,
                "target_abandon_rate": row.target_abandon_rate,
            },
            "uploads": {
                "dupe_days": row.dupe_days,
                "expire_days": row.expire_days,
                "priority": row.list_priority,
                "max_rows": row.max_upload_rows,
                "max_uncompressed_bytes": row.max_upload_bytes,
            },
            "dnc": {
                "lists": _linked_dnc_lists(conn, campaign_id),
                "dnc_disposition": row.dnc_disposition,
                "check_on_dial": row.check_on_dial,
                "national_registry": row.dnc_national_registry,
            },
            "dispositions": dispositions,
            "reports": {
                "schedule": row.report_schedule,
                "format": row.report_format,
                "compression": row.report_compression,
                "recipients": list(row.report_recipients),
                "timezone": row.report_timezone,
            },
        }
    )


def set_state(
    conn: sa.Connection, ref: CampaignRef, state: CampaignState, now: datetime
) -> bool:
    """Set the campaign's state; returns False when it already was in that state."""
    if ref.state == state:
        return False
    conn.execute(
        sa.update(t.campaigns)
        .where(t.campaigns.c.id == ref.id)
        .values(state=str(state), updated_at=now)
    )
    return True
