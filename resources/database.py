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

    _engine: db.Engine | None = PrivateAttr(default=None)

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
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def engine(self) -> db.Engine:
        if self._engine is None:
            self._engine = self._make_engine()
        return self._engine
