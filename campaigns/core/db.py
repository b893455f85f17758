"""Connecting to the project database and migrating it.

`DIALER_DATABASE_URL` selects the database; the embedded default is a SQLite
file under `DIALER_HOME`. SQLite runs in WAL mode with a busy timeout because
Dagster runs and the daemon write to it at the same time; foreign keys are
switched on so both backends enforce the same schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql, sqlite

from campaigns.core import db_deadlines
from campaigns.core.config import DatabaseTimeouts
from campaigns.core.errors import DatabaseNotReady, DatabaseRefused, DialerError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = int(DatabaseTimeouts().sqlite_busy_s * 1000)  # the default; DIALER_SQLITE_BUSY_TIMEOUT_S

# For code outside `campaigns/` (the daemon, the Dagster resources, the CLI) that holds an
# engine and catches database failures but writes no SQL and does not import SQLAlchemy.
Engine = sa.Engine
Connection = sa.Connection
DatabaseError = sa.exc.SQLAlchemyError
statement_limit = db_deadlines.statement_limit
connection_lost = db_deadlines.connection_lost


def normalize_url(url: str) -> sa.URL:
    """Parse a database URL, sending plain `postgresql://` URLs through psycopg 3."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise DialerError(
            f"DIALER_DATABASE_URL `{url}` is not a database URL; expected e.g. "
            "`sqlite:////path/dialer.sqlite3` or `postgresql+psycopg://user@host/db`."
        ) from None
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise DialerError(
            f"DIALER_DATABASE_URL uses `{parsed.get_backend_name()}`; the dialer supports "
            "`sqlite` and `postgresql+psycopg` only."
        )
    return parsed


def _on_sqlite_connect(busy_timeout_ms: int):
    def on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return on_connect


def _on_sqlite_begin(conn) -> None:
    # pysqlite defers BEGIN until the first write; an explicit BEGIN IMMEDIATE
    # takes the write lock up front, so two writers queue on busy_timeout
    # instead of one failing mid-transaction with "database is locked".
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def insert_for(conn: sa.Connection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, which has ON CONFLICT on PostgreSQL and SQLite alike."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def driver_connection(conn: sa.Connection) -> Any:
    """The driver's own connection under `conn` (psycopg or sqlite3).

    For what SQLAlchemy does not offer: COPY on PostgreSQL, and SQLite pragmas that must run
    outside the transaction SQLAlchemy would begin. Typed `Any` because the driver varies.
    """
    driver = conn.connection.driver_connection
    if driver is None:  # only once the connection is closed or invalidated
        raise DatabaseRefused("the database connection was closed before the operation")
    return driver


def make_engine(url: str, *, echo: bool = False, timeouts: DatabaseTimeouts | None = None) -> sa.Engine:
    """An engine for `url` (`DialerConfig.database_url`: `DIALER_DATABASE_URL` or the embedded SQLite file).

    `timeouts` bound its waits (`campaigns.core.db_deadlines`): the daemon passes its
    `DialerConfig.database_timeouts`; batch work passes `.for_batch()` (no statement or lock
    limit); none given, the defaults without statement or lock limit.
    """
    parsed = normalize_url(url)
    timeouts = timeouts or DatabaseTimeouts()
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed,
            echo=echo,
            # The pool hands a connection to one thread at a time (e.g. the staging
            # writer thread), so sqlite3's same-thread guard is not needed.
            connect_args={"timeout": timeouts.sqlite_busy_s, "check_same_thread": False},
        )
        # Take transaction control from pysqlite so BEGIN IMMEDIATE is ours.
        sa.event.listen(engine, "connect", _on_sqlite_connect(int(timeouts.sqlite_busy_s * 1000)))
        sa.event.listen(
            engine,
            "connect",
            lambda dbapi_conn, _rec: setattr(dbapi_conn, "isolation_level", None),
        )
        sa.event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    engine = sa.create_engine(parsed, echo=echo, pool_pre_ping=True,
                              connect_args=db_deadlines.postgres_connect_args(parsed, timeouts))
    db_deadlines.install_wait_bound(engine, db_deadlines.client_wait_s(timeouts))
    return engine


def make_reader_engine(url: str) -> sa.Engine:
    """An engine for reads beside a busy writer (a live display while the daemon dials).

    On SQLite its transactions are plain deferred ones: they never take the write lock that
    `make_engine`'s BEGIN IMMEDIATE takes, so a reader never holds the writers up.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return sa.create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})
    return make_engine(url)


def describe(engine: sa.Engine) -> str:
    """The engine's URL with any password hidden, for messages."""
    return engine.url.render_as_string(hide_password=True)


@contextmanager
def refusals_as_errors() -> Iterator[None]:
    """Raise the database refusing an operation as `DatabaseRefused`: one sentence, not a traceback."""
    try:
        yield
    except sa.exc.OperationalError as exc:
        raise DatabaseRefused(f"the database refused the operation: {exc.orig}") from None


def _alembic_config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest schema revision the code knows."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:  # only if the migrations folder lost its scripts
        raise DialerError(f"no schema migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: sa.Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade the database to `revision`; returns (revision before, revision after)."""
    try:
        before = current_revision(engine)
        with engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                # Batch mode rebuilds a table by copy, DROP and rename; with foreign keys
                # on, SQLite's DROP TABLE would delete or refuse the rows that point at it.
                # The pragma is ignored inside a transaction, so it goes first.
                driver_connection(conn).execute("PRAGMA foreign_keys=OFF")
            try:
                with conn.begin():
                    command.upgrade(_alembic_config(conn), revision)
                    if sqlite:
                        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                        if broken:
                            raise DatabaseNotReady(
                                f"The migration left {len(broken)} row(s) whose foreign key points "
                                f"nowhere (first: {tuple(broken[0])}); nothing was changed."
                            )
            finally:
                if sqlite:
                    driver_connection(conn).execute("PRAGMA foreign_keys=ON")
        return before, current_revision(engine)
    except sa.exc.OperationalError as exc:
        raise DatabaseNotReady(
            f"Cannot reach the database at {describe(engine)}: {exc.orig}. "
            "Check DIALER_DATABASE_URL and that the server is running."
        ) from None


def check_ready(engine: sa.Engine) -> None:
    """Refuse to work on a database that is unreachable or not at the code's schema."""
    try:
        current = current_revision(engine)
    except sa.exc.OperationalError as exc:
        raise DatabaseNotReady(
            f"Cannot reach the database at {describe(engine)}: {exc.orig}. "
            "Check DIALER_DATABASE_URL and that the server is running."
        ) from None
    head = head_revision()
    if current is None:
        raise DatabaseNotReady(
            f"The database at {describe(engine)} has not been initialised; run `dialer init`."
        )
    if current != head:
        raise DatabaseNotReady(
            f"The database at {describe(engine)} is at schema revision {current}, "
            f"this code expects {head}; run `dialer init` to migrate it."
        )
