"""Is the data the dialer runs on fresh? The three answers Dagster's freshness checks show.

- each active campaign's hopper was filled within two fill intervals while a window is open
  (`dialing.hopper_watch`);
- no prospect list waits in the inbox more than ten minutes (`ingestion.inbox_watch`);
- the National DNC Registry version the opted-in campaigns dial against is young enough
  (`dialing.national_registry.registry_health`, the registry's 31-day rule).

Each rule lives in its module; this reads all three at one instant for the sensor that
reports them together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from campaigns.dialing.hopper_watch import HopperWatch, hopper_watch
from campaigns.dialing.national_registry import RegistryHealth, registry_health
from campaigns.ingestion.bucket import Bucket
from campaigns.ingestion.inbox_watch import WaitingFile, inbox_waiting


@dataclass(frozen=True)
class Freshness:
    at: datetime
    hoppers: list[HopperWatch]
    inbox: list[WaitingFile]
    registry: RegistryHealth


def freshness(engine: sa.Engine, bucket: Bucket, now: datetime) -> Freshness:
    """The hoppers, the inbox and the registry as the freshness rules see them at `now`."""
    with engine.connect() as conn:
        hoppers = hopper_watch(conn, now)
        registry = registry_health(conn, now)
    return Freshness(now, hoppers, inbox_waiting(engine, bucket, now), registry)
