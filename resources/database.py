"""The project database as a Dagster resource."""


import dagster as dg
import sqlalchemy as sa
from pydantic import PrivateAttr

from campaigns.core import db
from campaigns.core.config import DialerConfig


class DatabaseResource(dg.ConfigurableResource):
    """The dialer's database: `DIALER_DATABASE_URL`, else the embedded SQLite file under `DIALER_HOME`."""

    url: str | None = None

    _engine: sa.Engine | None = PrivateAttr(default=None)

    def resolved_url(self) -> str:
        # Resolved at run time, not when definitions load, so `dagster dev`
        # and the CLI see the same environment the run does.
        return self.url or DialerConfig.from_env().database_url

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._engine = db.make_engine(self.resolved_url())
        db.check_ready(self._engine)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = db.make_engine(self.resolved_url())
        return self._engine
