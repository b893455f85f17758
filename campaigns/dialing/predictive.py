"""Predictive pacing (issue 16): place as many calls as the agent sessions expected to be free
will absorb, with a safety margin that holds the abandon rate to the campaign's target.

A pure function of what the database records and what the platform reports; the daemon's
tick (through `campaigns.dialing.pace`) feeds it and stores its state. Each tick, at `now`:

**Dial outcomes.** The campaign's recent dials, each with its age, the seconds from the dial
to the moment it resolved (a person answered, or the call ended) and whether a person
answered. The cohort is the dials old enough for that to be known: older than the longest
person answer seen (+ `SETTLE_SLACK_S`, at least `MIN_SETTLE_S`) — younger calls still
ringing would bias it towards quick outcomes. From it:

- `G(τ)`, the chance a new dial reaches a person within τ seconds;
- for a call still ringing at age `a`, the chance it reaches a person within the next τ:
  the cohort's persons resolving in (a, a+τ] ÷ its calls resolving after `a`. A call older
  than every person answer seen can no longer reach one and counts for nothing.

**Talk time.** A piecewise-constant hazard (bins `TALK_BINS`) estimated from recent answered
calls: ended calls are events, calls still talking are censored (they add exposure only),
so long calls in progress are not forgotten. Each bin is shrunk towards the overall hazard by
`PRIOR_EXPOSURE_S` of pseudo-exposure, so a bin with few calls does not swing the estimate.

**Free sessions within τ.** Idle sessions now, sessions in wrap-up (free within the wrap-up),
and each session on a call with elapsed talk `e`: P(the talk ends within τ − wrap-up | it
lasted `e`).

**The decision.** The largest `n` such that, on every horizon τ of a one-second grid up to
the longest person answer seen, the expected person answers of the calls ringing plus `n`
new calls, plus `margin × √variance`, fit the sessions free by τ + `GRACE_S` (a person may
wait that long for a session: the law's two seconds). Answers and free sessions are sums
of independent Bernoulli trials, so their variance is the sum of p(1 − p); to it is added the
error of the estimates themselves, which every call shares — a rate estimated from k events
is known to about 1/√k of itself — counted `ESTIMATE_CAUTION` times over, which matters at
the start (few answers yet) and hardly at all later.

**The margin** (a multiplier of the standard deviation) moves by a slow feedback on the
calls persons answered since the last tick: up by `MARGIN_UP` per abandoned call, down by
`MARGIN_UP × target ÷ (1 − target)` per connected call — so it settles where abandons are
the target share of answers — and is clamped to [`MARGIN_MIN`, `MARGIN_MAX`]. It is lowered
only after ticks the model itself decided (`MODEL_LIMITS`), never while something else held
the calls back.

**Guard rails.**
- Cold start: until the cohort holds `MIN_PERSONS` person answers, at most one call per idle
  session (idle − ringing), as ratio 1 would.
- The 30-day guard: once the campaign's 30-day abandon rate is within `GUARD_MARGIN` of the
  legal 3% (and rests on at least `GUARD_MIN_ANSWERS` answers), the pacer stops overdialing
  (idle − ringing) until the rate is `GUARD_HYSTERESIS` below that again.
- `max_active_calls`, the hopper and every compliance rule (applied at claim) still bound
  the calls; a ringing call is never cancelled.
- At most `MAX_CALLS_PER_SESSION` new calls per agent session per tick: the ramp from all
  sessions idle spreads over a few ticks, and a tick stays within its dialer interval.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

LEGAL_ABANDON_RATE = 0.03  # FTC TSR: abandoned ÷ answered by a person, per campaign, over 30 days
GRACE_S = 2.0  # a person who answers may wait this long for a session before the call is abandoned
MIN_SETTLE_S = 20.0  # the outcome cohort's dials are at least this old …
SETTLE_SLACK_S = 2.0  # … and older than the longest person answer seen by this much
MIN_PERSONS = 10  # person answers in the cohort before the estimates are used
COHORT_MAX = 1000  # dials in the outcome cohort, most recent first …
COHORT_MIN = 300  # … of which, when at least this many are recent, only the recent ones:
COHORT_RECENT_S = 15 * 60.0  # a busy campaign follows a drift within minutes
TALK_MAX = 500  # answered calls in the talk-time cohort
TALK_BINS = (0.0, 10.0, 20.0, 40.0, 60.0, 90.0, 120.0, 180.0, 240.0, 360.0, 600.0, 900.0, 1800.0)
PRIOR_EXPOSURE_S = 120.0
MAX_HORIZON_S = 120
# The estimates' own errors count this many times over: they are largest at the start, where
# an unlucky first sample would otherwise overdial before the margin's feedback can react.
ESTIMATE_CAUTION = 1.5
MARGIN_START = 2.0
MARGIN_UP = 0.1
MARGIN_MIN = -1.0
MARGIN_MAX = 6.0
GUARD_MARGIN = 0.003
GUARD_HYSTERESIS = 0.001
# The margin aims at the target, never above this: the 30-day guard is a guard, not the steady state.
HIGHEST_AIM = LEGAL_ABANDON_RATE - GUARD_MARGIN - 0.003
GUARD_MIN_ANSWERS = 300
MODEL_LIMITS = ("model", "no_free_sessions")  # decisions the model made, not a cap or a guard
# New calls per tick, per agent session: the ramp from all sessions idle spreads over a few
# ticks (each placing at most this many) instead of one burst that outlasts the dialer interval.
MAX_CALLS_PER_SESSION = 1.0


@dataclass(frozen=True)
class Dial:
    """One recent dial, at the tick's instant."""

    age_s: float  # since the dial
    resolved_s: float | None  # dial → a person answered, or dial → the call ended; None: still ringing
    person: bool


@dataclass(frozen=True)
class Talk:
    """One answered call of the talk-time cohort."""

    seconds: float  # its talk time, or the talk so far while it goes on
    ended: bool


@dataclass(frozen=True)
class CallHistory:
    """What the database records that the pacer reads, at the tick's instant."""

    dials: Sequence[Dial] = ()  # the most recent first
    talks: Sequence[Talk] = ()
    ringing_ages: Sequence[float] = ()  # calls in flight no person has answered: seconds since the dial
    talking: Sequence[float] = ()  # calls in flight a person is on: seconds since the answer
    connected: int = 0  # since the state's feedback cursor: persons who reached a session …
    abandoned: int = 0  # … and persons abandoned
    answered_30d: int = 0  # answered by a person (abandoned included), last 30 days
    abandoned_30d: int = 0


@dataclass(frozen=True)
class PacerState:
    """What persists between ticks (and across a lease changing hands)."""

    margin: float = MARGIN_START
    guard: bool = False
    # Whether connected calls may lower the margin: only when the model itself set the last
    # decision. While a cold start, the guard, the per-tick cap or the hopper held the calls
    # back, connects without abandons say nothing about the margin, and lowering it then
    # would make the next busy stretch overdial.
    lowering: bool = True


@dataclass(frozen=True)
class PredictiveInputs:
    sessions_total: int
    idle: int
    wrap_up: int
    active: int  # calls in flight (pacing's `active`)
    hopper: int
    max_active_calls: int  # 0 = unlimited
    wrap_up_s: float
    target_abandon_rate: float
    history: CallHistory
    state: PacerState


@dataclass(frozen=True)
class Estimates:
    """What the pacer believed this tick (shown by `dialer campaign status` and `/metrics`)."""

    answer_rate: float | None  # a dial reaches a person
    answer_delay_s: float | None  # mean dial → person answer
    talk_mean_s: float | None
    expected_free: float  # sessions free by the mean answer delay (+ grace)
    expected_answers: float  # person answers expected from calls ringing, by then
    cohort: int  # dials in the outcome cohort
    persons: int  # of which a person answered
    margin: float | None  # None in ratio mode
    guard: bool
    cold_start: bool
    abandon_rate_30d: float | None

    def as_dict(self) -> dict:
        def r(x: float | None, digits: int = 4) -> float | None:
            return None if x is None else round(x, digits)

        return {"answer_rate": r(self.answer_rate), "answer_delay_s": r(self.answer_delay_s, 2),
                "talk_mean_s": r(self.talk_mean_s, 1), "expected_free": r(self.expected_free, 2),
                "expected_answers": r(self.expected_answers, 2), "cohort": self.cohort, "persons": self.persons,
                "margin": r(self.margin), "guard": self.guard, "cold_start": self.cold_start,
                "abandon_rate_30d": r(self.abandon_rate_30d)}


@dataclass(frozen=True)
class PredictiveDecision:
    calls: int
    # "model", "cold_start", "abandon_guard", "no_free_sessions", "per_tick_cap", "max_active_calls", "hopper"
    limited_by: str
    estimates: Estimates
    state: PacerState  # to store for the next tick


# -- the estimates ------------------------------------------------------------------------

class DialOutcomes:
    """G(τ) for a new dial and g_a(τ) for a call ringing at age a, from the settled cohort."""

    def __init__(self, dials: Sequence[Dial]) -> None:
        longest = max((d.resolved_s for d in dials if d.person and d.resolved_s is not None), default=0.0)
        self.settle_s = max(MIN_SETTLE_S, longest + SETTLE_SLACK_S)
        cohort = [d for d in dials if d.age_s >= self.settle_s][:COHORT_MAX]
        recent = [d for d in cohort if d.age_s <= COHORT_RECENT_S]
        if len(recent) >= COHORT_MIN:
            cohort = recent
        self.count = len(cohort)
        # A dial of the cohort no person answered and still ringing: resolved later than its age.
        self.all = sorted(d.age_s if d.resolved_s is None else d.resolved_s for d in cohort)
        self.persons = sorted(d.resolved_s for d in cohort if d.person and d.resolved_s is not None)

    @property
    def answer_rate(self) -> float | None:
        return len(self.persons) / self.count if self.count else None

    @property
    def longest_answer_s(self) -> float:
        return self.persons[-1] if self.persons else 0.0

    @property
    def mean_delay_s(self) -> float | None:
        return sum(self.persons) / len(self.persons) if self.persons else None

    def _persons_by(self, t: float) -> int:
        return bisect.bisect_right(self.persons, t)

    def new_call(self, tau: float) -> float:
        """The chance a call placed now reaches a person within `tau` seconds."""
        return self._persons_by(tau) / self.count if self.count else 0.0

    def ringing_call(self, age: float, tau: float) -> float:
        """The chance a call ringing for `age` seconds reaches a person within the next `tau`."""
        still = self.count - bisect.bisect_right(self.all, age)
        if still <= 0:
            return 0.0
        return min(1.0, (self._persons_by(age + tau) - self._persons_by(age)) / still)


class TalkTime:
    """Piecewise-constant hazard of a talk ending, with censored calls in progress."""

    def __init__(self, talks: Sequence[Talk]) -> None:
        edges = TALK_BINS
        events = [0] * len(edges)
        exposure = [0.0] * len(edges)
        for talk in talks:
            t = max(0.0, talk.seconds)
            for b, lo in enumerate(edges):
                hi = edges[b + 1] if b + 1 < len(edges) else math.inf
                if t <= lo:
                    break
                exposure[b] += min(t, hi) - lo
                if talk.ended and t <= hi:
                    events[b] += 1
                    break
        total_events, total_exposure = sum(events), sum(exposure)
        overall = total_events / total_exposure if total_exposure > 0 else 0.0
        self.known = total_events > 0
        self.events = total_events
        self.hazard = [(events[b] + PRIOR_EXPOSURE_S * overall) / (exposure[b] + PRIOR_EXPOSURE_S)
                       for b in range(len(edges))]
        self.cumulative = [0.0]  # H at each edge
        for b in range(len(edges) - 1):
            self.cumulative.append(self.cumulative[-1] + self.hazard[b] * (edges[b + 1] - edges[b]))

    def H(self, t: float) -> float:
        if t <= 0:
            return 0.0
        b = bisect.bisect_right(TALK_BINS, t) - 1
        return self.cumulative[b] + self.hazard[b] * (t - TALK_BINS[b])

    def ends_within(self, elapsed: float, tau: float) -> float:
        """P(a talk that has lasted `elapsed` ends within the next `tau` seconds)."""
        if tau <= 0:
            return 0.0
        return 1.0 - math.exp(-(self.H(elapsed + tau) - self.H(elapsed)))

    @property
    def mean_s(self) -> float | None:
        if not self.known:
            return None
        mean, survival = 0.0, 1.0
        for b, lo in enumerate(TALK_BINS):
            h = self.hazard[b]
            width = (TALK_BINS[b + 1] - lo) if b + 1 < len(TALK_BINS) else math.inf
            if h <= 0:
                if math.isinf(width):
                    return None
                mean += survival * width
                continue
            stay = 0.0 if math.isinf(width) else math.exp(-h * width)
            mean += survival * (1 - stay) / h
            survival *= stay
        return mean


@dataclass(frozen=True)
class _Horizon:
    tau: float
    new: float  # G(τ)
    answers: float  # expected person answers of the calls ringing, by τ
    answers_var: float
    free: float  # sessions expected free by τ + grace
    free_var: float
    persons: int  # person answers G(τ) was estimated from

    def fits(self, n: int, margin: float) -> bool:
        mean = self.answers + n * self.new
        # The calls' own chances, plus the error of the estimates themselves, which all the calls
        # share: a rate estimated from k answers is known to about 1/√k of itself.
        estimate_var = ESTIMATE_CAUTION ** 2 * mean * mean / self.persons if self.persons else 0.0
        var = self.answers_var + n * self.new * (1 - self.new) + estimate_var + self.free_var
        return mean + margin * math.sqrt(max(0.0, var)) <= self.free + 1e-9


def _free_sessions(i: PredictiveInputs, talk: TalkTime, tau: float) -> tuple[float, float]:
    wrap = i.wrap_up * (1.0 if i.wrap_up_s <= 0 else min(1.0, tau / i.wrap_up_s))
    mean, var = float(i.idle) + wrap, 0.0
    after_wrap = tau - max(0.0, i.wrap_up_s)
    ending = 0.0
    for elapsed in i.history.talking:
        q = talk.ends_within(elapsed, after_wrap)
        ending += q
        var += q * (1 - q)
    # The talks share one estimated hazard, known to about 1/√events of itself.
    if talk.events:
        var += ESTIMATE_CAUTION ** 2 * ending * ending / talk.events
    return mean + ending, var


def _horizon(i: PredictiveInputs, dials: DialOutcomes, talk: TalkTime, tau: float) -> _Horizon:
    answers = var = 0.0
    for age in i.history.ringing_ages:
        g = dials.ringing_call(age, tau)
        answers += g
        var += g * (1 - g)
    free, free_var = _free_sessions(i, talk, tau + GRACE_S)
    return _Horizon(tau, dials.new_call(tau), answers, var, free, free_var, len(dials.persons))


# -- the decision -------------------------------------------------------------------------

def next_state(state: PacerState, history: CallHistory, target: float) -> PacerState:
    """The margin after this tick's feedback, and the 30-day guard's new position."""
    aim = min(target, HIGHEST_AIM)
    down = MARGIN_UP * aim / (1 - aim) if state.lowering else 0.0
    margin = state.margin + MARGIN_UP * history.abandoned - down * history.connected
    margin = min(MARGIN_MAX, max(MARGIN_MIN, margin))
    guard = state.guard
    if history.answered_30d >= GUARD_MIN_ANSWERS:
        rate = history.abandoned_30d / history.answered_30d
        if rate >= LEGAL_ABANDON_RATE - GUARD_MARGIN:
            guard = True
        elif rate < LEGAL_ABANDON_RATE - GUARD_MARGIN - GUARD_HYSTERESIS:
            guard = False
    else:
        guard = False
    return replace(state, margin=margin, guard=guard)


def _estimates(i: PredictiveInputs, dials: DialOutcomes, talk: TalkTime, state: PacerState | None) -> Estimates:
    h = i.history
    delay = dials.mean_delay_s
    shown = _horizon(i, dials, talk, delay) if delay is not None else None
    return Estimates(
        answer_rate=dials.answer_rate, answer_delay_s=delay, talk_mean_s=talk.mean_s,
        expected_free=shown.free if shown else float(i.idle + i.wrap_up),
        expected_answers=shown.answers if shown else 0.0,
        cohort=dials.count, persons=len(dials.persons),
        margin=None if state is None else state.margin, guard=False if state is None else state.guard,
        cold_start=len(dials.persons) < MIN_PERSONS,
        abandon_rate_30d=h.abandoned_30d / h.answered_30d if h.answered_30d else None,
    )


def estimate(i: PredictiveInputs) -> Estimates:
    """The model's estimates alone (ratio mode shows them; no margin, no decision)."""
    return _estimates(i, DialOutcomes(i.history.dials), TalkTime(i.history.talks), None)


def predictive_calls(i: PredictiveInputs) -> PredictiveDecision:
    """How many calls to place now (see the module docstring)."""
    h = i.history
    state = next_state(i.state, h, i.target_abandon_rate)
    dials, talk = DialOutcomes(h.dials), TalkTime(h.talks)
    estimates = _estimates(i, dials, talk, state)
    cold = estimates.cold_start
    cap, capped_by = i.hopper, "hopper"
    per_tick = max(1, math.floor(MAX_CALLS_PER_SESSION * i.sessions_total))
    if per_tick < cap:
        cap, capped_by = per_tick, "per_tick_cap"
    if i.max_active_calls > 0 and i.max_active_calls - i.active < cap:
        cap, capped_by = max(0, i.max_active_calls - i.active), "max_active_calls"

    held = replace(state, lowering=False)
    if cold or state.guard:
        wanted = max(0, i.idle - len(h.ringing_ages))
        reason = "cold_start" if cold else "abandon_guard"
        if wanted > cap:
            return PredictiveDecision(cap, capped_by, estimates, held)
        return PredictiveDecision(wanted, reason, estimates, held)
    state = replace(state, lowering=True)

    horizons = [_horizon(i, dials, talk, float(tau))
                for tau in range(1, min(MAX_HORIZON_S, math.ceil(dials.longest_answer_s)) + 1)]
    if not all(hz.fits(0, state.margin) for hz in horizons):
        return PredictiveDecision(0, "no_free_sessions", estimates, state)
    # The most the model could ever want: every session free at the longest horizon, answered.
    last = horizons[-1]
    most = math.ceil((last.free + abs(state.margin) * math.sqrt(last.free + 1) + 1) / max(last.new, 1e-6)) + 1
    hi = min(cap, most)
    lo = 0  # fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if all(hz.fits(mid, state.margin) for hz in horizons):
            lo = mid
        else:
            hi = mid - 1
    if lo == cap and cap < most:
        return PredictiveDecision(lo, capped_by, estimates, held)
    return PredictiveDecision(lo, "model", estimates, state)
