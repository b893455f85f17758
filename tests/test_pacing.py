"""Pacing: how many calls one tick places (pure function, table-driven)."""

from __future__ import annotations

import pytest

from campaigns.dialing.pacing import PacingInputs, calls_to_place, effective_ratio


def inputs(**kw) -> PacingInputs:
    base = dict(sessions_total=10, idle=10, wrap_up=0, ringing=0, active=0, hopper=1000, call_ratio=1.0,
                max_active_calls=0, damper_mode="disabled", damper_threshold=0.5)
    base.update(kw)
    return PacingInputs(**base)


@pytest.mark.parametrize(
    ("kw", "calls", "limited_by"),
    [
        ({}, 10, "ratio"),                                      # 10 idle × 1.0
        ({"call_ratio": 2.0}, 20, "ratio"),                     # 10 idle × 2.0
        ({"call_ratio": 1.5, "idle": 3}, 4, "ratio"),           # ⌊4.5⌋
        ({"call_ratio": 2.0, "ringing": 7}, 13, "ratio"),       # calls still ringing count against it
        ({"call_ratio": 2.0, "ringing": 25}, 0, "ratio"),       # never negative
        ({"idle": 0, "wrap_up": 4}, 0, "no_idle_sessions"),     # wrap-up sessions are not idle
        ({"idle": 6, "wrap_up": 4}, 6, "ratio"),
        ({"call_ratio": 3.0, "max_active_calls": 12, "active": 5}, 7, "max_active_calls"),
        ({"max_active_calls": 5, "active": 9}, 0, "max_active_calls"),
        ({"max_active_calls": 0, "active": 500}, 10, "ratio"),  # 0 = unlimited
        ({"call_ratio": 2.0, "hopper": 3}, 3, "hopper"),
    ],
)
def test_calls_to_place(kw, calls, limited_by):
    decision = calls_to_place(inputs(**kw))
    assert (decision.calls, decision.limited_by) == (calls, limited_by)


@pytest.mark.parametrize(
    ("ratio", "idle_share", "threshold", "expected"),
    [
        (3.0, 0.4, 0.5, 3.0),   # below the threshold: the campaign's ratio
        (3.0, 0.5, 0.5, 3.0),   # at it: still full
        (3.0, 0.75, 0.5, 2.0),  # halfway to all idle: halfway to 1.0
        (3.0, 1.0, 0.5, 1.0),   # all idle: 1.0
        (1.0, 1.0, 0.5, 1.0),   # never below 1.0
    ],
)
def test_waiting_stations_damper(ratio, idle_share, threshold, expected):
    assert effective_ratio(ratio, idle_share, "waiting_stations", threshold) == pytest.approx(expected)
    assert effective_ratio(ratio, idle_share, "disabled", threshold) == ratio


def test_damper_lowers_a_burst_when_most_sessions_sit_idle():
    undamped = calls_to_place(inputs(call_ratio=3.0, idle=10))
    damped = calls_to_place(inputs(call_ratio=3.0, idle=10, damper_mode="waiting_stations"))
    assert (undamped.calls, damped.calls) == (30, 10)
    busy = calls_to_place(inputs(call_ratio=3.0, idle=2, damper_mode="waiting_stations"))
    assert busy.calls == 6  # 20% idle, under the threshold: the full ratio
