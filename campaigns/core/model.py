"""The typed domain model: a row becomes one of these once, at the edge, and everything above
works with the object.

Field names are the database's column names, so a rule that reads `campaign.call_ratio` reads
the same thing whether it got the object or (in an old call site) the row. The objects are
frozen: a change to a campaign, a prospect or an attempt is a database write, after which the
caller reads the object again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar

from campaigns.core.lifecycle import (
    AttemptStatus,
    CallOutcome,
    CampaignState,
    PacingMode,
    ProspectStatus,
)

T = TypeVar("T")


def _mapping(row: Any) -> Mapping[str, Any]:
    """A SQLAlchemy Row, a RowMapping or a plain mapping, as a mapping."""
    return row._mapping if hasattr(row, "_mapping") else row


def _build(cls: type[T], m: Mapping[str, Any]) -> T:
    """`cls` from a row holding (at least) its columns; extra columns are ignored."""
    return cls(**{f.name: m[f.name] for f in fields(cls) if f.name in m})  # type: ignore[arg-type]


@dataclass(frozen=True)
class Campaign:
    """A campaign's settings as stored (`campaigns`): what the rules, pacing and reports read."""

    id: int
    workspace_id: int
    slug: str
    name: str
    locale: str
    agent: str
    state: CampaignState
    dial_earliest_min: int
    dial_latest_min: int
    blocked_states: tuple[str, ...]
    holiday_filtering: bool
    call_ratio: float
    dialer_interval_s: int
    max_active_calls: int
    max_calls_per_prospect: int
    min_minutes_between_calls: int
    wrap_up_s: int
    hopper_expiry_min: int
    fill_interval_min: int
    hopper_min_level: int
    callback_delay_min: int
    damper_mode: str
    damper_threshold: float
    dupe_days: int
    expire_days: int
    list_priority: int
    dnc_disposition: str | None
    check_on_dial: bool
    report_schedule: str
    report_format: str
    report_compression: str
    report_recipients: tuple[str, ...]
    report_timezone: str
    pacing_mode: PacingMode = PacingMode.RATIO
    target_abandon_rate: float = 0.02
    dnc_national_registry: bool = False  # checked against the National DNC Registry (campaigns.registry)

    @classmethod
    def from_row(cls, row: Any) -> Campaign:
        m = dict(_mapping(row))
        m["state"] = CampaignState(m["state"])
        if "pacing_mode" in m:
            m["pacing_mode"] = PacingMode(m["pacing_mode"])
        m["blocked_states"] = tuple(m.get("blocked_states") or ())
        m["report_recipients"] = tuple(m.get("report_recipients") or ())
        m["holiday_filtering"] = bool(m["holiday_filtering"])
        m["check_on_dial"] = bool(m["check_on_dial"])
        m["dnc_national_registry"] = bool(m.get("dnc_national_registry", False))
        return _build(cls, m)



@dataclass(frozen=True)
class Disposition:
    """A campaign's disposition (`dispositions`): what applying it does to the prospect."""

    id: int
    campaign_id: int
    title: str
    qualified: bool
    contacted: bool
    callback: bool
    dnc: bool
    position: int

    @classmethod
    def from_row(cls, row: Any) -> Disposition:
        m = dict(_mapping(row))
        for flag in ("qualified", "contacted", "callback", "dnc"):
            m[flag] = bool(m[flag])
        return _build(cls, m)

    def matches(self, title: str | None) -> bool:
        """Titles match without regard to case: the platform may report `do not call`."""
        return title is not None and self.title.casefold() == title.casefold()


@dataclass(frozen=True)
class Prospect:
    """A stored prospect as dialing sees it (`prospects`, without the contact details)."""

    id: int
    campaign_id: int
    list_id: int
    phone_e164: str
    address_state: str | None
    area_code_state: str | None
    zone_group: str
    priority: int
    status: ProspectStatus
    disposition: str | None
    attempts: int
    last_attempt_at: datetime | None
    next_dial_at: datetime
    callback_at: datetime | None
    expires_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Prospect:
        m = dict(_mapping(row))
        m["status"] = ProspectStatus(m["status"])
        return _build(cls, m)


@dataclass(frozen=True)
class ClaimedProspect:
    """A hopper row a daemon claimed, with its prospect as it was when claimed."""

    hopper_id: int
    hopper_priority: int
    prospect: Prospect

    @classmethod
    def from_row(cls, row: Any) -> ClaimedProspect:
        m = _mapping(row)
        return cls(m["hopper_id"], m["hopper_priority"], Prospect.from_row(m))


@dataclass(frozen=True)
class Attempt:
    """One call attempt (`call_attempts`): recorded and counted before its request is sent."""

    id: int
    campaign_id: int
    prospect_id: int
    attempt_number: int
    idempotency_key: str
    phone_e164: str
    platform_call_id: str | None
    status: AttemptStatus
    # An outcome outside `CallOutcome` was stored by an earlier version, which kept whatever the
    # platform reported; it is kept as written, so reading such an attempt never fails.
    outcome: CallOutcome | str | None
    disposition: str | None
    created_at: datetime
    placed_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    duration_s: float | None
    callback_at: datetime | None
    failure_cause: str | None
    daemon_id: str | None
    sent_at: datetime | None
    sends: int = 1
    next_send_at: datetime | None = None
    registry_version_id: int | None = None  # the National DNC Registry version the call was checked against

    @classmethod
    def from_row(cls, row: Any) -> Attempt:
        m = dict(_mapping(row))
        m["status"] = AttemptStatus(m["status"])
        outcome = m.get("outcome") or None
        m["outcome"] = CallOutcome(outcome) if outcome in set(CallOutcome) else outcome
        return _build(cls, m)
