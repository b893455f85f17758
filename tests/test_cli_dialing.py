"""`dialer explain`, `dialer hopper fill` and the status's reasons, from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from campaigns.core import schema as t
from dialer_cli.main import app
from tests.helpers import UPLOADS_CAMPAIGN, add_prospects, apply_campaign

runner = CliRunner()
NOON = datetime(2026, 10, 21, 16, 0, tzinfo=UTC)


@pytest.fixture
def campaign(engine, dialer_env):
    data = {**UPLOADS_CAMPAIGN, "blocked_states": ["CA"]}
    return apply_campaign(engine, data, now=NOON - timedelta(days=2)).campaign_id


def explain(*args: str) -> dict:
    result = runner.invoke(app, ["explain", "renewals", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("args", "codes", "next_at"),
    [
        # 08:59 / 09:00 / 20:59 / 21:00 in New York (EDT).
        (["--phone", "212-555-0100", "--state", "NY", "--at", "2026-07-01T12:59Z"],
         ["outside_dial_window"], "2026-07-01T13:00:00+00:00"),
        (["--phone", "212-555-0100", "--state", "NY", "--at", "2026-07-01T13:00Z"], [], None),
        (["--phone", "212-555-0100", "--state", "NY", "--at", "2026-07-02T00:59Z"], [], None),
        (["--phone", "212-555-0100", "--state", "NY", "--at", "2026-07-02T01:00Z"],
         ["outside_dial_window", "outside_federal_hours"], "2026-07-02T13:00:00+00:00"),
        # Phoenix and Denver: closed in July, open in January at the same UTC time.
        (["--phone", "(602) 555-0100", "--state", "AZ", "--at", "2026-07-01T03:30Z"],
         ["outside_dial_window", "outside_federal_hours"], "2026-07-01T16:00:00+00:00"),
        (["--phone", "(602) 555-0100", "--state", "AZ", "--at", "2026-01-15T03:30Z"], [], None),
        # DST starts in New York: 09:00 EDT is 13:00Z.
        (["--phone", "212.555.0100", "--state", "NY", "--at", "2026-03-08T12:59Z"],
         ["outside_dial_window"], "2026-03-08T13:00:00+00:00"),
        # Texas on a Sunday morning: noon in El Paso's zone (Texas spans two) comes last.
        (["--phone", "713 555 0100", "--state", "TX", "--at", "2026-10-25T16:30Z"],
         ["outside_state_hours"], "2026-10-25T18:00:00+00:00"),
        # Louisiana on a Sunday.
        (["--phone", "504 555 0100", "--state", "LA", "--at", "2026-10-25T17:00Z"],
         ["state_day_ban"], "2026-10-26T14:00:00+00:00"),
        # A holiday in a banning state, and in a state without a ban.
        (["--phone", "215 555 0100", "--state", "PA", "--at", "2026-11-26T17:00Z"],
         ["state_holiday"], "2026-11-27T14:00:00+00:00"),
        (["--phone", "212 555 0100", "--state", "NY", "--at", "2026-11-26T17:00Z"], [], None),
        # Blocked state (the campaign blocks CA): no next instant.
        (["--phone", "415 555 0100", "--state", "CA", "--at", "2026-10-21T18:00Z"], ["blocked_state"], None),
        # ZIP places the prospect: 85001 is Phoenix.
        (["--phone", "+1 602 555 0100", "--zip", "85001", "--at", "2026-07-01T03:30Z"], [], None),
    ],
)
def test_explain_answers_the_rule_cases(campaign, args, codes, next_at):
    answer = explain(*args)
    assert list(dict.fromkeys(r["code"] for r in answer["reasons"])) == codes
    assert answer["dialable"] is (not codes)
    if codes:
        assert answer["next_dialable_at"] == next_at
    assert answer["source"] == "hypothetical"
    assert all({"zone", "local_time", "abbreviation", "open"} <= set(z) for z in answer["zones"])


def test_explain_a_loaded_prospect_uses_its_stored_facts(campaign, engine):
    ids = add_prospects(engine, campaign, [
        {"phone": "+13055550100", "state": "FL", "area_state": "FL", "attempts": 3,
         "last_attempt_at": NOON - timedelta(hours=1)},
        {"phone": "+12125550101", "expires_at": NOON - timedelta(hours=1)},
        {"phone": "+12125550102", "status": "callback", "callback_at": NOON + timedelta(hours=2)},
    ], now=NOON)
    with engine.begin() as conn:
        for hours in (20, 10, 1):
            conn.execute(sa.insert(t.call_attempts).values(
                campaign_id=campaign, prospect_id=ids[0], attempt_number=1, idempotency_key=f"k{hours}",
                phone_e164="+13055550100", status="ended", created_at=NOON - timedelta(hours=hours)))
    capped = explain("--phone", "305-555-0100", "--at", NOON.isoformat())
    assert capped["source"] == "loaded" and capped["prospect_id"] == ids[0]
    assert [r["code"] for r in capped["reasons"]] == ["frequency_cap"]
    assert capped["next_dialable_at"] == (NOON + timedelta(hours=4)).isoformat()
    expired = explain("--phone", "212 555 0101", "--at", NOON.isoformat())
    assert [r["code"] for r in expired["reasons"]] == ["expired"] and expired["next_dialable_at"] is None
    callback = explain("--phone", "212 555 0102", "--at", NOON.isoformat())
    assert [r["code"] for r in callback["reasons"]] == ["callback_not_due"]
    assert callback["next_dialable_at"] == (NOON + timedelta(hours=2)).isoformat()


def test_explain_prints_reasons_for_people(campaign):
    result = runner.invoke(app, ["explain", "renewals", "--phone", "(602) 555-0100", "--state", "AZ",
                                 "--at", "2026-07-01T03:30Z"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "not dialable" in text
    assert "outside the dial window in America/Denver (21:30 MDT, window 09:00–21:00)" in text
    assert "next dialable at 2026-07-01T16:00:00+00:00" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--phone", "12345"], "cannot place this prospect: phone '12345'"),
        (["--phone", "+1 876 555 0100"], "cannot place this prospect"),
        (["--phone", "212 555 0100", "--state", "ZZ"], "state 'ZZ': not a state"),
        (["--phone", "212 555 0100", "--at", "2026-07-01T09:00"], "has no UTC offset"),
        (["--phone", "212 555 0100", "--at", "tomorrow"], "is not an ISO-8601 instant"),
        (["--phone", "212 555 0100", "--at", "0001-01-01T00:00+05:00"], "outside the years 1970–2999"),
    ],
)
def test_explain_refuses_bad_flags_with_one_sentence(campaign, args, message):
    result = runner.invoke(app, ["explain", "renewals", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_hopper_fill_from_the_cli_prints_what_it_queued(campaign, engine):
    add_prospects(engine, campaign, [
        {"phone": f"+1212555{i:04d}", "priority": i} for i in range(3)
    ] + [{"phone": "+14155550100", "state": "CA", "area_state": "CA", "zones": ("America/Los_Angeles",)}],
        now=NOON)
    result = runner.invoke(app, ["hopper", "fill", "renewals", "--at", NOON.isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["queued"] == 3 and payload["closed_groups"] == 1  # CA is blocked
    assert [p["phone"] for p in payload["queued_prospects"]] == ["+12125550002", "+12125550001", "+12125550000"]
    human = runner.invoke(app, ["hopper", "fill", "renewals", "--at", NOON.isoformat()])
    assert "queued 0" in human.stdout and "depth 3 → 3" in " ".join(human.stdout.split())


def test_status_shows_the_top_reasons_prospects_are_not_dialable(campaign, engine):
    add_prospects(engine, campaign, [
        {"phone": f"+1808555{i:04d}", "state": "HI", "area_state": "HI", "zones": ("Pacific/Honolulu",)}
        for i in range(3)
    ] + [{"phone": "+12125550100"}, {"phone": "+14155550100", "state": "CA", "area_state": "CA",
                                     "zones": ("America/Los_Angeles",)}], now=NOON)
    result = runner.invoke(app, ["campaign", "status", "renewals", "--at", NOON.isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    dialability = json.loads(result.stdout)["dialability"]
    assert dialability["open_prospects"] == 5 and dialability["dialable_now"] == 1
    top = {r["code"]: r["prospects"] for r in dialability["top_reasons"]}
    assert top["outside_dial_window"] == 3 and top["blocked_state"] == 1
    human = runner.invoke(app, ["campaign", "status", "renewals", "--at", NOON.isoformat()])
    assert "1 of 5 ready, queued or callback prospects may be dialed now" in human.stdout


# One number per state row (an area code of that state), a closed instant that only the
# state's own rule explains, and an open one: the table, from the command line.
STATE_CASES = {
    "FL": ("305 555 0100", "2026-10-22T00:30Z", "outside_state_hours"),  # Wed 20:30 EDT
    "OK": ("405 555 0100", "2026-10-22T01:30Z", "outside_state_hours"),  # Wed 20:30 CDT
    "MD": ("410 555 0100", "2026-10-22T00:30Z", "outside_state_hours"),
    "CT": ("203 555 0100", "2026-10-22T00:30Z", "outside_state_hours"),  # Wed 20:30 EDT
    "WA": ("206 555 0100", "2026-10-22T03:30Z", "outside_state_hours"),  # Wed 20:30 PDT
    "MA": ("617 555 0100", "2026-10-22T00:30Z", "outside_state_hours"),
    "TX": ("713 555 0100", "2026-10-25T15:00Z", "outside_state_hours"),  # Sun 10:00 CDT
    "LA": ("504 555 0100", "2026-10-25T17:00Z", "state_day_ban"),        # Sunday
    "AL": ("205 555 0100", "2026-10-25T17:00Z", "state_day_ban"),
    "MS": ("601 555 0100", "2026-01-15T02:30Z", "outside_state_hours"),  # Wed 20:30 CST
    "RI": ("401 555 0100", "2026-10-21T22:30Z", "outside_state_hours"),  # Wed 18:30 EDT
    "UT": ("801 555 0100", "2026-10-25T18:00Z", "state_day_ban"),        # Sunday
    "PA": ("215 555 0100", "2026-11-26T17:00Z", "state_holiday"),        # Thanksgiving
}


@pytest.mark.parametrize("state", sorted(STATE_CASES))
def test_explain_each_state_row(campaign, state):
    phone, closed_at, code = STATE_CASES[state]
    closed = explain("--phone", phone, "--state", state, "--at", closed_at)
    assert closed["dialable"] is False
    assert code in {r["code"] for r in closed["reasons"]}
    # Mid-afternoon on a Wednesday in October, every zone of every listed state is open.
    assert explain("--phone", phone, "--state", state, "--at", "2026-10-21T19:00Z")["dialable"] is True


def test_status_shows_the_pacing_mode_and_abandon_rates(campaign, engine):
    human = runner.invoke(app, ["campaign", "status", "renewals", "--at", NOON.isoformat()])
    assert human.exit_code == 0, human.output
    assert "pacing ratio (target abandon rate 2.0%): no tick yet" in human.stdout
    assert "abandon rate: last hour — of 0 answered, 30 days — of 0 answered" in human.stdout
    pacing = json.loads(runner.invoke(app, ["campaign", "status", "renewals", "--json"]).stdout)["pacing"]
    assert pacing["mode"] == "ratio" and pacing["target_abandon_rate"] == 0.02
    assert {"answer_rate", "expected_free_sessions", "margin", "abandon_rate_hour", "abandon_rate_30d",
            "limited_by", "estimated_at"} <= set(pacing)
