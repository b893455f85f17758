"""Freshness and the daemons' calls in Dagster: the rules on hand-made data, then the sensors that
report them (red when stale) and the lineage from the DNC lists to the reports."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.dialing import hopper
from campaigns.dialing.hopper_watch import HopperWatch, hopper_watch, overdue
from campaigns.ingestion.inbox_watch import InboxEntry, waiting_files
from tests.helpers import (
    UPLOADS_CAMPAIGN,
    add_prospects,
    apply_campaign,
    zone_at_midday,
)

NOW = datetime(2026, 10, 21, 16, 0, tzinfo=UTC)
FIVE = timedelta(minutes=5)


def _watch(last: timedelta | None, open_throughout: int = 1, interval: timedelta = FIVE) -> HopperWatch:
    return HopperWatch(campaign="acme/c", fill_interval=interval,
                       last_filled_at=None if last is None else NOW - last,
                       open_groups=open_throughout, open_throughout=open_throughout)


@pytest.mark.parametrize(("last", "open_throughout", "stale"), [
    (timedelta(minutes=15), 1, True),   # three fill intervals with a window open: no daemon fills it
    (timedelta(minutes=10, seconds=1), 1, True),
    (timedelta(minutes=10), 1, False),  # exactly two intervals: still on time
    (timedelta(minutes=6), 1, False),
    (None, 1, True),                    # never filled while it may dial
    (timedelta(hours=12), 0, False),    # every window closed (or opened less than two intervals ago)
    (None, 0, False),
], ids=["3-intervals", "just-past-2", "exactly-2", "1.2-intervals", "never", "closed", "never-closed"])
def test_a_hopper_is_overdue_after_two_fill_intervals_without_a_fill_while_a_window_is_open(last, open_throughout, stale):
    assert overdue(_watch(last, open_throughout), NOW) is stale


def test_the_allowed_gap_follows_the_campaigns_fill_interval():
    assert not overdue(_watch(timedelta(minutes=15), interval=timedelta(minutes=10)), NOW)
    assert overdue(_watch(timedelta(minutes=21), interval=timedelta(minutes=10)), NOW)


def test_an_inbox_file_waits_too_long_after_ten_minutes_unless_a_run_is_loading_it():
    entries = [
        InboxEntry("acme/c/late.csv", NOW - timedelta(minutes=11), loading=False),
        InboxEntry("acme/c/later.csv", NOW - timedelta(minutes=30), loading=False),
        InboxEntry("acme/c/fresh.csv", NOW - timedelta(minutes=9), loading=False),
        InboxEntry("acme/c/big.csv", NOW - timedelta(hours=2), loading=True),
        InboxEntry("acme/c/unknown.csv", None, loading=False),
    ]
    waiting = waiting_files(entries, NOW)
    assert [w.key for w in waiting] == ["acme/c/later.csv", "acme/c/late.csv"]  # longest first
    assert waiting[1].waited == timedelta(minutes=11)
    assert waiting_files(entries, NOW, limit=timedelta(hours=1)) == []


# --- the sensors, in process, on real databases ---------------------------------------------


def _campaign(engine, now: datetime) -> int:
    data = dict(UPLOADS_CAMPAIGN)
    data["dialing"] = {"hopper_min_level": 5, "fill_interval_min": 5}
    campaign_id = apply_campaign(engine, data, now=now - timedelta(days=2)).campaign_id
    add_prospects(engine, campaign_id, [{"phone": f"+1212555{i:04d}", "zones": (zone_at_midday(now),)}
                                        for i in range(3)], now=now - timedelta(hours=1))
    return campaign_id


def _record_fill(engine, campaign_id: int, at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(t.hopper_fills).values(
            campaign_id=campaign_id, filled_at=at, level=5, depth_before=0, queued=0, returned_expired=0,
            returned_closed=0, marked_dnc=0, skipped_cap=0, open_groups=1, closed_groups=0, duration_ms=1.0))


def test_hopper_watch_reads_the_last_fill_and_the_open_groups(engine):
    now = datetime.now(UTC)
    cid = _campaign(engine, now)
    with engine.connect() as conn:
        [watch] = hopper_watch(conn, now)
    assert (watch.last_filled_at, watch.open_groups, watch.open_throughout) == (None, 1, 1)
    assert watch.campaign.endswith("/" + UPLOADS_CAMPAIGN["slug"]) and overdue(watch, now)
    _record_fill(engine, cid, now - timedelta(minutes=15))
    _record_fill(engine, cid, now + timedelta(hours=1))  # a fill `--at` a later instant does not count
    with engine.connect() as conn:
        [watch] = hopper_watch(conn, now)
    assert watch.last_filled_at == now - timedelta(minutes=15) and overdue(watch, now)


def _sensor_context(defs, cursor=None):
    from campaigns.core.config import DialerConfig
    from pipelines.definitions import resources_for

    resources = resources_for(DialerConfig.from_env())
    return dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), cursor=cursor, definitions=defs,
                                   resources={k: resources[k] for k in ("database", "bucket")})


def _evaluate(name: str, cursor=None):
    from pipelines.definitions import defs

    sensor = defs.resolve_sensor_def(name)
    with _sensor_context(defs, cursor) as context:
        return sensor.evaluate_tick(context)


def _checks(data) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in data.asset_events if isinstance(e, dg.AssetCheckEvaluation)}


def test_freshness_sensor_fails_the_stale_hopper_and_inbox_checks_with_error_severity(engine, dialer_env):
    now = datetime.now(UTC)
    cid = _campaign(engine, now)
    _record_fill(engine, cid, now - timedelta(minutes=15))  # three fill intervals ago, windows open all along
    inbox = os.path.join(dialer_env["DIALER_HOME"], "bucket", "inbox", "acme", UPLOADS_CAMPAIGN["slug"])
    os.makedirs(inbox)
    late = os.path.join(inbox, "late.csv")
    with open(late, "w") as f:
        f.write("phone\n2125550100\n")
    stamp = (now - timedelta(minutes=11)).timestamp()
    os.utime(late, (stamp, stamp))

    data = _evaluate("freshness_sensor")
    assert not data.run_requests
    checks = _checks(data)
    assert set(checks) == {"hopper_filled_on_time", "inbox_files_picked_up", "national_registry_fresh"}
    filled, picked = checks["hopper_filled_on_time"], checks["inbox_files_picked_up"]
    assert (filled.asset_key, filled.passed, filled.severity) == (dg.AssetKey("hopper"), False, dg.AssetCheckSeverity.ERROR)
    assert "last filled 15 min ago" in filled.description
    assert filled.metadata["overdue"].value == 1
    assert (picked.asset_key, picked.passed, picked.severity) == (dg.AssetKey("upload_file"), False,
                                                                   dg.AssetCheckSeverity.ERROR)
    assert picked.metadata["files"].value == [f"inbox/acme/{UPLOADS_CAMPAIGN['slug']}/late.csv"]
    assert checks["national_registry_fresh"].passed  # no campaign opted in

    # Nothing changed: nothing reported again (until REPORT_EVERY); a fill and the file gone: both pass.
    assert _evaluate("freshness_sensor", data.cursor).skip_message
    hopper.fill_campaign(engine, cid, datetime.now(UTC))
    os.remove(late)
    again = _checks(_evaluate("freshness_sensor", data.cursor))
    assert set(again) == {"hopper_filled_on_time", "inbox_files_picked_up"}
    assert again["hopper_filled_on_time"].passed and again["inbox_files_picked_up"].passed


def test_the_freshness_checks_also_run_on_demand(engine, dialer_env):
    from campaigns.core.config import DialerConfig
    from pipelines.definitions import build_definitions

    _campaign(engine, datetime.now(UTC))
    defs = build_definitions(DialerConfig.from_env())
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_check_selection={dg.AssetCheckKey(dg.AssetKey("hopper"), "hopper_filled_on_time"),
                               dg.AssetCheckKey(dg.AssetKey("upload_file"), "inbox_files_picked_up")},
        asset_selection=set())
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not evaluations["hopper_filled_on_time"].passed  # never filled, a window open
    assert evaluations["inbox_files_picked_up"].passed


def _attempt(conn, campaign_id, prospect_id, key, **values):
    conn.execute(sa.insert(t.call_attempts).values(
        campaign_id=campaign_id, prospect_id=prospect_id, attempt_number=1, idempotency_key=key,
        phone_e164="+12125550000", **values))


def test_call_attempts_sensor_reports_the_calls_since_its_last_report_without_a_run(engine, dialer_env):
    assert _evaluate("call_attempts_sensor").skip_message  # no call yet
    now = datetime.now(UTC)
    cid = _campaign(engine, now)
    with engine.connect() as conn:
        ids = list(conn.execute(sa.select(t.prospects.c.id).order_by(t.prospects.c.id)).scalars())
    minute = timedelta(minutes=1)
    with engine.begin() as conn:
        _attempt(conn, cid, ids[0], "a", status="ended", outcome="completed", created_at=now - 3 * minute,
                 placed_at=now - 3 * minute, answered_at=now - 2 * minute, ended_at=now - minute)
        _attempt(conn, cid, ids[1], "b", status="ended", outcome="abandoned", created_at=now - 2 * minute,
                 placed_at=now - 2 * minute, ended_at=now - minute)
        _attempt(conn, cid, ids[2], "c", status="ringing", created_at=now - minute, placed_at=now - minute)
        _attempt(conn, cid, ids[2], "old", status="ended", outcome="no_answer", created_at=now - timedelta(hours=3),
                 placed_at=now - timedelta(hours=3), ended_at=now - timedelta(hours=3))
    data = _evaluate("call_attempts_sensor")
    assert not data.run_requests
    [materialization] = data.asset_events
    assert materialization.asset_key == dg.AssetKey("call_attempts")
    metadata = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
    assert (metadata["placed"], metadata["answered"], metadata["abandoned"], metadata["ended"]) == (3, 1, 1, 2)
    assert metadata["by_campaign"].count(f"| acme/{UPLOADS_CAMPAIGN['slug']} | 3 | 1 | 1 | 2 |") == 1
    assert _evaluate("call_attempts_sensor", data.cursor).skip_message  # reported once
    answered = datetime.now(UTC) - timedelta(seconds=10)
    with engine.begin() as conn:  # the ringing call is answered in a later stretch
        conn.execute(sa.update(t.call_attempts).where(t.call_attempts.c.idempotency_key == "c")
                     .values(answered_at=answered))
    [later] = _evaluate("call_attempts_sensor", (answered - timedelta(seconds=10)).isoformat()).asset_events
    assert (later.metadata["placed"].value, later.metadata["answered"].value) == (0, 1)


def test_the_lineage_runs_from_the_dnc_lists_through_the_calls_to_the_reports():
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()

    def parents(name: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(dg.AssetKey(name)).parent_keys}

    assert {"dnc_list_numbers", "dnc_registry", "deduplicated_rows"} <= parents("dnc_scrubbed_rows")
    assert {"dnc_list_numbers", "dnc_registry", "loaded_prospects", "expired_prospects"} <= parents("hopper")
    assert parents("call_attempts") == {"hopper"}
    assert parents("report_detail") == {"call_attempts"}
    assert parents("report_summary") == {"report_detail"}
    assert not graph.get(dg.AssetKey("call_attempts")).is_executable  # the daemons write it, no run
