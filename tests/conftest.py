"""Fixtures that run database tests on SQLite and on PostgreSQL.

Each test gets its own database, migrated to head: a copy of a SQLite file
migrated once per session, or a PostgreSQL database created from a migrated
template (`CREATE DATABASE … TEMPLATE`), so tests run in any order.

PostgreSQL comes from `DIALER_TEST_POSTGRES_URL`. Unset, the PostgreSQL cases
skip with that reason; set, an unreachable server fails them, and any skipped
PostgreSQL case fails the session, so CI can never pass on SQLite alone.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from campaigns.core import db

# pytest-xdist's workers (`make test`) inherit COLUMNS=80 and LINES=24, and rich fixes a console's
# width from COLUMNS when the console is made (the CLI's, at import): tables would be 80 wide
# whatever a test's environment says. Without them each command reads its width when it prints.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)

POSTGRES_ENV = "DIALER_TEST_POSTGRES_URL"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def _postgres_admin_url() -> sa.URL | None:
    raw = os.environ.get(POSTGRES_ENV)
    return db.normalize_url(raw) if raw else None


def _admin_engine(url: sa.URL) -> sa.Engine:
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


class PostgresFactory:
    """Creates throwaway databases from one migrated template on the test server."""

    def __init__(self, admin_url: sa.URL) -> None:
        self.admin_url = admin_url
        self.admin = _admin_engine(admin_url)
        self.prefix = f"dialer_t{uuid.uuid4().hex[:8]}"
        self.template: str | None = None
        self.created: list[str] = []

    def _create(self, template: str | None = None) -> str:
        name = f"{self.prefix}_{len(self.created)}"
        clause = f" TEMPLATE {template}" if template else ""
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"{clause}')
        self.created.append(name)
        return name

    def url_for(self, name: str) -> str:
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def migrated(self) -> str:
        if self.template is None:
            name = self._create()
            engine = db.make_engine(self.url_for(name))
            db.migrate(engine)
            engine.dispose()
            self.template = name
        return self.url_for(self._create(self.template))

    def blank(self) -> str:
        return self.url_for(self._create())

    def drop(self, url: str) -> None:
        name = sa.make_url(url).database
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        for name in reversed(self.created):
            with self.admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_factory() -> Iterator[PostgresFactory | None]:
    url = _postgres_admin_url()
    if url is None:
        yield None
        return
    factory = PostgresFactory(url)
    try:
        with factory.admin.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        pytest.fail(f"{POSTGRES_ENV} is set but PostgreSQL is unreachable: {exc.orig}")
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    engine = db.make_engine(f"sqlite:///{path}")
    db.migrate(engine)
    # Closing the last connection checkpoints the WAL into the file we copy.
    engine.dispose()
    assert not path.with_name(path.name + "-wal").exists()
    return path


def _need_postgres(factory: PostgresFactory | None) -> PostgresFactory:
    if factory is None:
        pytest.skip(f"PostgreSQL case: set {POSTGRES_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    return factory


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def db_url(backend, request, tmp_path) -> Iterator[str]:
    """A fresh database migrated to head, on each backend."""
    if backend == "sqlite":
        path = tmp_path / "dialer.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    factory = _need_postgres(request.getfixturevalue("postgres_factory"))
    url = factory.migrated()
    yield url
    factory.drop(url)


@pytest.fixture
def blank_db_url(backend, request, tmp_path) -> Iterator[str]:
    """A fresh, empty database (not migrated), on each backend."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'blank.sqlite3'}"
        return
    factory = _need_postgres(request.getfixturevalue("postgres_factory"))
    url = factory.blank()
    yield url
    factory.drop(url)


@pytest.fixture
def engine(db_url) -> Iterator[sa.Engine]:
    eng = db.make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def dialer_env(db_url, tmp_path, monkeypatch) -> dict[str, str]:
    """The environment a `dialer` command sees: this test's database and home."""
    env = {"DIALER_DATABASE_URL": db_url, "DIALER_HOME": str(tmp_path / "home")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def pytest_sessionfinish(session, exitstatus) -> None:
    if not os.environ.get(POSTGRES_ENV):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    skipped = [
        r for r in reporter.stats.get("skipped", []) if "postgres" in getattr(r, "keywords", {})
    ]
    if skipped:
        reporter.write_line(
            f"{len(skipped)} PostgreSQL case(s) skipped although {POSTGRES_ENV} is set: "
            "failing the session.",
            red=True,
        )
        session.exitstatus = 1
