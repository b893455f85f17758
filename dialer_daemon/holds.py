"""Campaigns held because the platform refused the token when placing their calls (401 or 403).

Each tick would otherwise claim a batch, record the attempts, have every one refused and give
its count back: hundreds of `not_placed` attempts a minute and a hopper churned for nothing.
A refused campaign claims nothing until its hold is over; then one call probes the token.
Refused again, the hold doubles (10 s, 20 s … at most 5 minutes); accepted, the campaign
dials as before. The hold is this daemon's (in memory): a restarted or another daemon probes
at once, which costs one refused attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from dialer_daemon.faults import FaultLog

HOLD_FIRST_S = 10.0
HOLD_MAX_S = 300.0


@dataclass
class _Hold:
    seconds: float
    until: float  # time.monotonic()


class TokenHolds:
    def __init__(self, faults: FaultLog | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.faults = faults
        self.clock = clock
        self._holds: dict[int, _Hold] = {}

    @staticmethod
    def fault(name: str) -> str:
        return f"campaign {name} (placing calls)"

    def claim_limit(self, campaign_id: int) -> int | None:
        """How many calls the campaign may place now: None (no hold), 0 (held) or 1 (a probe)."""
        hold = self._holds.get(campaign_id)
        if hold is None:
            return None
        return 1 if self.clock() >= hold.until else 0

    def refused(self, campaign_id: int, name: str, cause: str) -> None:
        before = self._holds.get(campaign_id)
        seconds = HOLD_FIRST_S if before is None else min(HOLD_MAX_S, before.seconds * 2)
        self._holds[campaign_id] = _Hold(seconds, self.clock() + seconds)
        if self.faults is not None:
            self.faults.down(self.fault(name), f"{cause}; no call is claimed for it until a probe call is "
                                               f"accepted (the next in {seconds:g} s, then less often)", kind="token")

    def accepted(self, campaign_id: int, name: str) -> None:
        if self._holds.pop(campaign_id, None) is not None and self.faults is not None:
            self.faults.up(self.fault(name))
