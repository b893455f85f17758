"""The predictive pacer as a pure function, on hand-made call histories (issue 16)."""

from __future__ import annotations

import math

import pytest

from campaigns.dialing import predictive as P
from campaigns.dialing.predictive import (
    CallHistory,
    Dial,
    PacerState,
    PredictiveInputs,
    Talk,
    predictive_calls,
)


def dials(n: int = 1000, rate: float = 0.2, first_age: float = 60.0) -> list[Dial]:
    """`n` settled dials, newest first, a person on every 1/rate-th, answering 4–20 s after the dial."""
    every = round(1 / rate)
    out = []
    for i in range(n):
        person = i % every == 0
        resolved = 4.0 + (i * 7 % 17) if person else 25.0
        out.append(Dial(age_s=first_age + i * 0.5, resolved_s=resolved, person=person))
    return out


def talks(n: int = 500, mean: float = 120.0) -> list[Talk]:
    """`n` ended talks whose durations are the exponential's quantiles (mean `mean`)."""
    return [Talk(-mean * math.log(1 - (i + 0.5) / n), True) for i in range(n)]


def inputs(*, idle=10, wrap_up=0, sessions=200, ringing=(), talking=None, hopper=10_000, max_active=0,
           margin=1.0, guard=False, history=None, **history_kw) -> PredictiveInputs:
    talking = [30.0] * 40 if talking is None else talking
    h = history or CallHistory(dials=dials(), talks=talks(), ringing_ages=list(ringing), talking=talking,
                               **history_kw)
    return PredictiveInputs(sessions_total=sessions, idle=idle, wrap_up=wrap_up,
                            active=len(h.ringing_ages) + len(h.talking), hopper=hopper, max_active_calls=max_active,
                            wrap_up_s=3.0, target_abandon_rate=0.02, history=h, state=PacerState(margin, guard))


def test_cold_start_places_one_call_per_idle_session_not_already_rung_for():
    d = predictive_calls(inputs(history=CallHistory(ringing_ages=[3.0] * 4, talking=[10.0] * 30), idle=20))
    assert (d.calls, d.limited_by) == (16, "cold_start")
    assert d.estimates.cold_start and d.estimates.answer_rate is None
    # Not enough person answers yet to estimate from: still the cold start.
    few = CallHistory(dials=dials(40, rate=0.2), talks=talks(), talking=[10.0] * 30)
    assert predictive_calls(inputs(history=few, idle=20)).limited_by == "cold_start"


def test_with_estimates_it_dials_about_free_sessions_over_the_answer_rate():
    d = predictive_calls(inputs(idle=10, talking=[30.0] * 40))
    assert d.limited_by == "model" and not d.estimates.cold_start
    assert d.estimates.answer_rate == pytest.approx(0.2)
    # ~10 idle sessions and ~5 more freeing within ~20 s, less the margin, at a 20% answer rate.
    assert 30 <= d.calls <= 80
    assert d.estimates.talk_mean_s == pytest.approx(120.0, rel=0.1)


def test_more_idle_sessions_more_calls_and_a_wider_margin_fewer():
    few, many = predictive_calls(inputs(idle=5)), predictive_calls(inputs(idle=25))
    assert many.calls > few.calls
    assert predictive_calls(inputs(idle=25, margin=4.0)).calls < many.calls


def test_a_higher_answer_rate_means_fewer_calls_for_the_same_sessions():
    low = predictive_calls(inputs(history=CallHistory(dials=dials(rate=0.2), talks=talks(),
                                                      talking=[30.0] * 40), idle=10))
    high = predictive_calls(inputs(history=CallHistory(dials=dials(rate=0.5), talks=talks(),
                                                       talking=[30.0] * 40), idle=10))
    assert high.calls < low.calls


def test_calls_still_ringing_count_against_the_free_sessions():
    quiet = predictive_calls(inputs(idle=10))
    busy = predictive_calls(inputs(idle=10, ringing=[2.0] * 30))
    assert busy.calls < quiet.calls


def test_a_call_older_than_the_longest_person_answer_can_no_longer_reach_a_person():
    outcomes = P.DialOutcomes(dials())
    assert outcomes.longest_answer_s == 20.0
    assert outcomes.ringing_call(2.0, 30.0) > 0.1
    assert outcomes.ringing_call(21.0, 30.0) == 0.0
    old = predictive_calls(inputs(idle=10, ringing=[24.0] * 200))
    assert old.calls == predictive_calls(inputs(idle=10)).calls


def test_dials_younger_than_the_settle_time_do_not_bias_the_answer_rate():
    # 1,000 settled dials at 20%, and 500 newer ones of which only the quick non-person outcomes
    # (busy, failed) have resolved yet: they are left out, not counted as non-persons.
    young = [Dial(age_s=1.0 + i * 0.01, resolved_s=0.5, person=False) for i in range(100)]
    young += [Dial(age_s=5.0, resolved_s=None, person=False) for _ in range(400)]
    outcomes = P.DialOutcomes(young + dials())
    assert outcomes.answer_rate == pytest.approx(0.2)
    assert outcomes.count == 1000


def test_talk_time_counts_calls_in_progress_as_censored():
    ended = [Talk(s, True) for s in (20.0, 30.0, 40.0, 50.0, 60.0)] * 20  # short calls ended …
    ongoing = [Talk(300.0, False)] * 100  # … while as many have talked 5 minutes and go on
    naive = P.TalkTime(ended).mean_s
    censored = P.TalkTime(ended + ongoing).mean_s
    assert naive is not None and censored is not None
    assert naive < 60 < 150 < censored
    # A session 5 minutes into a call is less likely to free up in 20 s than the ended calls suggest.
    assert P.TalkTime(ended + ongoing).ends_within(300.0, 20.0) < P.TalkTime(ended).ends_within(30.0, 20.0)


def test_the_30_day_guard_stops_overdialing_near_3_percent_and_lifts_once_it_recovers():
    near = inputs(idle=12, ringing=[5.0] * 4, answered_30d=10_000, abandoned_30d=275)
    d = predictive_calls(near)
    assert (d.calls, d.limited_by, d.state.guard) == (8, "abandon_guard", True)
    # Hysteresis: still on at 2.65% …
    on = inputs(idle=12, guard=True, answered_30d=10_000, abandoned_30d=265)
    assert predictive_calls(on).limited_by == "abandon_guard"
    # … off below 2.6%.
    off = inputs(idle=12, guard=True, answered_30d=10_000, abandoned_30d=250)
    assert predictive_calls(off).limited_by == "model"
    # Too few answers for a rate to mean anything yet: no guard.
    few = inputs(idle=12, answered_30d=100, abandoned_30d=10)
    assert not predictive_calls(few).state.guard


def test_max_active_calls_and_the_hopper_bound_the_calls():
    free = predictive_calls(inputs(idle=20))
    assert free.calls > 20
    capped = predictive_calls(inputs(idle=20, max_active=40 + 7))  # 40 calls talking
    assert (capped.calls, capped.limited_by) == (7, "max_active_calls")
    dry = predictive_calls(inputs(idle=20, hopper=3))
    assert (dry.calls, dry.limited_by) == (3, "hopper")
    empty = predictive_calls(inputs(idle=20, hopper=0))
    assert (empty.calls, empty.limited_by) == (0, "hopper")
    cold = predictive_calls(inputs(history=CallHistory(talking=[10.0] * 30), idle=20, hopper=2))
    assert (cold.calls, cold.limited_by) == (2, "hopper")


def test_a_tick_places_at_most_one_new_call_per_session():
    idle = predictive_calls(inputs(idle=50, sessions=50, talking=[]))
    assert (idle.calls, idle.limited_by) == (50, "per_tick_cap")


def test_over_committed_it_places_nothing_and_never_a_negative_count():
    d = predictive_calls(inputs(idle=0, ringing=[3.0] * 200, talking=[1.0] * 50))
    assert (d.calls, d.limited_by) == (0, "no_free_sessions")


def test_the_margin_rises_with_abandons_falls_with_connected_calls_and_settles_at_the_target():
    start = PacerState(margin=2.0)
    assert P.next_state(start, CallHistory(abandoned=3), 0.02).margin == pytest.approx(2.0 + 3 * P.MARGIN_UP)
    assert P.next_state(start, CallHistory(connected=100), 0.02).margin < 2.0
    # Abandons at exactly the target share of answers leave it where it was.
    at_target = P.next_state(start, CallHistory(connected=98, abandoned=2), 0.02)
    assert at_target.margin == pytest.approx(2.0)
    assert P.next_state(start, CallHistory(abandoned=10_000), 0.02).margin == P.MARGIN_MAX
    assert P.next_state(start, CallHistory(connected=1_000_000), 0.02).margin == P.MARGIN_MIN


def test_connected_calls_lower_the_margin_only_after_the_models_own_decisions():
    held = PacerState(margin=2.0, lowering=False)
    assert P.next_state(held, CallHistory(connected=100), 0.02).margin == 2.0
    assert P.next_state(held, CallHistory(connected=100, abandoned=1), 0.02).margin > 2.0
    assert not predictive_calls(inputs(idle=50, sessions=50, talking=[])).state.lowering  # the per-tick cap
    assert predictive_calls(inputs(idle=10)).state.lowering


def test_a_target_of_3_percent_is_aimed_below_the_guard():
    start = PacerState(margin=2.0)
    # At 2.9% abandons the margin still rises: the aim is capped below the 30-day guard.
    assert P.next_state(start, CallHistory(connected=971, abandoned=29), 0.03).margin > 2.0
