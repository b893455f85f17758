"""What one tick of one campaign did: logged as the `tick` event and counted in the metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from campaigns.dialing.pacing import PacingDecision


@dataclass
class TickReport:
    campaign: str
    at: datetime
    state: str
    events: int = 0
    finished: Counter = field(default_factory=Counter)  # prospect status after each ended call
    decision: PacingDecision | None = None
    answered: int = 0
    abandoned: int = 0
    abandon_rate: float | None = None
    claimed: int = 0
    placed: int = 0
    released: Counter = field(default_factory=Counter)  # reason code → rows given back at re-check
    not_placed: int = 0
    warnings: list[str] = field(default_factory=list)
    filled: int | None = None
    # Whether the campaign's last hopper fill reached its level (more may be dialable); None: not read this tick.
    more_dialable: bool | None = None
    seconds: float | None = None  # how long the tick took (wall clock)
    token_refused: str | None = None  # the platform refused the token placing a call (401/403)
    held: str | None = None  # why this tick claimed nothing: the campaign is held (the token was refused)

    def as_dict(self) -> dict:
        return {
            "campaign": self.campaign, "at": self.at.isoformat(), "state": self.state,
            "events": self.events, "answered": self.answered, "abandoned": self.abandoned,
            "finished": dict(self.finished), "claimed": self.claimed,
            "placed": self.placed, "released": dict(self.released), "not_placed": self.not_placed,
            "pacing": self.decision.as_dict() if self.decision else None, "filled": self.filled,
            "warnings": self.warnings, "seconds": self.seconds,
            **({"held": self.held} if self.held else {}),
        }
