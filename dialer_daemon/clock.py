"""Whose time the daemon dials by: the platform's (a simulator may run fast) or this host's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from dialer_daemon.voice import VoiceClient


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class PlatformClock:
    """The platform's own clock (a simulator may run fast, from any start instant)."""

    def __init__(self, client: VoiceClient) -> None:
        self.client = client

    def now(self) -> datetime:
        return self.client.clock()
