"""Keeping the dialing tables healthy under churn (PostgreSQL).

Every call rewrites rows: a hopper row is inserted, claimed and deleted; an
attempt is inserted and updated as it rings, is answered and ends; its
prospect is updated twice; the daemons renew leases and heartbeats every
loop. Each of those leaves a dead tuple behind until VACUUM reclaims it.

Autovacuum does this when it is on (migration 0006 makes it react sooner on
the small, hot tables). It may be off, or too slow for a busy hopper, so the
daemons also look after these tables themselves: `vacuum_due` finds the ones
whose dead tuples passed autovacuum's own rule (threshold + scale × live rows)
and have not been vacuumed in the last 15 s, and `vacuum` runs a plain (lazy)
VACUUM on them — it does not block reads or writes — under an advisory lock,
so only one daemon at a time does it. SQLite has no dead tuples to reclaim.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from campaigns.core.db import statement_limit

CHURNED = ("hopper", "call_attempts", "prospects", "campaign_runtime", "campaign_leases", "daemons")
DEAD_THRESHOLD = 500
DEAD_SCALE = 0.1
MIN_INTERVAL = timedelta(seconds=15)
LOCK_KEY = 0x6469616C6572  # "dialer": one vacuuming daemon at a time
VACUUM_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class TableHealth:
    table: str
    live: int
    dead: int


def health(conn: sa.Connection) -> list[TableHealth]:
    """Live and dead tuples of the churned tables (PostgreSQL's statistics; empty on SQLite)."""
    if conn.dialect.name != "postgresql":
        return []
    rows = conn.execute(
        sa.text("SELECT relname, n_live_tup, n_dead_tup FROM pg_stat_user_tables "
                "WHERE schemaname = current_schema() AND relname = ANY(:names) ORDER BY relname"),
        {"names": list(CHURNED)},
    ).all()
    return [TableHealth(name, int(live), int(dead)) for name, live, dead in rows]


def vacuum_due(conn: sa.Connection) -> list[TableHealth]:
    """Churned tables past threshold + scale × live dead tuples, not vacuumed for MIN_INTERVAL."""
    if conn.dialect.name != "postgresql":
        return []
    rows = conn.execute(
        sa.text(
            "SELECT relname, n_live_tup, n_dead_tup FROM pg_stat_user_tables "
            "WHERE schemaname = current_schema() AND relname = ANY(:names) "
            "AND n_dead_tup > :threshold + :scale * n_live_tup "
            "AND coalesce(greatest(last_vacuum, last_autovacuum), '-infinity') < now() - make_interval(secs => :gap) "
            "ORDER BY n_dead_tup DESC"
        ),
        {"names": list(CHURNED), "threshold": DEAD_THRESHOLD, "scale": DEAD_SCALE,
         "gap": MIN_INTERVAL.total_seconds()},
    ).all()
    return [TableHealth(name, int(live), int(dead)) for name, live, dead in rows]


def vacuum(engine: sa.Engine) -> list[TableHealth]:
    """VACUUM the churned tables that need it, unless another daemon is at it; returns those vacuumed."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if not conn.execute(sa.select(sa.func.pg_try_advisory_lock(LOCK_KEY))).scalar_one():
            return []
        try:
            due = vacuum_due(conn)
            done = []
            # A VACUUM of a big table outlasts the daemon's statement timeout, which is meant for ticks.
            with statement_limit(conn, VACUUM_TIMEOUT_S):
                for table in due:
                    # VACUUM takes no bound parameters: the name must be one of ours, never input.
                    if table.table in CHURNED:
                        conn.exec_driver_sql(f'VACUUM (ANALYZE) "{table.table}"')
                        done.append(table)
            return done
        finally:
            if not conn.invalidated:  # a lost session took its lock with it; unlocking would hide why
                conn.execute(sa.select(sa.func.pg_advisory_unlock(LOCK_KEY)))
