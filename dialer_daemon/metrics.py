"""The daemon's metrics in Prometheus' text format, served on loopback (`dialer daemon --metrics-port`).

Per campaign: ticks, calls placed, rows released at re-check (by reason),
ended calls (by the prospect's new status), and the last pacing decision with
its inputs, so a dashboard can show why the dialer placed what it placed.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COUNTERS = {
    "ticks": "Daemon ticks",
    "calls_placed": "Calls placed with the voice platform",
    "calls_not_placed": "Calls the platform refused",
}
GAUGES = {
    "pacing_calls": ("calls", "Calls the last tick decided to place"),
    "pacing_effective_ratio": ("effective_ratio", "Call ratio after the damper"),
    "sessions_total": ("sessions_total", "Agent sessions the platform reported"),
    "sessions_idle": ("idle", "Idle agent sessions"),
    "sessions_wrap_up": ("wrap_up", "Agent sessions in wrap-up"),
    "calls_ringing": ("ringing", "Calls placed, not yet answered or ended"),
    "calls_active": ("active", "Calls placed, not yet ended"),
    "hopper_depth": ("hopper", "Queued hopper rows"),
}


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[str, Counter] = defaultdict(Counter)  # name → campaign → value
        self.released: Counter = Counter()  # (campaign, reason) → rows
        self.finished: Counter = Counter()  # (campaign, status) → calls
        self.decisions: dict[str, dict] = {}
        self.tick_seconds: dict[str, float] = {}

    def record(self, report, seconds: float) -> None:
        with self._lock:
            c = report.campaign
            self.counters["ticks"][c] += 1
            self.counters["calls_placed"][c] += report.placed
            self.counters["calls_not_placed"][c] += report.not_placed
            for reason, n in report.released.items():
                self.released[(c, reason)] += n
            for status, n in report.finished.items():
                self.finished[(c, status)] += n
            if report.decision is not None:
                self.decisions[c] = report.decision.as_dict()
            self.tick_seconds[c] = seconds

    def total(self, name: str) -> int:
        return sum(self.counters[name].values())

    def text(self) -> str:
        with self._lock:
            lines: list[str] = []
            for name, help_text in COUNTERS.items():
                lines += [f"# HELP dialer_{name}_total {help_text}", f"# TYPE dialer_{name}_total counter"]
                lines += [f'dialer_{name}_total{{campaign="{c}"}} {v}' for c, v in sorted(self.counters[name].items())]
            lines += ["# HELP dialer_released_total Claimed rows given back at the re-check",
                      "# TYPE dialer_released_total counter"]
            lines += [f'dialer_released_total{{campaign="{c}",reason="{r}"}} {v}'
                      for (c, r), v in sorted(self.released.items())]
            lines += ["# HELP dialer_calls_ended_total Ended calls by the prospect's new status",
                      "# TYPE dialer_calls_ended_total counter"]
            lines += [f'dialer_calls_ended_total{{campaign="{c}",status="{s}"}} {v}'
                      for (c, s), v in sorted(self.finished.items())]
            for name, (key, help_text) in GAUGES.items():
                lines += [f"# HELP dialer_{name} {help_text}", f"# TYPE dialer_{name} gauge"]
                lines += [f'dialer_{name}{{campaign="{c}"}} {d[key]}' for c, d in sorted(self.decisions.items())]
            lines += ["# HELP dialer_tick_seconds Duration of the last tick", "# TYPE dialer_tick_seconds gauge"]
            lines += [f'dialer_tick_seconds{{campaign="{c}"}} {v:.6f}' for c, v in sorted(self.tick_seconds.items())]
            return "\n".join(lines) + "\n"


def serve_metrics(metrics: Metrics, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
            pass

        def do_GET(self):  # noqa: N802 - http.server's naming
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = metrics.text().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
