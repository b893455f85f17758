"""Placing calls: the request to the platform, and recording what it answered.

Requests go out on a small thread pool: database writes stay on the loop's thread,
and no transaction is open while a request is. Every attempt is recorded (and
committed) before its first request, and carries its idempotency key, so a request
repeated after a timeout never dials twice.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from campaigns.core.db import Engine
from campaigns.core.model import Attempt, Campaign, Disposition
from campaigns.dialing import calls
from dialer_daemon.report import TickReport
from dialer_daemon.voice import TOKEN_SETTING, PlacedCall, VoiceApiError, VoiceClient

log = logging.getLogger("dialer.daemon")


def call_metadata(dispositions: list[Disposition], attempt: Attempt) -> dict:
    """What the platform is told with a call: the campaign's dispositions and the attempt's number."""
    return {"dispositions": [d.title for d in dispositions],
            "callback_dispositions": [d.title for d in dispositions if d.callback],
            "attempt": attempt.attempt_number}


class CallPlacer:
    def __init__(self, engine: Engine, client: VoiceClient, concurrency: int = 8) -> None:
        self.engine = engine
        self.client = client
        self.concurrency = max(1, concurrency)
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, campaign: Campaign, name: str, attempt: Attempt, metadata: dict) -> Future:
        """Send the attempt's request on the pool; the future's result goes to `record`."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="place-call")
        return self._pool.submit(self.request, campaign, name, attempt, metadata)

    def place(self, campaign: Campaign, name: str, attempt: Attempt, metadata: dict, now: datetime,
              report: TickReport) -> None:
        """Send the attempt's request on this thread and record the answer."""
        self.record(campaign, attempt, self.request(campaign, name, attempt, metadata), now, report)

    def request(self, campaign: Campaign, name: str, attempt: Attempt, metadata: dict) -> PlacedCall | VoiceApiError:
        """The HTTP request alone (a pool thread): no database here."""
        try:
            return self.client.place_call(
                campaign=name, to=attempt.phone_e164, agent=campaign.agent,
                prospect_id=attempt.prospect_id, idempotency_key=attempt.idempotency_key,
                metadata=metadata,
            )
        except VoiceApiError as exc:
            return exc
        except Exception as exc:  # e.g. a truncated or garbled answer: the platform may have dialed
            log.debug("placing a call failed unexpectedly", exc_info=True)  # the tick's warnings carry it
            return VoiceApiError(f"POST /v1/calls: no usable answer from the platform ({exc!r})")

    def record(self, campaign: Campaign, attempt: Attempt, result: PlacedCall | VoiceApiError, now: datetime,
               report: TickReport) -> None:
        """Record the platform's answer to the attempt's request."""
        if isinstance(result, PlacedCall):
            with self.engine.begin() as conn:
                # Counted once: an event or another daemon may have confirmed it first.
                report.placed += calls.mark_placed(conn, attempt.id, result.call_id, now)
            return
        if (result.refused and result.status != 422) or not result.sent:
            # A refusal, or no request sent at all (the daemon is stopping), means the platform
            # did not dial: the attempt's count is given back.
            with self.engine.begin() as conn:
                calls.not_placed(conn, campaign, attempt, str(result)[:200], now)
            report.not_placed += 1
            if result.token_refused:
                said = str(result)
                report.token_refused = said if TOKEN_SETTING in said else f"{said} — check {TOKEN_SETTING}"
                report.warnings.append(report.token_refused)
            return
        # No answer (or a key conflict): the platform may have dialed. The attempt stays
        # `placing`; reconciling asks the platform about its key on a later tick.
        report.warnings.append(str(result))

    def shutdown(self) -> None:
        """Wait for the requests in flight (draining), then let the pool go."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
