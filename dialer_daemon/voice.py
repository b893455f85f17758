"""The voice platform's HTTP API, as the daemon uses it (contract: docs/voice-api.yaml).

One `requests.Session`, a connect/read timeout on every request, and retries
of timeouts, dropped or refused connections, 429 and 5xx, with exponential
backoff, jitter and the platform's `Retry-After`. Placing a call is retried
too — after a timeout or a 500 the daemon cannot know whether the platform
dialed — because every attempt carries its own `Idempotency-Key`: the platform
answers a repeated key with the call it already placed and never dials twice.
`find_call` asks the platform whether it ever received a key, which is how
the daemon settles an attempt whose every request went unanswered.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import requests

from campaigns.core.config import DialerConfig
from campaigns.core.errors import DialerError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_BACKOFF_S = 5.0


class VoiceApiError(DialerError):
    """The platform refused a request, or did not answer after the retries.

    `status` is the HTTP status of a refusal (4xx); None when no answer came,
    in which case the platform may or may not have acted on the request.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def refused(self) -> bool:
        return self.status is not None


class PlatformCallStatus(StrEnum):
    """A call's status on the platform (`Call.status` in docs/voice-api.yaml)."""

    QUEUED = "queued"
    RINGING = "ringing"
    IN_PROGRESS = "in_progress"
    ENDED = "ended"
    ABANDONED = "abandoned"
    FAILED = "failed"

    @classmethod
    def over(cls) -> tuple[PlatformCallStatus, ...]:
        """The statuses of a call that is over (its end is to be recorded)."""
        return (cls.ENDED, cls.ABANDONED, cls.FAILED)


@dataclass(frozen=True)
class Capacity:
    total: int
    idle: int
    on_call: int
    wrap_up: int


@dataclass(frozen=True)
class PlacedCall:
    call_id: str
    replayed: bool  # the platform had already placed this attempt


class VoiceClient:
    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 5.0,
                 retries: int = 4, backoff_s: float = 0.2, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff_s = backoff_s
        self.session = session or requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        # requests' Session is not documented thread-safe: one per thread, sharing the headers.
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sessions: list[requests.Session] = []
        self.faults: Counter = Counter()  # what was retried: timeout, connection, http_5xx, http_429

    def _session(self) -> requests.Session:
        if threading.current_thread() is threading.main_thread():
            return self.session
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update(self.session.headers)
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def _count(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def _pause(self, attempt: int, retry_after: str | None) -> None:
        delay = min(MAX_BACKOFF_S, self.backoff_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
        if retry_after:
            try:
                delay = max(delay, min(MAX_BACKOFF_S, float(retry_after)))
            except ValueError:
                pass  # an HTTP-date: keep our own backoff
        time.sleep(delay)

    @classmethod
    def from_config(cls, config: DialerConfig) -> VoiceClient:
        url = config.voice_api_url
        if not url:
            raise VoiceApiError(
                "DIALER_VOICE_API_URL is not set; point it at the voice platform "
                "(or at `dialer simulator`, e.g. http://127.0.0.1:8765)."
            )
        return cls(url, config.voice_api_token)

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        last: Exception | None = None
        retry_after = None
        ambiguous = False  # an earlier try may have been acted on (no answer, or a 5xx)
        for attempt in range(self.retries + 1):
            if attempt:
                self._pause(attempt, retry_after)
            try:
                response = self._session().request(method, f"{self.base_url}{path}", timeout=self.timeout,
                                                   **kwargs)
            except requests.Timeout as exc:
                last, retry_after, ambiguous = exc, None, True
                self._count("timeout")
                continue
            except requests.ConnectionError as exc:
                last, retry_after, ambiguous = exc, None, True
                self._count("connection")
                continue
            if response.status_code in RETRY_STATUSES:
                last = VoiceApiError(f"{method} {path}: the platform answered {response.status_code}")
                retry_after = response.headers.get("Retry-After")
                ambiguous = ambiguous or response.status_code != 429
                self._count("http_429" if response.status_code == 429 else "http_5xx")
                continue
            if response.status_code >= 400 and ambiguous and method == "POST":
                # Refused now, but an earlier try may have been placed: not a clean refusal.
                raise VoiceApiError(f"{method} {path}: refused ({response.status_code}) after an unanswered "
                                    "try; the platform may have acted on that one")
            if response.status_code >= 400:
                try:
                    detail = response.json().get("message") or response.text
                except ValueError:
                    detail = response.text
                raise VoiceApiError(
                    f"{method} {path}: the platform refused ({response.status_code}): {detail}",
                    status=response.status_code,
                )
            return response
        raise VoiceApiError(f"{method} {path}: no answer from the platform after {self.retries + 1} tries ({last})")

    def place_call(self, *, campaign: str, to: str, agent: str, prospect_id: int, idempotency_key: str,
                   metadata: dict | None = None) -> PlacedCall:
        response = self._request(
            "POST", "/v1/calls",
            json={"campaign": campaign, "to": to, "agent": agent, "prospect_id": prospect_id,
                  "metadata": metadata or {}},
            headers={"Idempotency-Key": idempotency_key},
        )
        return PlacedCall(response.json()["call_id"], replayed=response.status_code == 200)

    def capacity(self, campaign: str) -> Capacity:
        data = self._request("GET", "/v1/capacity", params={"campaign": campaign}).json()
        return Capacity(data["sessions_total"], data["idle"], data["on_call"], data["wrap_up"])

    def events(self, campaign: str, after: int, limit: int = 1000) -> tuple[list[dict], int]:
        data = self._request("GET", "/v1/events", params={"campaign": campaign, "after": after, "limit": limit}).json()
        return data["events"], data["next_cursor"]

    def call(self, call_id: str) -> dict | None:
        try:
            return self._request("GET", f"/v1/calls/{call_id}").json()
        except VoiceApiError as exc:
            if "(404)" in str(exc):
                return None
            raise

    def find_call(self, idempotency_key: str) -> dict | None:
        """The call the platform placed for this key, or None if it never received the key."""
        calls = self._request("GET", "/v1/calls", params={"idempotency_key": idempotency_key}).json()["calls"]
        return calls[0] if calls else None

    def clock(self) -> datetime:
        return datetime.fromisoformat(self._request("GET", "/v1/clock").json()["now"])

    def clock_speed(self) -> float:
        return float(self._request("GET", "/v1/clock").json().get("speed", 1.0))

    def close(self) -> None:
        self.session.close()
        for session in self._sessions:
            session.close()
