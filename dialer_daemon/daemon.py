"""The resident daemon: every dialer interval, per campaign, pace ▸ claim ▸ re-check ▸ dial.

One tick of one campaign (DESIGN.md §1, issue 5):

1. read the platform's events after the campaign's cursor and apply them
   (`campaigns.calls.apply_event`), cursor and effects in one transaction;
2. ask the platform about live attempts it has gone quiet on (reconcile);
3. read agent-session capacity, record it (it sizes the hopper level);
4. if the campaign is not active, stop here: calls in flight finish and are
   recorded, no new call is placed;
5. pace (`campaigns.pacing.calls_to_place`), claim that many hopper rows,
   re-check each with the fill's rules, record the attempt (committed before
   the request), place the call with the attempt's idempotency key.

Time is the platform's: `now` comes from the clock object, which follows
`GET /v1/clock` when the daemon dials a simulator running fast. No Dagster here.

Several daemons (`run`): each campaign is ticked only by the holder of its
lease (`campaigns.leases`); leases are renewed between ticks, spread by fair
share, taken over when their holder dies, and the claim transaction checks
the lease's token. Requests to place calls go out on a small thread pool —
database writes stay on the loop's thread, and no transaction is open while
a request is. SIGTERM (the `stop` event) drains: no new call is started, the
requests in flight are answered and recorded, claimed rows and leases are
handed back, and `run` returns 0.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.db import insert_for
from campaigns.core.errors import DialerError
from campaigns.core.lifecycle import CampaignState, HopperStatus
from campaigns.dialing import calls, hopper, leases, maintenance
from campaigns.dialing.pacing import PacingDecision, PacingInputs, calls_to_place
from dialer_daemon.metrics import Metrics
from dialer_daemon.voice import MAX_BACKOFF_S, PlacedCall, VoiceApiError, VoiceClient

log = logging.getLogger("dialer.daemon")
RECONCILE_AFTER = timedelta(minutes=30)
PLACING_RETRY_AFTER = timedelta(seconds=20)
LEASE_PERIOD = timedelta(seconds=15)
ABANDON_WINDOW = timedelta(hours=1)
ABANDON_REFRESH_S = 60.0  # wall seconds between abandon-rate queries per campaign
TAKEOVER_POLL_S = 0.25  # how often a daemon short of its fair share looks for expired leases
MAINTENANCE_EVERY_S = 10.0  # wall seconds between looks at the churned tables' dead tuples


class LeaseLost(Exception):
    """Another daemon holds the campaign now: this tick places no call."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class PlatformClock:
    """The platform's own clock (a simulator may run fast, from any start instant)."""

    def __init__(self, client: VoiceClient) -> None:
        self.client = client

    def now(self) -> datetime:
        return self.client.clock()


@dataclass
class TickReport:
    campaign: str
    at: datetime
    state: str
    events: int = 0
    finished: Counter = field(default_factory=Counter)  # prospect status after each ended call
    decision: PacingDecision | None = None
    answered: int = 0
    abandoned: int = 0
    abandon_rate: float | None = None
    claimed: int = 0
    placed: int = 0
    released: Counter = field(default_factory=Counter)  # reason code → rows given back at re-check
    not_placed: int = 0
    warnings: list[str] = field(default_factory=list)
    filled: int | None = None
    seconds: float | None = None  # how long the tick took (wall clock)

    def as_dict(self) -> dict:
        return {
            "campaign": self.campaign, "at": self.at.isoformat(), "state": self.state,
            "events": self.events, "answered": self.answered, "abandoned": self.abandoned,
            "finished": dict(self.finished), "claimed": self.claimed,
            "placed": self.placed, "released": dict(self.released), "not_placed": self.not_placed,
            "pacing": self.decision.as_dict() if self.decision else None, "filled": self.filled,
            "warnings": self.warnings, "seconds": self.seconds,
        }


class Daemon:
    def __init__(self, engine: sa.Engine, client: VoiceClient, *, clock=None, daemon_id: str | None = None,
                 campaigns: list[int] | None = None, fill_hopper: bool = False,
                 lease_period: timedelta = LEASE_PERIOD, concurrency: int = 8) -> None:
        self.engine = engine
        self.client = client
        self.clock = clock or SystemClock()
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.daemon_id = daemon_id or f"{self.host}-{self.pid}-{os.urandom(2).hex()}"
        self.campaign_ids = campaigns
        self.fill_hopper = fill_hopper
        self.lease_period = lease_period
        self.concurrency = max(1, concurrency)
        self.metrics = Metrics()
        self.metrics.daemon_id = self.daemon_id
        self.stop = threading.Event()  # set: drain (no new call), then `run` returns
        self.speed = 1.0  # platform seconds per wall second
        self.leases: dict[int, leases.Lease] = {}
        self._names: dict[int, str] = {}
        self._lease_lock = threading.Lock()  # the loop and the lease keeper both update `leases`
        self._fenced = False  # set by `run`: claims need the campaign's lease
        self._short_of_share = False
        self._pool: ThreadPoolExecutor | None = None
        self._next_tick: dict[int, float] = {}
        self._abandon_checked: dict[int, float] = {}
        self._maintenance: threading.Thread | None = None
        self._maintained = 0.0
        self.started_at: datetime | None = None

    # -- one tick -----------------------------------------------------------
    def tick(self, campaign_id: int) -> TickReport:
        began = time.perf_counter()
        report = self._tick(campaign_id)
        report.seconds = time.perf_counter() - began
        self.metrics.record(report, report.seconds)
        self.metrics.record_faults(self.client.faults)
        return report

    def _tick(self, campaign_id: int) -> TickReport:
        now = self.clock.now()
        with self.engine.connect() as conn:
            campaign = self._campaign(conn, campaign_id)
        name = campaign.qualified
        self._names[campaign_id] = name
        report = TickReport(name, now, campaign.state)
        self._apply_events(campaign, name, now, report)
        self._abandon_rate(campaign_id, now, report)
        self._reconcile(campaign, name, now, report)
        capacity = self.client.capacity(name)
        self._record_capacity(campaign_id, capacity.total, now)
        if self.fill_hopper:
            with self.engine.connect() as conn:
                due = bool(hopper.campaigns_due(conn, now, only=[campaign_id]))
            if due:
                report.filled = hopper.fill_campaign(self.engine, campaign_id, now).queued
        if campaign.state != CampaignState.ACTIVE:
            return report
        with self.engine.connect() as conn:
            ringing, active = calls.live_counts(conn, campaign_id)
            depth = conn.execute(
                sa.select(sa.func.count()).select_from(t.hopper)
                .where(t.hopper.c.campaign_id == campaign_id, t.hopper.c.status == str(HopperStatus.QUEUED))
            ).scalar_one()
        report.decision = calls_to_place(PacingInputs(
            sessions_total=capacity.total, idle=capacity.idle, wrap_up=capacity.wrap_up,
            ringing=ringing, active=active, hopper=depth, call_ratio=campaign.call_ratio,
            max_active_calls=campaign.max_active_calls, damper_mode=campaign.damper_mode,
            damper_threshold=campaign.damper_threshold,
        ))
        self._dial(campaign, name, report.decision.calls, now, report)
        return report

    def _campaign(self, conn, campaign_id: int):
        c, w = t.campaigns, t.workspaces
        row = conn.execute(
            sa.select(c, (w.c.name + "/" + c.c.slug).label("qualified"))
            .join(w, w.c.id == c.c.workspace_id).where(c.c.id == campaign_id)
        ).one()
        return row

    def _cursor(self, conn, campaign_id: int) -> int:
        r = t.campaign_runtime
        cursor = conn.execute(sa.select(r.c.events_cursor).where(r.c.campaign_id == campaign_id)).scalar_one_or_none()
        if cursor is None:
            conn.execute(insert_for(conn, r).values(campaign_id=campaign_id, events_cursor=0)
                         .on_conflict_do_nothing(index_elements=["campaign_id"]))
            cursor = conn.execute(sa.select(r.c.events_cursor).where(r.c.campaign_id == campaign_id)).scalar_one()
        return cursor

    def _apply_events(self, campaign, name: str, now: datetime, report: TickReport) -> None:
        while True:
            with self.engine.begin() as conn:
                cursor = self._cursor(conn, campaign.id)
            events, next_cursor = self.client.events(name, cursor)
            confirmed: list[int] = []
            counts: Counter = Counter()
            with self.engine.begin() as conn:
                # Move the cursor first, only from where we read it: should another daemon have
                # applied these events meanwhile (a lease changing hands mid-tick), nothing is
                # applied twice. On PostgreSQL the row lock also makes a second applier wait.
                moved = conn.execute(
                    sa.update(t.campaign_runtime)
                    .where(t.campaign_runtime.c.campaign_id == campaign.id,
                           t.campaign_runtime.c.events_cursor == cursor)
                    .values(events_cursor=next_cursor)
                ).rowcount
                if moved != 1:
                    log.warning("campaign %s: its events were applied by another daemon meanwhile", name,
                                extra={"event": "events_skipped", "campaign": name})
                    return
                for event in events:
                    counts[event["type"]] += 1
                    done = calls.apply_event(conn, campaign, event, now, confirmed)
                    if done is not None:
                        report.finished[done.status or "unchanged"] += 1
                        report.warnings.extend(done.warnings)
            report.answered += counts["answered"]
            report.abandoned += counts["abandoned"]
            report.events += len(events)
            report.placed += len(confirmed)  # placed after all: the answer to our request was lost
            if not events or next_cursor == cursor:
                return

    def _abandon_rate(self, campaign_id: int, now: datetime, report: TickReport) -> None:
        """The last hour's abandon rate, from the database (so it is every daemon's calls), once a minute."""
        wall = time.monotonic()
        if wall - self._abandon_checked.get(campaign_id, -ABANDON_REFRESH_S) < ABANDON_REFRESH_S:
            return
        self._abandon_checked[campaign_id] = wall
        with self.engine.connect() as conn:
            abandoned, answered = calls.abandon_counts(conn, campaign_id, now - ABANDON_WINDOW, now)
        report.abandon_rate = abandoned / answered if answered else 0.0

    def _record_capacity(self, campaign_id: int, sessions: int, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(t.campaign_runtime).where(t.campaign_runtime.c.campaign_id == campaign_id)
                         .values(agent_sessions=sessions, sessions_reported_at=now))

    def _metadata(self, campaign_id: int) -> dict:
        d = t.dispositions
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(d.c.title, d.c.callback).where(d.c.campaign_id == campaign_id)
                                .order_by(d.c.position)).all()
        return {"dispositions": [r.title for r in rows],
                "callback_dispositions": [r.title for r in rows if r.callback]}

    def _dial(self, campaign, name: str, count: int, now: datetime, report: TickReport) -> None:
        if count <= 0 or self.stop.is_set():
            return
        with self.engine.begin() as conn:
            lease = self.leases.get(campaign.id)
            # Under `run`, no lease means no claim; `tick` called alone (tests, benchmarks) is unfenced.
            if self._fenced and (lease is None or not leases.still_held(conn, lease, self.daemon_id)):
                raise LeaseLost(f"campaign {name}: this daemon no longer holds its lease")
            claimed = calls.claim(conn, campaign.id, self.daemon_id, count, now)
        report.claimed = len(claimed)
        metadata = self._metadata(campaign.id)
        pending = [row.hopper_id for row in claimed]
        in_flight: list[tuple[dict, Future]] = []
        try:
            for row in claimed:
                if self.stop.is_set():
                    break  # draining: no new call; the rest go back to the hopper below
                attempt = self._start(campaign, row, now, report)  # its transaction removes the row
                pending.remove(row.hopper_id)
                if attempt is not None:
                    meta = {**metadata, "attempt": attempt["attempt_number"]}
                    in_flight.append((attempt, self._submit(campaign, name, attempt, meta)))
        finally:
            # Every request sent is answered (or times out) and recorded, even when interrupted.
            for attempt, future in in_flight:
                self._record_request(campaign, attempt, future.result(), now, report)
            if pending:  # give the rows not dialed back to the hopper's next fill
                with self.engine.begin() as conn:
                    conn.execute(sa.delete(t.hopper).where(t.hopper.c.id.in_(pending),
                                                           t.hopper.c.status == str(HopperStatus.CLAIMED)))

    def _start(self, campaign, row, now: datetime, report: TickReport) -> dict | None:
        """Re-check a claimed row and record its attempt (committed before any request)."""
        with self.engine.begin() as conn:
            reasons = calls.recheck(conn, campaign, row, now)
            if reasons:
                calls.release(conn, row.hopper_id)
                for code in dict.fromkeys(r.code for r in reasons):
                    report.released[code] += 1
                log.info("released %s: %s", row.phone_e164, "; ".join(r.message for r in reasons),
                         extra={"event": "released", "campaign": report.campaign})
                return None
            attempt = calls.start_attempt(conn, campaign, row, self.daemon_id, now)
        if attempt is None:
            report.released["changed"] += 1
        return attempt

    def _submit(self, campaign, name: str, attempt: dict, metadata: dict) -> Future:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="place-call")
        return self._pool.submit(self._request, campaign, name, attempt, metadata)

    def _request(self, campaign, name: str, attempt: dict, metadata: dict) -> PlacedCall | VoiceApiError:
        """The HTTP request alone (a pool thread): no database here."""
        try:
            return self.client.place_call(
                campaign=name, to=attempt["phone_e164"], agent=campaign.agent,
                prospect_id=attempt["prospect_id"], idempotency_key=attempt["idempotency_key"],
                metadata=metadata,
            )
        except VoiceApiError as exc:
            return exc
        except Exception as exc:  # e.g. a truncated or garbled answer: the platform may have dialed
            log.exception("placing a call failed unexpectedly")
            return VoiceApiError(f"POST /v1/calls: no usable answer from the platform ({exc!r})")

    def _place(self, campaign, name: str, attempt: dict, metadata: dict, now: datetime, report: TickReport) -> None:
        self._record_request(campaign, attempt, self._request(campaign, name, attempt, metadata), now, report)

    def _record_request(self, campaign, attempt: dict, result: PlacedCall | VoiceApiError, now: datetime,
                        report: TickReport) -> None:
        if isinstance(result, PlacedCall):
            with self.engine.begin() as conn:
                # Counted once: an event or another daemon may have confirmed it first.
                report.placed += calls.mark_placed(conn, attempt["id"], result.call_id, now)
            return
        if result.refused and result.status != 422:
            # A refusal means the platform did not dial: the attempt's count is given back.
            with self.engine.begin() as conn:
                calls.not_placed(conn, campaign, attempt, str(result), now)
            report.not_placed += 1
            if result.status in (401, 403):
                report.warnings.append(f"{result} — check DIALER_VOICE_API_TOKEN")
            return
        # No answer (or a key conflict): the platform may have dialed. The attempt stays
        # `placing`; reconciling asks the platform about its key on a later tick.
        report.warnings.append(str(result))

    def _reconcile(self, campaign, name: str, now: datetime, report: TickReport) -> None:
        """Settle attempts the platform never confirmed, and calls it went quiet on."""
        with self.engine.connect() as conn:
            unconfirmed = calls.unconfirmed_attempts(conn, campaign.id, now - PLACING_RETRY_AFTER)
            stale = calls.stale_attempts(conn, campaign.id, now - RECONCILE_AFTER)
        metadata = None
        for attempt in unconfirmed:
            if self.stop.is_set():
                return
            call = self.client.find_call(attempt.idempotency_key)
            if call is not None:  # the platform has it: its answer to us was lost
                with self.engine.begin() as conn:
                    report.placed += calls.confirm(conn, attempt, call["call_id"])
                    if call["status"] in ("ended", "abandoned", "failed"):
                        self._finish_from_platform(conn, campaign, attempt, call, now)
                continue
            # The platform never received it. Re-send (same key) while the call is still allowed;
            # otherwise it was never placed — once no request of ours can still be on its way.
            with self.engine.connect() as conn:
                allowed = calls.resend_allowed(conn, campaign, attempt, now)
            if allowed:
                metadata = metadata or self._metadata(campaign.id)
                with self.engine.begin() as conn:
                    calls.mark_sent(conn, attempt.id)
                self._place(campaign, name, attempt._asdict(), {**metadata, "attempt": attempt.attempt_number},
                            now, report)
            elif self._no_request_on_its_way(attempt, now):
                with self.engine.begin() as conn:
                    calls.finish(conn, campaign, attempt, "not_placed", None, now, now,
                                 cause="the platform never received the request")
                report.not_placed += 1
        for attempt in stale:
            call = self.client.call(attempt.platform_call_id)
            with self.engine.begin() as conn:
                if call is None:
                    calls.finish(conn, campaign, attempt, "failed", None, now, now,
                                 cause="the platform does not know this call")
                elif call["status"] in ("ended", "abandoned", "failed"):
                    self._finish_from_platform(conn, campaign, attempt, call, now)

    @staticmethod
    def _finish_from_platform(conn, campaign, attempt, call: dict, now: datetime) -> None:
        """End an attempt from the platform's record of its call (its events were missed)."""
        ended = datetime.fromisoformat(call["ended_at"]) if call.get("ended_at") else now
        outcome = {"abandoned": "abandoned", "failed": "failed"}.get(call["status"], call.get("outcome") or "completed")
        fresh = conn.execute(sa.select(t.call_attempts).where(t.call_attempts.c.id == attempt.id)).one()
        if fresh.status != "ended":
            calls.finish(conn, campaign, fresh, outcome, call.get("disposition"), ended, now)

    def _no_request_on_its_way(self, attempt, now: datetime) -> bool:
        """Has every request sent for this attempt (by any daemon) been answered or given up?

        Measured on the wall clock from the last send (`sent_at`), against the longest a
        request of ours can take: every try timing out, every pause at its longest.
        """
        c = self.client
        lifetime = c.timeout * (c.retries + 1) + c.retries * 1.5 * MAX_BACKOFF_S
        if attempt.sent_at is None:  # recorded before `sent_at` existed: judge by the platform's clock
            return (now - attempt.created_at).total_seconds() / self.speed >= lifetime
        return (datetime.now(UTC) - attempt.sent_at).total_seconds() >= lifetime

    # -- the loop -------------------------------------------------------------
    def campaigns(self) -> list:
        c = t.campaigns
        with self.engine.connect() as conn:
            query = sa.select(c.c.id, c.c.state, c.c.dialer_interval_s).order_by(c.c.id)
            if self.campaign_ids is not None:
                query = query.where(c.c.id.in_(self.campaign_ids))
            return conn.execute(query).all()

    def busy(self, campaign_id: int, state: str, now: datetime) -> bool:
        """Calls in flight (any campaign not archived), or prospects an active campaign could
        still dial on the day the run started."""
        from campaigns.reporting.explain import remaining_today

        with self.engine.connect() as conn:
            _, active = calls.live_counts(conn, campaign_id)
            if active:
                return True
            if state != CampaignState.ACTIVE:
                return False
            return remaining_today(conn, campaign_id, now, day_of=self.started_at) > 0

    # -- leases ---------------------------------------------------------------
    def renew_leases(self) -> None:
        """Heartbeat and renew the leases still ours (the keeper thread, every third of a period)."""
        with self._lease_lock, self.engine.begin() as conn:
            now_db = leases.db_now(conn)
            leases.heartbeat(conn, self.daemon_id, self.host, self.pid,
                             "draining" if self.stop.is_set() else "running", now_db)
            kept = leases.renew(conn, self.daemon_id, self.leases, now_db, self.lease_period)
            for campaign_id in set(self.leases) - set(kept):
                name = self._names.get(campaign_id, campaign_id)
                log.warning("lost the lease of campaign %s", name, extra={"event": "lease_lost", "campaign": name})
            self.leases = kept

    def _refuse_duplicate_id(self) -> None:
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

    def _keep_leases(self, stop: threading.Event) -> None:
        """Renew on its own clock, so a long tick (a platform timing out) never outlives a lease."""
        while not stop.wait(self.lease_period.total_seconds() / 3):
            try:
                self.renew_leases()
            except Exception:
                log.exception("could not renew the leases; retrying")

    def balance_leases(self, rows, *, greedy: bool = False) -> None:
        """Heartbeat, renew, then take free leases up to the fair share and hand back any above it."""
        before = {cid: self._names.get(cid, str(cid)) for cid in self.leases}
        wanted = [row.id for row in rows if row.state != CampaignState.ARCHIVED]
        self.renew_leases()
        with self._lease_lock:
            with self.engine.begin() as conn:
                now_db = leases.db_now(conn)
                leases.forget_dead_daemons(conn, now_db, 10 * self.lease_period)
                running = [d for d in leases.live_daemons(conn, now_db, self.lease_period) if d.state == "running"]
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
        self._short_of_share = len(self.leases) < share
        held = {cid: self._names.get(cid, str(cid)) for cid in self.leases}
        self.metrics.record_leases(held, [name for cid, name in before.items() if cid not in held])

    def _maintain(self) -> None:
        """Now and then, in a thread: VACUUM the churned tables past their dead-tuple limit."""
        if self.engine.dialect.name != "postgresql" or time.monotonic() - self._maintained < MAINTENANCE_EVERY_S:
            return
        if self._maintenance is not None and self._maintenance.is_alive():
            return
        self._maintained = time.monotonic()

        def work() -> None:
            try:
                vacuumed = maintenance.vacuum(self.engine)
                with self.engine.connect() as conn:
                    tables = maintenance.health(conn)
                self.metrics.record_tables(tables, vacuumed)
                if vacuumed:
                    log.info("vacuumed %s", ", ".join(v.table for v in vacuumed),
                             extra={"event": "vacuum", "tables": {v.table: v.dead for v in vacuumed}})
            except sa.exc.SQLAlchemyError:
                log.exception("table maintenance failed; the next round retries")

        self._maintenance = threading.Thread(target=work, name="maintenance", daemon=True)
        self._maintenance.start()

    def _shutdown(self) -> None:
        """Drain's end: requests answered, claims and leases handed back, heartbeat gone."""
        self.metrics.state = "draining"
        self.metrics.draining.set(1)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._maintenance is not None:
            self._maintenance.join(timeout=30)
        try:
            with self.engine.begin() as conn:
                h = t.hopper
                conn.execute(sa.delete(h).where(h.c.claimed_by == self.daemon_id,
                                                h.c.status == str(HopperStatus.CLAIMED)))
                leases.release(conn, self.daemon_id, list(self.leases))
                leases.forget_daemon(conn, self.daemon_id)
        except sa.exc.SQLAlchemyError:
            log.exception("could not hand the leases back; they expire within %s", self.lease_period)
        released = {cid: self._names.get(cid, str(cid)) for cid in self.leases}
        self.leases = {}
        self.metrics.record_leases({}, list(released.values()))
        log.info("stopped", extra={"event": "stopped", "daemon": self.daemon_id})

    # -- the loop -------------------------------------------------------------
    def run(self, *, once: bool = False, exit_when_done: bool = False, stop: threading.Event | None = None,
            speed: float = 1.0) -> int:
        """Tick the campaigns this daemon leases, each every dialer interval of the platform's clock.

        Returns 0 when stopped (the `stop` event: drain) or, with `exit_when_done`, when no
        campaign has a call in flight or a prospect left to dial today.
        """
        if stop is not None:
            self.stop = stop
        self.speed = max(speed, 1e-6)
        self.started_at = self.clock.now()
        self.metrics.state = "running"
        self._fenced = True
        self._refuse_duplicate_id()
        log.info("started", extra={"event": "started", "daemon": self.daemon_id,
                                   "lease_period_s": self.lease_period.total_seconds()})
        keeper_stop = threading.Event()
        keeper = threading.Thread(target=self._keep_leases, args=(keeper_stop,), name="lease-keeper", daemon=True)
        keeper.start()
        try:
            while not self.stop.is_set():
                try:
                    rows = self.campaigns()
                    self.balance_leases(rows, greedy=once)
                except sa.exc.SQLAlchemyError as exc:
                    log.exception("the database is unavailable; retrying")
                    self.metrics.loop_done(f"database: {exc.__class__.__name__}")
                    self.stop.wait(1.0)
                    continue
                self._tick_leased(rows, once)
                self._maintain()
                self.metrics.loop_done()
                if once:
                    return 0
                if exit_when_done and self._done(rows):
                    return 0
                wall = time.monotonic()
                upcoming = min((self._next_tick.get(cid, wall) for cid in self.leases), default=wall + 1.0)
                self.stop.wait(max(0.05, min(TAKEOVER_POLL_S if self._short_of_share else 1.0, upcoming - wall)))
            return 0
        finally:
            keeper_stop.set()
            keeper.join(timeout=30)
            self._shutdown()

    def _tick_leased(self, rows, once: bool) -> None:
        for row in rows:
            if self.stop.is_set():
                return
            if row.id not in self.leases or row.state == CampaignState.ARCHIVED:
                continue
            wall = time.monotonic()
            if not once and wall < self._next_tick.get(row.id, 0.0):
                continue
            self._next_tick[row.id] = wall + row.dialer_interval_s / self.speed
            try:
                report = self.tick(row.id)
            except LeaseLost as exc:
                log.warning("%s", exc, extra={"event": "lease_lost", "campaign_id": row.id})
                with self._lease_lock:
                    self.leases = {cid: lease for cid, lease in self.leases.items() if cid != row.id}
                continue
            except VoiceApiError as exc:
                log.warning("campaign %s: %s", row.id, exc, extra={"event": "platform_error", "campaign_id": row.id})
                continue
            except Exception:
                log.exception("campaign %s: the tick failed; the next one retries", row.id)
                continue
            log.info("tick %s", report.campaign, extra={"event": "tick", **report.as_dict()})

    def _done(self, rows) -> bool:
        try:
            now = self.clock.now()
            return not any(self.busy(row.id, row.state, now) for row in rows if row.state != CampaignState.ARCHIVED)
        except Exception:
            log.exception("could not tell whether the work is done; carrying on")  # a platform outage is not "done"
            return False
