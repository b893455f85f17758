"""The voice platform's HTTP API, as the daemon uses it (contract: docs/voice-api.yaml).

One `requests.Session` per thread, a total deadline on every try of a request (connect and
the whole answer: `http_deadline`, `DIALER_VOICE_API_TIMEOUT_S`), and retries
of timeouts, dropped or refused connections, 429 and 5xx, with exponential
backoff, jitter and the platform's `Retry-After`. Once the daemon stops (`halt`),
no new try starts and a pause between tries ends at once. An answer that is not what
the contract says (not JSON, a field missing or of the wrong type) is a
`PlatformContractError`, never a crash. Placing a call is retried
too — after a timeout or a 500 the daemon cannot know whether the platform
dialed — because every attempt carries its own `Idempotency-Key`: the platform
answers a repeated key with the call it already placed and never dials twice.
`find_call` asks the platform whether it ever received a key, which is how
the daemon settles an attempt whose every request went unanswered.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

import requests

from campaigns.core.config import DialerConfig
from campaigns.core.errors import DialerError
from dialer_daemon.http_deadline import DeadlineAdapter, deadline

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
AUTH_STATUSES = frozenset({401, 403})
MAX_BACKOFF_S = 5.0
T = TypeVar("T")
CONNECT_TIMEOUT_S = 3.0  # within the request's deadline: a host that does not accept fails sooner
TOKEN_SETTING = "DIALER_VOICE_API_TOKEN"
# What a request failing to reach its answer raises, the deadline's cut included.
TRANSPORT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError)


class VoiceApiError(DialerError):
    """The platform refused a request, or did not answer after the retries.

    `status` is the HTTP status of a refusal (4xx); None when no answer came,
    in which case the platform may or may not have acted on the request —
    unless `sent` is False: no try of it left this process (the daemon was stopping).
    """

    def __init__(self, message: str, status: int | None = None, *, sent: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.sent = sent

    @property
    def refused(self) -> bool:
        return self.status is not None

    @property
    def token_refused(self) -> bool:
        """401 or 403: the platform does not accept the token (for this request)."""
        return self.status in AUTH_STATUSES


class PlatformContractError(VoiceApiError):
    """The platform answered, but not as docs/voice-api.yaml says.

    No status: to placing a call, such an answer says nothing of whether it was placed.
    """


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
                 retries: int = 4, backoff_s: float = 0.2, session: requests.Session | None = None,
                 halt: threading.Event | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout  # seconds for one try, whole: connect, send, every byte of the answer
        self.retries = retries
        self.backoff_s = backoff_s
        self.halt = halt or threading.Event()  # set: no new try starts (the daemon drains)
        self.session = session or self._new_session()
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
            session = self._new_session()
            session.headers.update(self.session.headers)
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    @staticmethod
    def _new_session() -> requests.Session:
        session = requests.Session()
        adapter = DeadlineAdapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
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
        self.halt.wait(delay)

    @classmethod
    def from_config(cls, config: DialerConfig, *, halt: threading.Event | None = None) -> VoiceClient:
        url = config.voice_api_url
        if not url:
            raise VoiceApiError(
                "DIALER_VOICE_API_URL is not set; point it at the voice platform "
                "(or at `dialer simulator`, e.g. http://127.0.0.1:8765)."
            )
        return cls(url, config.voice_api_token, timeout=config.daemon_deadlines.voice_api_s, halt=halt)

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        last: Exception | None = None
        retry_after = None
        ambiguous = False  # an earlier try may have been acted on (no answer, or a 5xx)
        tries = 0
        for attempt in range(self.retries + 1):
            if attempt:
                self._pause(attempt, retry_after)
            if self.halt.is_set():
                if not attempt:
                    raise VoiceApiError(f"{method} {path}: not sent, the daemon is stopping", sent=False)
                break
            tries += 1
            try:
                with deadline(self.timeout) as limit:
                    response = self._session().request(
                        method, f"{self.base_url}{path}",
                        timeout=(min(CONNECT_TIMEOUT_S, self.timeout), self.timeout), **kwargs)
            except TRANSPORT_ERRORS as exc:
                timed_out = limit.expired or isinstance(exc, requests.Timeout)
                last = TimeoutError(f"no whole answer within {self.timeout:g} s") if limit.expired else exc
                retry_after, ambiguous = None, True
                self._count("timeout" if timed_out else "connection")
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
                raise VoiceApiError(self._refusal(method, path, response), status=response.status_code)
            return response
        stopping = "; the daemon is stopping" if self.halt.is_set() else ""
        raise VoiceApiError(f"{method} {path}: no answer from the platform after {tries} {_tries(tries)} "
                            f"({last}){stopping}")

    @staticmethod
    def _refusal(method: str, path: str, response: requests.Response) -> str:
        try:
            body = response.json()
            detail = body.get("message") if isinstance(body, dict) else None
        except ValueError:
            detail = None
        detail = _shown(detail or response.text)
        if response.status_code in AUTH_STATUSES:
            return (f"{method} {path}: the platform refused the token ({response.status_code}): {detail}; "
                    f"check {TOKEN_SETTING}")
        return f"{method} {path}: the platform refused ({response.status_code}): {detail}"

    def _json(self, response: requests.Response, method: str, path: str, expected: str,
              *fields: str) -> dict[str, Any]:
        """The answer's JSON object, holding `fields`; anything else breaks the contract."""
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or any(f not in data for f in fields):
            kind = response.headers.get("Content-Type", "no content type").split(";")[0]
            raise PlatformContractError(
                f"{method} {self.base_url}{path} answered {response.status_code} {kind} {_shown(response.text)!r}, "
                f"not {expected} as docs/voice-api.yaml says; check DIALER_VOICE_API_URL points at the voice API")
        return data

    @staticmethod
    def _typed(method: str, path: str, what: str, convert: Callable[[], T]) -> T:
        try:
            return convert()
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise PlatformContractError(
                f"{method} {path}: {what} is not as docs/voice-api.yaml says ({exc})") from None

    def place_call(self, *, campaign: str, to: str, agent: str, prospect_id: int, idempotency_key: str,
                   metadata: dict | None = None) -> PlacedCall:
        response = self._request(
            "POST", "/v1/calls",
            json={"campaign": campaign, "to": to, "agent": agent, "prospect_id": prospect_id,
                  "metadata": metadata or {}},
            headers={"Idempotency-Key": idempotency_key},
        )
        data = self._json(response, "POST", "/v1/calls", "a call with its `call_id`", "call_id")
        call_id = self._typed("POST", "/v1/calls", "call_id", lambda: _text(data["call_id"]))
        return PlacedCall(call_id, replayed=response.status_code == 200)

    def capacity(self, campaign: str) -> Capacity:
        path = "/v1/capacity"
        data = self._json(self._request("GET", path, params={"campaign": campaign}), "GET", path,
                          "sessions_total, idle, on_call and wrap_up", "sessions_total", "idle", "on_call", "wrap_up")
        return self._typed("GET", path, "the capacity", lambda: Capacity(
            *(_count(data[k]) for k in ("sessions_total", "idle", "on_call", "wrap_up"))))

    def events(self, campaign: str, after: int, limit: int = 1000) -> tuple[list[dict], int]:
        path = "/v1/events"
        data = self._json(self._request("GET", path, params={"campaign": campaign, "after": after, "limit": limit}),
                          "GET", path, "events and next_cursor", "events", "next_cursor")

        def checked() -> tuple[list[dict], int]:
            events = data["events"]
            if not isinstance(events, list):
                raise TypeError("events is not a list")
            for event in events:
                _text(event["call_id"]), _text(event["type"])
                datetime.fromisoformat(event["at"])
            return events, _count(data["next_cursor"])

        return self._typed("GET", path, "a page of events", checked)

    def call(self, call_id: str) -> dict | None:
        path = f"/v1/calls/{call_id}"
        try:
            response = self._request("GET", path)
        except VoiceApiError as exc:
            if exc.status == 404:
                return None
            raise
        return _call(self._json(response, "GET", path, "a call", "call_id", "status"), "GET", path)

    def find_call(self, idempotency_key: str) -> dict | None:
        """The call the platform placed for this key, or None if it never received the key."""
        path = "/v1/calls"
        data = self._json(self._request("GET", path, params={"idempotency_key": idempotency_key}), "GET", path,
                          "a list of calls", "calls")
        calls = data["calls"]
        if not isinstance(calls, list) or (calls and not isinstance(calls[0], dict)):
            raise PlatformContractError(f"GET {path}: calls is not a list of calls as docs/voice-api.yaml says")
        return _call(calls[0], "GET", path) if calls else None

    def _clock(self) -> dict[str, Any]:
        return self._json(self._request("GET", "/v1/clock"), "GET", "/v1/clock", "the platform's clock (`now`)",
                          "now")

    def clock(self) -> datetime:
        data = self._clock()
        return self._typed("GET", "/v1/clock", "now", lambda: _instant(data["now"]))

    def clock_speed(self) -> float:
        data = self._clock()
        return self._typed("GET", "/v1/clock", "speed", lambda: _speed(data.get("speed", 1.0)))

    def close(self) -> None:
        self.session.close()
        for session in self._sessions:
            session.close()


def _tries(n: int) -> str:
    return "try" if n == 1 else "tries"


def _shown(text: str, limit: int = 80) -> str:
    """A platform's text in one of our sentences: one line, cut short."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit] + "…"


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{value!r} is not a non-empty string")
    return value


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"{value!r} is not a count")
    return value


def _instant(value: Any) -> datetime:
    moment = datetime.fromisoformat(_text(value))
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return moment


def _speed(value: Any) -> float:
    speed = float(value)
    if not 0 < speed < 1e6:
        raise ValueError(f"speed {value!r} is not a positive number")
    return speed


def _call(call: Any, method: str, path: str) -> dict:
    """A call as the contract describes it: the fields the daemon reads, of the right types."""
    try:
        _text(call["call_id"])
        PlatformCallStatus(call["status"])
        if call.get("ended_at"):
            _instant(call["ended_at"])
    except (TypeError, ValueError, KeyError) as exc:
        raise PlatformContractError(f"{method} {path}: a call is not as docs/voice-api.yaml says ({exc})") from None
    return call
