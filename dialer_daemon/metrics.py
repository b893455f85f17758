"""The daemon's metrics (Prometheus) and health, served on loopback (`dialer daemon --metrics-port`).

`GET /metrics` — Prometheus' text format, from one registry per daemon:
calls placed, not placed, answered and abandoned, the abandon rate (last hour
and 30 days), agent sessions (idle, wrap-up), calls in flight, hopper depth, the
pacing decision, its mode and estimates (answer rate, expected free sessions,
margin), tick latency (a histogram), leases held, provider faults retried,
whether the last hopper fill left prospects dialable, and `/healthz`'s verdict.
Counters count what *this* daemon did; sum them over replicas in Prometheus.
Gauges are per campaign, set by the daemon that paces it — except the roster's
(`dialer_campaign_active`, `dialer_campaign_interval_seconds`), which every daemon
exports for every campaign it would pace, so that a campaign nobody holds is seen
(docs/monitoring/alerts.yaml).

`GET /healthz` — 200 with a JSON body while the loop is turning (also while
draining, which is a normal way to stop); 503 when the loop has not completed
within `stall_after` seconds, i.e. it is stuck on the database or the platform,
or while a fault is open (platform or database gone, a campaign's ticks failing).
`GET /livez` — only whether the loop turns: 200 once it has completed and not
stalled since, whatever faults are open. A liveness probe restarts the process on
`/livez`, not `/healthz`: restarting every daemon while the platform is down would
only delay dialing when it is back.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from campaigns.core.lifecycle import CampaignState, DaemonState, PacingMode

TICK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Gauge name → (key in the pacing decision, help)
DECISION_GAUGES = {
    "pacing_calls": ("calls", "Calls the last tick decided to place"),
    "pacing_effective_ratio": ("effective_ratio", "Call ratio after the damper"),
    "sessions_total": ("sessions_total", "Agent sessions the platform reported"),
    "sessions_idle": ("idle", "Idle agent sessions"),
    "sessions_wrap_up": ("wrap_up", "Agent sessions in wrap-up"),
    "calls_ringing": ("ringing", "Calls placed, not yet answered or ended"),
    "calls_active": ("active", "Calls placed, not yet ended"),
    "hopper_depth": ("hopper", "Queued hopper rows"),
}
# Gauge name → (key in the pacing decision's estimates, help); a key with no value leaves it unset.
ESTIMATE_GAUGES = {
    "pacing_answer_rate": ("answer_rate", "Estimated chance a dial reaches a person"),
    "pacing_expected_free_sessions": ("expected_free", "Sessions expected free by the time a dial placed now answers"),
    "pacing_expected_answers": ("expected_answers", "Person answers expected by then from calls ringing"),
    "pacing_talk_mean_seconds": ("talk_mean_s", "Estimated mean talk time"),
    "pacing_margin": ("margin", "Predictive pacing's safety margin, in standard deviations"),
    "pacing_guard": ("guard", "1 while the 30-day abandon guard holds predictive pacing to no overdial"),
    "abandon_rate_30d": ("abandon_rate_30d", "Abandoned / answered by a person, last 30 days, from the database"),
}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry

        def counter(name: str, help_text: str, labels=("campaign",)) -> Counter:
            return Counter(f"dialer_{name}", help_text, list(labels), registry=r)

        self.ticks = counter("ticks", "Daemon ticks")
        self.placed = counter("calls_placed", "Calls the voice platform accepted")
        self.not_placed = counter("calls_not_placed", "Attempts the platform refused or never received")
        self.answered = counter("calls_answered", "Calls a person answered and an agent took")
        self.abandoned = counter("calls_abandoned", "Calls a person answered with no agent free in time")
        self.ended = counter("calls_ended", "Ended calls by the prospect's new status", ("campaign", "status"))
        self.fills = counter("hopper_fills", "Hopper fills this daemon ran for the campaign")
        self.queued = counter("hopper_queued", "Prospects this daemon's hopper fills queued")
        self.released = counter("released", "Claimed rows given back at the re-check", ("campaign", "reason"))
        self.provider_faults = counter("voice_api_retries", "Requests to the voice platform retried, by cause",
                                       ("cause",))
        self.abandon_rate = Gauge("dialer_abandon_rate", "Abandoned / (answered + abandoned), last hour, "
                                  "from the database", ["campaign"], registry=r)
        self.decision = {name: Gauge(f"dialer_{name}", help_text, ["campaign"], registry=r)
                         for name, (_, help_text) in DECISION_GAUGES.items()}
        self.estimates = {name: Gauge(f"dialer_{name}", help_text, ["campaign"], registry=r)
                          for name, (_, help_text) in ESTIMATE_GAUGES.items()}
        self.pacing_mode = Gauge("dialer_pacing_mode", "1 for the campaign's pacing mode (ratio or predictive)",
                                 ["campaign", "mode"], registry=r)
        self.tick_seconds = Histogram("dialer_tick_seconds", "Duration of one campaign tick", ["campaign"],
                                      buckets=TICK_BUCKETS, registry=r)
        self.lease_held = Gauge("dialer_lease_held", "1 while this daemon holds the campaign's lease",
                                ["campaign"], registry=r)
        self.leases = Gauge("dialer_leases_held", "Campaign leases this daemon holds", registry=r)
        self.dead_tuples = Gauge("dialer_dead_tuples", "Dead tuples of a churned table (PostgreSQL statistics)",
                                 ["table"], registry=r)
        self.vacuums = Counter("dialer_vacuums", "VACUUMs this daemon ran on a churned table", ["table"], registry=r)
        self.draining = Gauge("dialer_draining", "1 once the daemon is draining (SIGTERM)", registry=r)
        self.last_loop = Gauge("dialer_last_loop_timestamp_seconds", "When the daemon loop last completed",
                               registry=r)
        self.campaign_active = Gauge("dialer_campaign_active", "1 while the campaign's state is active, 0 while "
                                     "paused or inactive (every daemon, for every campaign it may pace)",
                                     ["campaign"], registry=r)
        self.campaign_interval = Gauge("dialer_campaign_interval_seconds", "The campaign's dialer interval "
                                       "(every daemon, for every campaign it may pace)", ["campaign"], registry=r)
        self.more_dialable = Gauge("dialer_hopper_more_dialable", "1 when the campaign's last hopper fill left "
                                   "the hopper at its level (prospects may be dialable beyond it), 0 when that "
                                   "fill queued every prospect dialable then", ["campaign"], registry=r)
        self.healthy = Gauge("dialer_healthy", "1 while /healthz answers 200, 0 while it answers 503", registry=r)
        self._rostered: set[str] = set()
        self._totals = {"ticks": 0, "calls_placed": 0}
        self._lock = threading.Lock()
        self._seen_faults: dict[str, int] = {}
        self.faults_open = Gauge("dialer_faults_open", "Faults open now (a dependency gone, a token refused…): "
                                 "see /healthz for which", registry=r)
        self.loop_completed_at: float | None = None  # time.monotonic()
        self.loop_error: str | None = None
        self.faults: dict[str, str] = {}  # fault → its cause (`faults.FaultLog`)
        self.state = DaemonState.STARTING
        self.lease_count = 0
        self.daemon_id = ""

    def record(self, report, seconds: float) -> None:
        c = report.campaign
        self.ticks.labels(c).inc()
        self.placed.labels(c).inc(report.placed)
        self.not_placed.labels(c).inc(report.not_placed)
        self.answered.labels(c).inc(report.answered)
        self.abandoned.labels(c).inc(report.abandoned)
        if report.filled is not None:
            self.fills.labels(c).inc()
            self.queued.labels(c).inc(report.filled)
        for status, n in report.finished.items():
            self.ended.labels(c, status).inc(n)
        for reason, n in report.released.items():
            self.released.labels(c, reason).inc(n)
        if report.decision is not None:
            decision = report.decision.as_dict()
            for name, (key, _) in DECISION_GAUGES.items():
                if decision[key] is not None:
                    self.decision[name].labels(c).set(decision[key])
            for mode in PacingMode:
                self.pacing_mode.labels(c, str(mode)).set(1 if mode == report.decision.mode else 0)
            estimates = decision["estimates"] or {}
            for name, (key, _) in ESTIMATE_GAUGES.items():
                if estimates.get(key) is not None:
                    self.estimates[name].labels(c).set(float(estimates[key]))
        if report.abandon_rate is not None:
            self.abandon_rate.labels(c).set(report.abandon_rate)
        if report.more_dialable is not None:
            self.more_dialable.labels(c).set(1 if report.more_dialable else 0)
        self.tick_seconds.labels(c).observe(seconds)
        with self._lock:
            self._totals["ticks"] += 1
            self._totals["calls_placed"] += report.placed

    def record_faults(self, faults) -> None:
        """Bring the client's retry counts (a running Counter) into the registry."""
        with self._lock:
            for cause, n in dict(faults).items():
                new = n - self._seen_faults.get(cause, 0)
                if new > 0:
                    self.provider_faults.labels(cause).inc(new)
                self._seen_faults[cause] = n

    def record_leases(self, held: dict[int, str], lost: list[str]) -> None:
        """held: campaign id → name of the campaigns leased now; lost: names no longer held."""
        for name in lost:
            self.lease_held.labels(name).set(0)
        for name in held.values():
            self.lease_held.labels(name).set(1)
        self.leases.set(len(held))
        self.lease_count = len(held)

    def record_roster(self, rows) -> None:
        """The campaigns this daemon may pace (`roster.RosterEntry`, read every loop): whether each is
        active, and its dialer interval. Archived campaigns and those gone from the roster leave
        the metrics, so their series do not outlive them."""
        listed = {row.name: row for row in rows if row.name and row.state != CampaignState.ARCHIVED}
        for name in self._rostered - listed.keys():
            self.campaign_active.remove(name)
            self.campaign_interval.remove(name)
        for name, row in listed.items():
            self.campaign_active.labels(name).set(1 if row.state == CampaignState.ACTIVE else 0)
            self.campaign_interval.labels(name).set(row.dialer_interval_s)
        self._rostered = set(listed)

    def record_tables(self, tables, vacuumed) -> None:
        for table in tables:
            self.dead_tuples.labels(table.table).set(table.dead)
        for table in vacuumed:
            self.vacuums.labels(table.table).inc()

    def loop_done(self, error: str | None = None) -> None:
        self.loop_completed_at = time.monotonic()
        self.loop_error = error
        self.last_loop.set(time.time())

    def total(self, name: str) -> int:
        with self._lock:
            return self._totals[name]

    def text(self) -> str:
        return generate_latest(self.registry).decode()

    def set_faults(self, faults: dict[str, str]) -> None:
        self.faults = dict(faults)
        self.faults_open.set(len(faults))

    def alive(self, stall_after: float) -> tuple[bool, dict]:
        """Whether the loop has completed within `stall_after` seconds (faults aside): `/livez`."""
        age = None if self.loop_completed_at is None else time.monotonic() - self.loop_completed_at
        alive = age is not None and age <= stall_after
        return alive, {"status": "alive" if alive else ("starting" if age is None else "stalled"),
                       "daemon": self.daemon_id, "last_loop_age_s": None if age is None else round(age, 3)}

    def health(self, stall_after: float) -> tuple[bool, dict]:
        age = None if self.loop_completed_at is None else time.monotonic() - self.loop_completed_at
        faults = self.faults
        stalled = age is not None and age > stall_after
        healthy = age is not None and not stalled and self.loop_error is None and not faults
        reasons = [f"{what}: {cause}" for what, cause in faults.items()]
        if stalled:
            reasons.insert(0, f"the loop has not completed for {age:.0f} s")
        elif self.loop_error and not faults:
            reasons.insert(0, self.loop_error)
        return healthy, {
            "status": (str(self.state) if self.state == DaemonState.DRAINING else "ok") if healthy else "unhealthy",
            "daemon": self.daemon_id, "state": self.state, "leases": self.lease_count,
            "last_loop_age_s": None if age is None else round(age, 3), "error": self.loop_error,
            "reasons": reasons,
        }


def serve_metrics(metrics: Metrics, port: int, host: str = "127.0.0.1", *,
                  stall_after: float = 60.0) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path = self.path.split("?")[0]
            if path == "/metrics":
                # The same verdict as /healthz, for Prometheus, which scrapes only /metrics.
                metrics.healthy.set(1 if metrics.health(stall_after)[0] else 0)
                return self._send(200, metrics.text().encode(), CONTENT_TYPE_LATEST)
            if path == "/healthz":
                healthy, body = metrics.health(stall_after)
                return self._send(200 if healthy else 503, json.dumps(body).encode(), "application/json")
            if path == "/livez":
                alive, body = metrics.alive(stall_after)
                return self._send(200 if alive else 503, json.dumps(body).encode(), "application/json")
            self.send_error(404)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
