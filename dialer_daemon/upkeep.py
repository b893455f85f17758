"""Table upkeep between ticks: now and then, in a thread, VACUUM the churned tables past
their dead-tuple limit (`campaigns.dialing.maintenance`; PostgreSQL only)."""

from __future__ import annotations

import logging
import threading
import time

from campaigns.core.db import DatabaseError, Engine, connection_lost
from campaigns.dialing import maintenance
from dialer_daemon.faults import DATABASE, FaultLog, database_cause
from dialer_daemon.metrics import Metrics

log = logging.getLogger("dialer.daemon")
MAINTENANCE_EVERY_S = 10.0  # wall seconds between looks at the churned tables' dead tuples
MAINTENANCE = "table maintenance"


class TableUpkeep:
    def __init__(self, engine: Engine, metrics: Metrics, every_s: float = MAINTENANCE_EVERY_S, *,
                 faults: FaultLog | None = None) -> None:
        self.engine = engine
        self.metrics = metrics
        self.faults = faults or FaultLog()
        self.every_s = every_s
        self._thread: threading.Thread | None = None
        self._last = 0.0  # time.monotonic() of the last round started

    def maybe_start(self) -> bool:
        """Start a round unless one ran within `every_s`, one is still running, or this is SQLite."""
        if self.engine.dialect.name != "postgresql" or time.monotonic() - self._last < self.every_s:
            return False
        if self._thread is not None and self._thread.is_alive():
            return False
        self._last = time.monotonic()
        self._thread = threading.Thread(target=self.round, name="maintenance", daemon=True)
        self._thread.start()
        return True

    def round(self) -> None:
        """One round: VACUUM what needs it, then record every churned table's dead tuples."""
        try:
            vacuumed = maintenance.vacuum(self.engine)
            with self.engine.connect() as conn:
                tables = maintenance.health(conn)
            self.metrics.record_tables(tables, vacuumed)
            if vacuumed:
                log.info("vacuumed %s", ", ".join(v.table for v in vacuumed),
                         extra={"event": "vacuum", "tables": {v.table: v.dead for v in vacuumed}})
        except DatabaseError as exc:  # the next round retries
            if connection_lost(exc):
                self.faults.down(DATABASE, database_cause(exc), kind="unreachable", exc=exc)
            else:
                self.faults.down(MAINTENANCE, database_cause(exc), exc=exc)
        else:
            self.faults.up(MAINTENANCE)

    def join(self, timeout: float) -> None:
        """Wait for a round in progress (the daemon is stopping)."""
        if self._thread is not None:
            self._thread.join(timeout=timeout)
