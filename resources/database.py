"""The project database as a Dagster resource."""

from __future__ import annotations

import dagster as dg
from pydantic import Field, PrivateAttr

from campaigns.core import db
from campaigns.core.config import DialerConfig
from resources.settings import from_environment, resolved


class DatabaseResource(dg.ConfigurableResource):
    """The dialer's database, connected to once per run and checked to be at the code's schema."""

    url: str = Field(
        description="The database URL: `DIALER_DATABASE_URL`, else the embedded SQLite file under `DIALER_HOME`."
    )

    _engine: db.Engine | None = PrivateAttr(default=None)

    @classmethod
    def from_config(cls, cfg: DialerConfig) -> DatabaseResource:
        return cls(url=from_environment(cfg, "DIALER_DATABASE_URL", cfg.database_url))

    def resolved_url(self) -> str:
        """The URL this resource connects to (see `resolved`)."""
        return resolved(self.url) or ""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._engine = db.make_engine(self.resolved_url())
        db.check_ready(self._engine)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def engine(self) -> db.Engine:
        if self._engine is None:
            self._engine = db.make_engine(self.resolved_url())
        return self._engine
