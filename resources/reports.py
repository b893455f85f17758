"""Where the daily reports are written, as a Dagster resource."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from campaigns.core.config import DialerConfig


class ReportsResource(dg.ConfigurableResource):
    """The folder the report exports (the calls CSV per campaign and day) are written to."""

    folder: str = Field(description="`<DIALER_HOME>/reports`.")

    @classmethod
    def from_config(cls, cfg: DialerConfig) -> ReportsResource:
        return cls(folder=str(cfg.reports_dir))

    @property
    def reports_dir(self) -> Path:
        """The folder as a path: what `reports.build(..., reports_dir=…)` takes."""
        return Path(self.folder)
