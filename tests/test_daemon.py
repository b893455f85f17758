"""The daemon against the simulator over real HTTP on loopback, on SQLite and PostgreSQL.

The simulator's clock is driven by the test (speed 1 on a fake monotonic clock),
so every tick happens at an exact simulated instant.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.model import Campaign
from campaigns.dialing import calls, hopper
from dialer_daemon.daemon import Daemon, PlatformClock
from dialer_daemon.simulator import Profile, Simulator, serve
from dialer_daemon.voice import VoiceClient
from tests.helpers import UPLOADS_CAMPAIGN, add_prospects, apply_campaign

START = datetime(2026, 10, 21, 15, 0, tzinfo=UTC)  # 11:00 in New York, a Wednesday
DISPOSITIONS = [
    {"title": "Do Not Call", "contacted": True, "dnc": True},
    {"title": "Interested", "contacted": True, "qualified": True},
    {"title": "Call Back", "contacted": True, "callback": True},
    {"title": "Not Home"},
]


class FakeMonotonic:
    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value


@pytest.fixture
def platform():
    """A simulator on loopback whose clock the test moves; yields (simulator, client, clock)."""
    clock = FakeMonotonic()
    sim = Simulator(seed=7, start=START, speed=1.0, default=Profile(sessions=5), clock=clock)
    server = serve(sim)
    client = VoiceClient(f"http://127.0.0.1:{server.server_port}", timeout=2.0, backoff_s=0.01)
    yield sim, client, clock
    server.shutdown()
    client.close()


def campaign(engine, **dialing) -> int:
    data = {**UPLOADS_CAMPAIGN, "dispositions": DISPOSITIONS,
            "dialing": {"hopper_min_level": 20, "dialer_interval_s": 10, **dialing}}
    return apply_campaign(engine, data, now=START - timedelta(days=1)).campaign_id


def phones(n: int, npa: str = "212") -> list[dict]:
    return [{"phone": f"+1{npa}555{i:04d}"} for i in range(n)]


def daemon_for(engine, client, **kw) -> Daemon:
    return Daemon(engine, client, clock=PlatformClock(client), **kw)


def attempts(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.select(t.call_attempts).order_by(t.call_attempts.c.id)).all()


def statuses(engine) -> Counter:
    with engine.connect() as conn:
        return Counter(conn.execute(sa.select(t.prospects.c.status)).scalars())


def run(daemon, cid, clock, seconds: float, step: float = 10.0) -> list:
    reports = []
    elapsed = 0.0
    while elapsed < seconds:
        reports.append(daemon.tick(cid))
        clock.value += step
        elapsed += step
    return reports


def test_end_to_end_attempts_match_the_platform_and_prospects_their_events(engine, platform):
    sim, client, clock = platform
    cid = campaign(engine, call_ratio=2.0, max_calls_per_prospect=3, min_minutes_between_calls=5)
    add_prospects(engine, cid, phones(40), now=START - timedelta(hours=1))
    daemon = daemon_for(engine, client, fill_hopper=True)
    run(daemon, cid, clock, seconds=3600)
    # Then the retries and callbacks, which come later and fewer: ticks half a minute apart.
    run(daemon, cid, clock, seconds=2 * 3600, step=30.0)
    # Let the last calls end and their events be applied.
    for _ in range(60):
        clock.value += 30
        with engine.begin() as conn:
            conn.execute(sa.update(t.campaigns).where(t.campaigns.c.id == cid).values(state="paused"))
        daemon.tick(cid)
    recorded = attempts(engine)
    platform_log = sim.calls()
    assert recorded and len(recorded) == len(platform_log)
    with engine.connect() as conn:  # the daemon filled the hopper, and each fill says which daemon
        origins = set(conn.execute(sa.select(t.hopper_fills.c.filled_by, t.hopper_fills.c.filler_id)).all())
    assert origins == {("daemon", daemon.daemon_id)}
    assert {(a.platform_call_id, a.idempotency_key, a.phone_e164) for a in recorded} == {
        (c["call_id"], c["idempotency_key"], c["to"]) for c in platform_log
    }
    with engine.connect() as conn:
        prospects = conn.execute(sa.select(t.prospects)).all()
    by_prospect: dict[int, list] = {}
    for a in recorded:
        by_prospect.setdefault(a.prospect_id, []).append(a)
    assert all(a.status == "ended" for a in recorded)
    for p in prospects:
        mine = by_prospect.get(p.id, [])
        assert p.attempts == len(mine) <= 3
        if not mine:
            assert p.status == "ready"
            continue
        last = mine[-1]
        titles = {d["title"]: d for d in DISPOSITIONS}
        final = titles.get(last.disposition) if last.outcome == "completed" else None
        if final and final.get("dnc"):
            assert p.status == "dnc"
        elif final and final.get("callback"):
            assert p.status == "callback" and p.callback_at == last.callback_at
        elif final and final.get("contacted"):
            assert (p.status, p.disposition) == ("done", last.disposition)
        else:
            assert p.status == ("exhausted" if p.attempts == 3 else "ready")
        spacing = [b.created_at - a.created_at for a, b in zip(mine, mine[1:])]
        assert all(gap >= timedelta(minutes=5) for gap in spacing)
    # Every DNC disposition put the number on the campaign's DNC list.
    with engine.connect() as conn:
        listed = set(conn.execute(sa.select(t.dnc_numbers.c.phone_e164)).scalars())
    assert {a.phone_e164 for a in recorded if a.disposition == "Do Not Call"} <= listed
    outcomes = Counter(a.outcome for a in recorded)
    assert outcomes["completed"] and outcomes["no_answer"]


def test_call_ratio_sets_the_calls_per_tick_and_ringing_calls_count_against_it(engine, platform):
    sim, client, clock = platform
    cid = campaign(engine, call_ratio=2.0)
    add_prospects(engine, cid, phones(30), now=START - timedelta(hours=1))
    hopper.fill_campaign(engine, cid, START)
    daemon = daemon_for(engine, client)
    first = daemon.tick(cid)
    assert (first.decision.inputs.idle, first.decision.calls, first.placed) == (5, 10, 10)
    second = daemon.tick(cid)  # same instant: 10 calls still ringing, ⌊5 × 2⌋ − 10 = 0
    assert (second.decision.inputs.ringing, second.placed) == (10, 0)
    assert len(sim.calls()) == 10


def test_max_active_calls_caps_the_calls_in_flight(engine, platform):
    sim, client, clock = platform
    cid = campaign(engine, call_ratio=3.0, max_active_calls=4)
    add_prospects(engine, cid, phones(30), now=START - timedelta(hours=1))
    hopper.fill_campaign(engine, cid, START)
    daemon = daemon_for(engine, client)
    first = daemon.tick(cid)
    assert (first.placed, first.decision.limited_by) == (4, "max_active_calls")
    for _ in range(20):
        clock.value += 5
        report = daemon.tick(cid)
        assert report.decision.inputs.active + report.placed <= 4


def test_wrap_up_keeps_a_session_unavailable(platform):
    sim, client, clock = platform
    profile = Profile(sessions=1, answer_rate=1.0, machine_rate=0, busy_rate=0, fail_rate=0,
                      ring_s=(1, 1), talk_s_mean=10, wrap_up_s=30)
    sim.profiles["acme/solo"] = profile
    client.place_call(campaign="acme/solo", to="+12125550100", agent="a", prospect_id=1, idempotency_key="k1")
    clock.value += 2
    assert client.capacity("acme/solo").on_call == 1
    clock.value += 200  # the call has ended (talk ≥ 10 s, exponential); wrap-up may still run
    events, _ = client.events("acme/solo", 0)
    ended = next(e for e in events if e["type"] == "ended")
    free_at = datetime.fromisoformat(ended["at"]) + timedelta(seconds=30)
    clock.value = (free_at - START).total_seconds() - 1
    cap = client.capacity("acme/solo")
    assert (cap.idle, cap.wrap_up) == (0, 1)
    clock.value += 2
    assert client.capacity("acme/solo").idle == 1


def test_an_answer_with_no_free_session_is_abandoned_after_two_seconds(platform):
    sim, client, clock = platform
    sim.profiles["acme/busy"] = Profile(sessions=1, answer_rate=1.0, machine_rate=0, busy_rate=0,
                                       fail_rate=0, ring_s=(1, 1), talk_s_mean=600)
    for key in ("a", "b"):
        client.place_call(campaign="acme/busy", to="+12125550100", agent="a", prospect_id=1, idempotency_key=key)
    clock.value += 5
    kinds = [e["type"] for e in client.events("acme/busy", 0)[0]]
    assert kinds.count("answered") == 1 and kinds.count("abandoned") == 1


def test_window_closing_between_fill_and_claim_releases_the_row(engine, platform):
    sim, client, clock = platform
    cid = campaign(engine)
    ids = add_prospects(engine, cid, phones(3), now=START - timedelta(hours=1))
    evening = datetime(2026, 10, 22, 0, 58, tzinfo=UTC)  # 20:58 in New York
    hopper.fill_campaign(engine, cid, evening)
    clock.value = (evening + timedelta(minutes=3) - START).total_seconds()  # 21:01
    report = daemon_for(engine, client).tick(cid)
    assert report.placed == 0 and report.released["outside_dial_window"] == 3
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.hopper)).scalar_one() == 0
        assert set(conn.execute(sa.select(t.prospects.c.status).where(t.prospects.c.id.in_(ids))).scalars()) == {"ready"}
    assert sim.calls() == []


@pytest.mark.parametrize("check_on_dial", [True, False])
def test_dnc_added_between_fill_and_dial(engine, platform, check_on_dial):
    sim, client, clock = platform
    cid = campaign(engine)
    with engine.begin() as conn:
        conn.execute(sa.update(t.campaigns).where(t.campaigns.c.id == cid).values(check_on_dial=check_on_dial))
    add_prospects(engine, cid, phones(2), now=START - timedelta(hours=1))
    hopper.fill_campaign(engine, cid, START)
    with engine.begin() as conn:
        list_id = conn.execute(sa.select(t.dnc_lists.c.id)).scalar_one()
        conn.execute(sa.insert(t.dnc_numbers).values(dnc_list_id=list_id, phone_e164="+12125550000", added_at=START))
    report = daemon_for(engine, client).tick(cid)
    dialed = {c["to"] for c in sim.calls()}
    if check_on_dial:
        assert report.released["on_dnc_list"] == 1 and dialed == {"+12125550001"}
    else:
        assert dialed == {"+12125550000", "+12125550001"}


def test_a_retry_after_a_client_timeout_dials_once(engine, platform):
    sim, client, clock = platform
    sim.slow_responses, sim.slow_response_s = 1, 1.0
    slow_client = VoiceClient(client.base_url, timeout=0.3, backoff_s=0.01)
    first = slow_client.place_call(campaign="acme/renewals", to="+12125550100", agent="a", prospect_id=1,
                                   idempotency_key="att-1")
    assert first.replayed  # the first response was lost; the retry got the call already placed
    assert len(sim.calls()) == 1
    again = slow_client.place_call(campaign="acme/renewals", to="+12125550100", agent="a", prospect_id=1,
                                   idempotency_key="att-1")
    assert again.call_id == first.call_id and len(sim.calls()) == 1
    with pytest.raises(Exception, match="refused"):
        slow_client.place_call(campaign="acme/renewals", to="+12125559999", agent="a", prospect_id=1,
                               idempotency_key="att-1")
    slow_client.close()


def test_an_attempt_left_placing_is_resent_with_its_key(engine, platform):
    """The platform placed the call but its answer was lost: the next tick re-sends the same key."""
    sim, client, clock = platform
    cid = campaign(engine)
    add_prospects(engine, cid, phones(1), now=START - timedelta(hours=1))
    hopper.fill_campaign(engine, cid, START)
    sim.slow_responses, sim.slow_response_s = 1, 1.0
    impatient = VoiceClient(client.base_url, timeout=0.3, retries=0)
    lost = daemon_for(engine, impatient).tick(cid)
    assert lost.placed == 0 and lost.warnings  # no answer: the attempt stays `placing`
    [pending] = attempts(engine)
    assert (pending.status, pending.platform_call_id) == ("placing", None)
    assert len(sim.calls()) == 1  # … but the platform did dial
    clock.value += 30
    daemon_for(engine, client).tick(cid)
    assert len(sim.calls()) == 1
    [recorded] = attempts(engine)
    assert (recorded.status, recorded.platform_call_id) != ("placing", None)
    assert recorded.platform_call_id == sim.calls()[0]["call_id"]
    impatient.close()


def test_pause_stops_new_calls_and_lets_live_calls_finish(engine, platform):
    sim, client, clock = platform
    cid = campaign(engine)
    add_prospects(engine, cid, phones(20), now=START - timedelta(hours=1))
    hopper.fill_campaign(engine, cid, START)
    daemon = daemon_for(engine, client)
    assert daemon.tick(cid).placed == 5
    with engine.begin() as conn:
        conn.execute(sa.update(t.campaigns).where(t.campaigns.c.id == cid).values(state="paused"))
    for _ in range(30):
        clock.value += 60
        report = daemon.tick(cid)
        assert report.placed == 0 and report.decision is None
    assert len(sim.calls()) == 5
    assert all(a.status == "ended" for a in attempts(engine))
    with engine.begin() as conn:
        conn.execute(sa.update(t.campaigns).where(t.campaigns.c.id == cid).values(state="active"))
    hopper.fill_campaign(engine, cid, sim.now())
    assert daemon.tick(cid).placed > 0


def test_max_calls_and_min_time_between_calls(engine, platform):
    sim, client, clock = platform
    sim.default = Profile(sessions=5, answer_rate=0, machine_rate=0, busy_rate=0, fail_rate=0)  # nobody answers
    cid = campaign(engine, max_calls_per_prospect=2, min_minutes_between_calls=20)
    [pid] = add_prospects(engine, cid, phones(1), now=START - timedelta(hours=1))
    daemon = daemon_for(engine, client, fill_hopper=True)
    run(daemon, cid, clock, seconds=2 * 3600, step=30)
    mine = [a for a in attempts(engine) if a.prospect_id == pid]
    assert len(mine) == 2
    assert mine[1].created_at - mine[0].ended_at >= timedelta(minutes=20)
    with engine.connect() as conn:
        assert conn.execute(sa.select(t.prospects.c.status)).scalar_one() == "exhausted"


def test_frequency_cap_is_rechecked_before_dialing(engine, platform):
    sim, client, clock = platform
    cid = campaign(engine)
    [pid] = add_prospects(engine, cid, [{"phone": "+13055550100", "state": "FL", "area_state": "FL"}],
                          now=START - timedelta(hours=1))
    hopper.fill_campaign(engine, cid, START)
    with engine.begin() as conn:  # three calls from another campaign since the fill
        for hours in (3, 2, 1):
            conn.execute(sa.insert(t.call_attempts).values(
                campaign_id=cid, prospect_id=pid, attempt_number=1, idempotency_key=f"other-{hours}",
                phone_e164="+13055550100", status="ended", created_at=START - timedelta(hours=hours)))
    report = daemon_for(engine, client).tick(cid)
    assert report.released["frequency_cap"] == 1 and sim.calls() == []


# Every disposition path, applied to a recorded attempt as the platform's events would.

def _dial_one(engine, cid, attempts_before=0):
    [pid] = add_prospects(engine, cid, [{"phone": "+12125550100", "attempts": attempts_before,
                                         "last_attempt_at": START - timedelta(days=1) if attempts_before else None}],
                          now=START - timedelta(hours=1))
    hopper.fill_campaign(engine, cid, START)
    with engine.begin() as conn:
        camp = Campaign.from_row(conn.execute(sa.select(t.campaigns).where(t.campaigns.c.id == cid)).one())
        row = calls.claim(conn, cid, "d", 1, START)[0]
        attempt = calls.start_attempt(conn, camp, row, "d", START)
        calls.mark_placed(conn, attempt.id, "call-1", START)
    return pid, camp


@pytest.mark.parametrize(
    ("event", "status", "extra"),
    [
        ({"type": "ended", "outcome": "completed", "disposition": "Interested"}, "done", {}),
        ({"type": "ended", "outcome": "completed", "disposition": "do not call"}, "dnc", {"listed": True}),
        ({"type": "ended", "outcome": "completed", "disposition": "Call Back",
          "callback_at": (START + timedelta(hours=3)).isoformat()}, "callback", {"due": START + timedelta(hours=3)}),
        ({"type": "ended", "outcome": "completed", "disposition": "Call Back"}, "callback",
         {"due": START + timedelta(minutes=5) + timedelta(minutes=1440)}),
        ({"type": "ended", "outcome": "completed", "disposition": "Not Home"}, "ready", {}),
        ({"type": "ended", "outcome": "completed", "disposition": "Gibberish"}, "ready", {"warning": True}),
        ({"type": "ended", "outcome": "no_answer"}, "ready", {}),
        ({"type": "ended", "outcome": "busy"}, "ready", {}),
        ({"type": "ended", "outcome": "machine"}, "ready", {}),
        ({"type": "abandoned"}, "ready", {}),
        ({"type": "failed", "cause": "carrier rejected the number"}, "ready", {}),
    ],
)
def test_every_disposition_path(engine, event, status, extra):
    cid = campaign(engine)
    pid, camp = _dial_one(engine, cid)
    ended_at = START + timedelta(minutes=5)
    with engine.begin() as conn:
        done = calls.apply_event(conn, camp, {"call_id": "call-1", "at": ended_at.isoformat(), **event}, ended_at)
        prospect = conn.execute(sa.select(t.prospects).where(t.prospects.c.id == pid)).one()
        listed = set(conn.execute(sa.select(t.dnc_numbers.c.phone_e164)).scalars())
    assert done.status == status == prospect.status
    if status == "ready":
        assert prospect.next_dial_at == ended_at + timedelta(minutes=30)
    if "due" in extra:
        assert prospect.callback_at == prospect.next_dial_at == extra["due"]
    assert ("+12125550100" in listed) is bool(extra.get("listed"))
    assert bool(done.warnings) is bool(extra.get("warning"))
    [attempt] = attempts(engine)
    assert attempt.status == "ended" and attempt.ended_at == ended_at


def test_the_last_allowed_call_without_contact_exhausts_the_prospect(engine):
    cid = campaign(engine, max_calls_per_prospect=2)
    pid, camp = _dial_one(engine, cid, attempts_before=1)
    with engine.begin() as conn:
        done = calls.apply_event(conn, camp, {"call_id": "call-1", "type": "ended", "outcome": "no_answer",
                                              "at": START.isoformat()}, START)
    assert done.status == "exhausted"


@pytest.mark.parametrize(("attempts_before", "status"), [(0, "ready"), (1, "exhausted")])
def test_an_outcome_the_dialer_does_not_know_ends_the_call_as_failed(engine, attempts_before, status):
    """A newer platform's outcome must not stop the event stream: the prospect retries as after a failure."""
    cid = campaign(engine, max_calls_per_prospect=2)
    pid, camp = _dial_one(engine, cid, attempts_before=attempts_before)
    ended_at = START + timedelta(minutes=5)
    with engine.begin() as conn:
        done = calls.apply_event(conn, camp, {"call_id": "call-1", "type": "ended", "outcome": "voicemail_left",
                                              "at": ended_at.isoformat()}, ended_at)
        prospect = conn.execute(sa.select(t.prospects).where(t.prospects.c.id == pid)).one()
    assert done.outcome == "failed" and done.status == status == prospect.status
    assert "'voicemail_left'" in done.warnings[0]
    [attempt] = attempts(engine)
    assert attempt.status == "ended" and attempt.ended_at == ended_at and attempt.outcome == "failed"
    assert attempt.failure_cause == "the platform reported outcome 'voicemail_left'"


def test_an_attempt_stored_with_an_outcome_outside_the_enum_still_reads(engine):
    """Earlier versions stored whatever outcome the platform reported: such a row must not stop the
    event stream (a late event for its call is ignored, as for any ended attempt)."""
    cid = campaign(engine)
    _pid, camp = _dial_one(engine, cid)
    with engine.begin() as conn:
        conn.execute(sa.update(t.call_attempts).values(status="ended", outcome="voicemail_left",
                                                       ended_at=START + timedelta(minutes=5)))
        late = calls.apply_event(conn, camp, {"call_id": "call-1", "type": "ended", "outcome": "busy",
                                              "at": (START + timedelta(minutes=6)).isoformat()}, START)
    assert late is None
    [attempt] = attempts(engine)
    assert attempt.outcome == "voicemail_left"


def test_dialer_simulator_and_dialer_daemon_processes_dial_a_campaign(engine, db_url, tmp_path):
    """The two commands as an operator runs them: the last 45 minutes of a New York evening at ×600."""
    import json
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path
    from zoneinfo import ZoneInfo

    cid = campaign(engine, call_ratio=1.5)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).astimezone(ZoneInfo("America/New_York")).date()
    start = datetime.combine(tomorrow, datetime.min.time().replace(hour=20, minute=15),
                             tzinfo=ZoneInfo("America/New_York")).astimezone(UTC)
    add_prospects(engine, cid, phones(25), now=datetime.now(UTC) - timedelta(minutes=1))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bindir = Path(sys.executable).parent
    env = {**os.environ, "DIALER_DATABASE_URL": db_url, "DIALER_HOME": str(tmp_path / "home"),
           "DIALER_VOICE_API_URL": f"http://127.0.0.1:{port}", "DIALER_VOICE_API_TOKEN": "s3cret"}
    simulator = subprocess.Popen(
        [str(bindir / "dialer"), "simulator", "--port", str(port), "--speed", "600", "--seed", "5",
         "--sessions", "4", "--start", start.isoformat()],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        daemon = subprocess.run(
            [str(bindir / "dialer"), "daemon", "--exit-when-done", "--fill-hopper", "--json"],
            env=env, capture_output=True, text=True, timeout=240,
        )
        assert daemon.returncode == 0, daemon.stderr[-2000:]
        assert json.loads(daemon.stdout)["calls_placed"] > 0
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/calls",
                                         headers={"Authorization": "Bearer s3cret"})
        with urllib.request.urlopen(request, timeout=5) as response:
            platform_log = json.load(response)["calls"]
    finally:
        os.killpg(simulator.pid, signal.SIGTERM)
        simulator.wait(timeout=30)
    recorded = attempts(engine)
    assert {(a.platform_call_id, a.idempotency_key) for a in recorded} == {
        (c["call_id"], c["idempotency_key"]) for c in platform_log
    }
    assert all(a.status == "ended" for a in recorded)
    with engine.connect() as conn:
        prospects = conn.execute(sa.select(t.prospects)).all()
    counts = Counter(a.prospect_id for a in recorded)
    assert all(p.attempts == counts.get(p.id, 0) for p in prospects)
    assert "dialing" not in {p.status for p in prospects}


def test_pacing_decisions_are_exported_as_prometheus_metrics(engine, platform):
    import urllib.request

    from dialer_daemon.metrics import serve_metrics

    sim, client, clock = platform
    cid = campaign(engine, call_ratio=1.5)
    add_prospects(engine, cid, phones(10), now=START - timedelta(hours=1))
    hopper.fill_campaign(engine, cid, START)
    daemon = daemon_for(engine, client)
    daemon.tick(cid)
    server = serve_metrics(daemon.metrics, 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        server.shutdown()
    assert 'dialer_calls_placed_total{campaign="acme/renewals"} 7' in text
    assert 'dialer_pacing_effective_ratio{campaign="acme/renewals"} 1.5' in text
    assert 'dialer_sessions_idle{campaign="acme/renewals"} 5' in text
    assert "# TYPE dialer_ticks_total counter" in text


def test_events_of_a_call_whose_confirmation_was_lost_still_reach_the_attempt(engine, platform):
    """The platform dialed, its answer was lost: the call's events carry the key and settle the attempt."""
    sim, client, clock = platform
    sim.default = Profile(sessions=5, answer_rate=0, machine_rate=0, busy_rate=1.0, fail_rate=0)
    cid = campaign(engine)
    add_prospects(engine, cid, phones(1), now=START - timedelta(hours=1))
    hopper.fill_campaign(engine, cid, START)
    sim.slow_responses, sim.slow_response_s = 1, 1.0
    impatient = VoiceClient(client.base_url, timeout=0.3, retries=0)
    daemon_for(engine, impatient).tick(cid)
    impatient.close()
    clock.value += 10  # the busy signal has ended; no re-send yet (under 20 s)
    daemon_for(engine, client).tick(cid)
    [attempt] = attempts(engine)
    assert (attempt.status, attempt.outcome, attempt.platform_call_id) == ("ended", "busy", sim.calls()[0]["call_id"])
    assert statuses(engine) == Counter({"ready": 1}) and len(sim.calls()) == 1


def test_an_unconfirmed_attempt_is_not_resent_once_the_campaign_is_paused(engine, platform):
    sim, client, clock = platform
    cid = campaign(engine)
    add_prospects(engine, cid, phones(1), now=START - timedelta(hours=1))
    hopper.fill_campaign(engine, cid, START)
    with engine.begin() as conn:  # an attempt recorded, its request never answered

        camp = Campaign.from_row(conn.execute(sa.select(t.campaigns).where(t.campaigns.c.id == cid)).one())
        row = calls.claim(conn, cid, "d", 1, START)[0]
        calls.start_attempt(conn, camp, row, "d", START)
        conn.execute(sa.update(t.campaigns).where(t.campaigns.c.id == cid).values(state="paused"))
    clock.value += 60
    daemon_for(engine, client).tick(cid)
    # Paused: not re-sent. Its request could still be on its way (sent moments ago): left as it is.
    [attempt] = attempts(engine)
    assert attempt.status == "placing" and sim.calls() == []
    with engine.begin() as conn:  # long enough ago that every try of that request is over
        conn.execute(sa.update(t.call_attempts).values(sent_at=datetime.now(UTC) - timedelta(minutes=5)))
    daemon_for(engine, client).tick(cid)
    # The platform never had its key, so it was never placed: its count is given back.
    [attempt] = attempts(engine)
    assert (attempt.status, attempt.outcome) == ("ended", "not_placed") and sim.calls() == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(t.prospects.c.status, t.prospects.c.attempts)).one() == ("ready", 0)


def test_claims_left_by_a_stopped_daemon_return_to_the_hopper(engine, platform):
    sim, client, clock = platform
    cid = campaign(engine)
    add_prospects(engine, cid, phones(3), now=START - timedelta(hours=1))
    hopper.fill_campaign(engine, cid, START)
    with engine.begin() as conn:
        calls.claim(conn, cid, "died", 3, START)
    later = hopper.fill_campaign(engine, cid, START + timedelta(minutes=31))
    assert later.returned_expired == 3 and later.queued == 3


@pytest.mark.parametrize(("damper", "placed"), [("disabled", 15), ("waiting_stations", 5)])
def test_the_damper_holds_back_a_burst_into_idle_sessions(engine, platform, damper, placed):
    sim, client, clock = platform
    cid = campaign(engine, call_ratio=3.0, damper={"mode": damper, "threshold": 0.5})
    add_prospects(engine, cid, phones(30), now=START - timedelta(hours=1))
    hopper.fill_campaign(engine, cid, START)
    report = daemon_for(engine, client).tick(cid)  # all 5 sessions idle
    assert report.placed == placed == len(sim.calls())
