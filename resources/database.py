"""The project database as a Dagster resource."""

from __future__ import annotations

import dagster as dg
from pydantic import Field, PrivateAttr

from campaigns.core import db
from campaigns.core.config import DatabaseTimeouts, DialerConfig
from resources.settings import from_environment, resolved


class DatabaseResource(dg.ConfigurableResource):
    """The dialer's database, connected to once per run and checked to be at the code's schema."""

    url: str = Field(
        description="The database URL: `DIALER_DATABASE_URL`, else the embedded SQLite file under `DIALER_HOME`."
    )

    connect_timeout_s: float = Field(
        default=DatabaseTimeouts().connect_s,
        description="Opening a PostgreSQL connection, at most: `DIALER_DATABASE_CONNECT_TIMEOUT_S`.",
    )
    sqlite_busy_timeout_s: float = Field(
        default=DatabaseTimeouts().sqlite_busy_s,
        description="Waiting for SQLite's write lock, at most: `DIALER_SQLITE_BUSY_TIMEOUT_S`.",
    )

    sensor_statement_timeout_s: float = Field(
        default=20.0, gt=0,
        description="A sensor's statement or lock wait, at most (PostgreSQL): a stuck query fails the "
                    "evaluation well inside Dagster's 60 s sensor timeout instead of running on in the server.",
    )

    _engine: db.Engine | None = PrivateAttr(default=None)
    _sensor_engine: db.Engine | None = PrivateAttr(default=None)

    @classmethod
    def from_config(cls, cfg: DialerConfig) -> DatabaseResource:
        limits = cfg.batch_timeouts
        return cls(
            url=from_environment(cfg, "DIALER_DATABASE_URL", cfg.database_url),
            connect_timeout_s=limits.connect_s,
            sqlite_busy_timeout_s=limits.sqlite_busy_s,
        )

    def _make_engine(self) -> db.Engine:
        # Batch limits only: a run's long statements are never cut by the daemon's statement limit.
        limits = DatabaseTimeouts(connect_s=self.connect_timeout_s, sqlite_busy_s=self.sqlite_busy_timeout_s)
        return db.make_engine(self.resolved_url(), timeouts=limits)

    def resolved_url(self) -> str:
        """The URL this resource connects to (see `resolved`)."""
        return resolved(self.url) or ""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._engine = self._make_engine()
        db.check_ready(self._engine)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        for engine in (self._engine, self._sensor_engine):
            if engine is not None:
                engine.dispose()
        self._engine = self._sensor_engine = None

    @property
    def engine(self) -> db.Engine:
        if self._engine is None:
            self._engine = self._make_engine()
        return self._engine

    @property
    def sensor_engine(self) -> db.Engine:
        """The engine sensors read with: the batch limits, and a statement and lock limit of
        `sensor_statement_timeout_s` (with the client-side wait bound after it), because a sensor
        evaluation runs every few seconds in the dagster-daemon and must not pile up queries."""
        if self._sensor_engine is None:
            limit = self.sensor_statement_timeout_s
            self._sensor_engine = db.make_engine(self.resolved_url(), timeouts=DatabaseTimeouts(
                connect_s=self.connect_timeout_s, sqlite_busy_s=min(self.sqlite_busy_timeout_s, limit),
                statement_s=limit, lock_s=limit))
        return self._sensor_engine
