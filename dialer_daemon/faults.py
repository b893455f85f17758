"""Faults told once: a dependency going away, its reminders, its return.

A database outage used to log a traceback every loop (and every lease renewal): 272 KB in
35 s, and the one line that mattered buried. Here each fault has a name (`the database`,
`the voice platform`, `campaign acme/spring`…) and is told

- once when it starts, as a warning with its cause (`fault`);
- again only when its kind changes (unreachable → refusing the token, say), or as a
  reminder every `remind_every_s` while it lasts (`fault_continues`, with how long and
  how many failures);
- once when it ends (`fault_cleared`, with how long it lasted).

Tracebacks go to debug level only. The faults open now are what `/healthz` reports.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from campaigns.core.db import connection_lost
from dialer_daemon.voice import PlatformContractError, VoiceApiError

log = logging.getLogger("dialer.daemon")
REMIND_EVERY_S = 60.0
DATABASE = "the database"
PLATFORM = "the voice platform"
DAEMON = "the daemon"  # a fault of no campaign's own (deciding whether the work is done)


@dataclass
class _Open:
    kind: str
    cause: str
    since: float
    failures: int
    reminded: float


class FaultLog:
    """The faults open now, and the log lines that tell them (thread-safe)."""

    def __init__(self, *, remind_every_s: float = REMIND_EVERY_S, clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[dict[str, str]], None] | None = None) -> None:
        self.remind_every_s = remind_every_s
        self.clock = clock
        self.on_change = on_change  # told the open faults (name → cause) whenever they change
        self._open: dict[str, _Open] = {}
        self._lock = threading.Lock()

    def down(self, what: str, cause: str, *, kind: str = "", exc: BaseException | None = None) -> None:
        """`what` failed now, because of `cause`; `kind` names the state (a new kind is told at once)."""
        if exc is not None:
            log.debug("%s: %s", what, cause, exc_info=exc)
        now = self.clock()
        with self._lock:
            fault = self._open.get(what)
            if fault is None or fault.kind != kind:
                failures = fault.failures + 1 if fault else 1
                self._open[what] = _Open(kind, cause, fault.since if fault else now, failures, now)
                log.warning("%s: %s", what, cause, extra={"event": "fault", "fault": what, "kind": kind or None,
                                                           "cause": cause})
            else:
                fault.cause, fault.failures = cause, fault.failures + 1
                if now - fault.reminded < self.remind_every_s:
                    return
                fault.reminded = now
                lasted = now - fault.since
                log.warning("%s: still failing after %.0f s (%d failures): %s", what, lasted, fault.failures, cause,
                            extra={"event": "fault_continues", "fault": what, "kind": kind or None, "cause": cause,
                                   "seconds": round(lasted, 1), "failures": fault.failures})
                return
            opened = self._causes()
        self._tell(opened)

    def up(self, what: str) -> bool:
        """`what` works again; True when it was failing until now."""
        now = self.clock()
        with self._lock:
            fault = self._open.pop(what, None)
            if fault is None:
                return False
            opened = self._causes()
        lasted = now - fault.since
        log.info("%s: back after %.0f s (%d failures)", what, lasted, fault.failures,
                 extra={"event": "fault_cleared", "fault": what, "seconds": round(lasted, 1),
                        "failures": fault.failures})
        self._tell(opened)
        return True

    def is_open(self, what: str) -> bool:
        with self._lock:
            return what in self._open

    def open(self) -> dict[str, str]:
        """Each fault open now, with its latest cause."""
        with self._lock:
            return self._causes()

    def _causes(self) -> dict[str, str]:
        return {what: fault.cause for what, fault in self._open.items()}

    def _tell(self, opened: dict[str, str]) -> None:
        if self.on_change is not None:
            self.on_change(opened)


def database_cause(exc: BaseException) -> str:
    """A database error in one line, without the SQL or its parameters (they may hold phone numbers)."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    first = lines[0].strip() if lines else ""
    return f"{type(orig).__name__}: {first}" if first else type(orig).__name__


def classify(exc: BaseException, campaign: str | None = None) -> tuple[str, str, str]:
    """(fault name, kind, cause) for an exception a part of the daemon caught.

    The database going away and the platform not answering (or not as its contract says, or
    refusing the token) are faults of the dependency, shared by every campaign; a statement
    refused, a refusal by the platform for one campaign or a defect are that campaign's own.
    """
    own = f"campaign {campaign}" if campaign else DAEMON
    if isinstance(exc, VoiceApiError):
        if isinstance(exc, PlatformContractError):
            return PLATFORM, "contract", str(exc)
        if exc.token_refused:
            return PLATFORM, "token", str(exc)
        if exc.refused:
            return own, "platform_refused", str(exc)
        return PLATFORM, "unreachable", str(exc)
    if connection_lost(exc):
        return DATABASE, "unreachable", database_cause(exc)
    if getattr(exc, "orig", None) is not None:  # a statement the database refused (lock or statement timeout…)
        return own, "database", database_cause(exc)
    return own, type(exc).__name__, f"{type(exc).__name__}: {exc}"
