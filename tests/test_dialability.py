"""The dial-window rules, pinned at their edges: one table of cases per rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from campaigns.dialing.dialability import (
    Code,
    DialRules,
    Place,
    ProspectFacts,
    evaluate,
    explain,
    window_reasons,
)
from campaigns.dialing.staterules import banned_holiday, holiday_dates, state_rules

DEFAULT = DialRules()
WIDE = DialRules(earliest_min=0, latest_min=24 * 60)  # only the law limits the window


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def codes(place: Place, when: str, rules: DialRules = DEFAULT) -> set[str]:
    return {r.code for r in window_reasons(place, rules, at(when))}


NY = Place(("America/New_York",), "NY", "NY")


@pytest.mark.parametrize(
    ("place", "when", "is_open"),
    [
        # 08:59 / 09:00 / 20:59 / 21:00 local, New York in July (EDT, UTC-4).
        (NY, "2026-07-01T12:59Z", False),
        (NY, "2026-07-01T13:00Z", True),
        (NY, "2026-07-02T00:59Z", True),
        (NY, "2026-07-02T01:00Z", False),
        # The same local edges in January (EST, UTC-5).
        (NY, "2026-01-15T13:59Z", False),
        (NY, "2026-01-15T14:00Z", True),
        (NY, "2026-01-16T01:59Z", True),
        (NY, "2026-01-16T02:00Z", False),
        # DST starts 2026-03-08: 09:00 is 14:00Z the day before and 13:00Z that day.
        (NY, "2026-03-07T13:59Z", False),
        (NY, "2026-03-07T14:00Z", True),
        (NY, "2026-03-08T12:59Z", False),
        (NY, "2026-03-08T13:00Z", True),
        # DST ends 2026-11-01: 09:00 EST is 14:00Z; 21:00 EST is 02:00Z next day.
        (NY, "2026-10-31T13:00Z", True),
        (NY, "2026-11-01T13:59Z", False),
        (NY, "2026-11-01T14:00Z", True),
        (NY, "2026-11-02T01:59Z", True),
        (NY, "2026-11-02T02:00Z", False),
        # Arizona keeps MST (UTC-7) all year.
        (Place(("America/Phoenix",), "AZ", "AZ"), "2026-07-01T15:59Z", False),
        (Place(("America/Phoenix",), "AZ", "AZ"), "2026-07-01T16:00Z", True),
        (Place(("America/Phoenix",), "AZ", "AZ"), "2026-01-15T16:00Z", True),
        # Hawaii (UTC-10), Alaska (AKDT UTC-8 in July), Puerto Rico (AST UTC-4, no DST).
        (Place(("Pacific/Honolulu",), "HI", "HI"), "2026-07-01T18:59Z", False),
        (Place(("Pacific/Honolulu",), "HI", "HI"), "2026-07-01T19:00Z", True),
        (Place(("America/Anchorage",), "AK", "AK"), "2026-07-01T16:59Z", False),
        (Place(("America/Anchorage",), "AK", "AK"), "2026-07-01T17:00Z", True),
        (Place(("America/Puerto_Rico",), "PR", "PR"), "2026-01-15T12:59Z", False),
        (Place(("America/Puerto_Rico",), "PR", "PR"), "2026-01-15T13:00Z", True),
        (Place(("America/Puerto_Rico",), "PR", "PR"), "2026-07-01T13:00Z", True),
        # Guam (UTC+10): 09:00 on 2 July is 23:00Z on 1 July.
        (Place(("Pacific/Guam",), "GU", "GU"), "2026-07-01T22:59Z", False),
        (Place(("Pacific/Guam",), "GU", "GU"), "2026-07-01T23:00Z", True),
        # Saskatchewan keeps CST (UTC-6) all year.
        (Place(("America/Regina",), "SK", "SK"), "2026-07-01T14:59Z", False),
        (Place(("America/Regina",), "SK", "SK"), "2026-07-01T15:00Z", True),
        (Place(("America/Regina",), "SK", "SK"), "2026-01-15T15:00Z", True),
        # Newfoundland: NDT UTC-2:30 in July, NST UTC-3:30 in January.
        (Place(("America/St_Johns",), "NL", "NL"), "2026-07-01T11:29Z", False),
        (Place(("America/St_Johns",), "NL", "NL"), "2026-07-01T11:30Z", True),
        (Place(("America/St_Johns",), "NL", "NL"), "2026-01-15T12:29Z", False),
        (Place(("America/St_Johns",), "NL", "NL"), "2026-01-15T12:30Z", True),
        # The conservative rule: open only if open in every candidate zone.
        (Place(("America/Denver", "America/Phoenix"), "AZ", "AZ"), "2026-07-01T03:30Z", False),
        (Place(("America/Denver", "America/Phoenix"), "AZ", "AZ"), "2026-01-15T03:30Z", True),
        (Place(("America/Chicago", "America/New_York"), "TN", "TN"), "2026-07-01T13:30Z", False),
        (Place(("America/Chicago", "America/New_York"), "TN", "TN"), "2026-07-01T14:00Z", True),
    ],
)
def test_campaign_window_in_every_candidate_zone(place, when, is_open):
    found = codes(place, when)
    assert (not found) is is_open, found


def test_the_closed_zone_is_named_with_its_local_time():
    place = Place(("America/Denver", "America/Phoenix"), "AZ", "AZ")
    messages = [r.message for r in window_reasons(place, DEFAULT, at("2026-07-01T03:30Z"))]
    assert "outside the dial window in America/Denver (21:30 MDT, window 09:00–21:00)" in messages
    assert not any("Phoenix" in m for m in messages)


# The table, written out independently of campaigns/data/state_rules.csv.
STATE_TABLE = {
    #      Mon–Fri         Sat             Sun            cap   holiday ban  clock
    "FL": ("08:00-20:00", "08:00-20:00", "08:00-20:00", 3, False, "local"),
    "OK": ("08:00-20:00", "08:00-20:00", "08:00-20:00", 3, False, "local"),
    "MD": ("08:00-20:00", "08:00-20:00", "08:00-20:00", 3, False, "local"),
    "CT": ("09:00-20:00", "09:00-20:00", "09:00-20:00", None, False, "local"),
    "WA": ("08:00-20:00", "08:00-20:00", "08:00-20:00", None, False, "local"),
    "MA": ("08:00-20:00", "08:00-20:00", "08:00-20:00", None, False, "local"),
    "TX": ("09:00-21:00", "09:00-21:00", "12:00-21:00", None, False, "local"),
    "LA": ("08:00-20:00", "08:00-20:00", None, None, True, "local"),
    "AL": ("08:00-20:00", "08:00-20:00", None, None, True, "local"),
    "MS": ("08:00-20:00", "08:00-20:00", None, None, False, "Etc/GMT+6"),
    "RI": ("09:00-18:00", "10:00-17:00", None, None, True, "local"),
    "UT": ("08:00-21:00", "08:00-21:00", None, None, True, "local"),
    "PA": ("08:00-21:00", "08:00-21:00", "08:00-21:00", None, True, "local"),
}
ZONE = {"FL": "America/New_York", "OK": "America/Chicago", "MD": "America/New_York",
        "CT": "America/New_York", "WA": "America/Los_Angeles", "MA": "America/New_York",
        "TX": "America/Chicago", "LA": "America/Chicago", "AL": "America/Chicago",
        "MS": "America/Chicago", "RI": "America/New_York", "UT": "America/Denver",
        "PA": "America/New_York"}
# A week in October 2026 with no holiday: Monday the 19th to Sunday the 25th.
DAYS = {"Mon–Fri": "2026-10-21", "Sat": "2026-10-24", "Sun": "2026-10-25"}


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _parse(hours):
    if hours is None:
        return None
    start, end = hours.split("-")
    return (_minutes(start), _minutes(end))


@pytest.mark.parametrize("state", sorted(STATE_TABLE))
def test_state_rules_table_matches_the_statutes_row(state):
    weekday, sat, sun, cap, ban, clock = STATE_TABLE[state]
    rule = state_rules()[state]
    assert rule.hours == (_parse(weekday),) * 5 + (_parse(sat), _parse(sun))
    assert (rule.calls_per_24h, rule.holiday_ban, rule.clock) == (cap, ban, clock)
    assert rule.citation


def test_only_the_listed_states_have_rules():
    assert set(state_rules()) == set(STATE_TABLE)


def _local(day: str, minute: int, zone: str) -> str:
    from zoneinfo import ZoneInfo

    base = datetime.fromisoformat(day).replace(tzinfo=ZoneInfo(zone))
    return (base + timedelta(minutes=minute)).astimezone(UTC).isoformat()


def _edge_cases():
    for state, (weekday, sat, sun, *_rest) in sorted(STATE_TABLE.items()):
        for label, hours in (("Mon–Fri", weekday), ("Sat", sat), ("Sun", sun)):
            yield state, label, hours


@pytest.mark.parametrize(("state", "day", "hours"), list(_edge_cases()))
def test_state_hours_at_their_edges(state, day, hours):
    """Each state's hours, as the address state and as the area code's state, with a 24-hour campaign window."""
    zone = ZONE[state]
    as_address = Place((zone,), state, None)
    as_area_code = Place((zone,), None, state)
    if hours is None:
        for place in (as_address, as_area_code):
            assert Code.STATE_DAY_BAN in codes(place, _local(DAYS[day], 12 * 60, zone), WIDE)
        return
    start, end = _parse(hours)
    shift = 60 if state == "MS" else 0  # October is daylight time; MS reads Central *Standard* Time
    for place in (as_address, as_area_code):
        assert codes(place, _local(DAYS[day], start + shift, zone), WIDE) == set()
        assert codes(place, _local(DAYS[day], end + shift - 1, zone), WIDE) == set()
        before = codes(place, _local(DAYS[day], start + shift - 1, zone), WIDE)
        after = codes(place, _local(DAYS[day], end + shift, zone), WIDE)
        assert Code.OUTSIDE_STATE_HOURS in before or Code.OUTSIDE_FEDERAL_HOURS in before
        assert Code.OUTSIDE_STATE_HOURS in after or Code.OUTSIDE_FEDERAL_HOURS in after


def test_federal_floor_applies_everywhere():
    ohio = Place(("America/New_York",), "OH", "OH")
    assert codes(ohio, "2026-10-21T11:59Z", WIDE) == {Code.OUTSIDE_FEDERAL_HOURS}  # 07:59 EDT
    assert codes(ohio, "2026-10-21T12:00Z", WIDE) == set()
    assert codes(ohio, "2026-10-22T00:59Z", WIDE) == set()  # 20:59
    assert codes(ohio, "2026-10-22T01:00Z", WIDE) == {Code.OUTSIDE_FEDERAL_HOURS}


def test_mississippi_reads_central_standard_time_in_summer():
    ms = Place(("America/Chicago",), "MS", "MS")
    # 08:30 CDT is 07:30 CST: the federal floor is met, Mississippi's is not.
    assert codes(ms, "2026-07-01T13:30Z", WIDE) == {Code.OUTSIDE_STATE_HOURS}
    assert codes(ms, "2026-07-01T14:00Z", WIDE) == set()  # 09:00 CDT = 08:00 CST
    # 20:30 CDT is 19:30 CST: still open in Mississippi.
    assert codes(ms, "2026-07-02T01:30Z", WIDE) == set()


def test_area_code_state_rules_follow_the_number():
    # A New York resident with a Florida number: Florida's 20:00 applies.
    place = Place(("America/New_York",), "NY", "FL")
    assert codes(place, "2026-10-22T00:30Z") == {Code.OUTSIDE_STATE_HOURS}  # 20:30 EDT
    assert codes(Place(("America/New_York",), "NY", "NY"), "2026-10-22T00:30Z") == set()


@pytest.mark.parametrize(
    ("state", "zone", "day", "holiday"),
    [
        ("PA", "America/New_York", "2026-11-26", "Thanksgiving Day"),
        ("PA", "America/New_York", "2026-06-14", "Flag Day"),  # a Sunday, which PA otherwise allows
        ("PA", "America/New_York", "2026-11-03", "Election Day"),
        ("PA", "America/New_York", "2026-04-03", "Good Friday"),
        ("UT", "America/Denver", "2026-07-24", "Pioneer Day"),
        ("RI", "America/New_York", "2026-08-10", "Victory Day"),
        ("LA", "America/Chicago", "2026-02-17", "Mardi Gras"),
        ("AL", "America/Chicago", "2026-12-25", "Christmas Day"),
        ("LA", "America/Chicago", "2026-07-03", "Independence Day"),  # observed on the Friday
    ],
)
def test_holiday_in_a_banning_state_closes_the_day(state, zone, day, holiday):
    place = Place((zone,), state, state)
    noon = _local(day, 12 * 60, zone)
    reasons = window_reasons(place, DEFAULT, at(noon))
    assert [r.code for r in reasons] == [Code.STATE_HOLIDAY]
    assert holiday in reasons[0].message
    # Holiday filtering off: the same instant is open.
    assert codes(place, noon, DialRules(holiday_filtering=False)) == set()


@pytest.mark.parametrize(("state", "zone"), [("NY", "America/New_York"), ("TX", "America/Chicago")])
def test_holiday_in_a_state_without_a_ban_is_a_normal_day(state, zone):
    assert codes(Place((zone,), state, state), _local("2026-11-26", 12 * 60, zone)) == set()


def test_pa_list_is_the_statutes_not_the_package_calendar():
    import datetime as dt

    # The holidays package's PA calendar has the day after Thanksgiving and no Flag Day.
    assert banned_holiday("PA", dt.date(2026, 11, 27)) is None
    assert banned_holiday("PA", dt.date(2026, 6, 14)).key == "flag_day"
    assert holiday_dates("election_day", 2027) == (dt.date(2027, 11, 2),)


def test_blocked_states_block_residents_and_area_codes():
    rules = DialRules(blocked_states=frozenset({"CA"}))
    ca = Place(("America/Los_Angeles",), "CA", "CA")
    assert codes(ca, "2026-10-21T18:00Z", rules) == {Code.BLOCKED_STATE}
    assert codes(Place(("America/Los_Angeles",), "NV", "CA"), "2026-10-21T18:00Z", rules) == {Code.BLOCKED_STATE}
    assert codes(Place(("America/Los_Angeles",), "CA", "NV"), "2026-10-21T18:00Z", rules) == {Code.BLOCKED_STATE}
    assert codes(Place(("America/Los_Angeles",), "NV", "NV"), "2026-10-21T18:00Z", rules) == set()


NOON_NY = at("2026-10-21T16:00Z")


def facts(**kw) -> ProspectFacts:
    kw.setdefault("place", NY)
    kw.setdefault("phone_e164", "+12125550100")
    return ProspectFacts(**kw)


@pytest.mark.parametrize(
    ("kw", "code", "next_at"),
    [
        ({"status": "done", "disposition": "Interested"}, Code.STATUS, None),
        ({"status": "dialing"}, Code.CALL_IN_PROGRESS, None),
        ({"attempts": 10}, Code.MAX_ATTEMPTS, None),
        ({"expires_at": NOON_NY}, Code.EXPIRED, None),
        ({"dnc_lists": ("internal",)}, Code.ON_DNC_LIST, None),
        ({"last_attempt_at": NOON_NY - timedelta(minutes=10), "attempts": 1}, Code.TOO_SOON,
         NOON_NY + timedelta(minutes=20)),
        ({"status": "callback", "callback_at": NOON_NY + timedelta(hours=2)}, Code.CALLBACK_NOT_DUE,
         NOON_NY + timedelta(hours=2)),
    ],
)
def test_prospect_rules(kw, code, next_at):
    verdict = explain(facts(**kw), DEFAULT, NOON_NY)
    assert [r.code for r in verdict.reasons] == [code]
    assert verdict.next_dialable_at == next_at


def test_frequency_cap_counts_calls_in_the_last_24_hours():
    fl = Place(("America/New_York",), "FL", "FL")
    calls = (NOON_NY - timedelta(hours=23), NOON_NY - timedelta(hours=5), NOON_NY - timedelta(hours=1))
    capped = explain(facts(place=fl, recent_calls=calls, attempts=3, last_attempt_at=calls[-1]), DEFAULT, NOON_NY)
    assert [r.code for r in capped.reasons] == [Code.FREQUENCY_CAP]
    assert "Florida allows 3" in capped.reasons[0].message
    assert capped.next_dialable_at == calls[0] + timedelta(hours=24)
    two = evaluate(facts(place=fl, recent_calls=calls[1:], attempts=2, last_attempt_at=calls[-1]), DEFAULT, NOON_NY)
    assert two.dialable
    # The cap follows a Florida area code to a New York address; New York alone has none.
    assert Code.FREQUENCY_CAP in {r.code for r in evaluate(
        facts(place=Place(("America/New_York",), "NY", "FL"), recent_calls=calls), DEFAULT, NOON_NY).reasons}
    assert evaluate(facts(recent_calls=calls), DEFAULT, NOON_NY).dialable


@pytest.mark.parametrize(
    ("place", "now", "expected"),
    [
        # Friday 20:30 in Florida → Saturday 09:00 (the campaign window opens after Florida's 08:00).
        (Place(("America/New_York",), "FL", "FL"), "2026-10-24T00:30Z", "2026-10-24T13:00Z"),
        # Saturday 21:00 in Louisiana → Monday 09:00 (no Sunday calls).
        (Place(("America/Chicago",), "LA", "LA"), "2026-10-25T02:00Z", "2026-10-26T14:00Z"),
        # Wednesday night before Thanksgiving in Pennsylvania → Friday 09:00.
        (Place(("America/New_York",), "PA", "PA"), "2026-11-26T02:30Z", "2026-11-27T14:00Z"),
        # Phoenix/Denver at 21:30 MDT → 09:00 MST in Phoenix is 10:00 in Denver: both open.
        (Place(("America/Denver", "America/Phoenix"), "AZ", "AZ"), "2026-07-01T03:30Z", "2026-07-01T16:00Z"),
        # Newfoundland before dawn → 09:00 NDT.
        (Place(("America/St_Johns",), "NL", "NL"), "2026-07-01T05:00Z", "2026-07-01T11:30Z"),
    ],
)
def test_next_dialable_instant(place, now, expected):
    verdict = explain(facts(place=place), DEFAULT, at(now))
    assert not verdict.dialable
    assert verdict.next_dialable_at == at(expected)


def test_a_paused_campaign_is_never_dialable():
    verdict = explain(facts(), DialRules(state="paused"), NOON_NY)
    assert [r.code for r in verdict.reasons] == [Code.CAMPAIGN_NOT_ACTIVE]
    assert verdict.next_dialable_at is None
