"""How many calls to place on one dialer tick (DESIGN.md §3, issues 5 and 16).

Two modes (`campaigns.pacing_mode`): `ratio`, below, and `predictive`
(`campaigns.dialing.predictive`). `campaigns.dialing.pace.decide` picks one.

Ratio mode:

calls = ⌊idle sessions × effective ratio⌋ − calls ringing, never negative,
capped by max active calls (0 = unlimited) and by what the hopper holds.
Sessions in wrap-up are not idle: they cannot take an answered call yet.

The Waiting Stations damper lowers the ratio toward 1.0 once at least its
threshold share of sessions sit idle: with many idle sessions, ratio × idle
calls placed at once would mostly connect at once, before sessions free up,
and turn into abandons. Between the threshold and all sessions idle the
effective ratio falls linearly from the campaign's ratio to 1.0.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from campaigns.core.lifecycle import PacingMode
from campaigns.dialing.predictive import Estimates


@dataclass(frozen=True)
class PacingInputs:
    sessions_total: int
    idle: int
    wrap_up: int
    ringing: int  # our calls placed and not yet answered or ended
    active: int  # our calls placed and not yet ended
    hopper: int  # queued rows the daemon could claim
    call_ratio: float
    max_active_calls: int  # 0 = unlimited
    damper_mode: str  # "disabled" | "waiting_stations"
    damper_threshold: float


@dataclass(frozen=True)
class PacingDecision:
    calls: int
    effective_ratio: float | None  # ratio mode: the call ratio after the damper; predictive: None
    idle_share: float
    # ratio: "ratio", "no_idle_sessions"; predictive: "model", "cold_start", "abandon_guard",
    # "no_free_sessions", "per_tick_cap"; both: "max_active_calls", "hopper"
    limited_by: str
    inputs: PacingInputs
    mode: PacingMode = PacingMode.RATIO
    estimates: Estimates | None = None  # what the predictive model believed (both modes)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mode": str(self.mode), "calls": self.calls,
            "effective_ratio": None if self.effective_ratio is None else round(self.effective_ratio, 4),
            "idle_share": round(self.idle_share, 4), "limited_by": self.limited_by, **asdict(self.inputs)}
        out["estimates"] = self.estimates.as_dict() if self.estimates else None
        return out


def effective_ratio(call_ratio: float, idle_share: float, mode: str, threshold: float) -> float:
    if mode != "waiting_stations" or idle_share < threshold or call_ratio <= 1.0:
        return call_ratio
    if threshold >= 1.0:
        return 1.0
    fall = (idle_share - threshold) / (1.0 - threshold)
    return max(1.0, call_ratio - (call_ratio - 1.0) * fall)


def calls_to_place(i: PacingInputs) -> PacingDecision:
    idle_share = i.idle / i.sessions_total if i.sessions_total > 0 else 0.0
    ratio = effective_ratio(i.call_ratio, idle_share, i.damper_mode, i.damper_threshold)
    if i.idle <= 0:
        return PacingDecision(0, ratio, idle_share, "no_idle_sessions", i)
    wanted = max(0, math.floor(i.idle * ratio + 1e-9) - i.ringing)
    calls, limited_by = wanted, "ratio"
    if i.max_active_calls > 0 and i.active + calls > i.max_active_calls:
        calls, limited_by = max(0, i.max_active_calls - i.active), "max_active_calls"
    if calls > i.hopper:
        calls, limited_by = i.hopper, "hopper"
    return PacingDecision(calls, ratio, idle_share, limited_by, i)
