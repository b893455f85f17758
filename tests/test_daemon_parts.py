"""The daemon's parts, each alone: the tick's dialing, the reconciler's judgement of a lost
request, the lease keeper's fence and hand-back, placing calls, table upkeep.

What they assert is what tests/test_daemon.py and tests/test_daemon_fleet.py imply of the
whole daemon; here each part runs without the loop around it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.lifecycle import AttemptStatus, CallOutcome, ProspectStatus
from campaigns.core.model import Attempt, Disposition
from campaigns.dialing import calls, hopper, leases, roster
from dialer_daemon.leasekeeper import LeaseKeeper, LeaseLost
from dialer_daemon.metrics import Metrics
from dialer_daemon.placing import CallPlacer, call_metadata
from dialer_daemon.reconciler import Reconciler, platform_outcome
from dialer_daemon.report import TickReport
from dialer_daemon.tick import CampaignTicker
from dialer_daemon.upkeep import TableUpkeep
from dialer_daemon.voice import PlacedCall, VoiceApiError, VoiceClient
from tests.helpers import add_prospects
from tests.test_daemon import START, campaign, phones

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens: no test here may reach a platform


@pytest.fixture
def client():
    client = VoiceClient(UNREACHABLE, timeout=2.0, retries=1)
    yield client
    client.close()


def _queued_campaign(engine, n: int) -> int:
    cid = campaign(engine)
    add_prospects(engine, cid, phones(n), now=START - timedelta(hours=1))
    hopper.fill_campaign(engine, cid, START)
    return cid


def _paced(engine, cid):
    with engine.connect() as conn:
        return roster.paced_campaign(conn, cid)


def _attempt(**changes) -> Attempt:
    base = Attempt(id=1, campaign_id=1, prospect_id=1, attempt_number=1, idempotency_key="k", phone_e164="+1",
                   platform_call_id=None, status=AttemptStatus.PLACING, outcome=None, disposition=None,
                   created_at=START, placed_at=None, answered_at=None, ended_at=None, duration_s=None,
                   callback_at=None, failure_cause=None, daemon_id="d", sent_at=None)
    return replace(base, **changes)


# -- the tick's dialing ----------------------------------------------------------------

def test_a_draining_ticker_claims_nothing(engine, client):
    cid = _queued_campaign(engine, 2)
    camp, name = _paced(engine, cid)
    ticker = CampaignTicker(engine, client, "d", draining=lambda: True)
    report = TickReport(name, START, camp.state)
    ticker.dial(camp, name, 2, START, report)
    assert report.claimed == 0
    with engine.connect() as conn:
        assert hopper.queued_depth(conn, cid) == hopper.depth(conn, cid) == 2


def test_a_fence_that_refuses_claims_nothing(engine, client):
    cid = _queued_campaign(engine, 2)
    camp, name = _paced(engine, cid)

    def lost(conn, campaign_id, name):
        raise LeaseLost(name)

    with pytest.raises(LeaseLost):
        CampaignTicker(engine, client, "d", fence=lost).dial(camp, name, 2, START, TickReport(name, START, "active"))
    with engine.connect() as conn:
        assert hopper.queued_depth(conn, cid) == 2


# -- the lease keeper ------------------------------------------------------------------

def _roster(engine) -> list[roster.RosterEntry]:
    with engine.connect() as conn:
        return roster.roster(conn)


def _keeper(engine, daemon_id="A") -> LeaseKeeper:
    return LeaseKeeper(engine, daemon_id, "host", 1, Metrics(), names={})


def test_the_fence_holds_only_once_fenced(engine):
    cid = _queued_campaign(engine, 1)
    keeper = _keeper(engine)
    with engine.begin() as conn:
        keeper.confirm(conn, cid, "acme/renewals")  # a tick alone is unfenced
    keeper.fenced = True
    with pytest.raises(LeaseLost), engine.begin() as conn:
        keeper.confirm(conn, cid, "acme/renewals")
    keeper.balance(_roster(engine))
    assert cid in keeper.leases and not keeper.short_of_share
    with engine.begin() as conn:
        keeper.confirm(conn, cid, "acme/renewals")


def test_handing_back_returns_the_claims_and_the_leases(engine):
    cid = _queued_campaign(engine, 3)
    keeper = _keeper(engine)
    keeper.balance(_roster(engine))
    with engine.begin() as conn:
        calls.claim(conn, cid, "A", 2, START)
    keeper.hand_back()
    assert keeper.leases == {}
    with engine.connect() as conn:
        assert leases.holders(conn) == {}
        assert Counter(conn.execute(sa.select(t.hopper.c.status)).scalars()) == Counter({"queued": 1})


# -- the reconciler ----------------------------------------------------------------------

def test_a_request_is_on_its_way_until_every_try_could_have_ended(engine, client):
    reconciler = Reconciler(engine, client, CallPlacer(engine, client), speed=lambda: 60.0)
    now = datetime.now(UTC)
    assert not reconciler.no_request_on_its_way(_attempt(sent_at=now), START)
    assert reconciler.no_request_on_its_way(_attempt(sent_at=now - timedelta(minutes=5)), START)
    # No send time recorded: judged on the platform's clock, at its speed.
    assert not reconciler.no_request_on_its_way(_attempt(created_at=START), START + timedelta(seconds=60))
    assert reconciler.no_request_on_its_way(_attempt(created_at=START), START + timedelta(minutes=30))


@pytest.mark.parametrize(("call", "outcome"), [
    ({"status": "abandoned", "outcome": "abandoned"}, CallOutcome.ABANDONED),
    ({"status": "failed", "outcome": "failed"}, CallOutcome.FAILED),
    ({"status": "ended", "outcome": "no_answer"}, CallOutcome.NO_ANSWER),
    ({"status": "ended", "outcome": None}, CallOutcome.COMPLETED),
])
def test_a_call_the_platform_reports_over_ends_its_attempt_with_its_outcome(call, outcome):
    assert platform_outcome(call) is outcome


def test_an_outcome_the_dialer_does_not_know_ends_a_quiet_call_as_failed(engine, client):
    cid = _queued_campaign(engine, 1)
    camp, attempt = _started(engine, cid)
    with engine.begin() as conn:
        calls.mark_placed(conn, attempt.id, "call-1", START)
    call = {"status": "ended", "outcome": "voicemail_left", "ended_at": START.isoformat()}
    assert platform_outcome(call) is None
    with engine.begin() as conn:
        warnings = Reconciler._finish_from_platform(conn, camp, attempt, call, START)
        ended = calls.read_attempt(conn, attempt.id)
    assert ended.outcome is CallOutcome.FAILED and "'voicemail_left'" in warnings[0]
    assert ended.failure_cause == "the platform reported outcome 'voicemail_left'"


# -- placing calls ---------------------------------------------------------------------

def test_the_platform_is_told_the_dispositions_and_the_attempts_number():
    dispositions = [Disposition(1, 1, "Call Back", False, True, True, False, 0),
                    Disposition(2, 1, "Not Home", False, False, False, False, 1)]
    assert call_metadata(dispositions, _attempt(attempt_number=3)) == {
        "dispositions": ["Call Back", "Not Home"], "callback_dispositions": ["Call Back"], "attempt": 3}


def _started(engine, cid):
    camp, _ = _paced(engine, cid)
    with engine.begin() as conn:
        [row] = calls.claim(conn, cid, "d", 1, START)
        attempt = calls.start_attempt(conn, camp, row, "d", START)
    assert attempt is not None and attempt.status is AttemptStatus.PLACING
    return camp, attempt


def test_a_refused_request_gives_the_count_back(engine, client):
    cid = _queued_campaign(engine, 1)
    camp, attempt = _started(engine, cid)
    report = TickReport("acme/renewals", START, "active")
    CallPlacer(engine, client).record(camp, attempt, VoiceApiError("refused", status=403), START, report)
    assert report.not_placed == 1 and "DIALER_VOICE_API_TOKEN" in report.warnings[0]
    with engine.connect() as conn:
        assert calls.read_attempt(conn, attempt.id).outcome is CallOutcome.NOT_PLACED
        assert conn.execute(sa.select(t.prospects.c.status, t.prospects.c.attempts)).one() == (
            ProspectStatus.READY, 0)


def test_an_unanswered_request_leaves_the_attempt_placing_and_an_accepted_one_is_counted_once(engine, client):
    cid = _queued_campaign(engine, 1)
    camp, attempt = _started(engine, cid)
    placer, report = CallPlacer(engine, client), TickReport("acme/renewals", START, "active")
    placer.record(camp, attempt, VoiceApiError("no answer"), START, report)
    assert report.placed == report.not_placed == 0 and report.warnings == ["no answer"]
    placer.record(camp, attempt, PlacedCall("call-1", replayed=False), START, report)
    placer.record(camp, attempt, PlacedCall("call-1", replayed=True), START, report)
    assert report.placed == 1
    with engine.connect() as conn:
        assert calls.read_attempt(conn, attempt.id).status is AttemptStatus.PLACED


# -- table upkeep ------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # PostgreSQL's: tests/test_daemon_fleet.py
def test_table_upkeep_never_starts_on_sqlite(engine):
    assert TableUpkeep(engine, Metrics(), every_s=0.0).maybe_start() is False
