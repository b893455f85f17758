"""The leases of one daemon: which campaigns it paces (`campaigns.dialing.leases`).

Between ticks the daemon's loop balances them: heartbeat, renew, take free or
expired leases up to the fair share and hand back any above it. A thread of its
own (`keep`) renews them every third of a lease period, so a long tick (a
platform timing out) never outlives a lease. The claim transaction checks the
lease's token (`confirm`), so a daemon that lost a campaign places no call for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import timedelta

from campaigns.core.db import Connection, DatabaseError, Engine
from campaigns.core.errors import DialerError
from campaigns.core.lifecycle import CampaignState, DaemonState
from campaigns.dialing import calls, leases
from campaigns.dialing.roster import RosterEntry
from dialer_daemon.faults import DATABASE, FaultLog, database_cause
from dialer_daemon.metrics import Metrics

log = logging.getLogger("dialer.daemon")
LEASE_PERIOD = timedelta(seconds=15)


class LeaseLost(Exception):
    """Another daemon holds the campaign now: this tick places no call."""


class LeaseKeeper:
    def __init__(self, engine: Engine, daemon_id: str, host: str, pid: int, metrics: Metrics, *,
                 names: dict[int, str], lease_period: timedelta = LEASE_PERIOD,
                 draining: Callable[[], bool] = lambda: False, faults: FaultLog | None = None) -> None:
        self.engine = engine
        self.daemon_id = daemon_id
        self.host, self.pid = host, pid
        self.metrics = metrics
        self.names = names  # campaign id → qualified name, as the ticks learn them (for logs and metrics)
        self.lease_period = lease_period
        self.draining = draining
        self.leases: dict[int, leases.Lease] = {}
        self.lock = threading.Lock()  # the loop and the keeper thread both update `leases`
        self.fenced = False  # set by the daemon's `run`: claims need the campaign's lease
        self.short_of_share = False
        self.faults = faults or FaultLog()

    def _name(self, campaign_id: int) -> str:
        return self.names.get(campaign_id, str(campaign_id))

    def renew(self) -> None:
        """Heartbeat and renew the leases still ours (the keeper thread, every third of a period)."""
        with self.lock, self.engine.begin() as conn:
            now_db = leases.db_now(conn)
            leases.heartbeat(conn, self.daemon_id, self.host, self.pid,
                             DaemonState.DRAINING if self.draining() else DaemonState.RUNNING, now_db)
            kept = leases.renew(conn, self.daemon_id, self.leases, now_db, self.lease_period)
            for campaign_id in set(self.leases) - set(kept):
                name = self.names.get(campaign_id, campaign_id)
                log.warning("lost the lease of campaign %s", name, extra={"event": "lease_lost", "campaign": name})
            self.leases = kept

    def refuse_duplicate_id(self) -> None:
        """Two live daemons under one `--id` would share leases and claims: refuse to start."""
        with self.engine.connect() as conn:
            now_db = leases.db_now(conn)
            clash = [d for d in leases.live_daemons(conn, now_db, self.lease_period)
                     if d.id == self.daemon_id and (d.host, d.pid) != (self.host, self.pid)]
        if clash:
            raise DialerError(
                f"another daemon is running as {self.daemon_id!r} (pid {clash[0].pid} on {clash[0].host}, "
                f"heartbeat {clash[0].heartbeat_at:%H:%M:%S} UTC); give each daemon its own --id."
            )

    def keep(self, stop: threading.Event) -> None:
        """Renew on its own clock (a thread) until `stop` is set."""
        while not stop.wait(self.lease_period.total_seconds() / 3):
            try:
                self.renew()
            except DatabaseError as exc:  # the loop says when the database is back
                self.faults.down(DATABASE, database_cause(exc), kind="unreachable", exc=exc)
            except Exception as exc:
                self.faults.down("the lease keeper", f"{type(exc).__name__}: {exc}", exc=exc)
            else:
                self.faults.up("the lease keeper")

    def balance(self, rows: Iterable[RosterEntry], *, greedy: bool = False) -> None:
        """Heartbeat, renew, then take free leases up to the fair share and hand back any above it."""
        before = {cid: self._name(cid) for cid in self.leases}
        wanted = [row.id for row in rows if row.state != CampaignState.ARCHIVED]
        self.renew()
        with self.lock:
            with self.engine.begin() as conn:
                now_db = leases.db_now(conn)
                leases.forget_dead_daemons(conn, now_db, 10 * self.lease_period)
                running = [d for d in leases.live_daemons(conn, now_db, self.lease_period) if d.state == DaemonState.RUNNING]
                share = len(wanted) if greedy else leases.fair_share(len(wanted), len(running))
                mine = [cid for cid in wanted if cid in self.leases]
                extra = mine[share:] if len(mine) > share else []
                if extra and len(running) > 1:
                    leases.release(conn, self.daemon_id, extra)
                    self.leases = {cid: lease for cid, lease in self.leases.items() if cid not in extra}
                    log.info("handed back %d lease(s) for the fair share of %d", len(extra), share,
                             extra={"event": "lease_released", "campaigns": extra})
            # Start at a different campaign per daemon, so replicas rarely race for the same row;
            # one short transaction per lease, so two daemons never wait on each other's rows.
            free = [cid for cid in wanted if cid not in self.leases]
            if free:
                start = sum(self.daemon_id.encode()) % len(free)
                free = free[start:] + free[:start]
            for cid in free:
                if len(self.leases) >= share:
                    break
                with self.engine.begin() as conn:
                    lease = leases.acquire(conn, cid, self.daemon_id, leases.db_now(conn), self.lease_period)
                    if lease is None:
                        continue
                    returned = leases.release_claims(conn, cid)
                self.leases = {**self.leases, cid: lease}
                log.info("took the lease of campaign %s (token %d)%s", cid, lease.token,
                         f", {returned} claimed row(s) of its last holder returned" if returned else "",
                         extra={"event": "lease_acquired", "campaign_id": cid, "token": lease.token})
        # Short of its share, a daemon looks again soon: a dead holder's leases are taken within
        # a quarter second of expiring, i.e. within one lease period of its death.
        self.short_of_share = len(self.leases) < share
        held = {cid: self._name(cid) for cid in self.leases}
        self.metrics.record_leases(held, [name for cid, name in before.items() if cid not in held])

    def confirm(self, conn: Connection, campaign_id: int, name: str) -> None:
        """In the claim's transaction: raise LeaseLost unless the campaign's lease is still ours.

        Fenced only under `run`; a tick called alone (tests, benchmarks) claims freely.
        """
        lease = self.leases.get(campaign_id)
        if self.fenced and (lease is None or not leases.still_held(conn, lease, self.daemon_id)):
            raise LeaseLost(f"campaign {name}: this daemon no longer holds its lease")

    def drop(self, campaign_id: int) -> None:
        """Forget a lease a tick found lost."""
        with self.lock:
            self.leases = {cid: lease for cid, lease in self.leases.items() if cid != campaign_id}

    def hand_back(self) -> None:
        """Drain's end: claimed rows and leases handed back, the heartbeat row gone."""
        try:
            with self.engine.begin() as conn:
                calls.give_back_all(conn, self.daemon_id)
                leases.release(conn, self.daemon_id, list(self.leases))
                leases.forget_daemon(conn, self.daemon_id)
        except DatabaseError as exc:
            log.warning("could not hand the leases back (%s); they expire within %s", database_cause(exc),
                        self.lease_period, extra={"event": "hand_back_failed"})
            log.debug("hand back", exc_info=exc)
        released = {cid: self._name(cid) for cid in self.leases}
        self.leases = {}
        self.metrics.record_leases({}, list(released.values()))
