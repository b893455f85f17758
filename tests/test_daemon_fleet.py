"""The daemon in production: several replicas, leases, SIGKILL and SIGTERM, provider faults, metrics.

The lease and fault cases run on both backends; the multi-process ones need
PostgreSQL (several daemons against one SQLite file is not a deployment we offer).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.model import Campaign
from campaigns.dialing import calls, hopper, leases
from campaigns.reporting.status import campaign_status
from dialer_daemon.daemon import Daemon, PlatformClock, TickReport
from dialer_daemon.simulator import Faults, Profile, Simulator, serve
from dialer_daemon.voice import VoiceApiError, VoiceClient
from tests.helpers import (
    UPLOADS_CAMPAIGN,
    add_prospects,
    apply_campaign,
    free_port,
    wait_for,
)
from tests.test_daemon import (
    DISPOSITIONS,
    START,
    FakeMonotonic,
    attempts,
    campaign,
    phones,
)

BIN = Path(sys.executable).parent
ON_POSTGRES = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
PERIOD = timedelta(seconds=15)


def campaigns_named(engine, n: int, **dialing) -> list[int]:
    ids = []
    for i in range(n):
        data = {**UPLOADS_CAMPAIGN, "name": f"Fleet {i}", "slug": f"fleet-{i}",
                "dispositions": DISPOSITIONS,
                "dialing": {"hopper_min_level": 20, "dialer_interval_s": 2, **dialing}}
        ids.append(apply_campaign(engine, data, now=START - timedelta(days=1)).campaign_id)
    return ids


# -- leases -------------------------------------------------------------------

def test_a_lease_has_one_holder_until_it_expires_and_then_changes_hands_with_a_new_token(engine):
    [cid] = campaigns_named(engine, 1)
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    with engine.begin() as conn:
        a = leases.acquire(conn, cid, "A", now, PERIOD)
        assert a is not None and a.token == 1
        assert leases.acquire(conn, cid, "B", now + timedelta(seconds=14), PERIOD) is None
        # A restarted process under the same name acquires anew: a new token fences off the old one.
        a2 = leases.acquire(conn, cid, "A", now + timedelta(seconds=5), PERIOD)
        assert a2.token == 2 and leases.renew(conn, "A", {cid: a}, now + timedelta(seconds=6), PERIOD) == {}
        kept = leases.renew(conn, "A", {cid: a2}, now + timedelta(seconds=10), PERIOD)
        assert kept[cid].expires_at == now + timedelta(seconds=25)
        assert leases.acquire(conn, cid, "B", now + timedelta(seconds=24), PERIOD) is None
        b = leases.acquire(conn, cid, "B", now + timedelta(seconds=25), PERIOD)  # A stopped renewing
        assert b is not None and b.token == 3
        # A wakes up: its renewal and its token are refused.
        assert leases.renew(conn, "A", {cid: a2}, now + timedelta(seconds=26), PERIOD) == {}
        assert leases.holders(conn)[cid][0] == "B"


def test_a_stale_token_cannot_claim_hopper_rows(engine):
    [cid] = campaigns_named(engine, 1)
    with engine.begin() as conn:
        now = leases.db_now(conn)
        old = leases.acquire(conn, cid, "A", now - timedelta(seconds=20), PERIOD)  # expired 5 s ago
        assert not leases.still_held(conn, old, "A")
        new = leases.acquire(conn, cid, "B", now, PERIOD)
        assert leases.still_held(conn, new, "B") and not leases.still_held(conn, old, "B")


def test_replicas_share_the_campaigns_fairly_and_a_dead_ones_campaigns_are_taken_over(engine):
    ids = campaigns_named(engine, 5)
    client = VoiceClient("http://127.0.0.1:9", retries=0)
    a, b = (Daemon(engine, client, daemon_id=name, lease_period=timedelta(seconds=3)) for name in "AB")
    rows = a.campaigns()
    a.balance_leases(rows)
    assert set(a.leases) == set(ids)  # alone: it takes them all
    b.balance_leases(rows)
    a.balance_leases(rows)  # now two are running: A hands back above ceil(5/2) = 3
    b.balance_leases(rows)
    assert len(a.leases) == 3 and len(b.leases) == 2 and not set(a.leases) & set(b.leases)
    with engine.begin() as conn:  # B dies: its heartbeat and leases age past the period
        past = leases.db_now(conn) - timedelta(seconds=4)
        conn.execute(sa.update(t.daemons).where(t.daemons.c.id == "B").values(heartbeat_at=past))
        conn.execute(sa.update(t.campaign_leases).where(t.campaign_leases.c.holder == "B").values(expires_at=past))
    a.balance_leases(rows)
    assert set(a.leases) == set(ids)
    with engine.connect() as conn:
        assert {holder for holder, _ in leases.holders(conn).values()} == {"A"}
        assert campaign_status(conn, ids[0], START).paced_by == "A"
    client.close()


def test_taking_a_campaign_over_returns_the_last_holders_claims(engine):
    [cid] = campaigns_named(engine, 1)
    add_prospects(engine, cid, phones(4), now=START - timedelta(hours=1))
    hopper.fill_campaign(engine, cid, START)
    with engine.begin() as conn:
        calls.claim(conn, cid, "dead", 3, START)
        leases.acquire(conn, cid, "dead", leases.db_now(conn) - timedelta(seconds=30), PERIOD)
    client = VoiceClient("http://127.0.0.1:9", retries=0)
    heir = Daemon(engine, client, daemon_id="heir")
    heir.balance_leases(heir.campaigns())
    assert cid in heir.leases
    with engine.connect() as conn:
        assert Counter(conn.execute(sa.select(t.hopper.c.status)).scalars()) == Counter({"queued": 1})
    client.close()


def test_two_live_calls_to_one_prospect_are_refused_by_the_database(engine):
    cid = campaign(engine)
    [pid] = add_prospects(engine, cid, phones(1), now=START - timedelta(hours=1))
    row = {"campaign_id": cid, "prospect_id": pid, "attempt_number": 1, "phone_e164": "+12125550000",
           "status": "placed", "created_at": START}
    with engine.begin() as conn:
        conn.execute(sa.insert(t.call_attempts).values(idempotency_key="k1", **row))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.insert(t.call_attempts).values(idempotency_key="k2", **row))
    with engine.begin() as conn:  # once the first has ended, the next call is fine
        conn.execute(sa.update(t.call_attempts).values(status="ended", outcome="no_answer"))
        conn.execute(sa.insert(t.call_attempts).values(idempotency_key="k2", **row))


# -- several daemons at once (PostgreSQL) -----------------------------------------

@pytest.fixture
def fast_platform():
    """A simulator on the real clock at ×30, 11:00 in New York."""
    sim = Simulator(seed=3, start=START, speed=30.0, default=Profile(sessions=4))
    server = serve(sim)
    yield sim, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@ON_POSTGRES
def test_two_daemons_never_pace_the_same_campaign_at_once(engine, fast_platform):
    sim, url = fast_platform
    ids = campaigns_named(engine, 3, call_ratio=2.0)
    for i, cid in enumerate(ids):
        add_prospects(engine, cid, phones(150, npa=("212", "718", "917")[i]), now=START - timedelta(hours=1))
    intervals: list[tuple[str, int, float, float]] = []
    lock = threading.Lock()

    def replica(name: str) -> tuple[Daemon, VoiceClient]:
        client = VoiceClient(url, timeout=2.0, backoff_s=0.01)
        daemon = Daemon(engine, client, clock=PlatformClock(client), daemon_id=name, fill_hopper=True,
                        lease_period=timedelta(seconds=5))
        tick = daemon.tick

        def timed(cid):
            began = time.monotonic()
            try:
                return tick(cid)
            finally:
                with lock:
                    intervals.append((name, cid, began, time.monotonic()))

        daemon.tick = timed
        return daemon, client

    (a, ca), (b, cb) = replica("A"), replica("B")
    threads = [threading.Thread(target=d.run, kwargs={"speed": 30.0}) for d in (a, b)]
    for thread in threads:
        thread.start()
    time.sleep(6)
    a.stop.set()  # A drains; B takes its campaigns over at once (A hands its leases back)
    threads[0].join(timeout=30)
    time.sleep(4)
    b.stop.set()
    threads[1].join(timeout=30)
    ca.close()
    cb.close()
    assert not any(th.is_alive() for th in threads)
    for cid in ids:
        mine = sorted((start, end, name) for name, c, start, end in intervals if c == cid)
        assert {name for *_, name in mine} >= {"B"}
        for (s1, e1, n1), (s2, e2, n2) in itertools.pairwise(mine):
            assert s2 >= e1, f"campaign {cid}: {n1} and {n2} ticked at the same time"
    assert {name for name, *_ in intervals} == {"A", "B"}
    recorded = attempts(engine)
    assert recorded and len({a.idempotency_key for a in recorded}) == len(sim.calls()) + sum(
        1 for a in recorded if a.outcome == "not_placed")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.campaign_leases)).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(t.daemons)).scalar_one() == 0


def _start_simulator(env: dict, port: int, *extra: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [str(BIN / "dialer"), "simulator", "--port", str(port), "--seed", "5", "--sessions", "4", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )

    def listening():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    wait_for(listening, 30)
    return process


def _platform_calls(port: int) -> list[dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/calls")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["calls"]


def _daemon(env: dict, name: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "dialer"), "daemon", "--id", name, "--fill-hopper", "--log-format", "json", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)


def _tomorrow_at(hour: int, minute: int = 0) -> datetime:
    day = (datetime.now(UTC) + timedelta(days=1)).astimezone(ZoneInfo("America/New_York")).date()
    return datetime.combine(day, datetime.min.time().replace(hour=hour, minute=minute),
                            tzinfo=ZoneInfo("America/New_York")).astimezone(UTC)


def _assert_every_call_accounted_for(engine, platform_log: list[dict]) -> None:
    """One attempt per platform call (same key and id), no call twice, no prospect left mid-call."""
    recorded = attempts(engine)
    dialed = [a for a in recorded if a.outcome != "not_placed"]
    assert {(a.platform_call_id, a.idempotency_key) for a in dialed} == {
        (c["call_id"], c["idempotency_key"]) for c in platform_log}
    assert len(dialed) == len(platform_log)
    assert all(a.status == "ended" for a in recorded)
    by_prospect: dict[int, list[dict]] = {}
    for call in platform_log:
        by_prospect.setdefault(call["prospect_id"], []).append(call)
    for mine in by_prospect.values():  # never two calls to one prospect at the same time
        mine.sort(key=lambda c: c["created_at"])
        for first, second in itertools.pairwise(mine):
            assert second["created_at"] >= first["ended_at"]
    with engine.connect() as conn:
        prospects = conn.execute(sa.select(t.prospects)).all()
    counts = Counter(a.prospect_id for a in dialed)
    assert all(p.attempts == counts.get(p.id, 0) for p in prospects)
    assert "dialing" not in {p.status for p in prospects}


@ON_POSTGRES
def test_a_sigkilled_daemons_campaign_is_taken_over_within_one_lease_period_and_its_calls_reconciled(
        engine, db_url, tmp_path):
    cid = campaign(engine, call_ratio=2.0, max_calls_per_prospect=1, dialer_interval_s=2)
    add_prospects(engine, cid, phones(60), now=datetime.now(UTC) - timedelta(minutes=1))
    port = free_port()
    env = {**os.environ, "DIALER_DATABASE_URL": db_url, "DIALER_HOME": str(tmp_path / "home"),
           "DIALER_VOICE_API_URL": f"http://127.0.0.1:{port}"}
    lease_s = 4.0
    simulator = _start_simulator(env, port, "--speed", "40", "--start", _tomorrow_at(11).isoformat(),
                                 "--faults", "slow=0.5,slow_s=0.2")
    a = _daemon(env, "A", "--lease-seconds", str(lease_s))
    b = None
    try:
        def a_is_mid_call():
            with engine.connect() as conn:
                holder = leases.holders(conn).get(cid, ("", None))[0]
                live = conn.execute(sa.select(sa.func.count()).select_from(t.call_attempts)
                                    .where(t.call_attempts.c.status != "ended")).scalar_one()
            return holder == "A" and live >= 3

        wait_for(a_is_mid_call, 60)
        b = _daemon(env, "B", "--lease-seconds", str(lease_s), "--exit-when-done", "--json")
        time.sleep(1.0)  # B is up, holds nothing: A has the only campaign
        with engine.connect() as conn:
            assert leases.holders(conn)[cid][0] == "A"
        os.killpg(a.pid, signal.SIGKILL)
        killed = time.monotonic()
        a.communicate(timeout=30)
        with engine.connect() as conn:
            in_flight = conn.execute(sa.select(t.call_attempts.c.id).where(
                t.call_attempts.c.status != "ended", t.call_attempts.c.daemon_id == "A")).scalars().all()

        def b_holds():
            with engine.connect() as conn:
                return leases.holders(conn).get(cid, ("", None))[0] == "B"

        wait_for(b_holds, lease_s + 3, step=0.05)
        taken_over = time.monotonic() - killed
        assert taken_over <= lease_s + 1.5, f"taken over after {taken_over:.1f} s"
        out, errors = b.communicate(timeout=240)
        assert b.returncode == 0, errors[-3000:]
        assert json.loads(out)["calls_placed"] > 0
        platform_log = _platform_calls(port)
    finally:
        for process in (a, b, simulator):
            if process is not None:
                _stop(process)
    assert in_flight, "A was killed with no call in flight: the test proved nothing"
    _assert_every_call_accounted_for(engine, platform_log)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.call_attempts).where(t.call_attempts.c.id.in_(in_flight))).all()
    by_key = {c["idempotency_key"]: c for c in platform_log}
    for row in rows:  # each of A's calls in flight got the outcome the platform gave it
        call = by_key.get(row.idempotency_key)
        if call is None:
            assert row.outcome == "not_placed"
        else:
            assert row.outcome == (call["outcome"] if call["status"] != "failed" else "failed")


@ON_POSTGRES
def test_sigterm_drains_the_requests_in_flight_and_exits_0(engine, db_url, tmp_path):
    cid = campaign(engine, call_ratio=3.0)
    add_prospects(engine, cid, phones(60), now=datetime.now(UTC) - timedelta(minutes=1))
    port = free_port()
    env = {**os.environ, "DIALER_DATABASE_URL": db_url, "DIALER_HOME": str(tmp_path / "home"),
           "DIALER_VOICE_API_URL": f"http://127.0.0.1:{port}"}
    # Every request to place a call takes a second to be answered: SIGTERM comes while some are out.
    simulator = _start_simulator(env, port, "--speed", "1", "--start", _tomorrow_at(11).isoformat(),
                                 "--faults", "slow=1,slow_s=1.0")
    daemon = _daemon(env, "D", "--concurrency", "2")
    try:
        def requests_out():
            with engine.connect() as conn:
                return conn.execute(sa.select(sa.func.count()).select_from(t.call_attempts)
                                    .where(t.call_attempts.c.status == "placing")).scalar_one() > 0

        wait_for(requests_out, 60, step=0.02)
        daemon.send_signal(signal.SIGTERM)
        began = time.monotonic()
        _, errors = daemon.communicate(timeout=60)
        drained_in = time.monotonic() - began
        platform_log = _platform_calls(port)
    finally:
        _stop(daemon)
        _stop(simulator)
    assert daemon.returncode == 0, errors[-3000:]
    assert drained_in < 30
    events = [json.loads(line) for line in errors.splitlines() if line.startswith("{")]
    assert {"started", "stopped"} <= {e.get("event") for e in events}
    recorded = attempts(engine)
    # Every request sent was answered and recorded; no new one was started after SIGTERM: those
    # still queued for the pool were never sent, and are recorded as not placed (count given back).
    assert recorded and all(a.status != "placing" for a in recorded)
    assert {a.idempotency_key for a in recorded if a.outcome != "not_placed"} == {
        c["idempotency_key"] for c in platform_log}
    assert all("not sent" in a.failure_cause for a in recorded if a.outcome == "not_placed")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.hopper)
                            .where(t.hopper.c.status == "claimed")).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(t.campaign_leases)).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(t.daemons)).scalar_one() == 0


# -- provider faults -----------------------------------------------------------------

def test_faults_parse_and_refuse_nonsense():
    faults = Faults.parse("error=0.02, timeout=0.01,timeout_s=3,outage_every_s=60,outage_s=2")
    assert (faults.error, faults.timeout, faults.timeout_s, faults.outage_s) == (0.02, 0.01, 3.0, 2.0)
    assert faults.any and not Faults().any
    for bad in ("error=2", "nonsense=0.1", "error", "timeout=x"):
        with pytest.raises(ValueError, match="fault"):
            Faults.parse(bad)


def test_dialer_simulator_refuses_bad_faults(tmp_path):
    result = subprocess.run([str(BIN / "dialer"), "simulator", "--faults", "eror=0.1"], check=False,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "eror" in result.stderr


def test_provider_faults_never_double_dial_and_unplaced_calls_are_not_counted(engine):
    clock = FakeMonotonic()
    faults = Faults(error=0.08, error_after_accept=0.08, timeout=0.05, timeout_s=0.5, drop=0.05, slow=0.05,
                    slow_s=0.05)
    sim = Simulator(seed=11, start=START, speed=1.0, default=Profile(sessions=5), clock=clock, faults=faults)
    server = serve(sim)
    client = VoiceClient(f"http://127.0.0.1:{server.server_port}", timeout=0.3, retries=1, backoff_s=0.01)
    cid = campaign(engine, call_ratio=2.0, max_calls_per_prospect=2, min_minutes_between_calls=10)
    add_prospects(engine, cid, phones(60), now=START - timedelta(hours=1))
    daemon = Daemon(engine, client, clock=PlatformClock(client), fill_hopper=True)
    try:
        def tick():  # as `Daemon.run` does: a tick the platform failed is retried by the next one
            try:
                daemon.tick(cid)
            except VoiceApiError:
                failed_ticks.append(1)

        failed_ticks: list[int] = []
        for _ in range(180):  # half an hour of ticks
            tick()
            clock.value += 10
        with engine.begin() as conn:
            conn.execute(sa.update(t.campaigns).where(t.campaigns.c.id == cid).values(state="paused"))
        for _ in range(60):  # paused: the calls out end, the unconfirmed ones are settled
            clock.value += 30
            tick()
        sim.faults = Faults()
        for _ in range(3):  # the provider is well again
            clock.value += 30
            daemon.tick(cid)
        platform_log = sim.calls()
    finally:
        server.shutdown()
        client.close()
    assert {"error", "error_after_accept", "timeout", "drop"} <= set(sim.injected)
    assert client.faults["http_5xx"] and client.faults["timeout"] and client.faults["connection"]
    _assert_every_call_accounted_for(engine, platform_log)
    placed = daemon.metrics.total("calls_placed")
    assert placed == sum(1 for c in platform_log if c["idempotency_key"] in {
        a.idempotency_key for a in attempts(engine) if a.outcome != "not_placed"})


def test_connection_refused_leaves_the_attempt_unplaced_and_a_later_tick_sends_it_once(engine):
    clock = FakeMonotonic()
    sim = Simulator(seed=2, start=START, speed=1.0, default=Profile(sessions=5), clock=clock)
    server = serve(sim)
    good = VoiceClient(f"http://127.0.0.1:{server.server_port}", timeout=2, backoff_s=0.01)
    cid = campaign(engine)
    add_prospects(engine, cid, phones(1), now=START - timedelta(hours=1))
    hopper.fill_campaign(engine, cid, START)
    refused = VoiceClient(f"http://127.0.0.1:{free_port()}", retries=1, backoff_s=0.01)
    try:
        daemon = Daemon(engine, refused, clock=PlatformClock(good))
        with engine.connect() as conn:
            camp = Campaign.from_row(conn.execute(sa.select(t.campaigns).where(t.campaigns.c.id == cid)).one())
        report = TickReport("acme/renewals", START, "active")
        daemon.ticker.dial(camp, "acme/renewals", 1, START, report)
        assert report.placed == 0 and report.not_placed == 0 and "no answer" in report.warnings[0]
        [pending] = attempts(engine)
        assert pending.status == "placing" and sim.calls() == []
        clock.value += 30
        Daemon(engine, good, clock=PlatformClock(good)).tick(cid)  # the platform never had the key: re-sent
        [sent] = attempts(engine)
        assert sent.status != "placing" and len(sim.calls()) == 1
        assert sim.calls()[0]["idempotency_key"] == pending.idempotency_key
    finally:
        server.shutdown()
        good.close()
        refused.close()


def test_a_refused_call_gives_its_count_back_and_does_not_count_towards_caps(engine):
    clock = FakeMonotonic()
    sim = Simulator(seed=2, start=START, speed=1.0, default=Profile(sessions=5), clock=clock, token="right")
    server = serve(sim)
    wrong = VoiceClient(f"http://127.0.0.1:{server.server_port}", token="wrong", retries=0)
    cid = campaign(engine, max_calls_per_prospect=1)
    add_prospects(engine, cid, phones(2), now=START - timedelta(hours=1))
    hopper.fill_campaign(engine, cid, START)
    try:
        with engine.connect() as conn:
            camp = Campaign.from_row(conn.execute(sa.select(t.campaigns).where(t.campaigns.c.id == cid)).one())
        daemon = Daemon(engine, wrong)
        report = TickReport("acme/renewals", START, "active")
        daemon.ticker.dial(camp, "acme/renewals", 2, START, report)
    finally:
        server.shutdown()
        wrong.close()
    assert report.not_placed == 2 and "DIALER_VOICE_API_TOKEN" in report.warnings[0]
    with engine.connect() as conn:
        prospects = conn.execute(sa.select(t.prospects)).all()
        from campaigns.dialing.facts import prospect_facts

        facts = prospect_facts(conn, cid, prospects[0], START + timedelta(hours=1))
    assert {(p.status, p.attempts, p.last_attempt_at) for p in prospects} == {("ready", 0, None)}
    assert facts.recent_calls == ()  # the refused attempt was no call to the number


def test_the_simulators_outages_refuse_connections_and_end(engine):
    sim = Simulator(seed=1, start=START, faults=Faults(outage_every_s=0.3, outage_s=0.6))
    server = serve(sim)
    client = VoiceClient(f"http://127.0.0.1:{server.server_port}", timeout=1, retries=0)
    try:
        outcomes = []
        for _ in range(30):
            try:
                client.capacity("acme/renewals")
                outcomes.append("ok")
            except VoiceApiError:
                outcomes.append("refused")
            time.sleep(0.05)
        assert "refused" in outcomes and outcomes.count("ok") > 3
        assert client.faults["connection"] > 0 and sim.injected["outage"] > 0
    finally:
        server.shutdown()
        client.close()


# -- metrics and health ------------------------------------------------------------------

def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_and_healthz_are_scraped(engine):
    from prometheus_client.parser import text_string_to_metric_families

    from dialer_daemon.metrics import serve_metrics

    clock = FakeMonotonic()
    sim = Simulator(seed=4, start=START, speed=1.0, default=Profile(sessions=3, answer_rate=0.9, machine_rate=0,
                                                                   busy_rate=0, fail_rate=0, ring_s=(1.0, 2.0)),
                    clock=clock, faults=Faults(error=0.1))
    server = serve(sim)
    client = VoiceClient(f"http://127.0.0.1:{server.server_port}", timeout=2, backoff_s=0.01)
    cid = campaign(engine, call_ratio=3.0, damper={"mode": "disabled"})
    add_prospects(engine, cid, phones(40), now=START - timedelta(hours=1))
    daemon = Daemon(engine, client, clock=PlatformClock(client), fill_hopper=True)
    metrics_server = serve_metrics(daemon.metrics, 0)
    base = f"http://127.0.0.1:{metrics_server.server_port}"
    try:
        status, body = _get(f"{base}/healthz")
        assert status == 503 and json.loads(body)["status"] == "unhealthy"  # no loop yet
        status, body = _get(f"{base}/livez")
        assert status == 503 and json.loads(body)["status"] == "starting"
        for _ in range(40):
            daemon.tick(cid)
            clock.value += 5
        daemon.metrics.loop_done()
        status, body = _get(f"{base}/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"
        status, body = _get(f"{base}/livez")
        assert status == 200 and json.loads(body)["status"] == "alive"
        status, text = _get(f"{base}/metrics")
        assert status == 200
    finally:
        metrics_server.shutdown()
        server.shutdown()
        client.close()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    label = (("campaign", "acme/renewals"),)
    recorded = attempts(engine)
    assert samples[("dialer_calls_placed_total", label)] == len(sim.calls()) == sum(
        1 for a in recorded if a.platform_call_id)
    answered = samples[("dialer_calls_answered_total", label)]
    abandoned = samples[("dialer_calls_abandoned_total", label)]
    assert answered == sum(1 for a in recorded if a.answered_at) and answered > 0
    assert abandoned == sum(1 for a in recorded if a.outcome == "abandoned") and abandoned > 0
    assert samples[("dialer_abandon_rate", label)] >= 0
    assert ("dialer_sessions_idle", label) in samples and ("dialer_hopper_depth", label) in samples
    assert samples[("dialer_tick_seconds_count", label)] == 40
    assert samples[("dialer_voice_api_retries_total", (("cause", "http_5xx"),))] > 0
    assert ("dialer_leases_held", ()) in samples


def test_the_abandon_rate_gauge_is_abandoned_over_answered_by_a_person(engine):
    cid = campaign(engine)
    [pid] = add_prospects(engine, cid, phones(1), now=START - timedelta(hours=1))
    rows = [{"outcome": "abandoned"}, {"outcome": "completed", "answered_at": START}, {"outcome": "completed",
            "answered_at": START}, {"outcome": "completed", "answered_at": START}, {"outcome": "no_answer"}]
    with engine.begin() as conn:
        for i, extra in enumerate(rows):
            conn.execute(sa.insert(t.call_attempts).values(
                campaign_id=cid, prospect_id=pid, attempt_number=i + 1, idempotency_key=f"k{i}",
                phone_e164="+12125550000", status="ended", created_at=START + timedelta(minutes=i), **extra))
        assert calls.abandon_counts(conn, cid, START, START + timedelta(hours=1)) == (1, 4)


# -- table health --------------------------------------------------------------------

@ON_POSTGRES
def test_churned_tables_are_vacuumed_once_their_dead_tuples_pass_the_limit(engine):
    from campaigns.dialing import maintenance

    cid = campaign(engine, hopper_min_level=1000)
    add_prospects(engine, cid, phones(800), now=START - timedelta(hours=1))
    with engine.begin() as conn:  # this test's own database: keep a server's autovacuum out of the race
        conn.exec_driver_sql("ALTER TABLE hopper SET (autovacuum_enabled = false)")
    for _ in range(2):  # 1,600 hopper rows inserted and deleted: dead tuples, as a busy day leaves them
        hopper.fill_campaign(engine, cid, START)
        with engine.begin() as conn:
            conn.execute(sa.delete(t.hopper))

    def hopper_due():
        with engine.connect() as conn:
            return [h for h in maintenance.vacuum_due(conn) if h.table == "hopper"]

    # Each backend reports its statistics to pg_stat on its own, within a second or so: wait for
    # all of the churn, not for the first backend's share of it (which alone may pass the limit).
    [due] = wait_for(lambda: [h for h in hopper_due() if h.dead >= 1500], 15, step=0.2)
    assert due.dead >= 1500
    assert "hopper" in {v.table for v in maintenance.vacuum(engine)}

    def hopper_dead():
        with engine.connect() as conn:
            return {h.table: h.dead for h in maintenance.health(conn)}.get("hopper")

    wait_for(lambda: hopper_dead() == 0, 15, step=0.2)
    assert not hopper_due()  # just vacuumed: not again within MIN_INTERVAL


def test_events_another_daemon_applied_meanwhile_are_not_applied_twice(engine, fast_platform):
    """A lease changed hands mid-tick: the old holder's page of events is dropped, the cursor kept."""
    sim, url = fast_platform
    cid = campaign(engine)
    client = VoiceClient(url, timeout=2.0)
    daemon = Daemon(engine, client)
    real_events = client.events

    def events_while_another_daemon_moves_the_cursor(name, after, limit=1000):
        with engine.begin() as conn:
            conn.execute(sa.update(t.campaign_runtime).values(events_cursor=after + 7))
        return [{"call_id": "call-x", "type": "answered", "at": START.isoformat()}], after + 1

    client.events = events_while_another_daemon_moves_the_cursor
    try:
        with engine.connect() as conn:
            camp = Campaign.from_row(conn.execute(sa.select(t.campaigns).where(t.campaigns.c.id == cid)).one())
        report = TickReport("acme/renewals", START, "active")
        daemon.ticker.events.apply(camp, "acme/renewals", START, report)
    finally:
        client.events = real_events
        client.close()
    assert report.events == report.answered == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(t.campaign_runtime.c.events_cursor)).scalar_one() == 7


def test_a_second_live_daemon_under_the_same_id_is_refused(engine):
    from campaigns.core.errors import DialerError

    with engine.begin() as conn:
        leases.heartbeat(conn, "same", "other-host", 4242, "running", leases.db_now(conn))
    client = VoiceClient("http://127.0.0.1:9", retries=0)
    with pytest.raises(DialerError, match="another daemon is running as 'same'"):
        Daemon(engine, client, daemon_id="same").run(once=True)
    client.close()


def test_a_daemon_that_lost_its_campaign_does_not_dial_the_rows_it_had_claimed(engine):
    cid = campaign(engine)
    add_prospects(engine, cid, phones(2), now=START - timedelta(hours=1))
    hopper.fill_campaign(engine, cid, START)
    with engine.begin() as conn:
        camp = Campaign.from_row(conn.execute(sa.select(t.campaigns).where(t.campaigns.c.id == cid)).one())
        rows = calls.claim(conn, cid, "old", 2, START)
        leases.release_claims(conn, cid)  # a new holder took the campaign over
        assert [calls.start_attempt(conn, camp, row, "old", START) for row in rows] == [None, None]
    assert attempts(engine) == []


def test_an_event_for_an_attempt_recorded_as_never_placed_counts_the_call_again(engine):
    cid = campaign(engine)
    [pid] = add_prospects(engine, cid, phones(1), now=START - timedelta(hours=1))
    hopper.fill_campaign(engine, cid, START)
    with engine.begin() as conn:
        camp = Campaign.from_row(conn.execute(sa.select(t.campaigns).where(t.campaigns.c.id == cid)).one())
        attempt = calls.start_attempt(conn, camp, calls.claim(conn, cid, "d", 1, START)[0], "d", START)
        calls.not_placed(conn, camp, attempt, "never confirmed", START)
        assert conn.execute(sa.select(t.prospects.c.attempts)).scalar_one() == 0
        late = calls.apply_event(conn, camp, {"call_id": "call-late", "idempotency_key": attempt.idempotency_key,
                                              "type": "ringing", "at": START.isoformat()}, START)
        assert late.outcome == "placed_late" and "after it was recorded as not placed" in late.warnings[0]
        assert conn.execute(sa.select(t.prospects.c.attempts)).scalar_one() == 1
        row = conn.execute(sa.select(t.call_attempts)).one()
        assert (row.status, row.outcome, row.platform_call_id) == ("ended", "placed_late", "call-late")
        # and `not_placed` never ends an attempt the platform confirmed
        again = calls.start_attempt(conn, camp, _requeue(conn, cid, pid), "d", START + timedelta(hours=1))
        calls.mark_placed(conn, again.id, "call-2", START + timedelta(hours=1))
        assert calls.not_placed(conn, camp, again, "late refusal", START + timedelta(hours=1)).status is None
        assert conn.execute(sa.select(t.call_attempts.c.status).where(
            t.call_attempts.c.id == again.id)).scalar_one() == "placed"


def _requeue(conn, cid, pid):
    conn.execute(sa.update(t.prospects).values(next_dial_at=START, last_attempt_at=None))
    conn.execute(sa.insert(t.hopper).values(campaign_id=cid, prospect_id=pid, priority=50, status="queued",
                                            queued_at=START))
    return calls.claim(conn, cid, "d", 1, START + timedelta(hours=1))[0]


class _Scripted:
    """A requests.Session stand-in answering POSTs from a script (status codes)."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.headers = {}

    def request(self, method, url, **kwargs):
        import requests

        response = requests.Response()
        response.status_code = self.statuses.pop(0)
        response._content = b'{"message": "scripted", "call_id": "c1"}'
        return response

    def close(self):
        pass


def test_a_refusal_after_an_unanswered_try_is_not_taken_for_a_clean_refusal():
    client = VoiceClient("http://127.0.0.1:9", backoff_s=0.001, session=_Scripted([500, 422]))
    with pytest.raises(VoiceApiError) as caught:
        client.place_call(campaign="a/b", to="+12125550000", agent="x", prospect_id=1, idempotency_key="k")
    assert not caught.value.refused and "may have acted" in str(caught.value)
    clean = VoiceClient("http://127.0.0.1:9", backoff_s=0.001, session=_Scripted([401]))
    with pytest.raises(VoiceApiError) as caught:
        clean.place_call(campaign="a/b", to="+12125550000", agent="x", prospect_id=1, idempotency_key="k")
    assert caught.value.refused and caught.value.status == 401
