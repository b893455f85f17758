"""A voice platform on loopback: the HTTP contract of docs/voice-api.yaml, simulated.

The demo, the tests and the pacing benchmark dial through it. Per campaign it
models agent sessions, ring time, answer rate, answering machines, busy lines,
failures, talk time, wrap-up, a disposition mix (titles sent by the daemon),
callbacks with a requested time, and abandons: a person who answers when no
session frees up within `abandon_after_s` (2 s) is abandoned.

Its clock starts at `start` and runs `speed` times faster than the wall
clock; `GET /v1/clock` publishes it, and the daemon takes its `now` from it.

Each call placed for a campaign takes the next index (1, 2, 3, …; a re-sent
request keeps its call's) and its `Fate` comes from a generator of its own,
seeded with (seed, campaign, index): five uniforms drawn in a fixed order (who
answers, ring time, talk time, disposition, callback delay) and mapped through
the profile in effect at the instant the call is placed. The k-th call of a
campaign therefore meets the same person, machine or busy line whenever it is
placed, however many calls go out per tick and whatever other campaigns do, so
two pacers run with the same seed compare like with like. Only the agent
sessions are left to the run: whether an answering person finds a free session
in time or is abandoned, and so when a call connects.

A profile can change at a simulated instant (`ProfileChange`: the answer rate
drops at 10:30, talk time lengthens), to see how a pacer follows drift.

The simulation advances lazily: every request first plays out everything due
up to the current simulated instant, in time order, so events carry their
exact simulated times however the requests are spaced.

`Faults` makes it an unreliable provider, drawn from its own seeded generator:
503s, 500s after the call was placed, answers slower than the client waits,
dropped connections, slow answers, and outages during which the port refuses
connections (`dialer simulator --faults error=0.02,timeout=0.01,...`).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import json
import math
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from campaigns.core.lifecycle import CallEventType, CallOutcome
from dialer_daemon.voice import PlatformCallStatus

ABANDON_AFTER_S = 2.0


@dataclass(frozen=True)
class Profile:
    """How one campaign's calls go (defaults: a typical consumer list)."""

    sessions: int = 10
    answer_rate: float = 0.35  # a person answers
    machine_rate: float = 0.10  # an answering machine picks up
    busy_rate: float = 0.05
    fail_rate: float = 0.01  # the carrier rejects the call
    ring_s: tuple[float, float] = (4.0, 20.0)  # a person or machine answers within this
    no_answer_s: float = 25.0  # ringing gives up after this
    talk_s_mean: float = 90.0  # exponential talk time, at least 10 s
    wrap_up_s: float = 3.0
    abandon_after_s: float = ABANDON_AFTER_S
    callback_after_s: tuple[float, float] = (3600.0, 26 * 3600.0)
    dispositions: dict[str, float] = field(default_factory=dict)  # title → weight; empty: uniform

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], base: Profile | None = None) -> Profile:
        """`base` (default: the defaults) with the keys of `data` replaced; unknown keys and bad values refused."""
        merged = dict((base or cls()).__dict__)
        for key, value in data.items():
            if key not in merged:
                raise ValueError(f"unknown simulator profile key {key!r}; known: {', '.join(sorted(merged))}")
            merged[key] = _profile_value(key, value, merged[key])
        return cls(**merged)


def _profile_value(key: str, value: Any, like: Any) -> Any:
    """`value` for profile key `key`, shaped like its current value `like`; a ValueError says what was expected."""

    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

    if isinstance(like, tuple):
        if isinstance(value, list | tuple) and len(value) == 2 and all(number(v) and v >= 0 for v in value) \
                and value[0] <= value[1]:
            return (float(value[0]), float(value[1]))
        raise ValueError(f"simulator profile key {key!r}: expected [low, high] seconds, got {value!r}")
    if isinstance(like, dict):
        if isinstance(value, dict) and all(isinstance(k, str) and number(w) and w >= 0 for k, w in value.items()):
            return dict(value)
        raise ValueError(f"simulator profile key {key!r}: expected a mapping of disposition title to weight, "
                         f"got {value!r}")
    if key == "sessions":
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        raise ValueError(f"simulator profile key 'sessions': expected a whole number of at least 1, got {value!r}")
    if key.endswith("_rate"):
        if number(value) and 0 <= value <= 1:
            return float(value)
        raise ValueError(f"simulator profile key {key!r}: expected a probability from 0 to 1, got {value!r}")
    if number(value) and (value > 0 if key == "talk_s_mean" else value >= 0):
        return float(value)
    raise ValueError(f"simulator profile key {key!r}: expected a number of seconds"
                     f"{' above 0' if key == 'talk_s_mean' else ''}, got {value!r}")


@dataclass(frozen=True)
class ProfileChange:
    """From the simulated instant `at` on, calls placed follow `values` (profile keys) on top of the profile before.

    `campaign` names the campaign it changes; None changes the default profile, so it reaches
    every campaign without a profile of its own (a campaign with one changes only when named).
    `sessions` cannot change during a run.
    """

    at: datetime
    values: Mapping[str, Any]
    campaign: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.values, Mapping):
            raise ValueError(f"a profile change's values are a mapping of profile keys, got {self.values!r}")
        if not isinstance(self.at, datetime) or self.at.tzinfo is None:
            raise ValueError(f"a profile change needs an instant with a UTC offset, got {self.at!r}")
        if "sessions" in self.values:
            raise ValueError(f"a profile change at {self.at.isoformat()} sets 'sessions': agent sessions are "
                             "fixed for a run; give the campaign its sessions in its profile instead")
        Profile.from_mapping(self.values)  # unknown keys and bad values are refused now, not mid-run


class FateKind(StrEnum):
    """Who or what picks up a call, before any agent session comes into it."""

    PERSON = "person"
    MACHINE = "machine"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"


@dataclass(frozen=True)
class Fate:
    """One call's fate, fixed when it is placed; the agent sessions decide the rest (connected or abandoned).

    `ring_s` is when a person or a machine answers; `talk_s`, `disposition` and `callback_s`
    (the delay of the requested callback, for a callback disposition) apply once a person reaches
    an agent. Every call has all of them, so that the draws keep their order.
    """

    kind: FateKind
    ring_s: float
    talk_s: float
    disposition: str
    callback_s: float


def draw_fate(seed: int, campaign: str, index: int, profile: Profile, titles: Sequence[str] = ()) -> Fate:
    """The fate of the campaign's `index`-th call under `profile`, the disposition chosen among `titles`.

    The generator is the call's own, seeded from (seed, campaign, index) (a str seed hashes the
    same in every process), and always yields five uniforms in the same order.
    """
    rng = random.Random(f"{seed}:{campaign}:{index}")
    kind_u, ring_u, talk_u, disposition_u, callback_u = (rng.random() for _ in range(5))
    p = profile
    edges = itertools.accumulate((p.fail_rate, p.busy_rate, p.machine_rate, p.answer_rate))
    kinds = (FateKind.FAILED, FateKind.BUSY, FateKind.MACHINE, FateKind.PERSON)
    kind = next((k for k, edge in zip(kinds, edges, strict=True) if kind_u < edge), FateKind.NO_ANSWER)
    names = list(titles) or ["Completed"]
    weights = [p.dispositions.get(t, 0.0 if p.dispositions else 1.0) for t in names]
    if not any(weights):
        weights = [1.0] * len(names)
    cumulative = list(itertools.accumulate(weights))
    chosen = min(bisect.bisect_right(cumulative, disposition_u * cumulative[-1]), len(names) - 1)
    return Fate(
        kind=kind,
        ring_s=p.ring_s[0] + ring_u * (p.ring_s[1] - p.ring_s[0]),
        talk_s=max(10.0, -p.talk_s_mean * math.log(1.0 - talk_u)),  # exponential, at least 10 s
        disposition=names[chosen],
        callback_s=p.callback_after_s[0] + callback_u * (p.callback_after_s[1] - p.callback_after_s[0]),
    )


@dataclass(frozen=True)
class Faults:
    """Provider faults, as probabilities per request (0 = never)."""

    error: float = 0.0  # answer 503 without acting (any endpoint)
    error_after_accept: float = 0.0  # POST /v1/calls: place the call, then answer 500
    timeout: float = 0.0  # POST /v1/calls: place the call, answer only after `timeout_s`
    timeout_s: float = 10.0  # longer than the client waits
    drop: float = 0.0  # close the connection without an answer, without acting (any endpoint)
    slow: float = 0.0  # answer after `slow_s` (any endpoint)
    slow_s: float = 0.5
    outage_every_s: float = 0.0  # wall-clock seconds between outages; 0: none
    outage_s: float = 0.0  # how long the port refuses connections

    @classmethod
    def parse(cls, text: str) -> Faults:
        """`error=0.02,timeout=0.01,timeout_s=3` → Faults; unknown names and bad values are refused."""
        values: dict[str, float] = {}
        known = cls.__dataclass_fields__
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep or name not in known:
                raise ValueError(f"fault {part!r}: expected NAME=VALUE with NAME one of {', '.join(known)}")
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"fault {name}: {value!r} is not a number") from None
            if number < 0 or (not name.endswith("_s") and number > 1):
                raise ValueError(f"fault {name}: {value} is out of range (a probability is 0 to 1, a time >= 0)")
            values[name] = number
        return cls(**values)

    @property
    def any(self) -> bool:
        return any(getattr(self, name) for name in self.__dataclass_fields__ if not name.endswith("_s")) \
            or bool(self.outage_every_s and self.outage_s)


@dataclass
class Call:
    call_id: str
    campaign: str
    to: str
    agent: str
    prospect_id: int | None
    idempotency_key: str
    created_at: datetime
    dispositions: list[str]
    callback_titles: list[str]
    index: int  # 1, 2, 3, … in placement order within its campaign
    fate: Fate
    status: PlatformCallStatus = PlatformCallStatus.QUEUED
    outcome: CallOutcome | None = None
    disposition: str | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    session: int | None = None

    def as_dict(self) -> dict:
        return {
            "call_id": self.call_id, "campaign": self.campaign, "to": self.to, "agent": self.agent,
            "prospect_id": self.prospect_id, "idempotency_key": self.idempotency_key,
            "created_at": _iso(self.created_at), "status": self.status, "outcome": self.outcome,
            "disposition": self.disposition, "answered_at": _iso(self.answered_at),
            "ended_at": _iso(self.ended_at),
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


_ALWAYS = datetime.min.replace(tzinfo=UTC)

Timeline = tuple[tuple[datetime, Profile], ...]  # (in effect from, profile), in time order


def _profile_at(timeline: Timeline, at: datetime) -> Profile:
    return timeline[bisect.bisect_right(timeline, at, key=lambda entry: entry[0]) - 1][1]


@dataclass
class CampaignSim:
    name: str
    timeline: Timeline
    busy_until: list[datetime]  # per session: on a call or in wrap-up until then
    on_call: list[bool]
    waiting: list[str] = field(default_factory=list)  # answered calls waiting for a session
    calls: list[str] = field(default_factory=list)  # call ids in placement order: calls[index - 1]

    @property
    def sessions(self) -> int:
        return self.timeline[0][1].sessions

    def profile_at(self, at: datetime) -> Profile:
        return _profile_at(self.timeline, at)


class Simulator:
    """The platform's state; thread-safe. `clock` (seconds, e.g. `time.monotonic`) is injectable for tests.

    `default` is the profile of every campaign not in `profiles`; `changes` (in time order) change
    them at simulated instants. A call's fate follows the profile in effect when it is placed;
    `wrap_up_s` and `abandon_after_s` are read when they come into play (the wrap-up when the
    call hangs up, the wait for a session when the person answers). A campaign's profiles are
    settled when it places its first call (or capacity is first asked for).
    """

    def __init__(self, *, seed: int = 1, start: datetime | None = None, speed: float = 1.0,
                 default: Profile | None = None, profiles: dict[str, Profile] | None = None,
                 token: str | None = None, clock=time.monotonic, faults: Faults | None = None,
                 changes: Sequence[ProfileChange] = ()) -> None:
        self.seed = seed
        self.start = (start or datetime.now(UTC)).astimezone(UTC)
        self.speed = speed
        self.default = default or Profile()
        self.profiles = profiles or {}
        for before, after in itertools.pairwise(changes):
            if after.at < before.at:
                raise ValueError(f"profile changes must be in time order: the change at {after.at.isoformat()} "
                                 f"is listed after the one at {before.at.isoformat()}")
        self.changes = tuple(changes)
        self.token = token
        self._clock = clock
        self._origin = clock()
        self._lock = threading.RLock()
        self._campaigns: dict[str, CampaignSim] = {}
        self._calls: dict[str, Call] = {}
        self._by_key: dict[str, tuple[str, str]] = {}  # idempotency key → (request fingerprint, call id)
        self._agenda: list[tuple[datetime, int, str, str]] = []  # (when, seq, action, call id)
        self._seq = itertools.count()
        # Call ids differ from one simulator run to the next (a restarted platform must not reuse them).
        self._run = uuid.uuid4().hex[:6]
        self._events: list[dict] = []
        self._played_to = self.start
        # Tests: answer this many of the next call placements only after `slow_response_s`
        # (the call is placed at once), as a platform whose response is lost in a timeout.
        self.slow_responses = 0
        self.slow_response_s = 0.0
        self.faults = faults or Faults()
        self._fault_rng = random.Random(f"{seed}:faults")
        self.injected: Counter = Counter()  # fault → times injected

    # -- time ---------------------------------------------------------------
    def now(self) -> datetime:
        return self.start + timedelta(seconds=(self._clock() - self._origin) * self.speed)

    def _schedule(self, when: datetime, action: str, call_id: str) -> None:
        heapq.heappush(self._agenda, (when, next(self._seq), action, call_id))

    def advance(self) -> datetime:
        """Play out everything due up to the current simulated instant."""
        with self._lock:
            now = self.now()
            while self._agenda and self._agenda[0][0] <= now:
                when, _, action, call_id = heapq.heappop(self._agenda)
                getattr(self, f"_on_{action}")(self._calls[call_id], when)
            self._played_to = now
            return now

    # -- campaigns and sessions --------------------------------------------
    def _timeline(self, name: str) -> Timeline:
        own = name in self.profiles
        profile = self.profiles.get(name, self.default)
        timeline = [(_ALWAYS, profile)]
        for change in self.changes:
            if change.campaign == name or (change.campaign is None and not own):
                profile = Profile.from_mapping(change.values, profile)
                timeline.append((change.at, profile))
        return tuple(timeline)

    def _campaign(self, name: str) -> CampaignSim:
        sim = self._campaigns.get(name)
        if sim is None:
            timeline = self._timeline(name)
            sessions = timeline[0][1].sessions
            sim = CampaignSim(name, timeline, [self.start] * sessions, [False] * sessions)
            self._campaigns[name] = sim
        return sim

    def profile_at(self, campaign: str, at: datetime) -> Profile:
        """The campaign's profile in effect at the simulated instant `at`."""
        with self._lock:
            sim = self._campaigns.get(campaign)
            return _profile_at(sim.timeline if sim else self._timeline(campaign), at)

    def fate(self, campaign: str, index: int, *, at: datetime | None = None,
             titles: Sequence[str] | None = None) -> Fate:
        """The fate of the campaign's `index`-th call (from 1), drawn without placing anything.

        For a placed call, the fate it got; `at` and `titles` ask instead what it would be if placed
        at `at` (default: when it was placed, or now) with these disposition titles (default: the
        ones it was sent with, or none: "Completed").
        """
        if index < 1:
            raise ValueError(f"call indexes start at 1, got {index}")
        with self._lock:
            sim = self._campaigns.get(campaign)
            placed = self._calls[sim.calls[index - 1]] if sim and index <= len(sim.calls) else None
            if placed is not None and at is None and titles is None:
                return placed.fate
            if at is None:
                at = placed.created_at if placed else self.now()
            if titles is None:
                titles = placed.dispositions if placed else ()
            profile = _profile_at(sim.timeline if sim else self._timeline(campaign), at)
            return draw_fate(self.seed, campaign, index, profile, titles)

    def call_index(self, call_id: str) -> int | None:
        """A placed call's index within its campaign (1, 2, 3, …), None for an unknown call id."""
        with self._lock:
            call = self._calls.get(call_id)
            return call.index if call else None

    def _free_session(self, sim: CampaignSim, at: datetime) -> int | None:
        free = [i for i, until in enumerate(sim.busy_until) if until <= at and not sim.on_call[i]]
        return free[0] if free else None

    def capacity(self, campaign: str) -> dict:
        now = self.advance()
        with self._lock:
            sim = self._campaign(campaign)
            on_call = sum(sim.on_call)
            wrap_up = sum(1 for i, until in enumerate(sim.busy_until) if not sim.on_call[i] and until > now)
            total = sim.sessions
            return {"campaign": campaign, "at": now.isoformat(), "sessions_total": total,
                    "idle": total - on_call - wrap_up, "on_call": on_call, "wrap_up": wrap_up}

    # -- calls --------------------------------------------------------------
    def place_call(self, body: dict, key: str) -> tuple[int, dict]:
        now = self.advance()
        # What makes it the same call; metadata (disposition titles, attempt number) may differ on a re-send.
        fingerprint = json.dumps([body.get("campaign"), body.get("to"), body.get("prospect_id")])
        with self._lock:
            if key in self._by_key:
                seen, call_id = self._by_key[key]
                if seen != fingerprint:
                    return 422, {"error": "idempotency_key_reused",
                                 "message": "this Idempotency-Key was used with a different request"}
                return 200, self._calls[call_id].as_dict()
            sim = self._campaign(body["campaign"])
            metadata = body.get("metadata") or {}
            index = len(sim.calls) + 1
            titles = list(metadata.get("dispositions") or [])
            call = Call(
                call_id=f"call-{self._run}-{len(self._calls) + 1:07d}", campaign=body["campaign"], to=body["to"],
                agent=body.get("agent", ""), prospect_id=body.get("prospect_id"), idempotency_key=key,
                created_at=now, dispositions=titles,
                callback_titles=list(metadata.get("callback_dispositions") or []), index=index,
                fate=draw_fate(self.seed, sim.name, index, sim.profile_at(now), titles),
            )
            self._calls[call.call_id] = call
            sim.calls.append(call.call_id)
            self._by_key[key] = (fingerprint, call.call_id)
            self._plan(sim, call, now)
            return 201, call.as_dict()

    def _plan(self, sim: CampaignSim, call: Call, now: datetime) -> None:
        fate = call.fate
        if fate.kind is FateKind.FAILED:
            call.outcome = CallOutcome.FAILED
            self._schedule(now + timedelta(seconds=1), "fail", call.call_id)
            return
        self._schedule(now + timedelta(seconds=0.5), "ring", call.call_id)
        if fate.kind is FateKind.BUSY:
            call.outcome = CallOutcome.BUSY
            self._schedule(now + timedelta(seconds=3), "end", call.call_id)
        elif fate.kind is FateKind.MACHINE:
            call.outcome = CallOutcome.MACHINE
            self._schedule(now + timedelta(seconds=fate.ring_s + 20), "end", call.call_id)
        elif fate.kind is FateKind.PERSON:
            call.outcome = None  # set when the call ends
            self._schedule(now + timedelta(seconds=fate.ring_s), "answer", call.call_id)
        else:
            call.outcome = CallOutcome.NO_ANSWER
            self._schedule(now + timedelta(seconds=sim.profile_at(now).no_answer_s), "end", call.call_id)

    def _event(self, call: Call, kind: CallEventType, at: datetime, **extra) -> None:
        event = {"id": len(self._events) + 1, "call_id": call.call_id, "campaign": call.campaign,
                 "idempotency_key": call.idempotency_key, "type": kind, "at": at.isoformat(), **extra}
        self._events.append(event)

    def _on_ring(self, call: Call, at: datetime) -> None:
        if call.status == PlatformCallStatus.QUEUED:
            call.status = PlatformCallStatus.RINGING
            self._event(call, CallEventType.RINGING, at)

    def _on_fail(self, call: Call, at: datetime) -> None:
        call.status, call.ended_at = PlatformCallStatus.FAILED, at
        self._event(call, CallEventType.FAILED, at, cause="carrier rejected the number")

    def _on_answer(self, call: Call, at: datetime) -> None:
        sim = self._campaigns[call.campaign]
        session = self._free_session(sim, at)
        if session is None:
            sim.waiting.append(call.call_id)
            self._schedule(at + timedelta(seconds=self._abandon_after_s(sim, call)), "abandon", call.call_id)
            return
        self._connect(sim, call, session, at)

    def _abandon_after_s(self, sim: CampaignSim, call: Call) -> float:
        # The wait allowed is the one in effect when the person answered (at ring time).
        return sim.profile_at(call.created_at + timedelta(seconds=call.fate.ring_s)).abandon_after_s

    def _connect(self, sim: CampaignSim, call: Call, session: int, at: datetime) -> None:
        # answered_at is when the person reached an agent (after any wait for a free session).
        call.status, call.session, call.answered_at = PlatformCallStatus.IN_PROGRESS, session, at
        sim.on_call[session] = True
        self._event(call, CallEventType.ANSWERED, at)
        self._schedule(at + timedelta(seconds=call.fate.talk_s), "hang_up", call.call_id)

    def _on_abandon(self, call: Call, at: datetime) -> None:
        sim = self._campaigns[call.campaign]
        if call.call_id in sim.waiting:
            sim.waiting.remove(call.call_id)
            call.status, call.ended_at, call.outcome = PlatformCallStatus.ABANDONED, at, CallOutcome.ABANDONED
            self._event(call, CallEventType.ABANDONED, at, waited_s=self._abandon_after_s(sim, call))

    def _on_hang_up(self, call: Call, at: datetime) -> None:
        sim = self._campaigns[call.campaign]
        session, answered_at = call.session, call.answered_at
        assert session is not None and answered_at is not None  # hung up: it was connected first
        sim.on_call[session] = False
        sim.busy_until[session] = at + timedelta(seconds=sim.profile_at(at).wrap_up_s)
        call.disposition = call.fate.disposition
        extra: dict[str, Any] = {"outcome": CallOutcome.COMPLETED, "disposition": call.disposition,
                                 "duration_s": round((at - answered_at).total_seconds(), 3)}
        if call.disposition in call.callback_titles:
            extra["callback_at"] = (at + timedelta(seconds=call.fate.callback_s)).isoformat()
        call.status, call.ended_at, call.outcome = PlatformCallStatus.ENDED, at, CallOutcome.COMPLETED
        self._event(call, CallEventType.ENDED, at, **extra)
        self._schedule(sim.busy_until[session], "session_free", call.call_id)

    def _on_session_free(self, call: Call, at: datetime) -> None:
        sim = self._campaigns[call.campaign]
        while sim.waiting:
            session = self._free_session(sim, at)
            if session is None:
                return
            waiting = self._calls[sim.waiting.pop(0)]
            self._connect(sim, waiting, session, at)

    def _on_end(self, call: Call, at: datetime) -> None:
        call.status, call.ended_at = PlatformCallStatus.ENDED, at
        start = call.created_at
        self._event(call, CallEventType.ENDED, at, outcome=call.outcome,
                    duration_s=round((at - start).total_seconds(), 3))

    def draw_fault(self, *names: str) -> str | None:
        """One draw per request: which of these faults (if any) this request suffers."""
        with self._lock:
            roll = self._fault_rng.random()
            for name in names:
                roll -= getattr(self.faults, name)
                if roll < 0:
                    self.injected[name] += 1
                    return name
            return None

    def find_by_key(self, key: str) -> list[dict]:
        self.advance()
        with self._lock:
            seen = self._by_key.get(key)
            return [self._calls[seen[1]].as_dict()] if seen else []

    # -- reads ----------------------------------------------------------------
    def events(self, campaign: str | None, after: int, limit: int) -> dict:
        self.advance()
        with self._lock:
            chosen = [e for e in self._events[after:] if campaign is None or e["campaign"] == campaign]
            page = chosen[:limit]
            cursor = page[-1]["id"] if len(chosen) > limit else len(self._events)
            return {"events": page, "next_cursor": cursor}

    def call(self, call_id: str) -> dict | None:
        self.advance()
        with self._lock:
            call = self._calls.get(call_id)
            return call.as_dict() if call else None

    def calls(self, campaign: str | None = None) -> list[dict]:
        self.advance()
        with self._lock:
            return [c.as_dict() for c in self._calls.values() if campaign is None or c.campaign == campaign]

    def clock(self) -> dict:
        return {"now": self.advance().isoformat(), "speed": self.speed}


class _Handler(BaseHTTPRequestHandler):
    server_version = "dialer-simulator/1"
    simulator: Simulator

    def log_message(self, format, *args):
        pass

    def _send(self, status: int, payload, retry_after: str | None = None) -> None:
        body = json.dumps(payload).encode()
        try:
            self.send_response(status)
            if retry_after:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout); what was done stays done

    def _authorised(self) -> bool:
        token = self.simulator.token
        if token and self.headers.get("Authorization") != f"Bearer {token}":
            self._send(401, {"error": "unauthorized", "message": "missing or wrong bearer token"})
            return False
        return True

    def _fault_before(self, *extra: str) -> str | None:
        """Inject a fault drawn for this request; returns it, or None to carry on normally."""
        sim = self.simulator
        fault = sim.draw_fault("error", "drop", "slow", *extra)
        if fault == "error":
            self._send(503, {"error": "unavailable", "message": "injected fault: try again"}, retry_after="0.2")
        elif fault == "drop":
            self.close_connection = True  # no answer at all: the client sees the connection drop
        elif fault == "slow":
            time.sleep(sim.faults.slow_s)
            return None
        return fault

    def do_GET(self):
        if not self._authorised():
            return
        if self._fault_before():
            return
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        sim = self.simulator
        if url.path == "/v1/clock":
            return self._send(200, sim.clock())
        if url.path == "/v1/capacity":
            if "campaign" not in query:
                return self._send(400, {"error": "bad_request", "message": "campaign is required"})
            return self._send(200, sim.capacity(query["campaign"]))
        if url.path == "/v1/events":
            try:
                after, limit = int(query.get("after", 0)), min(int(query.get("limit", 500)), 5000)
            except ValueError:
                return self._send(400, {"error": "bad_request", "message": "after and limit are integers"})
            return self._send(200, sim.events(query.get("campaign"), after, limit))
        if url.path == "/v1/calls":
            if "idempotency_key" in query:
                return self._send(200, {"calls": sim.find_by_key(query["idempotency_key"])})
            return self._send(200, {"calls": sim.calls(query.get("campaign"))})
        if url.path.startswith("/v1/calls/"):
            call = sim.call(url.path.rsplit("/", 1)[1])
            return self._send(200, call) if call else self._send(404, {"error": "not_found"})
        return self._send(404, {"error": "not_found"})

    def do_POST(self):
        if not self._authorised():
            return
        if urlparse(self.path).path != "/v1/calls":
            return self._send(404, {"error": "not_found"})
        key = self.headers.get("Idempotency-Key")
        if not key:
            return self._send(400, {"error": "bad_request", "message": "Idempotency-Key header is required"})
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if not isinstance(body.get("campaign"), str) or not isinstance(body.get("to"), str):
                raise ValueError
        except ValueError:
            return self._send(400, {"error": "bad_request", "message": "JSON body with campaign and to is required"})
        fault = self._fault_before("error_after_accept", "timeout")
        if fault in ("error", "drop"):
            return
        sim = self.simulator
        status, payload = sim.place_call(body, key)
        if fault == "error_after_accept":
            return self._send(500, {"error": "internal", "message": "injected fault after the call was placed"})
        if fault == "timeout":
            time.sleep(sim.faults.timeout_s)
        with sim._lock:
            slow = sim.slow_responses > 0
            if slow:
                sim.slow_responses -= 1
        if slow:
            time.sleep(sim.slow_response_s)
        self._send(status, payload)


class SimulatorServer:
    """The simulator's HTTP server on one port; with outage faults it closes the port now and then."""

    def __init__(self, simulator: Simulator, host: str, port: int) -> None:
        self.simulator = simulator
        self.host = host
        self._handler = type("Handler", (_Handler,), {"simulator": simulator})
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._server = self._start(port)
        self.server_port = self._server.server_port
        self.server_address = (host, self.server_port)
        faults = simulator.faults
        if faults.outage_every_s and faults.outage_s:
            threading.Thread(target=self._outages, name="voice-simulator-outages", daemon=True).start()

    def _start(self, port: int) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer((self.host, port), self._handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="voice-simulator", daemon=True).start()
        return server

    def _outages(self) -> None:
        faults = self.simulator.faults
        while not self._stopped.wait(faults.outage_every_s):
            with self._lock:
                if self._stopped.is_set():
                    return
                self._server.shutdown()
                self._server.server_close()  # connections to the port are now refused
                self.simulator.injected["outage"] += 1
            if self._stopped.wait(faults.outage_s):
                return
            with self._lock:
                if self._stopped.is_set():
                    return
                for _ in range(50):  # the port may linger for a moment after close
                    try:
                        self._server = self._start(self.server_port)
                        break
                    except OSError:
                        time.sleep(0.1)

    def shutdown(self) -> None:
        self._stopped.set()
        with self._lock:
            self._server.shutdown()
            self._server.server_close()


def serve(simulator: Simulator, host: str = "127.0.0.1", port: int = 0) -> SimulatorServer:
    """Start the HTTP server in daemon threads; the caller stops it with `shutdown()`."""
    return SimulatorServer(simulator, host, port)
