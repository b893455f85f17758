"""A total deadline for one HTTP request made with `requests`: connect and the whole answer.

requests' timeouts bound each socket operation, not the request: a server that sends a byte
every second never trips a 5 s read timeout, and holds the caller for as long as it likes.
Streaming the body with a clock check would not help either, since the headers can trickle
too. So a watchdog thread shuts down the socket of a request whose deadline has passed. The
shutdown acts in the kernel, so the read in progress returns at once wherever it is — the
TLS handshake, the headers, the body — and requests raises; `Deadline.expired` tells the
caller the deadline was the cause.

`DeadlineAdapter` (mounted on a `requests.Session`) makes the session's connections known
to the deadline of the request that uses them; `deadline(seconds)` opens one for the
requests of the calling thread.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()  # the deadline of the request this thread is making


class Deadline:
    """The deadline of one request; the connections it used are cut when it passes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self.done = False
        self._connections: list[Any] = []
        self._lock = threading.Lock()

    def attach(self, connection: Any) -> None:
        with self._lock:
            if connection not in self._connections:
                self._connections.append(connection)
            if self.expired:
                _cut(connection)

    def expire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.expired = True
            for connection in self._connections:
                _cut(connection)

    def finish(self) -> None:
        with self._lock:
            self.done = True
            self._connections.clear()


def _cut(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if sock is not None:
        try:
            # The plain socket's shutdown, also under TLS: the kernel ends the blocked read;
            # ssl's own shutdown would first drop its state under the reading thread.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


class _Watchdog:
    """One thread for every deadline: expires each when its time comes, unless it finished first."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: Deadline) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-deadlines", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    while self._heap and self._heap[0][2].done:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._cond.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        due = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(wait)
            due.expire()


_watchdog = _Watchdog()


@contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Requests made by this thread within the block end by `seconds` from now, whole."""
    limit = Deadline(seconds)
    _current.deadline = limit
    _watchdog.watch(limit)
    try:
        yield limit
    finally:
        _current.deadline = None
        limit.finish()


def _attach(connection: Any) -> None:
    limit: Deadline | None = getattr(_current, "deadline", None)
    if limit is not None:
        limit.attach(connection)


class _Watched:
    """Known to the current request's deadline from before it connects (the socket is cut
    wherever it is) and after (in case the deadline passed while it was connecting)."""

    def connect(self) -> None:
        _attach(self)
        super().connect()  # type: ignore[misc]
        _attach(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self)  # a kept-alive connection does not connect again
        super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose connections a `deadline` can cut."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(_POOLS)
        return manager
