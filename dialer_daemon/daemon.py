"""The resident daemon: every dialer interval, per campaign, pace ▸ claim ▸ re-check ▸ dial.

`Daemon` is the loop; each job is a part of its own, testable alone:

- `tick.CampaignTicker` — one tick of one campaign (events, reconcile, capacity,
  pacing, claims, placing calls), with `events.EventReader`, `reconciler.Reconciler`
  and `placing.CallPlacer`;
- `leasekeeper.LeaseKeeper` — which campaigns this daemon paces: heartbeat, renew,
  fair share, take over and hand back, and the fence checked by every claim;
- `upkeep.TableUpkeep` — VACUUM of the churned tables, now and then, in a thread.

Several daemons (`run`): each campaign is ticked only by the holder of its
lease (`campaigns.dialing.leases`); leases are renewed between ticks and by a
keeper thread, spread by fair share, taken over when their holder dies, and the
claim transaction checks the lease's token. SIGTERM (the `stop` event) drains:
no new call is started, the requests in flight are answered and recorded,
claimed rows and leases are handed back, and `run` returns 0. No Dagster here.

Faults (`faults.FaultLog`): the database or the platform going away, the platform refusing
the token or answering outside its contract, a campaign's tick failing — each is logged once
when it starts, reminded now and then, logged once when it ends, and reported by `/healthz`
while it lasts; a failing campaign's ticks back off.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

from campaigns.core.db import DatabaseError, Engine
from campaigns.core.lifecycle import CampaignState, DaemonState
from campaigns.dialing import calls, leases, roster
from campaigns.dialing.roster import RosterEntry
from campaigns.registry.store import RegistryCache
from dialer_daemon.clock import Clock, PlatformClock, SystemClock
from dialer_daemon.faults import (
    DAEMON,
    DATABASE,
    PLATFORM,
    FaultLog,
    classify,
    database_cause,
)
from dialer_daemon.holds import TokenHolds
from dialer_daemon.leasekeeper import LEASE_PERIOD, LeaseKeeper, LeaseLost
from dialer_daemon.metrics import Metrics
from dialer_daemon.placing import CallPlacer
from dialer_daemon.reconciler import Reconciler
from dialer_daemon.report import TickReport
from dialer_daemon.tick import CampaignTicker
from dialer_daemon.upkeep import TableUpkeep
from dialer_daemon.voice import VoiceApiError, VoiceClient

# Names the CLI, the demo, the tests and the benchmarks import from here.
__all__ = ["Daemon", "LeaseLost", "PlatformClock", "SystemClock", "TickReport"]

log = logging.getLogger("dialer.daemon")
TAKEOVER_POLL_S = 0.25  # how often a daemon short of its fair share looks for expired leases
TICK_BACKOFF_MAX_S = 60.0  # the longest a failing campaign's next tick is put off (wall seconds)
# Draining waits this long for the lease keeper's renewal and a VACUUM in progress; each
# database wait has its own deadline, and `dialer daemon` bounds the whole drain.
KEEPER_JOIN_S = 10.0
UPKEEP_JOIN_S = 5.0


class Daemon:
    def __init__(self, engine: Engine, client: VoiceClient, *, clock: Clock | None = None,
                 daemon_id: str | None = None, campaigns: list[int] | None = None, fill_hopper: bool = False,
                 lease_period: timedelta = LEASE_PERIOD, concurrency: int = 8,
                 registry: RegistryCache | None = None) -> None:
        self.engine = engine
        self.client = client
        self.clock = clock or SystemClock()
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.daemon_id = daemon_id or f"{self.host}-{self.pid}-{os.urandom(2).hex()}"
        self.campaign_ids = campaigns
        self.metrics = Metrics()
        self.metrics.daemon_id = self.daemon_id
        self.stop = threading.Event()  # set: drain (no new call), then `run` returns
        self.speed = 1.0  # platform seconds per wall second
        self.started_at: datetime | None = None
        names: dict[int, str] = {}  # campaign id → qualified name: learned by ticks, used in lease logs
        self.faults = FaultLog(on_change=self.metrics.set_faults)
        self.lease_keeper = LeaseKeeper(engine, self.daemon_id, self.host, self.pid, self.metrics, names=names,
                                        lease_period=lease_period, draining=self._draining, faults=self.faults)
        self.placer = CallPlacer(engine, client, concurrency)
        self.ticker = CampaignTicker(
            engine, client, self.daemon_id, clock=self.clock, placer=self.placer,
            reconciler=Reconciler(engine, client, self.placer, draining=self._draining, speed=lambda: self.speed),
            fill_hopper=fill_hopper, fence=self.lease_keeper.confirm, draining=self._draining, names=names,
            holds=TokenHolds(self.faults), registry=registry,
        )
        self.upkeep = TableUpkeep(engine, self.metrics, faults=self.faults)
        self._next_tick: dict[int, float] = {}
        self._failed_ticks: dict[int, int] = {}  # campaign id → ticks failed in a row (their backoff)
        self._campaign_faults: dict[int, str] = {}  # campaign id → the fault its ticks opened, until one works

    def _draining(self) -> bool:
        return self.stop.is_set()  # read each time: the CLI and `run` may hand the daemon their own event

    @property
    def leases(self) -> dict[int, leases.Lease]:
        """The campaigns this daemon holds the lease of, now."""
        return self.lease_keeper.leases

    # -- one tick -----------------------------------------------------------
    def tick(self, campaign_id: int) -> TickReport:
        """Tick one campaign now, and count it in the metrics."""
        began = time.perf_counter()
        report = self.ticker.tick(campaign_id)
        report.seconds = time.perf_counter() - began
        self.metrics.record(report, report.seconds)
        self.metrics.record_faults(self.client.faults)
        return report

    # -- what there is to do ------------------------------------------------------
    def campaigns(self) -> list[RosterEntry]:
        with self.engine.connect() as conn:
            rows = roster.roster(conn, self.campaign_ids)
        # Names before leases: a lease's metrics and logs then never carry a bare campaign id.
        self.ticker.names.update((row.id, row.name) for row in rows if row.name)
        return rows

    def busy(self, campaign_id: int, state: str, now: datetime) -> bool:
        """Calls in flight (any campaign not archived), or prospects an active campaign could
        still dial on the day the run started."""
        # Only `--exit-when-done` asks: the diagnostics (and the ingestion code they read) are
        # not loaded into every daemon.
        from campaigns.reporting.explain import remaining_today

        with self.engine.connect() as conn:
            if calls.live_counts(conn, campaign_id).in_flight:
                return True
            if state != CampaignState.ACTIVE:
                return False
            return remaining_today(conn, campaign_id, now, day_of=self.started_at) > 0

    # -- leases ---------------------------------------------------------------
    def renew_leases(self) -> None:
        self.lease_keeper.renew()

    def balance_leases(self, rows: Iterable[RosterEntry], *, greedy: bool = False) -> None:
        self.lease_keeper.balance(rows, greedy=greedy)

    # -- the loop -------------------------------------------------------------
    def run(self, *, once: bool = False, exit_when_done: bool = False, stop: threading.Event | None = None,
            speed: float = 1.0) -> int:
        """Tick the campaigns this daemon leases, each every dialer interval of the platform's clock.

        Returns 0 when stopped (the `stop` event: drain) or, with `exit_when_done`, when no
        campaign has a call in flight or a prospect left to dial today.
        """
        if stop is not None:
            self.stop = stop
        self.client.halt = self.stop  # from SIGTERM on, no request to the platform starts
        self.speed = max(speed, 1e-6)
        self.started_at = self.clock.now()
        self.metrics.state = DaemonState.RUNNING
        self.lease_keeper.fenced = True
        self.lease_keeper.refuse_duplicate_id()
        log.info("started", extra={"event": "started", "daemon": self.daemon_id,
                                   "lease_period_s": self.lease_keeper.lease_period.total_seconds()})
        keeper_stop = threading.Event()
        keeper = threading.Thread(target=self.lease_keeper.keep, args=(keeper_stop,), name="lease-keeper",
                                  daemon=True)
        keeper.start()
        try:
            while not self.stop.is_set():
                try:
                    rows = self.campaigns()
                    self.metrics.record_roster(rows)
                    self.balance_leases(rows, greedy=once)
                except DatabaseError as exc:
                    self.faults.down(DATABASE, database_cause(exc), kind="unreachable", exc=exc)
                    self.metrics.loop_done(f"database: {database_cause(exc)}")
                    self.stop.wait(1.0)
                    continue
                failed = self._tick_leased(rows, once)
                if DATABASE not in failed and self.faults.up(DATABASE):  # this loop read and wrote it: back
                    self._retry_failed_ticks()
                self.upkeep.maybe_start()
                self.metrics.loop_done()
                if once:
                    return 0
                if exit_when_done and self._done(rows):
                    return 0
                wall = time.monotonic()
                upcoming = min((self._next_tick.get(cid, wall) for cid in self.leases), default=wall + 1.0)
                poll = TAKEOVER_POLL_S if self.lease_keeper.short_of_share else 1.0
                self.stop.wait(max(0.05, min(poll, upcoming - wall)))
            return 0
        finally:
            keeper_stop.set()
            keeper.join(timeout=KEEPER_JOIN_S)
            self._shutdown()

    def _tick_leased(self, rows: list[RosterEntry], once: bool) -> set[str]:
        """Tick each leased campaign that is due; returns the faults (names) its ticks ran into.

        A tick that fails is told through the fault log (once per fault, not per tick) and the
        campaign's next tick waits twice as long each time (at most TICK_BACKOFF_MAX_S).
        """
        failed: set[str] = set()
        ticked = False
        for row in rows:
            if self.stop.is_set():
                break
            if row.id not in self.leases or row.state == CampaignState.ARCHIVED:
                continue
            wall = time.monotonic()
            if not once and wall < self._next_tick.get(row.id, 0.0):
                continue
            interval = row.dialer_interval_s / self.speed
            self._next_tick[row.id] = wall + interval
            name = self.ticker.names.get(row.id, str(row.id))
            try:
                report = self.tick(row.id)
            except LeaseLost as exc:
                log.warning("%s", exc, extra={"event": "lease_lost", "campaign_id": row.id})
                self.lease_keeper.drop(row.id)
                continue
            except Exception as exc:
                if isinstance(exc, VoiceApiError) and not exc.sent:
                    continue  # the daemon is stopping: nothing went wrong
                what, kind, cause = classify(exc, name)
                self.faults.down(what, cause, kind=kind, exc=exc)
                failed.add(what)
                if what not in (DATABASE, PLATFORM):
                    self._campaign_faults[row.id] = what
                misses = self._failed_ticks[row.id] = self._failed_ticks.get(row.id, 0) + 1
                self._next_tick[row.id] = wall + min(TICK_BACKOFF_MAX_S, interval * 2 ** misses)
                continue
            ticked = True
            self._failed_ticks.pop(row.id, None)
            if row.id in self._campaign_faults:
                self.faults.up(self._campaign_faults.pop(row.id))
            log.info("tick %s", report.campaign, extra={"event": "tick", **report.as_dict()})
        if ticked and PLATFORM not in failed and self.faults.up(PLATFORM):
            self._retry_failed_ticks()
        return failed

    def _retry_failed_ticks(self) -> None:
        """A dependency is back: the campaigns whose ticks failed meanwhile tick now, not after their backoff."""
        for campaign_id in self._failed_ticks:
            self._next_tick[campaign_id] = 0.0
        self._failed_ticks.clear()

    def _done(self, rows: list[RosterEntry]) -> bool:
        try:
            now = self.clock.now()
            done = not any(self.busy(row.id, row.state, now) for row in rows if row.state != CampaignState.ARCHIVED)
        except Exception as exc:  # an outage is not "done": carry on
            if not (isinstance(exc, VoiceApiError) and not exc.sent):
                what, kind, cause = classify(exc)
                self.faults.down(what, cause, kind=kind, exc=exc)
            return False
        self.faults.up(DAEMON)
        return done

    def _shutdown(self) -> None:
        """Drain's end: requests answered, claims and leases handed back, heartbeat gone."""
        self.metrics.state = DaemonState.DRAINING
        self.metrics.draining.set(1)
        self.placer.shutdown()
        self.upkeep.join(timeout=UPKEEP_JOIN_S)
        self.lease_keeper.hand_back()
        log.info("stopped", extra={"event": "stopped", "daemon": self.daemon_id})
