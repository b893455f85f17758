"""Settling attempts the platform went quiet on, from the platform's own record of them.

Two kinds, looked at on every tick of their campaign:

- unconfirmed: recorded (`placing`) but the platform never answered our request, looked at
  once the wait since its last send is over (`calls.resend_wait`: 20 s, doubling with each
  send). If the platform has the idempotency key, its answer was lost: the call id is
  recorded (and its end, if it is over). If not, the request is sent again under the same
  key while the call is still allowed; otherwise the attempt was never placed — once no
  request of ours can still be on its way;
- stale: placed calls with no end for `RECONCILE_AFTER`: their events were missed, so
  the platform is asked how each ended.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from campaigns.core.db import Connection, Engine
from campaigns.core.lifecycle import AttemptStatus, CallOutcome
from campaigns.core.model import Attempt, Campaign, Disposition
from campaigns.dialing import calls
from campaigns.registry.store import RegistrySet
from campaigns.setup import registry
from dialer_daemon.placing import CallPlacer, call_metadata
from dialer_daemon.report import TickReport
from dialer_daemon.voice import MAX_BACKOFF_S, PlatformCallStatus, VoiceClient

RECONCILE_AFTER = timedelta(minutes=30)


def platform_outcome(call: dict[str, Any]) -> CallOutcome | None:
    """How a call the platform reports as over ended, in the attempt's terms.

    None: the platform reported an outcome the dialer does not know.
    """
    status = call["status"]
    if status == PlatformCallStatus.ABANDONED:
        return CallOutcome.ABANDONED
    if status == PlatformCallStatus.FAILED:
        return CallOutcome.FAILED
    return calls.reported_outcome(call.get("outcome"))


class Reconciler:
    def __init__(self, engine: Engine, client: VoiceClient, placer: CallPlacer, *,
                 draining: Callable[[], bool] = lambda: False, speed: Callable[[], float] = lambda: 1.0) -> None:
        self.engine = engine
        self.client = client
        self.placer = placer
        self.draining = draining  # True once the daemon stops: no request is sent again
        self.speed = speed  # platform seconds per wall second

    def reconcile(self, campaign: Campaign, name: str, now: datetime, report: TickReport,
                  registry_set: RegistrySet | None = None) -> None:
        """Settle attempts the platform never confirmed, and calls it went quiet on. A re-send is
        where a call starts: for a campaign checked against the National DNC Registry it is
        checked again against `registry_set` (the daemon's current version) at `now`."""
        with self.engine.connect() as conn:
            unconfirmed = calls.unconfirmed_attempts(conn, campaign.id, now)
            stale = calls.stale_attempts(conn, campaign.id, now - RECONCILE_AFTER)
        if registry_set is not None and unconfirmed:
            # Their area codes' sets read in now, before a transaction opens (on SQLite a read
            # through a second connection inside one would wait for the first's lock).
            registry_set.listed([attempt.phone_e164 for attempt in unconfirmed])
        dispositions: list[Disposition] | None = None
        for attempt in unconfirmed:
            if self.draining():
                return
            call = self.client.find_call(attempt.idempotency_key)
            if call is not None:  # the platform has it: its answer to us was lost
                with self.engine.begin() as conn:
                    report.placed += calls.confirm(conn, attempt, call["call_id"])
                    if call["status"] in PlatformCallStatus.over():
                        report.warnings.extend(self._finish_from_platform(conn, campaign, attempt, call, now))
                continue
            # The platform never received it. Re-send (same key) while the call is still allowed;
            # otherwise it was never placed — once no request of ours can still be on its way.
            with self.engine.connect() as conn:
                allowed = calls.resend_allowed(conn, campaign, attempt, now, registry_set)
            if allowed:
                if dispositions is None:
                    with self.engine.connect() as conn:
                        dispositions = registry.dispositions(conn, campaign.id)
                with self.engine.begin() as conn:
                    calls.mark_sent(conn, campaign, attempt, now, registry_set)
                self.placer.place(campaign, name, attempt, call_metadata(dispositions, attempt), now, report)
            elif self.no_request_on_its_way(attempt, now):
                with self.engine.begin() as conn:
                    calls.finish(conn, campaign, attempt, CallOutcome.NOT_PLACED, None, now, now,
                                 cause="the platform never received the request")
                report.not_placed += 1
        for attempt in stale:
            call = self.client.call(attempt.platform_call_id) if attempt.platform_call_id else None
            with self.engine.begin() as conn:
                if call is None:
                    calls.finish(conn, campaign, attempt, CallOutcome.FAILED, None, now, now,
                                 cause="the platform does not know this call")
                elif call["status"] in PlatformCallStatus.over():
                    report.warnings.extend(self._finish_from_platform(conn, campaign, attempt, call, now))

    @staticmethod
    def _finish_from_platform(conn: Connection, campaign: Campaign, attempt: Attempt, call: dict[str, Any],
                              now: datetime) -> list[str]:
        """End an attempt from the platform's record of its call (its events were missed); returns warnings."""
        ended = datetime.fromisoformat(call["ended_at"]) if call.get("ended_at") else now
        fresh = calls.read_attempt(conn, attempt.id)
        if fresh.status == AttemptStatus.ENDED:
            return []
        outcome = platform_outcome(call)
        if outcome is None:
            return calls.finish_unknown_outcome(conn, campaign, fresh, call["outcome"], call.get("disposition"),
                                                ended, now).warnings
        return calls.finish(conn, campaign, fresh, outcome, call.get("disposition"), ended, now).warnings

    def no_request_on_its_way(self, attempt: Attempt, now: datetime) -> bool:
        """Has every request sent for this attempt (by any daemon) been answered or given up?

        Measured on the wall clock from the last send (`sent_at`), against the longest a
        request of ours can take: every try timing out, every pause at its longest.
        """
        c = self.client
        lifetime = c.timeout * (c.retries + 1) + c.retries * 1.5 * MAX_BACKOFF_S
        if attempt.sent_at is None:  # recorded before `sent_at` existed: judge by the platform's clock
            return (now - attempt.created_at).total_seconds() / self.speed() >= lifetime
        return (datetime.now(UTC) - attempt.sent_at).total_seconds() >= lifetime
