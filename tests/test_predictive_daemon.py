"""Predictive pacing through the real daemon against the simulator, on SQLite and PostgreSQL (issue 16).

The simulator's clock steps one dialer interval per tick, as `bench/pacing.py` does, so the
runs measure pacing and not this machine's speed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.dialing import predictive
from campaigns.reporting.status import campaign_status
from dialer_daemon.daemon import Daemon, PlatformClock
from dialer_daemon.simulator import Profile, Simulator, serve
from dialer_daemon.voice import VoiceClient
from tests.helpers import UPLOADS_CAMPAIGN, add_prospects, apply_campaign
from tests.test_daemon import FakeMonotonic as Stepped

START = datetime(2026, 10, 21, 15, 0, tzinfo=UTC)  # 11:00 in New York, a Wednesday
INTERVAL = 5
NAME = "acme/renewals"


@pytest.fixture
def platform():
    """20 sessions, 30% answer, 60 s talks: enough answers in half an hour to see the pacing."""
    clock = Stepped()
    sim = Simulator(seed=5, start=START, clock=clock,
                    default=Profile(sessions=20, answer_rate=0.3, talk_s_mean=60.0, wrap_up_s=3.0))
    server = serve(sim)
    client = VoiceClient(f"http://127.0.0.1:{server.server_port}", timeout=10.0, backoff_s=0.01)
    yield sim, client, clock
    server.shutdown()
    client.close()


def predictive_campaign(engine, prospects: int = 2500, **dialing) -> int:
    data = {**UPLOADS_CAMPAIGN, "dialing": {
        "pacing": "predictive", "target_abandon_rate": 0.02, "dialer_interval_s": INTERVAL,
        "max_calls_per_prospect": 1, "hopper_min_level": 400, "wrap_up_s": 3, **dialing}}
    cid = apply_campaign(engine, data, now=START - timedelta(days=1)).campaign_id
    add_prospects(engine, cid, [{"phone": f"+1{('212', '917', '646')[i % 3]}555{i // 3:04d}"}
                                for i in range(prospects)], now=START - timedelta(hours=1))
    return cid


def step(daemon: Daemon, cid: int, clock: Stepped, ticks: int) -> list:
    reports = []
    for _ in range(ticks):
        reports.append(daemon.tick(cid))
        clock.value += INTERVAL
    return reports


def persons(sim: Simulator) -> tuple[int, int]:
    """(answered by a person, abandoned), from the simulator's own log."""
    calls = sim.calls(NAME)
    abandoned = sum(1 for c in calls if c["outcome"] == "abandoned" and c["answered_at"] is None)
    return sum(1 for c in calls if c["answered_at"] is not None) + abandoned, abandoned


def occupancy(sim: Simulator, sessions: int, seconds: float) -> float:
    end = START + timedelta(seconds=seconds)
    on_call = 0.0
    for c in sim.calls(NAME):
        if c["answered_at"]:
            answered = datetime.fromisoformat(c["answered_at"])
            ended = datetime.fromisoformat(c["ended_at"]) if c["ended_at"] else end
            on_call += max(0.0, (min(ended, end) - answered).total_seconds())
    return on_call / (sessions * seconds)


def stored_margin(engine, cid: int) -> float | None:
    with engine.connect() as conn:
        return conn.execute(sa.select(t.campaign_runtime.c.pacing_margin)
                            .where(t.campaign_runtime.c.campaign_id == cid)).scalar_one()


def test_predictive_pacing_holds_its_target_and_keeps_sessions_busier_than_one_call_per_idle_session(
        engine, platform):
    sim, client, clock = platform
    cid = predictive_campaign(engine)
    daemon = Daemon(engine, client, clock=PlatformClock(client), fill_hopper=True)
    reports = step(daemon, cid, clock, 30 * 60 // INTERVAL)
    answered, abandoned = persons(sim)
    assert answered > 300
    assert abandoned / answered <= 0.03  # the target is 2%; a seeded half hour, within the legal 3%
    # Ratio 1 keeps at most one call in flight per idle session: ~40% busy at a 30% answer rate.
    assert occupancy(sim, 20, 30 * 60) > 0.7
    limits = {r.decision.limited_by for r in reports if r.decision}
    assert {"cold_start", "model"} <= limits
    last = reports[-1].decision
    assert last.mode == "predictive" and last.estimates.answer_rate == pytest.approx(0.3, abs=0.06)
    assert stored_margin(engine, cid) == pytest.approx(last.estimates.margin)
    # Never more calls placed in one tick than the hopper held, never a cancelled call.
    assert all(r.placed <= r.decision.inputs.hopper for r in reports if r.decision)
    # What ops see: the metrics and the status carry the mode and the estimates.
    text = daemon.metrics.text()
    assert f'dialer_pacing_mode{{campaign="{NAME}",mode="predictive"}} 1.0' in text
    assert f'dialer_pacing_mode{{campaign="{NAME}",mode="ratio"}} 0.0' in text
    for gauge in ("pacing_answer_rate", "pacing_expected_free_sessions", "pacing_margin", "abandon_rate_30d"):
        assert f'dialer_{gauge}{{campaign="{NAME}"}}' in text
    with engine.connect() as conn:
        status = campaign_status(conn, cid, START + timedelta(minutes=30)).pacing
    assert status is not None and status.mode == "predictive" and status.margin == last.estimates.margin
    assert status.answer_rate == pytest.approx(last.estimates.answer_rate, abs=1e-4)
    assert status.abandon_rate_30d == pytest.approx(abandoned / answered, abs=0.01)


def test_a_daemon_taking_over_the_lease_continues_with_the_stored_margin(engine, platform):
    sim, client, clock = platform
    cid = predictive_campaign(engine, prospects=1500)
    first = Daemon(engine, client, clock=PlatformClock(client), daemon_id="first", fill_hopper=True)
    first.balance_leases(first.campaigns(), greedy=True)
    assert cid in first.leases
    step(first, cid, clock, 10 * 60 // INTERVAL)
    margin = stored_margin(engine, cid)
    assert margin is not None and margin != predictive.MARGIN_START  # the feedback has moved it
    first.lease_keeper.hand_back()
    second = Daemon(engine, client, clock=PlatformClock(client), daemon_id="second", fill_hopper=True)
    second.balance_leases(second.campaigns(), greedy=True)
    assert cid in second.leases
    report = second.tick(cid)
    # One tick's feedback moves the margin by a few hundredths at most; a fresh pacer would start at 2.
    assert report.decision.estimates.margin == pytest.approx(margin, abs=0.1)
    assert not report.decision.estimates.cold_start


def test_two_pacers_with_the_same_seed_meet_the_same_calls(engine, platform):
    """The k-th call of a campaign has one fate, whichever pacer placed it and when."""
    sim, client, clock = platform
    cid = predictive_campaign(engine, prospects=600)
    step(Daemon(engine, client, clock=PlatformClock(client), fill_hopper=True), cid, clock, 24)
    other_clock = Stepped()
    other = Simulator(seed=5, start=START, clock=other_clock, default=sim.default)
    for k in range(40):  # a different pacer: two calls a tick
        other.place_call({"campaign": NAME, "to": f"+1212555{k:04d}"}, f"k{k}")
        other_clock.value += INTERVAL / 2
    placed = len(sim.calls(NAME))
    assert placed > 40
    for index in range(1, 41):
        mine, theirs = sim.fate(NAME, index), other.fate(NAME, index)
        assert (mine.kind, mine.ring_s, mine.talk_s) == (theirs.kind, theirs.ring_s, theirs.talk_s)
