"""One tick's pacing decision for one campaign, in either mode, with the pacer's state kept.

The daemon's tick calls `decide` once, inside a transaction, after reading the platform's
agent sessions. It reads the calls in flight and the hopper's depth; in predictive mode (and,
for the estimates `dialer campaign status` shows, in ratio mode too) what `history` reads of
recent calls; decides; and stores the pacer's state in `campaign_runtime`, so a daemon taking
over the campaign's lease continues with the same margin.

The 30-day abandon figure the guard watches is counted afresh every `RECOUNT_30D` of the
campaign's clock and, in between, kept up by the tick's own feedback counts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import sqlalchemy as sa

from campaigns.core.lifecycle import PacingMode
from campaigns.core.model import Campaign
from campaigns.dialing import calls, history, hopper, runtime
from campaigns.dialing.pacing import PacingDecision, PacingInputs, calls_to_place
from campaigns.dialing.predictive import (
    MODEL_LIMITS,
    PacerState,
    PredictiveInputs,
    estimate,
    predictive_calls,
)

ABANDON_PERIOD = timedelta(days=30)  # the FTC TSR measures the abandon rate over 30 days per campaign
RECOUNT_30D = timedelta(minutes=5)


@dataclass(frozen=True)
class Sessions:
    """The agent sessions the platform reported for the campaign this tick."""

    total: int
    idle: int
    wrap_up: int


def _thirty_days(conn: sa.Connection, campaign: Campaign, stored: runtime.StoredPacing, now: datetime,
                 connected: int, abandoned: int) -> tuple[int, int, datetime]:
    """(answered, abandoned, counted at) over the 30 days to `now`."""
    kept = stored.estimates or {}
    at = kept.get("counted_30d_at")
    counted_at = datetime.fromisoformat(at) if isinstance(at, str) else None
    if counted_at is None or counted_at > now or now - counted_at >= RECOUNT_30D:
        lost, answered = calls.abandon_counts(conn, campaign.id, now - ABANDON_PERIOD, now)
        return answered, lost, now
    return (int(kept.get("answered_30d", 0)) + connected + abandoned,
            int(kept.get("abandoned_30d", 0)) + abandoned, counted_at)


def decide(conn: sa.Connection, campaign: Campaign, sessions: Sessions, now: datetime) -> PacingDecision:
    """How many calls to place for `campaign` at `now` (see the module docstring)."""
    depth = hopper.queued_depth(conn, campaign.id)
    stored = runtime.pacing_state(conn, campaign.id)
    counted_to = stored.counted_to if stored.counted_to is not None and stored.counted_to <= now else None
    feedback = history.call_history(conn, campaign.id, now, counted_to=counted_to, answered_30d=0, abandoned_30d=0)
    # The calls in flight, from the history's one read of them (not a second query).
    ringing, in_flight = len(feedback.ringing_ages), len(feedback.ringing_ages) + len(feedback.talking)
    inputs = PacingInputs(
        sessions_total=sessions.total, idle=sessions.idle, wrap_up=sessions.wrap_up, ringing=ringing,
        active=in_flight, hopper=depth, call_ratio=campaign.call_ratio,
        max_active_calls=campaign.max_active_calls, damper_mode=campaign.damper_mode,
        damper_threshold=campaign.damper_threshold,
    )
    answered_30d, abandoned_30d, counted_30d_at = _thirty_days(
        conn, campaign, stored, now, feedback.connected, feedback.abandoned)
    model_inputs = PredictiveInputs(
        sessions_total=sessions.total, idle=sessions.idle, wrap_up=sessions.wrap_up, active=in_flight,
        hopper=depth, max_active_calls=campaign.max_active_calls, wrap_up_s=float(campaign.wrap_up_s),
        target_abandon_rate=campaign.target_abandon_rate,
        history=replace(feedback, answered_30d=answered_30d, abandoned_30d=abandoned_30d),
        state=PacerState(margin=stored.margin, guard=stored.guard,
                         lowering=(stored.estimates or {}).get("limited_by", "model") in MODEL_LIMITS)
        if stored.margin is not None else PacerState(),
    )
    margin: float | None
    if campaign.pacing_mode == PacingMode.PREDICTIVE:
        made = predictive_calls(model_inputs)
        decision = PacingDecision(made.calls, None, _idle_share(sessions), made.limited_by, inputs,
                                  PacingMode.PREDICTIVE, made.estimates)
        margin, guard = made.state.margin, made.state.guard
    else:
        ratio = calls_to_place(inputs)
        decision = PacingDecision(ratio.calls, ratio.effective_ratio, ratio.idle_share, ratio.limited_by, inputs,
                                  PacingMode.RATIO, estimate(model_inputs))
        margin, guard = stored.margin, stored.guard  # kept for a switch back to predictive
    runtime.store_pacing(conn, campaign.id, runtime.StoredPacing(
        margin=margin, guard=guard, counted_to=now, updated_at=now,
        estimates={**decision.as_dict(), "answered_30d": answered_30d, "abandoned_30d": abandoned_30d,
                   "counted_30d_at": counted_30d_at.isoformat(), "target_abandon_rate": campaign.target_abandon_rate},
    ))
    return decision


def _idle_share(sessions: Sessions) -> float:
    return sessions.idle / sessions.total if sessions.total > 0 else 0.0
