"""The hopper fill on real SQLite and PostgreSQL: order, level, expiry, windows, DNC and caps."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.lifecycle import FillOrigin
from campaigns.core.model import Campaign
from campaigns.dialing import hopper
from campaigns.reporting.status import campaign_status
from tests.helpers import UPLOADS_CAMPAIGN, add_prospects, apply_campaign

NOON = datetime(2026, 10, 21, 16, 0, tzinfo=UTC)  # 12:00 EDT, 11:00 CDT, 09:00 PDT, 06:00 HST


def _campaign(engine, slug: str = "renewals", **dialing):
    data = {**UPLOADS_CAMPAIGN, "slug": slug}
    data["dialing"] = {"hopper_min_level": 5, **dialing}
    return apply_campaign(engine, data, now=NOON - timedelta(days=2)).campaign_id


def _phone(i: int, npa: str = "212") -> str:
    return f"+1{npa}555{i:04d}"


def _queued(engine, campaign_id) -> list[tuple[int, int, str]]:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(t.hopper.c.prospect_id, t.hopper.c.priority)
            .where(t.hopper.c.campaign_id == campaign_id).order_by(t.hopper.c.id)
        ).all()


def _status(engine, ids) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(t.prospects.c.id, t.prospects.c.status)
                                 .where(t.prospects.c.id.in_(ids))).all())


def test_fill_queues_callbacks_first_then_priority_attempts_last_attempt_and_upload_order(engine):
    cid = _campaign(engine)
    ids = add_prospects(engine, cid, [
        {"phone": _phone(1), "priority": 10},                                   # low priority
        {"phone": _phone(2), "priority": 90, "attempts": 2,                     # high, two attempts
         "last_attempt_at": NOON - timedelta(hours=3)},
        {"phone": _phone(3), "priority": 90, "attempts": 1,                     # high, one recent attempt
         "last_attempt_at": NOON - timedelta(hours=1)},
        {"phone": _phone(4), "priority": 90, "attempts": 1,                     # high, one older attempt
         "last_attempt_at": NOON - timedelta(hours=2)},
        {"phone": _phone(5), "priority": 90},                                   # high, fresh: upload order…
        {"phone": _phone(6), "priority": 90},
        {"phone": _phone(7), "status": "callback", "priority": 0,               # a due callback
         "callback_at": NOON - timedelta(minutes=1), "attempts": 1,
         "last_attempt_at": NOON - timedelta(minutes=5)},
        {"phone": _phone(8), "status": "callback", "callback_at": NOON + timedelta(hours=1)},  # not due
    ], now=NOON)
    result = hopper.fill_campaign(engine, cid, NOON)
    assert (result.level, result.queued, result.queued_callbacks) == (5, 5, 1)
    order = [row.prospect_id for row in _queued(engine, cid)]
    assert order == [ids[6], ids[4], ids[5], ids[3], ids[2]]
    # Queuing touches only the hopper: prospects keep READY/CALLBACK; status reports them as queued.
    statuses = _status(engine, ids)
    assert [statuses[i] for i in order] == ["callback", "ready", "ready", "ready", "ready"]
    assert _queued(engine, cid)[0].priority == hopper.CALLBACK_RANK
    with engine.connect() as conn:
        counts = campaign_status(conn, cid, NOON).prospects
    assert (counts["queued"], counts["ready"], counts["callback"]) == (5, 2, 1)


def test_fill_never_queues_a_prospect_twice_and_tops_up_to_the_level(engine):
    cid = _campaign(engine)
    add_prospects(engine, cid, [{"phone": _phone(i)} for i in range(12)], now=NOON)
    assert hopper.fill_campaign(engine, cid, NOON).queued == 5
    again = hopper.fill_campaign(engine, cid, NOON + timedelta(minutes=1))
    assert (again.depth_before, again.queued) == (5, 0)
    queued = [row.prospect_id for row in _queued(engine, cid)]
    assert len(queued) == len(set(queued)) == 5


def _sessions(engine, cid, sessions: int) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(t.campaign_runtime).values(campaign_id=cid, agent_sessions=sessions))


def _dials(engine, cid, times: list[datetime]) -> None:
    """Attempts created at `times` (ended at once), as a daemon records them, for one settled prospect."""
    [prospect] = add_prospects(engine, cid, [{"phone": _phone(9999, "646"), "status": "done"}], now=NOON)
    with engine.begin() as conn:
        conn.execute(sa.insert(t.call_attempts), [
            {"campaign_id": cid, "prospect_id": prospect, "attempt_number": 1, "idempotency_key": uuid.uuid4().hex,
             "phone_e164": _phone(9999, "646"), "status": "ended", "outcome": "no_answer",
             "created_at": at, "ended_at": at}
            for at in times
        ])


def _every(seconds: float, count: int, last=NOON) -> list[datetime]:
    """`count` instants `seconds` apart, the last at `last`."""
    return [last - timedelta(seconds=seconds * k) for k in range(count)]


def _load(engine, cid) -> Campaign:
    with engine.connect() as conn:
        return Campaign.from_row(conn.execute(sa.select(t.campaigns).where(t.campaigns.c.id == cid)).one())


@pytest.mark.parametrize(
    ("times", "rate", "level"),
    [
        # 40 dials evenly over the last 5 minutes: 8 a minute → 8 × 5 min × 1.5 = 60.
        (_every(7.5, 40), 8.0, 60),
        # The same 40 an hour earlier are not the pace now, and neither are dials stamped after `now`.
        (_every(7.5, 40, NOON - timedelta(hours=1)) + _every(-7.5, 40, NOON + timedelta(seconds=1))
         + _every(7.5, 40), 8.0, 60),
        # A ramp-up: 30 dials in the last minute, none before: the last 2 minutes (15 a minute) lead.
        (_every(2, 30), 15.0, 113),
    ],
    ids=["steady", "only-the-last-interval", "ramp-up"],
)
def test_level_follows_the_dial_rate_measured_over_the_last_fill_interval(engine, times, rate, level):
    cid = _campaign(engine, call_ratio=2.0, dialer_interval_s=10, fill_interval_min=5)
    add_prospects(engine, cid, [{"phone": _phone(i)} for i in range(200)], now=NOON)
    _sessions(engine, cid, 25)  # 25 × 2 × 30 ticks = 1,500 by the old rule: sessions no longer size it
    _dials(engine, cid, times)
    result = hopper.fill_campaign(engine, cid, NOON)
    assert (result.dials_per_min, result.level, result.queued) == (rate, level, level)
    with engine.connect() as conn:
        fill = conn.execute(sa.select(t.hopper_fills)).one()
    assert (fill.level, fill.queued) == (level, level)


def test_level_is_never_below_the_hopper_min_level(engine):
    cid = _campaign(engine, hopper_min_level=50, fill_interval_min=5)
    add_prospects(engine, cid, [{"phone": _phone(i)} for i in range(100)], now=NOON)
    _sessions(engine, cid, 25)
    # 3 dials in 5 minutes, none in the last 2: 0.6 a minute → 5 rows, floored at 50.
    _dials(engine, cid, [NOON - timedelta(seconds=s) for s in (150, 180, 240)])
    result = hopper.fill_campaign(engine, cid, NOON)
    assert (result.dials_per_min, result.level, result.queued) == (0.6, 50, 50)


def test_cold_start_level_is_every_session_idle_over_one_minute_of_ticks(engine):
    """No dial over the hopper expiry: sessions × ratio per tick, over a minute — not a whole interval."""
    cid = _campaign(engine, call_ratio=2.0, dialer_interval_s=10, fill_interval_min=5, hopper_expiry_min=30)
    add_prospects(engine, cid, [{"phone": _phone(i)} for i in range(200)], now=NOON)
    _dials(engine, cid, _every(60, 30, NOON - timedelta(minutes=31)))  # the last pace, before the expiry
    assert hopper.fill_campaign(engine, cid, NOON).level == 5  # no session reported: the minimum
    _sessions(engine, cid, 3)
    # 3 sessions × ratio 2 × (60 s / 10 s) = 36 (the old rule gave 180: a whole fill interval).
    cold = hopper.fill_campaign(engine, cid, NOON + timedelta(seconds=1))
    assert (cold.dials_per_min, cold.level, cold.depth_after) == (None, 36, 36)


def test_a_campaign_that_dialed_within_the_hopper_expiry_is_measured_at_zero_not_cold(engine):
    """Its last dial 6 minutes ago (slow ticks, a short pause): the minimum, not a burst that would expire."""
    cid = _campaign(engine, call_ratio=2.0, dialer_interval_s=10, fill_interval_min=5, hopper_expiry_min=30)
    add_prospects(engine, cid, [{"phone": _phone(i)} for i in range(200)], now=NOON)
    _sessions(engine, cid, 3)
    _dials(engine, cid, _every(60, 30, NOON - timedelta(minutes=6)))
    result = hopper.fill_campaign(engine, cid, NOON)
    assert (result.dials_per_min, result.level) == (0.0, 5)


def test_low_water_is_two_minutes_of_dials_or_one_idle_tick_and_at_most_half_the_level(engine):
    cid = _campaign(engine, hopper_min_level=5, fill_interval_min=5, call_ratio=2.0)
    campaign = _load(engine, cid)
    # 8 dials a minute: the level holds 8 × 5 × 1.5 = 60 rows; below 8 × 2 × 1.5 = 24 the campaign is due,
    # or below 10 × 2 = 20 with ten sessions all idle (a tick may place that many).
    assert hopper.hopper_level(campaign, 10, 8.0) == 60
    assert (hopper.low_water(campaign, 10, 8.0), hopper.low_water(campaign, 12, 8.0)) == (24, 24)
    assert hopper.low_water(campaign, 14, 8.0) == 28
    # A one-minute interval: the level is 12 rows; low water stops at half of it, or every tick would fill.
    short = dataclasses.replace(campaign, fill_interval_min=1)
    assert (hopper.hopper_level(short, 10, 8.0), hopper.low_water(short, 10, 8.0)) == (12, 6)
    # A cold start: one idle tick (3 × 2); nothing dialed and no session reported: never due early.
    assert (hopper.low_water(campaign, 3, None), hopper.low_water(campaign, None, None)) == (6, 0)


def test_a_campaign_whose_queued_rows_run_low_is_due_before_its_fill_interval(engine):
    cid = _campaign(engine, hopper_min_level=5, fill_interval_min=5)
    add_prospects(engine, cid, [{"phone": _phone(i)} for i in range(200)], now=NOON)
    _sessions(engine, cid, 25)
    _dials(engine, cid, _every(7.5, 40))  # 8 a minute
    assert hopper.fill_campaign(engine, cid, NOON).level == 60
    soon, campaign = NOON + timedelta(seconds=30), _load(engine, cid)
    with engine.connect() as conn:
        need = hopper.low_water(campaign, 25, hopper.dial_rate(conn, campaign, soon))
        assert hopper.campaigns_due(conn, soon) == []  # 60 queued: plenty
    assert 0 < need < 60
    _claim(engine, cid, 60 - need)  # the daemon dialed all but `need` rows: still enough
    with engine.connect() as conn:
        assert hopper.campaigns_due(conn, soon) == []
    _claim(engine, cid, 1)  # one row fewer than two minutes' dials × margin
    with engine.connect() as conn:
        assert hopper.campaigns_due(conn, soon) == [cid]
    refill = hopper.fill_campaign(engine, cid, soon)
    assert (refill.depth_before, refill.depth_after) == (need - 1, refill.level)


def test_an_empty_hopper_is_refilled_on_the_first_tick_after_a_window_opens(engine):
    """Honolulu opens at 09:00 HST (19:00 UTC): the campaign is due then, not at its next fill interval.

    A fill that found nothing to queue is not repeated within the same minute (a window opens on
    a whole minute), so a daemon ticking a closed campaign fills it at most once a minute.
    """
    cid = _campaign(engine, fill_interval_min=5)
    add_prospects(engine, cid, [{"phone": _phone(i, "808"), "zones": ("Pacific/Honolulu",), "state": "HI",
                                 "area_state": "HI"} for i in range(10)], now=NOON)
    _sessions(engine, cid, 2)
    opening = datetime(2026, 10, 21, 19, 0, tzinfo=UTC)
    closed = hopper.fill_campaign(engine, cid, opening - timedelta(seconds=50))  # 08:59:10 HST
    assert (closed.queued, closed.note) == (0, "no zone group is open now")
    with engine.connect() as conn:
        assert hopper.campaigns_due(conn, opening - timedelta(seconds=5)) == []  # the same minute
        assert hopper.campaigns_due(conn, opening + timedelta(seconds=5)) == [cid]  # the first tick at 09:00
    assert hopper.fill_campaign(engine, cid, opening + timedelta(seconds=5)).queued == 10


def _claim(engine, cid, count: int) -> None:
    """A daemon dials `count` queued rows: starting each attempt deletes its hopper row."""
    h = t.hopper
    with engine.begin() as conn:
        ids = conn.execute(sa.select(h.c.id).where(h.c.campaign_id == cid).order_by(h.c.id).limit(count)).scalars()
        conn.execute(sa.delete(h).where(h.c.id.in_(list(ids))))


def test_unclaimed_rows_return_after_hopper_expiry_to_where_they_came_from(engine):
    cid = _campaign(engine, hopper_expiry_min=30)
    ids = add_prospects(engine, cid, [
        {"phone": _phone(1)},
        {"phone": _phone(2), "status": "callback", "callback_at": NOON - timedelta(minutes=1)},
    ], now=NOON)
    hopper.fill_campaign(engine, cid, NOON)
    with engine.begin() as conn:  # a daemon claimed nothing; pause the campaign so nothing is re-queued
        conn.execute(sa.update(t.campaigns).where(t.campaigns.c.id == cid).values(state="paused"))
    later = hopper.fill_campaign(engine, cid, NOON + timedelta(minutes=31))
    assert later.returned_expired == 2 and later.queued == 0
    assert _status(engine, ids) == {ids[0]: "ready", ids[1]: "callback"}
    assert _queued(engine, cid) == []


def test_rows_whose_window_closed_go_back_and_closed_groups_are_not_queued(engine):
    cid = _campaign(engine)
    ids = add_prospects(engine, cid, [
        {"phone": _phone(1), "zones": ("America/New_York",), "state": "NY", "area_state": "NY"},
        {"phone": _phone(2, "808"), "zones": ("Pacific/Honolulu",), "state": "HI", "area_state": "HI"},
    ], now=NOON)
    first = hopper.fill_campaign(engine, cid, NOON)  # 06:00 in Honolulu: closed
    assert (first.queued, first.open_groups, first.closed_groups) == (1, 1, 1)
    # 20:50 EDT = 14:50 HST: both open; New York's stale row expired and is queued afresh.
    evening = datetime(2026, 10, 22, 0, 50, tzinfo=UTC)
    refill = hopper.fill_campaign(engine, cid, evening)
    assert (refill.returned_expired, refill.queued) == (1, 2)
    # 21:05 EDT, within the hopper expiry: New York has closed, so its row goes back.
    closed = hopper.fill_campaign(engine, cid, evening + timedelta(minutes=15))
    assert (closed.returned_expired, closed.returned_closed, closed.queued) == (0, 1, 0)
    assert [row.prospect_id for row in _queued(engine, cid)] == [ids[1]]


def test_due_rules_filter_the_fill(engine):
    cid = _campaign(engine)
    ids = add_prospects(engine, cid, [
        {"phone": _phone(1), "expires_at": NOON - timedelta(minutes=1)},              # expired
        {"phone": _phone(2), "attempts": 10, "last_attempt_at": NOON - timedelta(days=1)},  # max calls
        {"phone": _phone(3), "attempts": 1, "last_attempt_at": NOON - timedelta(minutes=10)},  # too soon
        {"phone": _phone(4), "next_dial_at": NOON + timedelta(minutes=5)},             # not due
        {"phone": _phone(5), "status": "done"},
        {"phone": _phone(6)},                                                          # the one
    ], now=NOON)
    hopper.fill_campaign(engine, cid, NOON)
    assert [row.prospect_id for row in _queued(engine, cid)] == [ids[5]]


def test_dnc_numbers_and_capped_numbers_are_skipped(engine):
    cid = _campaign(engine)
    ids = add_prospects(engine, cid, [
        {"phone": _phone(1, "305"), "zones": ("America/New_York",), "state": "FL", "area_state": "FL"},
        {"phone": _phone(2, "305"), "zones": ("America/New_York",), "state": "FL", "area_state": "FL"},
        {"phone": _phone(3)},
        {"phone": _phone(4)},
    ], now=NOON)
    with engine.begin() as conn:
        list_id = conn.execute(sa.select(t.dnc_lists.c.id)).scalar_one()
        conn.execute(sa.insert(t.dnc_numbers).values(dnc_list_id=list_id, phone_e164=_phone(3), added_at=NOON))
        for hours in (20, 10, 2):  # three calls to a Florida number in the last 24 h
            conn.execute(sa.insert(t.call_attempts).values(
                campaign_id=cid, prospect_id=ids[0], attempt_number=1, idempotency_key=f"k{hours}",
                phone_e164=_phone(1, "305"), status="ended", created_at=NOON - timedelta(hours=hours)))
    result = hopper.fill_campaign(engine, cid, NOON)
    assert (result.marked_dnc, result.skipped_cap) == (1, 1)
    assert sorted(row.prospect_id for row in _queued(engine, cid)) == [ids[1], ids[3]]
    # The listed number can never be dialed: marked DNC. The capped one waits.
    assert _status(engine, [ids[0], ids[2]]) == {ids[0]: "ready", ids[2]: "dnc"}
    # The capped prospect waits until its oldest call of the last 24 h leaves the window.
    with engine.connect() as conn:
        next_dial = conn.execute(sa.select(t.prospects.c.next_dial_at)
                                 .where(t.prospects.c.id == ids[0])).scalar_one()
    assert next_dial == NOON + timedelta(hours=4)


@pytest.mark.parametrize(
    ("few_groups", "budget"),
    [(10_000, 20), (0, 20), (0, 1)],
    ids=["merged-ranges", "dial-order-scan", "scan-budget-spent"],
)
def test_many_zone_groups_fill_in_one_dial_order(engine, monkeypatch, few_groups, budget):
    """Merged group ranges (in chunks), the dial-order scan, and its fallback all give one order."""
    monkeypatch.setattr(hopper, "UNION_ARMS", 7)
    monkeypatch.setattr(hopper, "FEW_GROUPS", few_groups)
    monkeypatch.setattr(hopper, "SCAN_BUDGET", budget)
    cid = _campaign(engine, hopper_min_level=40)
    states = ["NY", "NJ", "OH", "GA", "NC", "VA", "MI", "MA", "PA", "SC"]
    specs = [
        {"phone": _phone(i), "zones": ("America/New_York",), "state": states[i % 10],
         "area_state": states[(i // 10) % 10], "priority": (i * 37) % 101}
        for i in range(300)
    ]
    # Hawaii is closed at NOON: its high-priority prospects lead the dial order but are skipped.
    specs += [{"phone": _phone(i, "808"), "zones": ("Pacific/Honolulu",), "state": "HI",
               "area_state": "HI", "priority": 100} for i in range(60)]
    ids = add_prospects(engine, cid, specs, now=NOON)
    with engine.connect() as conn:
        assert len(hopper.zone_groups(conn, cid)) > 3 * hopper.UNION_ARMS
    hopper.fill_campaign(engine, cid, NOON)
    expected = sorted(range(300), key=lambda i: (-specs[i]["priority"], ids[i]))[:40]
    assert [row.prospect_id for row in _queued(engine, cid)] == [ids[i] for i in expected]


def test_zone_groups_are_found_by_loose_index_scan(engine):
    cid = _campaign(engine)
    add_prospects(engine, cid, [
        {"phone": _phone(i), "zones": (z,), "state": s, "area_state": s, "status": st}
        for i, (z, s, st) in enumerate([
            ("America/New_York", "NY", "ready"), ("America/New_York", "NY", "ready"),
            ("America/Chicago", "TX", "ready"), ("Pacific/Honolulu", "HI", "callback"),
            ("America/Denver", "CO", "done"),
        ])
    ], now=NOON)
    with engine.connect() as conn:
        assert hopper.zone_groups(conn, cid) == [
            "America/Chicago|TX|TX", "America/New_York|NY|NY", "Pacific/Honolulu|HI|HI"
        ]


def test_concurrent_fills_never_queue_a_prospect_twice(engine):
    cid = _campaign(engine, hopper_min_level=50)
    add_prospects(engine, cid, [{"phone": _phone(i)} for i in range(80)], now=NOON)
    results, errors = [], []

    def fill():
        try:
            results.append(hopper.fill_campaign(engine, cid, NOON))
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=fill) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    queued = [row.prospect_id for row in _queued(engine, cid)]
    assert len(queued) == len(set(queued)) == 50
    assert sum(r.queued for r in results) == 50


def test_campaigns_due_by_fill_interval(engine):
    cid = _campaign(engine, fill_interval_min=5)
    with engine.connect() as conn:
        assert hopper.campaigns_due(conn, NOON) == [cid]
    hopper.fill_campaign(engine, cid, NOON)
    with engine.connect() as conn:
        assert hopper.campaigns_due(conn, NOON + timedelta(minutes=4)) == []
        assert hopper.campaigns_due(conn, NOON + timedelta(minutes=4, seconds=31)) == [cid]


def test_hopper_asset_fills_due_campaigns(engine, dialer_env):
    from campaigns.core.config import DialerConfig
    from pipelines.definitions import defs, resources_for

    # A level above the six prospects: between 22:00 and 02:00 UTC every zone below is open, and a
    # level of 5 would queue five of six (the test failed at that hour, not the fill).
    cid = _campaign(engine, hopper_min_level=10)
    now = datetime.now(UTC)
    add_prospects(engine, cid, [
        {"phone": _phone(i), "zones": (z,), "state": None, "area_state": None}
        for i, z in enumerate(["America/New_York", "America/Chicago", "America/Denver",
                               "America/Los_Angeles", "Pacific/Honolulu", "Pacific/Guam"])
    ], now=now)
    result = defs.resolve_job_def("fill_hopper").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), resources=resources_for(DialerConfig.from_env()))
    assert result.success
    event = next(e for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION")
    metadata = {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}
    assert metadata["campaigns_filled"] == 1
    with engine.connect() as conn:
        fills = conn.execute(sa.select(t.hopper_fills)).all()
    assert len(fills) == 1 and fills[0].queued == metadata["queued"] == len(_queued(engine, cid))
    assert (fills[0].filled_by, fills[0].filler_id) == ("run", result.run_id)  # the sensor leaves it to the run
    # Only zones whose window is open at this instant were queued (the rules decide, not the test).
    from campaigns.dialing.dialability import DialRules, Place, window_open

    expected = sum(window_open(Place((z,)), DialRules(), now) for z in [
        "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
        "Pacific/Honolulu", "Pacific/Guam"])
    assert metadata["queued"] == expected


def test_a_hopper_run_failing_at_a_later_campaign_still_shows_the_fills_it_made(engine, dialer_env, monkeypatch):
    """Each fill commits on its own and the sensor leaves a run's fills to the run: a run that fails
    at its second campaign reports the first campaign's fill before it fails."""
    import assets.hopper as hopper_assets
    from campaigns.core.config import DialerConfig
    from pipelines.definitions import defs, resources_for

    first, second = _campaign(engine), _campaign(engine, slug="second")
    now = datetime.now(UTC)
    for cid in (first, second):
        add_prospects(engine, cid, [{"phone": _phone(i + 10 * cid)} for i in range(3)], now=now)
    real = hopper_assets.fill_campaign
    asked: list[int] = []

    def failing(engine_, campaign_id, at, **origin):
        asked.append(campaign_id)
        if len(asked) == 2:
            raise RuntimeError("the database went away")
        return real(engine_, campaign_id, at, **origin)

    monkeypatch.setattr(hopper_assets, "fill_campaign", failing)
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("fill_hopper").execute_in_process(
        instance=instance, resources=resources_for(DialerConfig.from_env()), raise_on_error=False)
    assert not result.success
    event = instance.get_latest_materialization_event(dg.AssetKey("hopper"))
    assert event is not None and event.run_id == result.run_id and event.asset_materialization is not None
    metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    assert metadata["campaigns_filled"] == 1 and metadata["filled_by"] == "this run, before it failed"
    with engine.connect() as conn:
        assert [(f.campaign_id, f.filled_by) for f in conn.execute(sa.select(t.hopper_fills))] == [(asked[0], "run")]
    assert sorted(asked) == [first, second]


def test_no_run_per_fill_the_sensor_reports_each_fill_once_as_a_materialization(engine, dialer_env):
    """The daemons fill (hopper.fill_campaign on their tick); Dagster launches no run for it:
    hopper_fills_sensor reports the recorded fills after its cursor, once, without a run."""
    from campaigns.core.config import DialerConfig
    from pipelines.definitions import defs, resources_for

    assert [s.name for s in defs.schedules] == ["daily_expiry"]  # no per-minute hopper schedule
    sensor = defs.resolve_sensor_def("hopper_fills_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING and not sensor.targets
    resources = {"database": resources_for(DialerConfig.from_env())["database"]}

    def evaluate(cursor):
        with dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), cursor=cursor, definitions=defs,
                                     resources=resources) as context:
            return sensor.evaluate_tick(context)

    assert evaluate(None).skip_message  # nothing filled yet
    cid = _campaign(engine)
    now = datetime.now(UTC)
    add_prospects(engine, cid, [{"phone": _phone(i)} for i in range(5)], now=now - timedelta(minutes=1))
    first = hopper.fill_campaign(engine, cid, now, filled_by=FillOrigin.DAEMON, filler_id="dialer|1")
    second = hopper.fill_campaign(engine, cid, now + timedelta(minutes=10), filled_by=FillOrigin.CLI)
    data = evaluate(None)
    assert not data.run_requests
    [materialization] = data.asset_events  # the checks are freshness_sensor's (tests/test_freshness.py)
    assert materialization.asset_key == dg.AssetKey("hopper")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["queued"] == first.queued + second.queued
    assert metadata["campaigns_filled"] == 1 and metadata["last_fill_id"] == second.fill_id
    assert metadata["fills"].count("| acme/") == 2  # one table row per fill, the campaign by name
    # who filled, the daemon's id shown as data (its "|" cannot add a column)
    assert metadata["filled_by"] == "cli, daemon dialer|1" and "| daemon dialer\\|1 |" in metadata["fills"]
    assert data.cursor == str(second.fill_id)
    assert evaluate(data.cursor).skip_message  # reported once
    third = hopper.fill_campaign(engine, cid, now + timedelta(minutes=20))
    again = evaluate(data.cursor)
    assert {k: v.value for k, v in again.asset_events[0].metadata.items()}["first_fill_id"] == third.fill_id
    # A fill by a run of the `hopper` asset was materialized by that run: not reported again.
    by_run = hopper.fill_campaign(engine, cid, now + timedelta(minutes=25), filled_by=FillOrigin.RUN, filler_id="r1")
    after_run = evaluate(again.cursor)
    assert after_run.skip_message and after_run.cursor == str(by_run.fill_id)
    third = by_run
    # A cursor past the newest fill (the database was restored) starts over instead of going silent.
    assert evaluate(str(third.fill_id + 1000)).cursor == str(third.fill_id)
    # Nothing new: skipped, and the cursor stays on the newest fill (the next look is by id).
    quiet = evaluate(str(third.fill_id))
    assert quiet.skip_message and quiet.cursor == str(third.fill_id)


def _fill_row(conn, cid: int, at: datetime) -> int:
    """A `hopper_fills` row as a fill records it (queued nothing), its id."""
    return conn.execute(sa.insert(t.hopper_fills).values(
        campaign_id=cid, filled_at=at, level=5, depth_before=0, queued=0, returned_expired=0, returned_closed=0,
        marked_dnc=0, skipped_cap=0, open_groups=1, closed_groups=0, duration_ms=1.0)
        .returning(t.hopper_fills.c.id)).scalar_one()


def test_a_fill_committing_after_a_later_one_was_read_is_reported_once_by_a_later_read(engine, backend):
    """Ids are drawn before commit: the reader keeps the ids missing below the newest it read and
    returns each when it commits, and gives it up (a rolled-back fill) after GAP_WAIT."""
    cid = _campaign(engine)
    now = datetime.now(UTC)
    since = now - timedelta(minutes=10)
    with engine.connect() as conn:
        assert hopper.fills_after(conn, hopper.FillsRead(), now, since=since) == ([], hopper.FillsRead())
    with engine.begin() as conn:
        first = _fill_row(conn, cid, now)
    with engine.connect() as conn:
        fills, read = hopper.fills_after(conn, hopper.FillsRead(), now, since=since)
    assert [f.fill_id for f in fills] == [first] and read == hopper.FillsRead(first)
    if backend == "postgres":  # a real late commit: one transaction draws an id, a later one commits first
        with engine.connect() as slow:
            slow.begin()
            late = _fill_row(slow, cid, now)
            with engine.begin() as conn:
                later = _fill_row(conn, cid, now)
            with engine.connect() as conn:
                fills, read = hopper.fills_after(conn, read, now, since=since)
            slow.commit()
    else:  # SQLite serializes writers: a row taken out and put back stands for the late commit
        with engine.begin() as conn:
            late, later = _fill_row(conn, cid, now), _fill_row(conn, cid, now)
            conn.execute(sa.delete(t.hopper_fills).where(t.hopper_fills.c.id == late))
        with engine.connect() as conn:
            fills, read = hopper.fills_after(conn, read, now, since=since)
        with engine.begin() as conn:
            conn.execute(sa.insert(t.hopper_fills).from_select(
                [c.name for c in t.hopper_fills.columns],
                sa.select(*[sa.literal(late).label("id") if c.name == "id" else c for c in t.hopper_fills.columns])
                .where(t.hopper_fills.c.id == later)))
    assert [f.fill_id for f in fills] == [later] and read.last_id == later and set(read.waiting) == {late}
    assert hopper.FillsRead.parse(read.text()) == read  # the cursor carries the waiting id
    with engine.connect() as conn:
        fills, read = hopper.fills_after(conn, hopper.FillsRead.parse(read.text()), now + timedelta(seconds=30),
                                         since=since)
        assert [f.fill_id for f in fills] == [late] and read == hopper.FillsRead(later)
        assert read.text() == str(later)
        assert hopper.fills_after(conn, read, now, since=since) == ([], read)  # reported once
    # An id never committed (rolled back) is waited for GAP_WAIT, then given up.
    with engine.begin() as conn:
        rolled_back, final = _fill_row(conn, cid, now), _fill_row(conn, cid, now)
        conn.execute(sa.delete(t.hopper_fills).where(t.hopper_fills.c.id == rolled_back))
    gone = hopper.FillsRead(final, {rolled_back: now - hopper.GAP_WAIT + timedelta(seconds=1)})
    with engine.connect() as conn:
        assert hopper.fills_after(conn, gone, now, since=since) == ([], gone)
        assert hopper.fills_after(conn, gone, now + timedelta(seconds=1), since=since) == ([], hopper.FillsRead(final))
        # A first read (no position: by time) also waits for the ids missing among those it read.
        fills, read = hopper.fills_after(conn, hopper.FillsRead(), now, since=since)
        assert [f.fill_id for f in fills] == [first, late, later, final] and set(read.waiting) == {rolled_back}


@pytest.mark.parametrize("text", ["", "abc", "{}", '{"last": "7", "waiting": {}}', '{"last": 7, "waiting": []}',
                                  '{"last": 7, "waiting": {"x": "2026-01-01T00:00:00+00:00"}}',
                                  '{"last": 7, "waiting": {"3": "2026-01-01T00:00:00"}}', "[1]", "null"])
def test_a_cursor_that_is_not_one_reads_from_the_start(text):
    assert hopper.FillsRead.parse(text) == hopper.FillsRead()


def test_rows_whose_prospect_left_ready_leave_the_hopper(engine):
    cid = _campaign(engine)
    ids = add_prospects(engine, cid, [{"phone": _phone(i)} for i in range(3)], now=NOON)
    hopper.fill_campaign(engine, cid, NOON)
    with engine.begin() as conn:  # expired by the daily run, or DNC'd by a disposition, while queued
        conn.execute(sa.update(t.prospects).where(t.prospects.c.id == ids[0]).values(status="expired"))
    again = hopper.fill_campaign(engine, cid, NOON + timedelta(minutes=5))
    assert (again.returned_closed, again.queued) == (1, 0)
    assert sorted(row.prospect_id for row in _queued(engine, cid)) == ids[1:]


def test_dnc_listed_prospects_never_starve_the_hopper(engine):
    """Numbers on a DNC list (loaded READY without a DNC disposition) are marked, not re-read forever."""
    cid = _campaign(engine)
    listed = add_prospects(engine, cid, [{"phone": _phone(i), "priority": 90} for i in range(50)], now=NOON)
    clean = add_prospects(engine, cid, [{"phone": _phone(100 + i), "priority": 10} for i in range(10)], now=NOON)
    with engine.begin() as conn:
        list_id = conn.execute(sa.select(t.dnc_lists.c.id)).scalar_one()
        conn.execute(sa.insert(t.dnc_numbers), [
            {"dnc_list_id": list_id, "phone_e164": _phone(i), "added_at": NOON} for i in range(50)
        ])
    first = hopper.fill_campaign(engine, cid, NOON)
    queued = {row.prospect_id for row in _queued(engine, cid)}
    assert first.queued == len(queued) and queued <= set(clean)
    hopper.fill_campaign(engine, cid, NOON + timedelta(minutes=1))
    hopper.fill_campaign(engine, cid, NOON + timedelta(minutes=2))
    assert set(_status(engine, listed).values()) == {"dnc"}
    assert len(_queued(engine, cid)) == 5


def test_queued_rows_leave_when_their_prospect_stops_being_due(engine):
    cid = _campaign(engine)
    ids = add_prospects(engine, cid, [
        {"phone": _phone(1), "expires_at": NOON + timedelta(minutes=2)},
        {"phone": _phone(2)},
        {"phone": _phone(3)},
    ], now=NOON)
    hopper.fill_campaign(engine, cid, NOON)
    with engine.begin() as conn:  # the number joins a DNC list after it was queued
        list_id = conn.execute(sa.select(t.dnc_lists.c.id)).scalar_one()
        conn.execute(sa.insert(t.dnc_numbers).values(dnc_list_id=list_id, phone_e164=_phone(2), added_at=NOON))
    later = hopper.fill_campaign(engine, cid, NOON + timedelta(minutes=10))
    assert later.returned_closed == 2
    assert [row.prospect_id for row in _queued(engine, cid)] == [ids[2]]


def test_the_cap_counts_candidates_and_queued_rows_of_the_same_number(engine):
    """Three prospects share one Florida number with two calls today: only one more call fits."""
    cid = _campaign(engine)
    fl = {"zones": ("America/New_York",), "state": "FL", "area_state": "FL"}
    ids = add_prospects(engine, cid, [{"phone": "+13055550100", **fl} for _ in range(3)], now=NOON)
    with engine.begin() as conn:
        for hours in (20, 2):
            conn.execute(sa.insert(t.call_attempts).values(
                campaign_id=cid, prospect_id=ids[0], attempt_number=1, idempotency_key=f"k{hours}",
                phone_e164="+13055550100", status="ended", created_at=NOON - timedelta(hours=hours)))
    result = hopper.fill_campaign(engine, cid, NOON)
    assert (result.queued, result.skipped_cap) == (1, 2)


def test_a_fill_at_a_later_instant_does_not_stall_the_schedule(engine):
    cid = _campaign(engine)
    add_prospects(engine, cid, [{"phone": _phone(i)} for i in range(3)], now=NOON)
    hopper.fill_campaign(engine, cid, NOON + timedelta(days=1))  # `dialer hopper fill --at` tomorrow
    with engine.connect() as conn:
        assert hopper.campaigns_due(conn, NOON) == [cid]
    today = hopper.fill_campaign(engine, cid, NOON)
    assert (today.returned_expired, today.queued) == (3, 3)
