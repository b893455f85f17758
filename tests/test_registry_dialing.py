"""The National DNC Registry in use, on SQLite and PostgreSQL: the opt-in, the upload scrub, the
fill, the check at the instant of the call, the 31-day and coverage rules, deletions, `explain`,
the evidence on every attempt and in the report, and the asset check.

Versions are made directly with `store.save_version` (small sets, a few area codes)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa
from pyroaring import BitMap

from campaigns.core import schema as t
from campaigns.dialing import hopper
from campaigns.registry import store
from campaigns.registry.rules import Objection, objections
from campaigns.reporting import explain, reports
from campaigns.setup import registry as setup
from campaigns.setup.settings import SettingsError, parse_settings
from tests.helpers import (
    UPLOADS_CAMPAIGN,
    add_prospects,
    apply_campaign,
    drop,
    failure,
    materialized,
    run_upload,
)
from tests.test_daemon import DISPOSITIONS, daemon_for, run
from tests.test_daemon import platform as simulated_platform

START = datetime(2026, 10, 21, 15, 0, tzinfo=UTC)  # 11:00 in New York, a Wednesday
OPTED_IN = {**UPLOADS_CAMPAIGN, "dnc": {**UPLOADS_CAMPAIGN["dnc"], "national_registry": True}}


def save(engine, listed: dict[int, list[int]], obtained_at: datetime, *, kind: str = "full") -> store.Version:
    """A version that replaces the area codes of `listed` (7-digit numbers), the others kept."""
    with engine.begin() as conn:
        base = store.open_in(conn)
        if base is not None:
            base.load_all()
        return store.save_version(conn, kind=kind, obtained_at=obtained_at, imported_at=obtained_at, source="test",
                                  base=base, sets={area: BitMap(numbers) for area, numbers in listed.items()},
                                  added=0, deleted=0)


def opted_in(engine, **dialing) -> int:
    data = {**OPTED_IN, "dispositions": DISPOSITIONS, "dialing": {"hopper_min_level": 20, **dialing}}
    return apply_campaign(engine, data, now=START - timedelta(days=40)).campaign_id


def prospects(engine, cid) -> dict[str, object]:
    with engine.connect() as conn:
        return {r.phone_e164: r for r in conn.execute(sa.select(t.prospects).where(t.prospects.c.campaign_id == cid))}


def queued_phones(engine, cid) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(t.prospects.c.phone_e164).join(t.hopper, t.hopper.c.prospect_id == t.prospects.c.id)
                                .where(t.hopper.c.campaign_id == cid)).scalars())


# -- the opt-in ------------------------------------------------------------------------------

def test_the_opt_in_defaults_to_off_refuses_a_bad_value_and_is_shown(engine):
    minimal = {"name": "R", "workspace": "acme", "locale": "US", "agent": "a"}
    assert parse_settings(minimal).dnc.national_registry is False
    assert parse_settings({**minimal, "dnc": {"national_registry": True}}).dnc.national_registry is True
    for bad in ("yes", 1, None):
        with pytest.raises(SettingsError) as refused:
            parse_settings({**minimal, "dnc": {"national_registry": bad}})
        assert str(refused.value) == f"campaign settings: `dnc.national_registry` must be true or false (got {bad!r})."
    cid = apply_campaign(engine, OPTED_IN).campaign_id
    with engine.connect() as conn:
        assert setup.load_campaign(conn, cid).dnc_national_registry is True
        shown = setup.load_settings(conn, cid).model_dump()["dnc"]  # what `dialer campaign show` prints
    assert shown["national_registry"] is True
    apply_campaign(engine, UPLOADS_CAMPAIGN)
    with engine.connect() as conn:
        assert setup.load_settings(conn, cid).model_dump()["dnc"]["national_registry"] is False  # the default, shown


# -- the rules, pure ----------------------------------------------------------------------------

def test_the_rules_name_the_version_its_age_and_what_is_not_covered(engine):
    assert [o.code for o in objections(None, "+12125550100", START)] == [Objection.AREA_CODE_NOT_COVERED]
    assert "no version" in objections(None, "+12125550100", START)[0].message
    v = save(engine, {212: [5550100], 646: []}, START - timedelta(days=10))
    with engine.connect() as conn:
        current = store.open_in(conn)
        listed = objections(current, "+12125550100", START)
        assert [o.code for o in listed] == [Objection.ON_NATIONAL_REGISTRY]
        assert f"version {v.id}" in listed[0].message and "10 days" in listed[0].message
        assert objections(current, "+12125550101", START) == []
        assert objections(current, "+12125550101", START + timedelta(days=21)) == []  # 31 days: still allowed
        day_32 = objections(current, "+12125550100", START + timedelta(days=22))
        assert [o.code for o in day_32] == [Objection.DNC_REGISTRY_STALE, Objection.ON_NATIONAL_REGISTRY]
        assert [o.code for o in objections(current, "+19075550100", START)] == [Objection.AREA_CODE_NOT_COVERED]
        assert "does not cover area code 907" in objections(current, "+19075550100", START)[0].message
        assert "not a North American" in objections(current, "+442071234567", START)[0].message


# -- the upload ---------------------------------------------------------------------------------

def test_an_upload_is_scrubbed_listed_numbers_load_ready_held_and_counted(engine, dialer_env):
    apply_campaign(engine, OPTED_IN)
    version = save(engine, {415: [5551234, 5550000]}, START - timedelta(days=3))
    with engine.begin() as conn:
        list_id = conn.execute(sa.select(t.dnc_lists.c.id)).scalar_one()
        conn.execute(sa.insert(t.dnc_numbers).values(dnc_list_id=list_id, phone_e164="+14155550000", added_at=START))
    header = "Phone Number,First Name\n"
    drop(dialer_env["DIALER_HOME"] + "/bucket", "inbox/acme/renewals/r.csv",
         header + "4155551234,Listed\n4155551235,Clear\n4155550000,Both\n12,Bad\n")
    result = run_upload("acme/renewals/r.csv")
    assert result.success, failure(result)
    summary = materialized(result, "loaded_prospects")
    assert {k: summary[k] for k in ("rows", "loaded", "duplicates", "invalid", "dnc")} == {
        "rows": 4, "loaded": 2, "duplicates": 0, "invalid": 1, "dnc": 1}
    assert summary["balanced"] is True
    assert any(w.startswith(f"on the National DNC Registry (version {version.id}") and w.endswith(
        ": 2, loaded and held while listed") for w in summary["warnings"]), summary["warnings"]
    with engine.connect() as conn:
        rows = {r.phone_e164: r for r in conn.execute(sa.select(t.prospects))}
    # A registry match is not a disposition: READY, held by the version; the internal list's DNC stays DNC.
    assert (rows["+14155551234"].status, rows["+14155551234"].registry_version_id) == ("ready", version.id)
    assert (rows["+14155551235"].status, rows["+14155551235"].registry_version_id) == ("ready", None)
    assert (rows["+14155550000"].status, rows["+14155550000"].registry_version_id) == ("dnc", version.id)


# -- the fill: listed, not covered, stale; day 32; deletions ---------------------------------------

def test_the_fill_skips_listed_uncovered_and_stale_stops_on_day_32_and_resumes_after_a_new_version(engine):
    cid = opted_in(engine)
    later = START + timedelta(days=60)
    add_prospects(engine, cid, [
        {"phone": "+12125550000", "expires_at": later},  # listed in v1, deleted in v2
        {"phone": "+12125550001", "expires_at": later},  # never listed
        {"phone": "+12125550002", "expires_at": later},  # on the campaign's internal list
        {"phone": "+16465550000", "expires_at": later},  # area code data stale in v1
        {"phone": "+19075550000", "expires_at": later, "zones": ("America/Anchorage",)},  # not covered by v1
    ], now=START - timedelta(hours=1))
    with engine.begin() as conn:
        list_id = conn.execute(sa.select(t.dnc_lists.c.id)).scalar_one()
        conn.execute(sa.insert(t.dnc_numbers).values(dnc_list_id=list_id, phone_e164="+12125550002", added_at=START))
    assert hopper.fill_campaign(engine, cid, START).queued == 0  # no version yet: nothing may be called
    save(engine, {646: []}, START - timedelta(days=40))
    v1 = save(engine, {212: [5550000]}, START - timedelta(days=5))
    first = hopper.fill_campaign(engine, cid, START)
    assert (first.registry_rechecked, first.registry_listed) == (v1.id, 1)
    assert queued_phones(engine, cid) == {"+12125550001"}
    assert prospects(engine, cid)["+12125550000"].registry_version_id == v1.id
    assert prospects(engine, cid)["+12125550002"].status == "dnc"  # the internal list, as before
    again = hopper.fill_campaign(engine, cid, START + timedelta(minutes=6))
    assert again.registry_rechecked is None  # no new version: no re-check

    # Day 32 of the 212 data (obtained START - 5 days): the queued row leaves, nothing is queued.
    day_32 = START + timedelta(days=27, hours=4)  # a Tuesday, 14:00 in New York, 10:00 in Anchorage
    stopped = hopper.fill_campaign(engine, cid, day_32)
    assert stopped.queued == 0 and "31 days old" in stopped.note and queued_phones(engine, cid) == set()

    # A new full version (every area code, 212's number deleted): dialing resumes, the deleted number too.
    v2 = save(engine, {212: [], 646: [], 907: []}, day_32 - timedelta(days=1))
    resumed = hopper.fill_campaign(engine, cid, day_32 + timedelta(minutes=1))
    assert (resumed.registry_rechecked, resumed.registry_cleared) == (v2.id, 1)
    assert queued_phones(engine, cid) == {"+12125550000", "+12125550001", "+16465550000", "+19075550000"}
    assert prospects(engine, cid)["+12125550002"].status == "dnc"  # an internal-list DNC stays DNC


# -- explain and status --------------------------------------------------------------------------

def test_explain_and_status_name_each_registry_reason(engine):
    cid = opted_in(engine)
    add_prospects(engine, cid, [{"phone": p} for p in ("+12125550000", "+12125550001", "+16465550000",
                                                          "+19075550000")], now=START - timedelta(hours=1))

    def why(phone: str) -> list[dict]:
        with engine.connect() as conn:
            return explain.explain_phone(conn, cid, "acme/renewals", phone, START).verdict.as_dict()["reasons"]

    assert [r["code"] for r in why("+12125550001")] == ["area_code_not_covered"]
    save(engine, {646: []}, START - timedelta(days=33))
    v = save(engine, {212: [5550000]}, START - timedelta(days=2))
    listed = why("+12125550000")
    assert [r["code"] for r in listed] == ["on_national_registry"] and f"version {v.id}" in listed[0]["message"]
    assert "2 days" in listed[0]["message"]
    assert why("+12125550001") == []
    assert [r["code"] for r in why("+16465550000")] == ["dnc_registry_stale"]
    assert [r["code"] for r in why("+19075550000")] == ["area_code_not_covered"]
    hopper.fill_campaign(engine, cid, START)  # the re-check marks the listed prospect
    with engine.connect() as conn:
        summary = explain.not_dialable_summary(conn, cid, START, top=10)
    top = {r["code"]: r["prospects"] for r in summary["top_reasons"]}
    assert {k: top.get(k) for k in ("on_national_registry", "dnc_registry_stale", "area_code_not_covered")} == {
        "on_national_registry": 1, "dnc_registry_stale": 1, "area_code_not_covered": 1}
    assert summary["dialable_now"] == 1


# -- the asset check -----------------------------------------------------------------------------

@pytest.mark.parametrize(("age_days", "passed", "severity"), [
    (None, False, dg.AssetCheckSeverity.ERROR),
    (3, True, None),
    (26, False, dg.AssetCheckSeverity.WARN),
    (32, False, dg.AssetCheckSeverity.ERROR),
])
def test_the_asset_check_warns_from_day_25_and_fails_past_31(engine, db_url, age_days, passed, severity):
    from assets.hopper import hopper as hopper_asset
    from resources.database import DatabaseResource

    apply_campaign(engine, OPTED_IN)
    if age_days is not None:
        save(engine, {212: [5550000]}, datetime.now(UTC) - timedelta(days=age_days))
    result = dg.materialize([hopper_asset], resources={"database": DatabaseResource(url=db_url)})
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == "national_registry_fresh" and evaluation.passed is passed
    if severity is not None:
        assert evaluation.severity == severity


# -- the daemon ----------------------------------------------------------------------------------

platform = simulated_platform  # the simulator on loopback, its clock moved by the test (a fixture)


def test_the_daemon_checks_at_the_instant_of_the_call_even_without_check_on_dial(engine, platform):
    sim, client, clock = platform
    cid = opted_in(engine)
    with engine.begin() as conn:
        conn.execute(sa.update(t.campaigns).where(t.campaigns.c.id == cid).values(check_on_dial=False))
    add_prospects(engine, cid, [{"phone": f"+1212555{i:04d}"} for i in range(4)], now=START - timedelta(hours=1))
    save(engine, {212: []}, START - timedelta(days=31) + timedelta(minutes=5))  # 31 days old at START + 5 min
    hopper.fill_campaign(engine, cid, START)
    assert len(queued_phones(engine, cid)) == 4
    clock.value = 600  # START + 10 min: the data is past 31 days at the call
    report = daemon_for(engine, client).tick(cid)
    assert report.placed == 0 and report.released["dnc_registry_stale"] == 4 and sim.calls() == []


def test_a_running_daemon_picks_up_a_new_version_and_never_calls_a_listed_number(engine, platform):
    """The hidden-number property, over every attempt of a short run: no attempt of an opted-in
    campaign is made to a number listed in the version it recorded."""
    sim, client, clock = platform
    cid = opted_in(engine, call_ratio=2.0, min_minutes_between_calls=2, max_calls_per_prospect=3)
    numbers = [5550000 + i for i in range(45)]
    uncovered = [f"+1646{n:07d}" for n in numbers[:5]]  # an area code no version covers
    add_prospects(engine, cid, [{"phone": f"+1212{n:07d}"} for n in numbers] + [{"phone": p} for p in uncovered],
                  now=START - timedelta(hours=1))
    v1 = save(engine, {212: numbers[::3]}, START - timedelta(days=2))  # a third listed
    daemon = daemon_for(engine, client, fill_hopper=True,
                        registry=store.RegistryCache(engine, check_every_s=30, monotonic=clock))
    run(daemon, cid, clock, seconds=240, step=15)
    # A change list: the first third deleted, another third added; the daemon notices within 30 s.
    v2 = save(engine, {212: numbers[1::3]}, START + timedelta(minutes=4), kind="changes")
    run(daemon, cid, clock, seconds=360, step=15)
    with engine.connect() as conn:
        made = conn.execute(sa.select(t.call_attempts).where(t.call_attempts.c.campaign_id == cid)).all()
    by_version = {v.id: store.open_version(engine, v.id) for v in (v1, v2)}
    assert made and all(a.registry_version_id in by_version for a in made)
    assert not [a.phone_e164 for a in made if by_version[a.registry_version_id].contains(a.phone_e164)]
    assert not {a.phone_e164 for a in made} & set(uncovered)
    after = [a for a in made if a.registry_version_id == v2.id]
    assert after and {a.created_at for a in after} and min(a.created_at for a in after) <= START + timedelta(
        minutes=5)
    assert {a.phone_e164 for a in after} & {f"+1212{n:07d}" for n in numbers[::3]}  # deleted: dialable again
    assert not any(a.registry_version_id == v1.id and a.created_at > START + timedelta(minutes=5) for a in made)

    # The export carries each attempt's version and age; the summary names the versions.
    with engine.connect() as conn:
        rows = reports.detail_rows(conn, cid, date(2026, 10, 21))
        summary = reports.summary(conn, cid, date(2026, 10, 21), rows, START + timedelta(hours=1))
    assert {r["registry_version_id"] for r in rows} == {v1.id, v2.id}
    assert all(2 <= r["registry_age_days"] <= 3 for r in rows if r["registry_version_id"] == v1.id)
    text = reports.summary_text(summary)
    assert f"National DNC Registry version {v1.id}: " in text and f"National DNC Registry version {v2.id}: " in text


# -- found in review: re-sends, a lagging daemon, opting in later -----------------------------------

def _one_attempt(engine, cid, registry_set, now):
    from campaigns.dialing import calls

    hopper.fill_campaign(engine, cid, now)
    with engine.begin() as conn:
        campaign = setup.load_campaign(conn, cid)
        [row] = calls.claim(conn, cid, "d", 1, now)
        attempt = calls.start_attempt(conn, campaign, row, "d", now, registry_set)
    return campaign, attempt


def test_a_resend_is_checked_again_against_the_registry_and_its_31_days(engine):
    from campaigns.dialing import calls

    cid = opted_in(engine)
    add_prospects(engine, cid, [{"phone": "+12125550001", "expires_at": START + timedelta(days=90)}],
                  now=START - timedelta(hours=1))
    def current():  # as the daemon holds it: its sets read before any transaction (see the reconciler)
        registry_set = store.open_version(engine)
        registry_set.load_all()
        return registry_set

    first = save(engine, {212: [9999999]}, START - timedelta(days=30, hours=23))
    campaign, attempt = _one_attempt(engine, cid, current(), START)
    assert attempt is not None and attempt.registry_version_id == first.id
    registry_set = current()
    with engine.connect() as conn:
        # An hour on, the data is past 31 days: the re-send is where the call would start.
        assert calls.resend_allowed(conn, campaign, attempt, START + timedelta(minutes=1), registry_set)
        assert not calls.resend_allowed(conn, campaign, attempt, START + timedelta(hours=2), registry_set)
    listed = save(engine, {212: [5550001]}, START)  # a newer version lists the number
    registry_set = current()
    with engine.connect() as conn:
        assert not calls.resend_allowed(conn, campaign, attempt, START + timedelta(minutes=1), registry_set)
    fresh = save(engine, {212: [9999999]}, START)
    registry_set = current()
    with engine.begin() as conn:
        calls.mark_sent(conn, campaign, attempt, START + timedelta(minutes=1), registry_set)
        recorded = conn.execute(sa.select(t.call_attempts.c.registry_version_id)).scalar_one()
    assert recorded == fresh.id != listed.id  # the evidence is the version the re-send was checked against


def test_a_lagging_daemon_does_not_hold_a_number_a_newer_version_deleted(engine):
    from campaigns.dialing import national_registry

    cid = opted_in(engine)
    [pid] = add_prospects(engine, cid, [{"phone": "+12125550001", "expires_at": START + timedelta(days=90)}],
                          now=START - timedelta(hours=1))
    old = save(engine, {212: [5550001]}, START - timedelta(days=2))
    new = save(engine, {212: [9999999]}, START - timedelta(days=1))  # deletes 0001
    hopper.fill_campaign(engine, cid, START)  # the campaign is re-checked against `new`
    with engine.begin() as conn:
        national_registry.mark_listed(conn, cid, pid, old.id)  # a daemon still holding `old`
    assert prospects(engine, cid)["+12125550001"].registry_version_id is None
    with engine.begin() as conn:
        national_registry.mark_listed(conn, cid, pid, new.id)
    assert prospects(engine, cid)["+12125550001"].registry_version_id == new.id


def test_opting_in_later_re_checks_the_prospects_loaded_before(engine):
    data = {**OPTED_IN, "dnc": {**OPTED_IN["dnc"], "national_registry": False},
            "dialing": {"hopper_min_level": 20}}
    cid = apply_campaign(engine, data, now=START - timedelta(days=40)).campaign_id
    add_prospects(engine, cid, [{"phone": "+12125550001", "expires_at": START + timedelta(days=90)}],
                  now=START - timedelta(hours=1))
    version = save(engine, {212: [5550001]}, START - timedelta(days=1))
    hopper.fill_campaign(engine, cid, START)
    assert queued_phones(engine, cid) == {"+12125550001"}  # not opted in: the registry does not apply
    with engine.begin() as conn:  # as if an earlier opt-in had already checked this version
        conn.execute(sa.insert(t.campaign_runtime).values(campaign_id=cid, registry_checked_version_id=version.id))
    apply_campaign(engine, {**data, "dnc": {**data["dnc"], "national_registry": True}}, now=START)
    hopper.fill_campaign(engine, cid, START + timedelta(minutes=10))
    assert prospects(engine, cid)["+12125550001"].registry_version_id == version.id
    assert not queued_phones(engine, cid)
