"""State telemarketing rules as data: calling hours by weekday, holiday bans, frequency caps.

DESIGN.md §5: the rules are tables in `campaigns/data/`, not code.

- `state_rules.csv`: one row per state stricter than the federal floor
  (hours per weekday or `closed`, the clock the hours are read on — `local`,
  or a fixed zone such as Mississippi's Central *Standard* Time — whether the
  state bans calls on its holidays, the calls allowed per 24 hours, the statute).
- `holiday_bans.csv`: which holidays each banning state names. The `holidays`
  package computes the dates, but its state calendars are not the statutes'
  lists (Pennsylvania's telemarketing list includes Flag Day and Election Day),
  so the list is ours.
- `holidays.csv`: how each holiday's date is found: by name in a `holidays`
  calendar (observed dates included, the conservative reading), or a fixed date.

The federal floor (47 CFR § 64.1200(c)(1)) is 08:00–21:00 local in every state.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from zoneinfo import ZoneInfo

from campaigns.core import DATA_DIR

DATA = DATA_DIR  # campaigns/core/data

FEDERAL_HOURS = (8 * 60, 21 * 60)
FEDERAL_CITATION = "47 CFR § 64.1200(c)(1)"
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_HOURS = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


class RulesDataError(ValueError):
    """A rules table in campaigns/data is malformed (a packaging defect, not user input)."""


@dataclass(frozen=True)
class StateRule:
    state: str
    # Minutes after midnight (start, end) per weekday, Monday first; None when closed all day.
    hours: tuple[tuple[int, int] | None, ...]
    clock: str  # "local", or an IANA zone the hours are read on
    holiday_ban: bool
    calls_per_24h: int | None
    citation: str

    def hours_on(self, weekday: int) -> tuple[int, int] | None:
        return self.hours[weekday]

    def clock_zone(self) -> ZoneInfo | None:
        return None if self.clock == "local" else ZoneInfo(self.clock)


@dataclass(frozen=True)
class Holiday:
    key: str
    name: str
    calendar: str  # "US", "US-XX" (a subdivision) or "fixed"
    match: str  # a name pattern, or MM-DD for a fixed date


def _parse_hours(text: str, where: str) -> tuple[int, int] | None:
    text = text.strip()
    if text == "closed":
        return None
    found = _HOURS.match(text)
    if not found:
        raise RulesDataError(f"{where}: hours must be HH:MM-HH:MM or closed (got {text!r})")
    h1, m1, h2, m2 = (int(g) for g in found.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if not 0 <= start < end <= 24 * 60:
        raise RulesDataError(f"{where}: hours {text!r} are not an interval within a day")
    return (start, end)


@lru_cache(maxsize=1)
def state_rules() -> dict[str, StateRule]:
    rules = {}
    with (DATA / "state_rules.csv").open(encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            where = f"state_rules.csv line {line}"
            weekday = _parse_hours(row["mon_fri"], where)
            hours = (weekday,) * 5 + (
                _parse_hours(row["sat"], where),
                _parse_hours(row["sun"], where),
            )
            clock = row["clock"].strip()
            if clock != "local":
                ZoneInfo(clock)  # refuses an unknown zone at load
            cap = row["calls_per_24h"].strip()
            rules[row["state"]] = StateRule(
                state=row["state"],
                hours=hours,
                clock=clock,
                holiday_ban=row["holiday_ban"].strip() == "yes",
                calls_per_24h=int(cap) if cap else None,
                citation=row["citation"].strip(),
            )
    return rules


@lru_cache(maxsize=1)
def holiday_table() -> dict[str, Holiday]:
    with (DATA / "holidays.csv").open(encoding="utf-8") as handle:
        return {row["holiday"]: Holiday(row["holiday"], row["name"], row["calendar"], row["match"])
                for row in csv.DictReader(handle)}


@lru_cache(maxsize=1)
def holiday_bans() -> dict[str, tuple[str, ...]]:
    known = holiday_table()
    bans = {}
    with (DATA / "holiday_bans.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            keys = tuple(row["holidays"].split())
            unknown = [k for k in keys if k not in known]
            if unknown:
                raise RulesDataError(f"holiday_bans.csv, {row['state']}: unknown holidays {unknown}")
            bans[row["state"]] = keys
    return bans


@lru_cache(maxsize=64)
def _calendar(calendar: str, year: int):
    import holidays

    subdiv = calendar.split("-", 1)[1] if "-" in calendar else None
    return holidays.US(subdiv=subdiv, years=year, observed=True)


@lru_cache(maxsize=4096)
def holiday_dates(key: str, year: int) -> tuple[date, ...]:
    """Every date in `year` on which holiday `key` falls or is observed."""
    holiday = holiday_table()[key]
    if holiday.calendar == "fixed":
        month, day = (int(x) for x in holiday.match.split("-"))
        return (date(year, month, day),)
    pattern = re.compile(holiday.match)
    return tuple(sorted(d for d, name in _calendar(holiday.calendar, year).items()
                        for part in name.split("; ") if pattern.search(part)))


@lru_cache(maxsize=4096)
def banned_holiday(state: str, day: date) -> Holiday | None:
    """The holiday that bans calls into `state` on local date `day`, if any."""
    rule = state_rules().get(state)
    if rule is None or not rule.holiday_ban:
        return None
    table = holiday_table()
    for key in holiday_bans().get(state, ()):
        # An observed date may fall in the neighbouring year (New Year's Day on a Saturday).
        for year in (day.year, day.year + 1):
            if day in holiday_dates(key, year):
                return table[key]
    return None


def frequency_cap(states) -> tuple[int, str] | None:
    """The strictest calls-per-24-hours cap among `states`, with the state that sets it."""
    caps = [(r.calls_per_24h, r.state) for s in states if s and (r := state_rules().get(s))
            and r.calls_per_24h is not None]
    return min(caps) if caps else None
