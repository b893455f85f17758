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
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from campaigns import calls, hopper
from campaigns import schema as t
from campaigns.lifecycle import CampaignState, HopperStatus
from campaigns.pacing import PacingDecision, PacingInputs, calls_to_place
from dialer_daemon.metrics import Metrics
from dialer_daemon.voice import VoiceApiError, VoiceClient

log = logging.getLogger("dialer.daemon")
RECONCILE_AFTER = timedelta(minutes=30)
PLACING_RETRY_AFTER = timedelta(seconds=20)


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
    claimed: int = 0
    placed: int = 0
    released: Counter = field(default_factory=Counter)  # reason code → rows given back at re-check
    not_placed: int = 0
    warnings: list[str] = field(default_factory=list)
    filled: int | None = None

    def as_dict(self) -> dict:
        return {
            "campaign": self.campaign, "at": self.at.isoformat(), "state": self.state,
            "events": self.events, "finished": dict(self.finished), "claimed": self.claimed,
            "placed": self.placed, "released": dict(self.released), "not_placed": self.not_placed,
            "pacing": self.decision.as_dict() if self.decision else None, "filled": self.filled,
            "warnings": self.warnings,
        }


class Daemon:
    def __init__(self, engine: sa.Engine, client: VoiceClient, *, clock=None, daemon_id: str | None = None,
                 campaigns: list[int] | None = None, fill_hopper: bool = False) -> None:
        self.engine = engine
        self.client = client
        self.clock = clock or SystemClock()
        self.daemon_id = daemon_id or f"{socket.gethostname()}-{os.getpid()}"
        self.campaign_ids = campaigns
        self.fill_hopper = fill_hopper
        self.metrics = Metrics()
        self._next_tick: dict[int, float] = {}
        self.started_at: datetime | None = None

    # -- one tick -----------------------------------------------------------
    def tick(self, campaign_id: int) -> TickReport:
        began = time.perf_counter()
        report = self._tick(campaign_id)
        self.metrics.record(report, time.perf_counter() - began)
        return report

    def _tick(self, campaign_id: int) -> TickReport:
        now = self.clock.now()
        with self.engine.connect() as conn:
            campaign = self._campaign(conn, campaign_id)
        name = campaign.qualified
        report = TickReport(name, now, campaign.state)
        self._apply_events(campaign, name, now, report)
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
        log.info("pacing %s %s", name, report.decision.as_dict())
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
            conn.execute(sa.insert(r).values(campaign_id=campaign_id, events_cursor=0))
            return 0
        return cursor

    def _apply_events(self, campaign, name: str, now: datetime, report: TickReport) -> None:
        while True:
            with self.engine.begin() as conn:
                cursor = self._cursor(conn, campaign.id)
            events, next_cursor = self.client.events(name, cursor)
            with self.engine.begin() as conn:
                for event in events:
                    done = calls.apply_event(conn, campaign, event, now)
                    if done is not None:
                        report.finished[done.status or "unchanged"] += 1
                        report.warnings.extend(done.warnings)
                conn.execute(sa.update(t.campaign_runtime)
                             .where(t.campaign_runtime.c.campaign_id == campaign.id)
                             .values(events_cursor=next_cursor))
            report.events += len(events)
            if not events or next_cursor == cursor:
                return

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
        if count <= 0:
            return
        with self.engine.begin() as conn:
            claimed = calls.claim(conn, campaign.id, self.daemon_id, count, now)
        report.claimed = len(claimed)
        metadata = self._metadata(campaign.id)
        pending = [row.hopper_id for row in claimed]
        try:
            self._dial_claimed(campaign, name, claimed, pending, metadata, now, report)
        finally:
            if pending:  # interrupted: give the rows not dialed back to the hopper's next fill
                with self.engine.begin() as conn:
                    conn.execute(sa.delete(t.hopper).where(t.hopper.c.id.in_(pending),
                                                           t.hopper.c.status == str(HopperStatus.CLAIMED)))

    def _dial_claimed(self, campaign, name, claimed, pending: list[int], metadata, now, report) -> None:
        for row in claimed:
            pending.remove(row.hopper_id)
            with self.engine.begin() as conn:
                reasons = calls.recheck(conn, campaign, row, now)
                if reasons:
                    calls.release(conn, row.hopper_id)
                    for code in dict.fromkeys(r.code for r in reasons):
                        report.released[code] += 1
                    log.info("released %s: %s", row.phone_e164, "; ".join(r.message for r in reasons))
                    continue
                attempt = calls.start_attempt(conn, campaign, row, self.daemon_id, now)
            if attempt is None:
                report.released["changed"] += 1
                continue
            self._place(campaign, name, attempt, {**metadata, "attempt": attempt["attempt_number"]}, now, report)

    def _place(self, campaign, name: str, attempt: dict, metadata: dict, now: datetime, report: TickReport) -> None:
        try:
            placed = self.client.place_call(
                campaign=name, to=attempt["phone_e164"], agent=campaign.agent,
                prospect_id=attempt["prospect_id"], idempotency_key=attempt["idempotency_key"],
                metadata=metadata,
            )
        except VoiceApiError as exc:
            if exc.refused and exc.status != 422:
                # A refusal means the platform did not dial: the attempt counts, the prospect retries later.
                with self.engine.begin() as conn:
                    calls.not_placed(conn, campaign, attempt, str(exc), now)
                report.not_placed += 1
            else:
                # No answer (or a key conflict): the platform may have dialed. The attempt stays
                # `placing`; events naming its key, a re-send with the same key, or the timeout settle it.
                report.warnings.append(str(exc))
            return
        with self.engine.begin() as conn:
            calls.mark_placed(conn, attempt["id"], placed.call_id, now)
        report.placed += 1

    def _reconcile(self, campaign, name: str, now: datetime, report: TickReport) -> None:
        """Settle attempts the platform never confirmed, and calls it went quiet on."""
        with self.engine.connect() as conn:
            unconfirmed = calls.unconfirmed_attempts(conn, campaign.id, now - PLACING_RETRY_AFTER)
            stale = calls.stale_attempts(conn, campaign.id, now - RECONCILE_AFTER)
        metadata = None
        for attempt in unconfirmed:
            if attempt.created_at <= now - RECONCILE_AFTER:
                # No confirmation, and no event ever named its key: the platform never had it.
                with self.engine.begin() as conn:
                    calls.finish(conn, campaign, attempt, "not_placed", None, now, now,
                                 cause="the platform never confirmed the call")
                report.not_placed += 1
                continue
            # The platform may never have received it: re-send (same key) only while the call is
            # still allowed now. Otherwise its events, which carry the key, or the timeout settle it.
            with self.engine.connect() as conn:
                allowed = calls.resend_allowed(conn, campaign, attempt, now)
            if not allowed:
                continue
            metadata = metadata or self._metadata(campaign.id)
            self._place(campaign, name, attempt._asdict(), {**metadata, "attempt": attempt.attempt_number},
                        now, report)
        for attempt in stale:
            call = self.client.call(attempt.platform_call_id)
            with self.engine.begin() as conn:
                if call is None:
                    calls.finish(conn, campaign, attempt, "failed", None, now, now,
                                 cause="the platform does not know this call")
                elif call["status"] in ("ended", "abandoned", "failed"):
                    ended = datetime.fromisoformat(call["ended_at"]) if call.get("ended_at") else now
                    outcome = {"abandoned": "abandoned", "failed": "failed"}.get(
                        call["status"], call.get("outcome") or "completed")
                    calls.finish(conn, campaign, attempt, outcome, call.get("disposition"), ended, now)

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
        from campaigns.explain import remaining_today

        with self.engine.connect() as conn:
            _, active = calls.live_counts(conn, campaign_id)
            if active:
                return True
            if state != CampaignState.ACTIVE:
                return False
            return remaining_today(conn, campaign_id, now, day_of=self.started_at) > 0

    def run(self, *, once: bool = False, exit_when_done: bool = False, stop: threading.Event | None = None,
            speed: float = 1.0) -> int:
        """Tick each campaign every dialer interval (of the platform's clock) until stopped."""
        stop = stop or threading.Event()
        self.started_at = self.clock.now()
        while not stop.is_set():
            rows = self.campaigns()
            wall = time.monotonic()
            for row in rows:
                if row.state == CampaignState.ARCHIVED:
                    continue
                if once or wall >= self._next_tick.get(row.id, 0.0):
                    self._next_tick[row.id] = wall + row.dialer_interval_s / max(speed, 1e-6)
                    try:
                        report = self.tick(row.id)
                    except VoiceApiError as exc:
                        log.warning("campaign %s: %s", row.id, exc)
                        continue
                    except Exception:  # noqa: BLE001 - one bad tick must not stop the dialing
                        log.exception("campaign %s: the tick failed; the next one retries", row.id)
                        continue
                    log.info("tick %s", report.as_dict())
            if once:
                return 0
            if exit_when_done:
                try:
                    now = self.clock.now()
                    if not any(self.busy(row.id, row.state, now) for row in rows
                               if row.state != CampaignState.ARCHIVED):
                        return 0
                except Exception:  # noqa: BLE001 - a platform outage is not "done"
                    log.exception("could not tell whether the work is done; carrying on")
            upcoming = min(self._next_tick.values(), default=wall + 1.0)
            stop.wait(max(0.05, min(1.0, upcoming - time.monotonic())))
        return 0



