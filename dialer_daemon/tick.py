"""One tick of one campaign: events ▸ reconcile ▸ capacity ▸ (fill) ▸ pace ▸ claim ▸ re-check ▸ dial.

1. read the platform's events after the campaign's cursor and apply them
   (`events.EventReader`), cursor and effects in one transaction;
2. ask the platform about live attempts it has gone quiet on (`reconciler.Reconciler`);
3. read agent-session capacity, record it (it sizes the hopper level);
4. if the campaign is not active, stop here: calls in flight finish and are
   recorded, no new call is placed; likewise while the platform refuses the token
   for its calls (`holds.TokenHolds`: a probe call now and then);
5. pace (`campaigns.dialing.pace.decide`: ratio or predictive, the pacer's state kept), claim that many hopper rows
   (checking the lease in the same transaction: `fence`), re-check each with the
   fill's rules, record the attempt (committed before the request), place the call
   with the attempt's idempotency key (`placing.CallPlacer`). A campaign checked against the
   National DNC Registry is re-checked against the version held in memory (`RegistryCache`,
   which notices a new one within 30 s), whether or not check-on-dial is set; its attempts
   record that version.

Time is the platform's: `now` comes from the clock object, which follows
`GET /v1/clock` when the daemon dials a simulator running fast.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime, timedelta

from campaigns.core.db import Connection, Engine
from campaigns.core.lifecycle import CampaignState, FillOrigin
from campaigns.core.model import Attempt, Campaign, ClaimedProspect
from campaigns.dialing import calls, hopper, pace, roster, runtime
from campaigns.dialing.pace import Sessions
from campaigns.registry.store import RegistryCache, RegistrySet
from campaigns.setup import registry
from dialer_daemon.clock import Clock, SystemClock
from dialer_daemon.events import EventReader
from dialer_daemon.holds import TokenHolds
from dialer_daemon.placing import CallPlacer, call_metadata
from dialer_daemon.reconciler import Reconciler
from dialer_daemon.report import TickReport
from dialer_daemon.voice import VoiceClient

log = logging.getLogger("dialer.daemon")
ABANDON_WINDOW = timedelta(hours=1)
ABANDON_REFRESH_S = 60.0  # wall seconds between abandon-rate queries per campaign


def unfenced(conn: Connection, campaign_id: int, name: str) -> None:
    """The fence of a tick run alone (tests, benchmarks): every claim is allowed."""


class CampaignTicker:
    def __init__(self, engine: Engine, client: VoiceClient, daemon_id: str, *, clock: Clock | None = None,
                 placer: CallPlacer | None = None, reconciler: Reconciler | None = None,
                 fill_hopper: bool = False, fence: Callable[[Connection, int, str], None] = unfenced,
                 draining: Callable[[], bool] = lambda: False, names: dict[int, str] | None = None,
                 holds: TokenHolds | None = None, registry: RegistryCache | None = None) -> None:
        self.engine = engine
        self.client = client
        self.daemon_id = daemon_id
        self.clock = clock or SystemClock()
        self.placer = placer or CallPlacer(engine, client)
        self.events = EventReader(engine, client)
        self.reconciler = reconciler or Reconciler(engine, client, self.placer, draining=draining)
        self.fill_hopper = fill_hopper
        self.fence = fence  # raises (LeaseLost) when this daemon may no longer claim for the campaign
        self.draining = draining  # True once the daemon stops: no new call
        self.names = {} if names is None else names  # campaign id → qualified name, learned here
        self._abandon_checked: dict[int, float] = {}
        self.holds = holds or TokenHolds()  # campaigns whose calls the platform refused for the token
        # The National DNC Registry's current version, in memory; a new one is noticed within 30 s.
        self.registry = registry or RegistryCache(engine)

    def tick(self, campaign_id: int) -> TickReport:
        now = self.clock.now()
        with self.engine.connect() as conn:
            campaign, name = roster.paced_campaign(conn, campaign_id)
        self.names[campaign_id] = name
        report = TickReport(name, now, campaign.state)
        self.events.apply(campaign, name, now, report)
        self._abandon_rate(campaign_id, now, report)
        self.reconciler.reconcile(campaign, name, now, report,
                                  self.registry.get() if campaign.dnc_national_registry else None)
        capacity = self.client.capacity(name)
        with self.engine.begin() as conn:
            runtime.record_sessions(conn, campaign_id, capacity.total, now)
        if self.fill_hopper:
            with self.engine.connect() as conn:
                due = bool(hopper.campaigns_due(conn, now, only=[campaign_id]))
            if due:
                fill = hopper.fill_campaign(self.engine, campaign_id, now, filled_by=FillOrigin.DAEMON,
                                           filler_id=self.daemon_id)
                report.filled, report.more_dialable = fill.queued, fill.reached_level
        if campaign.state != CampaignState.ACTIVE:
            return report
        limit = self.holds.claim_limit(campaign_id)
        if limit == 0:
            report.held = "the platform refused the token placing its calls"
            return report
        with self.engine.begin() as conn:
            self.fence(conn, campaign_id, name)  # the pacer's state is the lease holder's to write
            report.decision = pace.decide(conn, campaign, Sessions(capacity.total, capacity.idle, capacity.wrap_up),
                                          now)
        placed = report.placed
        self.dial(campaign, name, report.decision.calls if limit is None else min(limit, report.decision.calls),
                  now, report)
        if report.token_refused:
            self.holds.refused(campaign_id, name, report.token_refused)
        elif report.placed > placed:
            self.holds.accepted(campaign_id, name)
        return report

    def _abandon_rate(self, campaign_id: int, now: datetime, report: TickReport) -> None:
        """The last hour's abandon rate, from the database (so it is every daemon's calls), once a minute;
        and, as seldom, whether the last hopper fill (whoever ran it: this daemon, `dialer hopper fill`,
        the `hopper` asset) left prospects dialable — an index probe, not a count of the dialable."""
        wall = time.monotonic()
        if wall - self._abandon_checked.get(campaign_id, -ABANDON_REFRESH_S) < ABANDON_REFRESH_S:
            return
        self._abandon_checked[campaign_id] = wall
        with self.engine.connect() as conn:
            abandoned, answered = calls.abandon_counts(conn, campaign_id, now - ABANDON_WINDOW, now)
            fill = hopper.last_fill(conn, campaign_id)
        report.abandon_rate = abandoned / answered if answered else 0.0
        if fill is not None:
            report.more_dialable = fill.reached_level

    def dial(self, campaign: Campaign, name: str, count: int, now: datetime, report: TickReport) -> None:
        """Claim up to `count` rows, re-check each, record its attempt and place its call."""
        if count <= 0 or self.draining():
            return
        # The National DNC Registry version these calls are checked against (opted-in campaigns),
        # asked for before claiming: a failure to read it leaves no row claimed.
        registry_set = self.registry.get() if campaign.dnc_national_registry else None
        with self.engine.begin() as conn:
            self.fence(conn, campaign.id, name)
            claimed = calls.claim(conn, campaign.id, self.daemon_id, count, now)
        report.claimed = len(claimed)
        with self.engine.connect() as conn:
            dispositions = registry.dispositions(conn, campaign.id)
        pending = [row.hopper_id for row in claimed]
        in_flight: list[tuple[Attempt, Future]] = []
        try:
            if registry_set is not None:
                # The claimed numbers' area codes read in now, before any transaction opens.
                registry_set.listed([row.prospect.phone_e164 for row in claimed])
            for row in claimed:
                if self.draining():
                    break  # draining: no new call; the rest go back to the hopper below
                attempt = self._start(campaign, row, now, report, registry_set)  # its transaction removes the row
                pending.remove(row.hopper_id)
                if attempt is not None:
                    metadata = call_metadata(dispositions, attempt)
                    in_flight.append((attempt, self.placer.submit(campaign, name, attempt, metadata)))
        finally:
            # Every request sent is answered (or times out) and recorded, even when interrupted.
            for attempt, future in in_flight:
                self.placer.record(campaign, attempt, future.result(), now, report)
            if pending:  # give the rows not dialed back to the hopper's next fill
                with self.engine.begin() as conn:
                    calls.give_back(conn, pending)

    def _start(self, campaign: Campaign, row: ClaimedProspect, now: datetime, report: TickReport,
               registry_set: RegistrySet | None = None) -> Attempt | None:
        """Re-check a claimed row and record its attempt (committed before any request)."""
        with self.engine.begin() as conn:
            reasons = calls.recheck(conn, campaign, row, now, registry_set)
            if reasons:
                calls.release(conn, row.hopper_id)
                for code in dict.fromkeys(r.code for r in reasons):
                    report.released[code] += 1
                log.info("released %s: %s", row.prospect.phone_e164, "; ".join(r.message for r in reasons),
                         extra={"event": "released", "campaign": report.campaign})
                return None
            attempt = calls.start_attempt(conn, campaign, row, self.daemon_id, now, registry_set)
        if attempt is None:
            report.released["changed"] += 1
        return attempt
