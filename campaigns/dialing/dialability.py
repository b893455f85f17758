"""May this prospect be dialed at this instant, and if not, why not and when?

Every dialing rule lives here, once (DESIGN.md §3–§5). The hopper fill, the
daemon's re-check before each call, `dialer explain` and `dialer campaign
status` all ask this module; none restates a rule.

Two layers:
- `window_reasons(place, rules, now)`: the time-and-place rules — the
  campaign's dial window, the federal floor, state hours by weekday, state
  holiday bans and blocked states — evaluated in **every** candidate zone
  (open only if open in all). They depend on the prospect only through its
  zone group, so the hopper fill asks once per group, not once per prospect.
- `evaluate(facts, rules, now)`: those plus the prospect's own state — DNC
  lists, lifecycle status, attempts, min time between calls, callback time,
  expiry and frequency caps.

Local time comes from `zoneinfo` at decision time; nothing stores an offset.
Every "no" is a `Reason` with a stable machine-readable code and a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from campaigns.core.lifecycle import CallOutcome, CampaignState, ProspectStatus
from campaigns.core.model import Campaign
from campaigns.core.regions import REGION_NAMES
from campaigns.dialing.staterules import (
    FEDERAL_CITATION,
    FEDERAL_HOURS,
    WEEKDAY_NAMES,
    banned_holiday,
    frequency_cap,
    state_rules,
)
from campaigns.registry.rules import Objection
from campaigns.setup.settings import hhmm_of

DAY = timedelta(days=1)
CAP_WINDOW = timedelta(hours=24)


class Code:
    """The machine-readable reason codes (stable: scripts and dashboards key on them)."""

    CAMPAIGN_NOT_ACTIVE = "campaign_not_active"
    BLOCKED_STATE = "blocked_state"
    OUTSIDE_DIAL_WINDOW = "outside_dial_window"
    OUTSIDE_FEDERAL_HOURS = "outside_federal_hours"
    OUTSIDE_STATE_HOURS = "outside_state_hours"
    STATE_DAY_BAN = "state_day_ban"
    STATE_HOLIDAY = "state_holiday"
    ON_DNC_LIST = "on_dnc_list"
    STATUS = "status"
    CALL_IN_PROGRESS = "call_in_progress"
    MAX_ATTEMPTS = "max_attempts"
    TOO_SOON = "too_soon"
    CALLBACK_NOT_DUE = "callback_not_due"
    EXPIRED = "expired"
    FREQUENCY_CAP = "frequency_cap"
    # The National DNC Registry's (campaigns.registry.rules), for a campaign that opted in.
    ON_NATIONAL_REGISTRY = str(Objection.ON_NATIONAL_REGISTRY)
    DNC_REGISTRY_STALE = str(Objection.DNC_REGISTRY_STALE)
    AREA_CODE_NOT_COVERED = str(Objection.AREA_CODE_NOT_COVERED)


# Reasons that time alone never clears: no "next dialable" instant exists.
# The registry's reasons are among them: a new version, not time, clears them.
PERMANENT = frozenset({
    Code.CAMPAIGN_NOT_ACTIVE, Code.BLOCKED_STATE, Code.ON_DNC_LIST, Code.STATUS,
    Code.CALL_IN_PROGRESS, Code.MAX_ATTEMPTS, Code.EXPIRED,
    Code.ON_NATIONAL_REGISTRY, Code.DNC_REGISTRY_STALE, Code.AREA_CODE_NOT_COVERED,
})


@dataclass(frozen=True)
class Reason:
    code: str
    message: str

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class DialRules:
    """The campaign's side of every decision."""

    state: str = str(CampaignState.ACTIVE)
    earliest_min: int = 9 * 60
    latest_min: int = 21 * 60
    blocked_states: frozenset[str] = frozenset()
    holiday_filtering: bool = True
    max_calls_per_prospect: int = 10
    min_minutes_between_calls: int = 30
    # For a campaign checked against the National DNC Registry: the area codes (3 digits) its
    # current version covers with fresh data; None for a campaign that did not opt in. Set by
    # the fill (`national_registry.fill_rules`), read by `registry_clause`.
    registry_areas: tuple[str, ...] | None = None

    @classmethod
    def from_campaign(cls, campaign: Campaign | Any) -> DialRules:
        """From a `Campaign` (or a whole `campaigns` row, read as one)."""
        c = campaign if isinstance(campaign, Campaign) else Campaign.from_row(campaign)
        return cls(
            state=str(c.state),
            earliest_min=c.dial_earliest_min,
            latest_min=c.dial_latest_min,
            blocked_states=frozenset(c.blocked_states),
            holiday_filtering=c.holiday_filtering,
            max_calls_per_prospect=c.max_calls_per_prospect,
            min_minutes_between_calls=c.min_minutes_between_calls,
        )

    @property
    def window_text(self) -> str:
        return f"{hhmm_of(self.earliest_min)}–{hhmm_of(self.latest_min)}"


@dataclass(frozen=True)
class Place:
    """Where a prospect may be: what the time-and-place rules depend on."""

    zones: tuple[str, ...]
    address_state: str | None = None
    area_code_state: str | None = None

    @classmethod
    def from_group(cls, key: str) -> Place:
        """Parse a stored zone group (`zones|address state|area-code state`)."""
        zones, address, area = key.split("|")
        return cls(tuple(z for z in zones.split(",") if z),
                   None if address == "-" else address, None if area == "-" else area)

    @property
    def rule_states(self) -> tuple[str, ...]:
        """States whose telemarketing rules apply: where the person lives and the area code's."""
        return tuple(dict.fromkeys(s for s in (self.address_state, self.area_code_state) if s))


@dataclass(frozen=True)
class ProspectFacts:
    """Everything about one prospect a decision needs, read once from the database."""

    place: Place
    phone_e164: str
    status: str = str(ProspectStatus.READY)
    disposition: str | None = None
    attempts: int = 0
    last_attempt_at: datetime | None = None
    next_dial_at: datetime | None = None
    callback_at: datetime | None = None
    expires_at: datetime | None = None
    dnc_lists: tuple[str, ...] = ()  # the campaign's DNC lists that hold the number
    # The National DNC Registry's objections (`national_registry.objections_at_call`), already decided.
    registry: tuple[Reason, ...] = ()
    recent_calls: tuple[datetime, ...] = ()  # calls to the number in the 24 h before the decision


@dataclass(frozen=True)
class ZoneTime:
    zone: str
    local: datetime
    open: bool

    def as_dict(self) -> dict:
        return {
            "zone": self.zone,
            "local_time": self.local.isoformat(timespec="minutes"),
            "abbreviation": self.local.tzname(),
            "open": self.open,
        }


@dataclass(frozen=True)
class Verdict:
    at: datetime
    reasons: tuple[Reason, ...]
    zones: tuple[ZoneTime, ...] = ()
    next_dialable_at: datetime | None = field(default=None, compare=False)

    @property
    def dialable(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict:
        return {
            "dialable": self.dialable,
            "at": self.at.isoformat(),
            "reasons": [r.as_dict() for r in self.reasons],
            "zones": [z.as_dict() for z in self.zones],
            "next_dialable_at": self.next_dialable_at.isoformat() if self.next_dialable_at else None,
        }


@lru_cache(maxsize=1)
def _state_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for name, code in REGION_NAMES.items():
        names.setdefault(code, name)
    return names


def state_name(code: str) -> str:
    return _state_names().get(code, code)


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _clock(local: datetime) -> str:
    return f"{local:%H:%M} {local.tzname()}"


def _seconds_into_day(local: datetime) -> int:
    return local.hour * 3600 + local.minute * 60 + local.second


def _within(local: datetime, hours: tuple[int, int]) -> bool:
    return hours[0] * 60 <= _seconds_into_day(local) < hours[1] * 60


def _hours_text(hours: tuple[int, int]) -> str:
    return f"{hhmm_of(hours[0])}–{hhmm_of(hours[1])}"


def window_reasons(place: Place, rules: DialRules, now: datetime) -> list[Reason]:
    """The time-and-place rules at `now`, in every candidate zone; empty when all are open."""
    return _unique(list(_window_problems(place, rules, now)))


def window_open(place: Place, rules: DialRules, now: datetime) -> bool:
    # Stops at the first problem: the hopper fill asks this for every zone group.
    return next(_window_problems(place, rules, now), None) is None


def _window_problems(place: Place, rules: DialRules, now: datetime):
    if rules.state != CampaignState.ACTIVE:
        yield Reason(Code.CAMPAIGN_NOT_ACTIVE, f"the campaign is {rules.state}, not active")
    # Conservative, like every rule here: a blocked state blocks its residents and its area codes.
    for state in place.rule_states:
        if state in rules.blocked_states:
            role = "the prospect's state" if state == place.address_state else "the number's area code"
            yield Reason(
                Code.BLOCKED_STATE,
                f"the campaign blocks calls into {state} ({state_name(state)}, {role})",
            )
    campaign = (rules.earliest_min, rules.latest_min)
    states = [state_rules()[s] for s in place.rule_states if s in state_rules()]
    for zone_name in place.zones:
        local = now.astimezone(_zone(zone_name))
        if not _within(local, campaign):
            yield Reason(
                Code.OUTSIDE_DIAL_WINDOW,
                f"outside the dial window in {zone_name} ({_clock(local)}, window {rules.window_text})",
            )
        if not _within(local, FEDERAL_HOURS):
            yield Reason(
                Code.OUTSIDE_FEDERAL_HOURS,
                f"outside the federal calling hours in {zone_name} ({_clock(local)}, allowed "
                f"{_hours_text(FEDERAL_HOURS)}; {FEDERAL_CITATION})",
            )
        for rule in states:
            if rule.clock == "local":
                yield from _state_hours(rule, local, f" in {zone_name}")
            if rules.holiday_filtering and (holiday := banned_holiday(rule.state, local.date())):
                yield Reason(
                    Code.STATE_HOLIDAY,
                    f"{state_name(rule.state)} bans telemarketing calls on {holiday.name} "
                    f"({local.date().isoformat()} in {zone_name}; {rule.citation})",
                )
    for rule in states:
        if rule.clock != "local":
            yield from _state_hours(rule, now.astimezone(rule.clock_zone()), "")


def _state_hours(rule, local: datetime, where: str) -> list[Reason]:
    day = WEEKDAY_NAMES[local.weekday()]
    hours = rule.hours_on(local.weekday())
    if hours is None:
        return [Reason(
            Code.STATE_DAY_BAN,
            f"{state_name(rule.state)} allows no telemarketing calls on {day} "
            f"({day}{where}; {rule.citation})",
        )]
    if not _within(local, hours):
        basis = "" if rule.clock == "local" else f" on {rule.clock} clock"
        return [Reason(
            Code.OUTSIDE_STATE_HOURS,
            f"outside {state_name(rule.state)} calling hours{where} ({_clock(local)} {day}, "
            f"allowed {_hours_text(hours)}{basis}; {rule.citation})",
        )]
    return []


def _unique(reasons: list[Reason]) -> list[Reason]:
    return list(dict.fromkeys(reasons))


def zone_times(place: Place, rules: DialRules, now: datetime) -> tuple[ZoneTime, ...]:
    out = []
    for zone_name in place.zones:
        local = now.astimezone(_zone(zone_name))
        single = Place((zone_name,), place.address_state, place.area_code_state)
        out.append(ZoneTime(zone_name, local, window_open(single, rules, now)))
    return tuple(out)


def ready_due_at(facts: ProspectFacts, rules: DialRules) -> datetime | None:
    """When min time between calls (and any stored next-dial time) lets a READY prospect go."""
    times = [t for t in (facts.next_dial_at,) if t is not None]
    if facts.last_attempt_at is not None:
        times.append(facts.last_attempt_at + timedelta(minutes=rules.min_minutes_between_calls))
    return max(times) if times else None


def prospect_reasons(facts: ProspectFacts, rules: DialRules, now: datetime) -> list[Reason]:
    """The prospect's own rules at `now` (everything but time and place)."""
    reasons: list[Reason] = []
    if facts.dnc_lists:
        reasons.append(Reason(
            Code.ON_DNC_LIST, f"{facts.phone_e164} is on the DNC list {', '.join(facts.dnc_lists)}"
        ))
    reasons.extend(facts.registry)
    status = facts.status
    if status == ProspectStatus.DIALING:
        reasons.append(Reason(Code.CALL_IN_PROGRESS, "a call to this prospect is in progress"))
    elif status not in (ProspectStatus.READY, ProspectStatus.CALLBACK, ProspectStatus.QUEUED):
        given = f" (disposition {facts.disposition})" if facts.disposition else ""
        reasons.append(Reason(Code.STATUS, f"the prospect is {status}{given}; it is not dialed again"))
    if max_calls_reached(facts.attempts, rules):
        reasons.append(Reason(
            Code.MAX_ATTEMPTS,
            f"{facts.attempts} calls made, the campaign's maximum is {rules.max_calls_per_prospect}",
        ))
    if facts.expires_at is not None and not facts.expires_at > now:
        reasons.append(Reason(Code.EXPIRED, f"expired at {_utc(facts.expires_at)}"))
    if status == ProspectStatus.CALLBACK:
        due = facts.callback_at or facts.next_dial_at
        if due is not None and due > now:
            reasons.append(Reason(Code.CALLBACK_NOT_DUE, f"callback due at {_utc(due)}"))
    elif status in (ProspectStatus.READY, ProspectStatus.QUEUED):
        due = ready_due_at(facts, rules)
        if due is not None and due > now:
            if facts.last_attempt_at is not None:
                why = (f"last called {_utc(facts.last_attempt_at)} and the min time between calls "
                       f"is {rules.min_minutes_between_calls} min")
            else:
                why = "its next dial time has not come (it was loaded later)"
            reasons.append(Reason(Code.TOO_SOON, f"not due until {_utc(due)}: {why}"))
    recent = [c for c in facts.recent_calls if now - CAP_WINDOW < c <= now]
    if cap := cap_reached(facts.place, len(recent)):
        limit, state = cap
        reasons.append(Reason(
            Code.FREQUENCY_CAP,
            f"{len(recent)} calls to {facts.phone_e164} in the last 24 h; "
            f"{state_name(state)} allows {limit} ({state_rules()[state].citation})",
        ))
    return reasons


def max_calls_reached(attempts: int, rules: DialRules) -> bool:
    return attempts >= rules.max_calls_per_prospect


def cap_reached(place: Place, calls_last_24h: int) -> tuple[int, str] | None:
    """(limit, state) when the calls to the number in the last 24 h reach a state's cap."""
    cap = frequency_cap(place.rule_states)
    return cap if cap is not None and calls_last_24h >= cap[0] else None


def _utc(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M UTC")


def evaluate(facts: ProspectFacts, rules: DialRules, now: datetime) -> Verdict:
    """The full answer at `now`, without the search for the next dialable instant."""
    reasons = window_reasons(facts.place, rules, now) + prospect_reasons(facts, rules, now)
    return Verdict(at=now, reasons=tuple(reasons), zones=zone_times(facts.place, rules, now))


def explain(facts: ProspectFacts, rules: DialRules, now: datetime, horizon_days: int = 21) -> Verdict:
    """`evaluate`, plus when the prospect next becomes dialable (None: not by time alone)."""
    verdict = evaluate(facts, rules, now)
    nxt = now if verdict.dialable else next_dialable_at(facts, rules, now, verdict, horizon_days)
    nxt = nxt.astimezone(ZoneInfo("UTC")) if nxt is not None else None
    return Verdict(verdict.at, verdict.reasons, verdict.zones, nxt)


def next_dialable_at(
    facts: ProspectFacts, rules: DialRules, now: datetime,
    verdict: Verdict | None = None, horizon_days: int = 21,
) -> datetime | None:
    """The first instant after `now` at which every rule allows the call, within the horizon.

    Only a rule's opening instants can turn "no" into "yes": the start of a
    window (campaign, federal or state, in each zone or clock), a due time, a
    call leaving the 24-hour cap window. Those candidates are checked in order.
    """
    verdict = verdict or evaluate(facts, rules, now)
    if verdict.dialable:
        return now
    if any(r.code in PERMANENT for r in verdict.reasons):
        return None
    candidates = set(_window_starts(facts.place, rules, now, horizon_days))
    if facts.status == ProspectStatus.CALLBACK:
        candidates.add(facts.callback_at or facts.next_dial_at)
    else:
        candidates.add(ready_due_at(facts, rules))
    candidates.update(c + CAP_WINDOW for c in facts.recent_calls)
    for moment in sorted(c for c in candidates if c is not None and c > now):
        if moment > now + horizon_days * DAY:
            break
        if facts.expires_at is not None and moment >= facts.expires_at:
            return None
        if not window_reasons(facts.place, rules, moment) and not prospect_reasons(facts, rules, moment):
            return moment
    return None


def _window_starts(place: Place, rules: DialRules, now: datetime, days: int):
    """Instants at which some window opens, for `days` days from `now`, in every zone and clock."""
    states = [state_rules()[s] for s in place.rule_states if s in state_rules()]
    clocks = {z: _zone(z) for z in place.zones}
    clocks.update({r.clock: _zone(r.clock) for r in states if r.clock != "local"})
    for zone in clocks.values():
        first = now.astimezone(zone).date() - DAY
        for offset in range(days + 2):
            day = first + offset * DAY
            starts = {rules.earliest_min, FEDERAL_HOURS[0], 0}
            for rule in states:
                hours = rule.hours_on(day.weekday())
                if hours:
                    starts.add(hours[0])
            for minute in starts:
                yield _at(day, minute, zone)


def _at(day: date, minute: int, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)


# The SQL forms of the prospect rules, for the hopper fill. They sit beside the
# Python forms above so that the two cannot drift apart unnoticed.

def calls_left_clause(p: sa.Table, rules: DialRules) -> sa.ColumnElement[bool]:
    """SQL for `not max_calls_reached(attempts, rules)`."""
    return p.c.attempts < rules.max_calls_per_prospect


def dialed_clause(a: sa.Table) -> sa.ColumnElement[bool]:
    """Call attempts that count as calls to the number: all but those the platform never placed."""
    return sa.or_(a.c.outcome.is_(None), a.c.outcome != str(CallOutcome.NOT_PLACED))


def registry_clause(p: sa.Table, rules: DialRules) -> sa.ColumnElement[bool]:
    """SQL for "the National DNC Registry allows the call" (`campaigns.registry.rules.objections`):
    not found listed at the last check, and a +1 number of an area code covered with fresh data."""
    if rules.registry_areas is None:
        return sa.true()
    return sa.and_(p.c.registry_version_id.is_(None), in_area_codes_clause(p, rules.registry_areas))


def in_area_codes_clause(p: sa.Table, area_codes: tuple[str, ...] | list[str]) -> sa.ColumnElement[bool]:
    """SQL for "a +1 number whose area code (3 digits) is one of `area_codes`"."""
    phone = p.c.phone_e164
    return sa.and_(sa.func.length(phone) == 12, sa.func.substr(phone, 1, 2) == "+1",
                   sa.func.substr(phone, 3, 3).in_(area_codes))


def unexpired_clause(p: sa.Table, now: datetime) -> sa.ColumnElement[bool]:
    return p.c.expires_at > now


def ready_due_clause(p: sa.Table, rules: DialRules, now: datetime) -> sa.ColumnElement[bool]:
    """READY prospects whose attempts, expiry, next-dial and min-between-calls allow a call."""
    spacing = now - timedelta(minutes=rules.min_minutes_between_calls)
    return sa.and_(
        p.c.status == str(ProspectStatus.READY),
        calls_left_clause(p, rules),
        unexpired_clause(p, now),
        p.c.next_dial_at <= now,
        sa.or_(p.c.last_attempt_at.is_(None), p.c.last_attempt_at <= spacing),
    )


def callback_due_clause(p: sa.Table, rules: DialRules, now: datetime) -> sa.ColumnElement[bool]:
    """CALLBACK prospects whose callback time has come (min time between calls does not apply)."""
    return sa.and_(
        p.c.status == str(ProspectStatus.CALLBACK),
        calls_left_clause(p, rules),
        unexpired_clause(p, now),
        sa.func.coalesce(p.c.callback_at, p.c.next_dial_at) <= now,
    )
