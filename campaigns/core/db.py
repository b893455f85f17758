"""Connecting to the project database and migrating it.

`DIALER_DATABASE_URL` selects the database; the embedded default is a SQLite
file under `DIALER_HOME`. SQLite runs in WAL mode with a busy timeout because
Dagster runs and the daemon write to it at the same time; foreign keys are
switched on so both backends enforce the same schema.
"""

from __future__ import annotations

import re
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
from campaigns.core.errors import (
    ConfigurationError,
    DatabaseNotReady,
    DatabaseRefused,
    DialerError,
)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = int(DatabaseTimeouts().sqlite_busy_s * 1000)  # the default; DIALER_SQLITE_BUSY_TIMEOUT_S

# For code outside `campaigns/` (the daemon, the Dagster resources, the CLI) that holds an
# engine and catches database failures but writes no SQL and does not import SQLAlchemy.
Engine = sa.Engine
Connection = sa.Connection
DatabaseError = sa.exc.SQLAlchemyError
statement_limit = db_deadlines.statement_limit
connection_lost = db_deadlines.connection_lost


# The drivers the dialer is built and tested on; `postgresql://` means psycopg 3.
DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")
_EXAMPLES = "e.g. `sqlite:////path/dialer.sqlite3` or `postgresql+psycopg://user@host:5432/db`"


def count_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    """SQL: how many of the rows meet `condition` (0, not NULL, over no rows)."""
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _shown(raw: str) -> str:
    """A URL as typed, for a message that cannot parse it: what may be a password becomes ***.

    Everything between the user name and the last `@` may be the password (a password holding an
    unescaped `@` or `/` is how a URL fails to parse), so all of it goes; without `://` the user
    name cannot be told from a scheme either, so the credentials go whole.
    """
    scheme, separator, rest = raw.partition("://")
    if not separator:
        scheme, rest = "", raw
    if "@" in rest:
        credentials, _, location = rest.rpartition("@")
        user = credentials.split(":", 1)[0] if separator else ""
        rest = f"{user}:***@{location}" if user else f"***@{location}"
    return _masked_query(f"{scheme}{separator}{rest}")


def _masked_query(text: str) -> str:
    # libpq also takes the password as a query parameter, which SQLAlchemy's rendering leaves visible.
    return re.sub(r"([?&]password=)[^&]*", r"\1***", text, flags=re.IGNORECASE)


def shown_url(url: sa.URL) -> str:
    """A parsed URL for messages and logs, with its password hidden wherever it is written."""
    return _masked_query(url.render_as_string(hide_password=True))


def normalize_url(url: str) -> sa.URL:
    """Parse a database URL, sending plain `postgresql://` URLs through psycopg 3.

    A URL that cannot be used is refused here, before any connection, in one sentence that never
    shows its password (`ConfigurationError`).
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigurationError(
            f"DIALER_DATABASE_URL `{_shown(url)}` is not a database URL (it needs a scheme such as "
            f"`postgresql+psycopg://`); expected {_EXAMPLES}."
        ) from None
    except ValueError:  # SQLAlchemy reads the port with int()
        raise ConfigurationError(
            f"DIALER_DATABASE_URL `{_shown(url)}` has a port that is not a number (or an IPv6 host "
            "without its closing bracket); write it like `postgresql+psycopg://user@host:5432/db`."
        ) from None
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigurationError(
            f"DIALER_DATABASE_URL uses `{parsed.get_backend_name()}`; the dialer supports "
            "`sqlite` and `postgresql+psycopg` only."
        )
    if parsed.drivername not in DRIVERS:
        raise ConfigurationError(
            f"DIALER_DATABASE_URL uses the driver `{parsed.drivername}`; the dialer supports "
            "`sqlite` and `postgresql+psycopg` only."
        )
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise ConfigurationError(
            f"DIALER_DATABASE_URL `{shown_url(parsed)}` has port {parsed.port}; a port is between 1 and 65535."
        )
    if parsed.get_backend_name() == "postgresql" and parsed.query:
        _check_postgres_options(parsed)
    return parsed


def _check_postgres_options(parsed: sa.URL) -> None:
    """Refuse query options libpq does not know now, rather than as a traceback at the first connection."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import make_conninfo

    options = {key: value if isinstance(value, str) else value[-1] for key, value in parsed.query.items()}
    try:
        make_conninfo("", **options)
    except ProgrammingError as exc:
        raise ConfigurationError(
            f"DIALER_DATABASE_URL `{shown_url(parsed)}`: {str(exc).strip()}; the options after `?` are libpq "
            "connection parameters such as sslmode or connect_timeout."
        ) from None


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
    `DialerConfig.database_timeouts`; batch work passes `DialerConfig.batch_timeouts` (no statement or lock
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
    return shown_url(engine.url)


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


# PostgreSQL advisory lock key held by a migration (any constant; 'dialerMG' in ASCII).
MIGRATION_LOCK = 0x6469616C65724D47


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
                    if not sqlite:
                        # Two `dialer init` at once (a migration job beside a rollout): the second
                        # waits here, then finds the schema at head and does nothing.
                        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
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
