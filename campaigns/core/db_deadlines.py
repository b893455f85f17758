"""Deadlines on every database wait: connect, statement, lock, and a peer that stops answering.

PostgreSQL gets them three ways, because each covers what the others cannot:

- libpq's `connect_timeout`, and the server's `statement_timeout` and `lock_timeout` (sent as
  start-up `options`), which end a slow statement cleanly and leave the connection usable;
- TCP keepalives and `tcp_user_timeout`, which notice a peer whose host went away (no ACKs);
- a client-side bound on every wait for the server (`DeadlineConnection`): a frozen server
  process or a stalled proxy still ACKs at the TCP level, and then neither of the above ever
  fires. psycopg waits for every answer (execute, fetch, commit, rollback) in
  `Connection.wait`, which takes a timeout: ours is the statement timeout plus a grace, so the
  server's own error comes first whenever the server can still send it. A wait that runs out
  leaves the protocol mid-message, so the connection is closed and SQLAlchemy drops it.

SQLite's only wait is for the write lock: its busy timeout.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import sqlalchemy as sa

from campaigns.core.config import DatabaseTimeouts

WAIT_GRACE_S = 2.0  # the client gives up this long after the server's statement timeout would have fired
# Keepalives: a silent peer is noticed after idle + interval × count seconds; data left unacknowledged
# for `tcp_user_timeout` ends the connection (a host gone, a cable pulled).
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
              "tcp_user_timeout": 30_000}
_WaitTimeout: type[Exception] = getattr(psycopg.errors, "_WaitTimeout", psycopg.errors.OperationalError)


class DeadlineConnection(psycopg.Connection):
    """A psycopg connection whose every wait for the server ends after `wait_timeout` seconds."""

    wait_timeout: float | None = None

    def wait(self, gen, interval: float = 0.1, timeout: float | None = None):
        limit = self.wait_timeout if timeout is None else timeout
        if timeout is not None or limit is None:
            return super().wait(gen, interval, timeout)
        try:
            return super().wait(gen, interval, limit)
        except _WaitTimeout:
            # Mid-message: the connection cannot be used again. Closed, SQLAlchemy sees a disconnect.
            self.pgconn.finish()
            raise psycopg.OperationalError(f"the database did not answer within {limit:g} s") from None


def postgres_connect_args(url: sa.URL, timeouts: DatabaseTimeouts) -> dict[str, Any]:
    """libpq parameters for the limits; a parameter the URL sets itself is left as the URL says."""
    args: dict[str, Any] = {"connect_timeout": max(2, math.ceil(timeouts.connect_s)), **KEEPALIVES}
    options = [f"-c {name}={int(seconds * 1000)}" for name, seconds in
               (("statement_timeout", timeouts.statement_s), ("lock_timeout", timeouts.lock_s)) if seconds]
    if options:
        written = url.query.get("options")
        args["options"] = " ".join([*([written] if isinstance(written, str) else written or []), *options])
    return {key: value for key, value in args.items() if key == "options" or key not in url.query}


def client_wait_s(timeouts: DatabaseTimeouts) -> float | None:
    """How long the client waits for any answer: the statement timeout and a grace (None: unbounded)."""
    return timeouts.statement_s + WAIT_GRACE_S if timeouts.statement_s else None


def install_wait_bound(engine: sa.Engine, wait_s: float | None) -> None:
    """Open the engine's PostgreSQL connections as `DeadlineConnection`s bounded by `wait_s`."""
    if wait_s is None:
        return

    def connect(dialect, conn_rec, cargs, cparams):
        connection = DeadlineConnection.connect(*cargs, **cparams)
        connection.wait_timeout = wait_s
        return connection

    sa.event.listen(engine, "do_connect", connect)


@contextmanager
def statement_limit(conn: sa.Connection, seconds: float) -> Iterator[None]:
    """Within the block, this connection's statements may run `seconds` (a VACUUM in the daemon),
    then its session's own limit again. PostgreSQL only; SQLite has no statement limit."""
    if conn.dialect.name != "postgresql":
        yield
        return
    driver = conn.connection.driver_connection
    before = getattr(driver, "wait_timeout", None)
    conn.exec_driver_sql(f"SET statement_timeout = {int(seconds * 1000)}")
    if isinstance(driver, DeadlineConnection):
        driver.wait_timeout = seconds + WAIT_GRACE_S
    try:
        yield
    finally:
        if isinstance(driver, DeadlineConnection):
            driver.wait_timeout = before
        try:
            conn.exec_driver_sql("RESET statement_timeout")
        except sa.exc.SQLAlchemyError:
            conn.invalidate()  # a session left with the long limit must not go back to the pool


def connection_lost(exc: BaseException) -> bool:
    """Did `exc` come from the database being out of reach — a connection lost, or none made —
    rather than from a statement it refused (a lock or statement timeout, a constraint)?"""
    if isinstance(exc, sa.exc.DBAPIError):
        return bool(exc.connection_invalidated) or exc.statement is None
    return isinstance(exc, sa.exc.TimeoutError)  # no pooled connection came back in time
