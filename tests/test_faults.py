"""Faults of the daemon's dependencies: every wait has a deadline, every fault is told once.

Loopback stand-ins for a voice platform that misbehaves (never answers a call, trickles its
answer a byte at a time, refuses the token, answers HTML or `{}`) and a PostgreSQL behind a
TCP relay the test freezes (SIGSTOP: the relay's kernel still ACKs, nothing is forwarded)
and kills. The daemon runs as `dialer daemon`, as in production, with short deadlines
through its settings; each case asserts the exit (code and time after SIGTERM), what reached
the platform against the attempts recorded, `/healthz`, and the log lines of the fault.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pydantic
import pytest
import sqlalchemy as sa

from campaigns.core import db
from campaigns.core import schema as t
from campaigns.core.config import DialerConfig
from campaigns.core.errors import DialerError
from campaigns.dialing import calls, hopper
from dialer_daemon.daemon import Daemon, PlatformClock
from dialer_daemon.faults import FaultLog
from dialer_daemon.simulator import Profile, Simulator, serve
from dialer_daemon.voice import PlatformContractError, VoiceApiError, VoiceClient
from resources.database import DatabaseResource
from tests.helpers import add_prospects, free_port, wait_for
from tests.test_daemon import START, attempts, campaign, phones

BIN = Path(sys.executable).parent
SQLITE = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
POSTGRES = pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
VOICE_TIMEOUT_S = 1.0  # DIALER_VOICE_API_TIMEOUT_S in these tests
DRAIN_S = 10.0  # DIALER_DAEMON_DRAIN_TIMEOUT_S in these tests


# -- a voice platform that misbehaves on purpose ------------------------------------------

class FakePlatform:
    """The API of docs/voice-api.yaml on loopback, with faults chosen by the test.

    `post`: ok, hang (never answers), trickle (a byte every half second), 401, empty (200 `{}`);
    `gets`: ok, html (200 text/html), empty (200 `{}`). Its clock starts at START.
    """

    def __init__(self, post: str = "ok", gets: str = "ok") -> None:
        self.post, self.gets = post, gets
        self.posts: list[tuple[float, str]] = []  # (time.monotonic(), idempotency key) of each POST received
        self.placed: dict[str, dict] = {}
        self.offset = 0.0  # seconds the test moved the clock on
        self.release = threading.Event()
        self.t0 = time.monotonic()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def now(self):
        return START + timedelta(seconds=time.monotonic() - self.t0 + self.offset)

    def keys_posted(self) -> list[str]:
        return [key for _, key in self.posts]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        platform = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if platform.gets == "html":
                    page = b"<html><body>Welcome to the portal</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                    return
                if platform.gets == "empty":
                    return self._json(200, {})
                now = platform.now().isoformat()
                if url.path == "/v1/clock":
                    return self._json(200, {"now": now, "speed": 1.0})
                if url.path == "/v1/capacity":
                    return self._json(200, {"campaign": query.get("campaign"), "at": now, "sessions_total": 5,
                                            "idle": 5, "on_call": 0, "wrap_up": 0})
                if url.path == "/v1/events":
                    return self._json(200, {"events": [], "next_cursor": int(query.get("after", 0))})
                if url.path == "/v1/calls":
                    call = platform.placed.get(query.get("idempotency_key", ""))
                    return self._json(200, {"calls": [call] if call else []})
                return self._json(404, {"error": "not_found", "message": "no such call"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                key = self.headers.get("Idempotency-Key", "")
                platform.posts.append((time.monotonic(), key))
                if platform.post == "hang":
                    platform.release.wait(60)
                    self.close_connection = True
                    return
                if platform.post == "trickle":
                    try:
                        for byte in b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n":
                            if platform.release.wait(0.5):
                                break
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                    except OSError:
                        pass  # the client hung up: its deadline
                    self.close_connection = True
                    return
                if platform.post == "401":
                    return self._json(401, {"error": "unauthorized", "message": "invalid token"})
                if platform.post == "empty":
                    return self._json(200, {})
                call = platform.placed.setdefault(key, {
                    "call_id": f"call-{len(platform.placed) + 1}", "campaign": body.get("campaign"),
                    "to": body.get("to"), "idempotency_key": key, "status": "queued",
                    "created_at": platform.now().isoformat()})
                return self._json(201, call)

        return Handler


@pytest.fixture
def fake_platform():
    platforms: list[FakePlatform] = []

    def make(**faults) -> FakePlatform:
        platforms.append(FakePlatform(**faults))
        return platforms[-1]

    yield make
    for platform in platforms:
        platform.close()


# -- running `dialer daemon` ----------------------------------------------------------------

class DaemonProcess:
    """`dialer daemon` as a child process, its stderr (JSON lines) collected as it comes."""

    def __init__(self, env: dict[str, str], *extra: str) -> None:
        self.metrics_port = free_port()
        self.process = subprocess.Popen(
            [str(BIN / "dialer"), "daemon", "--id", "D", "--fill-hopper", "--log-format", "json",
             "--metrics-port", str(self.metrics_port), *extra],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def events(self, event: str | None = None) -> list[dict]:
        parsed = [json.loads(line) for line in list(self.lines) if line.startswith("{")]
        return [e for e in parsed if event is None or e.get("event") == event]

    def healthz(self, path: str = "/healthz") -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=2) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)
        except OSError:
            return 0, {}

    def sigterm(self, within: float = DRAIN_S + 5) -> float:
        """SIGTERM; returns how long the process took to exit."""
        began = time.monotonic()
        os.kill(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=within)
        self._reader.join(timeout=5)
        return time.monotonic() - began

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    @property
    def log_bytes(self) -> int:
        return sum(len(line.encode()) for line in self.lines)


def _env(db_url: str, tmp_path: Path, platform_url: str, **settings: str) -> dict[str, str]:
    return {**os.environ, "DIALER_DATABASE_URL": db_url, "DIALER_HOME": str(tmp_path / "home"),
            "DIALER_VOICE_API_URL": platform_url, "DIALER_VOICE_API_TIMEOUT_S": str(VOICE_TIMEOUT_S),
            "DIALER_DAEMON_DRAIN_TIMEOUT_S": str(DRAIN_S), **settings}


def _no_traceback(daemon: DaemonProcess) -> None:
    assert not any("Traceback" in line or '"exception"' in line for line in daemon.lines)


# -- the voice platform --------------------------------------------------------------------

def test_a_request_ends_at_its_deadline_however_slowly_the_answer_trickles(fake_platform):
    platform = fake_platform(post="trickle")
    client = VoiceClient(platform.url, timeout=0.6, retries=1, backoff_s=0.01)
    began = time.monotonic()
    with pytest.raises(VoiceApiError, match="no whole answer within 0.6 s") as raised:
        client.place_call(campaign="acme/renewals", to="+12125550100", agent="a", prospect_id=1,
                          idempotency_key="att-1")
    took = time.monotonic() - began
    client.close()
    assert raised.value.status is None and raised.value.sent  # unanswered: the platform may have dialed
    assert took < 2 * 0.6 + 0.5 and client.faults["timeout"] == 2
    assert platform.keys_posted() == ["att-1", "att-1"]  # one key: a retry never dials twice


def test_once_halted_no_request_starts_and_a_pause_between_tries_ends(fake_platform):
    platform = fake_platform(post="hang")
    client = VoiceClient(platform.url, timeout=0.5, retries=4, backoff_s=2.0)
    threading.Timer(0.7, client.halt.set).start()  # during the pause after the first try
    began = time.monotonic()
    with pytest.raises(VoiceApiError, match="after 1 try .*stopping"):
        client.place_call(campaign="acme/renewals", to="+12125550100", agent="a", prospect_id=1,
                          idempotency_key="att-1")
    assert time.monotonic() - began < 1.5
    with pytest.raises(VoiceApiError, match="not sent") as unsent:
        client.capacity("acme/renewals")
    client.close()
    assert not unsent.value.sent and platform.keys_posted() == ["att-1"]


@pytest.mark.parametrize("gets", ["html", "empty"])
def test_answers_outside_the_contract_are_one_error_not_a_crash(fake_platform, gets):
    client = VoiceClient(fake_platform(gets=gets).url, timeout=2, retries=0)
    for ask in (client.clock, client.clock_speed, lambda: client.capacity("acme/renewals"),
                lambda: client.events("acme/renewals", 0), lambda: client.find_call("att-1")):
        with pytest.raises(PlatformContractError, match="docs/voice-api.yaml"):
            ask()
    client.close()


@SQLITE
@pytest.mark.parametrize("post", ["hang", "trickle"])
def test_sigterm_ends_the_daemon_within_the_bound_whatever_the_platform_does(engine, db_url, tmp_path,
                                                                              fake_platform, post):
    platform = fake_platform(post=post)
    cid = campaign(engine, dialer_interval_s=2)
    add_prospects(engine, cid, phones(10), now=START - timedelta(hours=1))
    # One request at a time: four calls wait for the pool when SIGTERM comes, and must never go out.
    daemon = DaemonProcess(_env(db_url, tmp_path, platform.url), "--concurrency", "1")
    try:
        wait_for(lambda: platform.posts, 30)
        time.sleep(0.2)
        sigterm_at = time.monotonic()
        took = daemon.sigterm()
    finally:
        daemon.kill()
    assert daemon.process.returncode == 0, "".join(daemon.lines[-20:])
    # The try in flight ends at its deadline; no retry and no queued call starts after SIGTERM.
    assert took < VOICE_TIMEOUT_S + 3, f"exited {took:.1f} s after SIGTERM"
    assert all(at < sigterm_at + 0.1 for at, _ in platform.posts)
    recorded = attempts(engine)
    posted = set(platform.keys_posted())
    assert {a.idempotency_key for a in recorded if a.status == "placing"} == posted  # sent: left to reconcile
    never_sent = [a for a in recorded if a.outcome == "not_placed"]
    assert len(never_sent) == 4 and not posted & {a.idempotency_key for a in never_sent}
    assert all("not sent" in a.failure_cause for a in never_sent)
    with engine.connect() as conn:  # their count given back: no prospect used a call it never had
        assert conn.execute(sa.select(sa.func.sum(t.prospects.c.attempts))).scalar_one() == len(posted)
    _no_traceback(daemon)
    assert {"started", "stopped"} <= {e.get("event") for e in daemon.events()}


@SQLITE
def test_a_refused_token_stops_claiming_turns_healthz_unhealthy_and_is_logged_once(engine, db_url, tmp_path,
                                                                                  fake_platform):
    platform = fake_platform(post="401")
    cid = campaign(engine, dialer_interval_s=2)
    add_prospects(engine, cid, phones(40), now=START - timedelta(hours=1))
    daemon = DaemonProcess(_env(db_url, tmp_path, platform.url))
    try:
        wait_for(lambda: daemon.healthz()[0] == 503 and daemon.healthz()[1].get("reasons"), 30)
        ticks_before = len(daemon.events("tick"))
        wait_for(lambda: len(daemon.events("tick")) > ticks_before, 15)  # another tick: held
        status, health = daemon.healthz()
        live, liveness = daemon.healthz("/livez")  # the loop turns: a liveness probe must not restart it
        took = daemon.sigterm()
    finally:
        daemon.kill()
    assert daemon.process.returncode == 0 and took < 5
    assert status == 503 and health["status"] == "unhealthy"
    assert live == 200 and liveness["status"] == "alive"
    assert any("DIALER_VOICE_API_TOKEN" in reason for reason in health["reasons"])
    refused = [a for a in attempts(engine) if a.outcome == "not_placed"]
    assert len(refused) == len(platform.posts) == 5  # the first batch only; then no claim
    faults = daemon.events("fault")
    assert len(faults) == 1 and faults[0]["fault"] == "campaign acme/renewals (placing calls)"
    assert "DIALER_VOICE_API_TOKEN" in faults[0]["msg"]
    assert any(e.get("held") for e in daemon.events("tick"))
    _no_traceback(daemon)


@SQLITE
def test_a_held_campaign_probes_with_one_call_and_dials_again_once_accepted(engine, fake_platform, caplog):
    platform = fake_platform(post="401")
    cid = campaign(engine)
    add_prospects(engine, cid, phones(20), now=START - timedelta(hours=1))
    hopper.fill_campaign(engine, cid, START)
    client = VoiceClient(platform.url, timeout=2, retries=0)
    daemon = Daemon(engine, client, clock=PlatformClock(client))
    wall = [0.0]
    daemon.ticker.holds.clock = lambda: wall[0]
    with caplog.at_level(logging.INFO, logger="dialer"):
        first = daemon.tick(cid)
        held = daemon.tick(cid)
        wall[0] += 10  # the hold is over: one probe, refused again, the hold doubles
        probe = daemon.tick(cid)
        wall[0] += 10
        still = daemon.tick(cid)
        platform.post = "ok"  # the token was fixed
        wall[0] += 10
        accepted = daemon.tick(cid)
        again = daemon.tick(cid)
    client.close()
    assert (first.claimed, first.not_placed, first.token_refused is not None) == (5, 5, True)
    assert (held.claimed, held.held) == (0, "the platform refused the token placing its calls")
    assert (probe.claimed, probe.not_placed) == (1, 1) and (still.claimed, still.held is not None) == (0, True)
    assert (accepted.claimed, accepted.placed) == (1, 1) and again.placed == 4
    told = [(r.event, r.fault) for r in caplog.records if getattr(r, "event", "").startswith("fault")]
    assert told == [("fault", "campaign acme/renewals (placing calls)"),
                    ("fault_cleared", "campaign acme/renewals (placing calls)")]
    assert daemon.metrics.faults == {}


@SQLITE
def test_a_platform_answering_outside_its_contract_at_start_up_is_one_sentence_and_exit_2(
        dialer_env, tmp_path, fake_platform):
    platform = fake_platform(gets="empty")  # `{}`: once a KeyError and a crash loop (HTML: the client's test)
    result = subprocess.run([str(BIN / "dialer"), "daemon", "--once"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, **dialer_env, "DIALER_VOICE_API_URL": platform.url})
    assert result.returncode == 2, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("{")]
    assert line.startswith("error: GET ") and "/v1/clock answered 200" in line and "DIALER_VOICE_API_URL" in line
    assert "Traceback" not in result.stderr


@SQLITE
def test_a_contract_break_mid_run_is_logged_once_retried_with_backoff_and_cleared(engine, fake_platform, caplog):
    platform = fake_platform()
    cid = campaign(engine, dialer_interval_s=2)
    client = VoiceClient(platform.url, timeout=2, retries=0)
    daemon = Daemon(engine, client, clock=PlatformClock(client))
    rows = daemon.campaigns()
    daemon.balance_leases(rows, greedy=True)
    with caplog.at_level(logging.INFO, logger="dialer"):
        daemon._tick_leased(rows, once=True)
        platform.gets = "html"
        for _ in range(5):
            failed = daemon._tick_leased(rows, once=True)
        put_off = daemon._next_tick[cid] - time.monotonic()
        healthy, health = daemon.metrics.health(60)
        platform.gets = "ok"
        daemon._tick_leased(rows, once=True)
        daemon.metrics.loop_done()
    client.close()
    assert failed == {"the voice platform"} and 55 < put_off <= 60  # 2 s, doubled per failure, at most 60 s
    assert not healthy and "docs/voice-api.yaml" in health["reasons"][0]
    told = [(r.event, r.fault) for r in caplog.records if getattr(r, "event", "").startswith("fault")]
    assert told == [("fault", "the voice platform"), ("fault_cleared", "the voice platform")]
    assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.INFO)
    assert daemon.metrics.health(60)[0]


@SQLITE
def test_an_unanswered_post_is_resent_backing_off_from_the_last_send(engine, fake_platform):
    platform = fake_platform(post="empty")  # 200 `{}`: the platform may have dialed, it does not say
    cid = campaign(engine)
    add_prospects(engine, cid, phones(1), now=START - timedelta(hours=1))
    hopper.fill_campaign(engine, cid, START)
    client = VoiceClient(platform.url, timeout=2, retries=0)
    daemon = Daemon(engine, client, clock=PlatformClock(client))
    for _ in range(16):  # a minute of ticks, 4 s apart
        daemon.tick(cid)
        platform.offset += 4
    client.close()
    [attempt] = attempts(engine)
    # Sent at 0 s, then 20 s after it, then 40 s after that: not on every tick after the first 20 s.
    assert platform.keys_posted() == [attempt.idempotency_key] * 3
    assert (attempt.status, attempt.sends) == ("placing", 3)


def test_the_wait_before_a_resend_doubles_from_the_last_send(engine):
    assert [calls.resend_wait(n).total_seconds() for n in (1, 2, 3, 6, 7, 50)] == [20, 40, 80, 600, 600, 600]
    cid = campaign(engine)
    add_prospects(engine, cid, phones(1), now=START - timedelta(hours=1))
    hopper.fill_campaign(engine, cid, START)
    camp, _ = _paced(engine, cid)
    with engine.begin() as conn:
        [row] = calls.claim(conn, cid, "d", 1, START)
        attempt = calls.start_attempt(conn, camp, row, "d", START)

    def due(seconds: float) -> bool:
        with engine.connect() as conn:
            return bool(calls.unconfirmed_attempts(conn, cid, START + timedelta(seconds=seconds)))

    assert not due(19) and due(20)
    with engine.begin() as conn:
        calls.mark_sent(conn, camp, attempt, START + timedelta(seconds=25))
    assert not due(64) and due(65)


def _paced(engine, cid):
    from campaigns.dialing import roster

    with engine.connect() as conn:
        return roster.paced_campaign(conn, cid)


# -- the fault log ----------------------------------------------------------------------

def test_a_fault_is_told_when_it_starts_changes_and_ends_and_reminded_between(caplog):
    now = [0.0]
    opened: list[dict] = []
    faults = FaultLog(remind_every_s=60, clock=lambda: now[0], on_change=opened.append)
    with caplog.at_level(logging.DEBUG, logger="dialer"):
        for second in range(150):  # a failure every second for 150 s
            now[0] = float(second)
            faults.down("the database", "OperationalError: connection refused", kind="unreachable",
                        exc=RuntimeError("boom"))
        faults.down("the database", "OperationalError: no answer within 3 s", kind="frozen")
        now[0] = 151.0
        faults.up("the database")
        faults.up("the database")
    told = [(r.levelname, r.event) for r in caplog.records if r.levelno >= logging.INFO]
    assert told == [("WARNING", "fault"), ("WARNING", "fault_continues"), ("WARNING", "fault_continues"),
                    ("WARNING", "fault"), ("INFO", "fault_cleared")]
    assert caplog.records[-1].seconds == 151.0 and caplog.records[-1].failures == 151
    assert all(r.exc_info is None for r in caplog.records if r.levelno >= logging.INFO)
    assert any(r.exc_info for r in caplog.records if r.levelno == logging.DEBUG)  # the tracebacks: debug only
    assert opened[0] == {"the database": "OperationalError: connection refused"} and opened[-1] == {}


# -- the database --------------------------------------------------------------------------

def test_timeout_settings_are_checked_and_reach_the_engines(db_url, backend):
    config = DialerConfig.from_env({"DIALER_DATABASE_STATEMENT_TIMEOUT_S": "2", "DIALER_DATABASE_LOCK_TIMEOUT_S": "0",
                                    "DIALER_SQLITE_BUSY_TIMEOUT_S": "4"})
    timeouts = config.database_timeouts
    assert (timeouts.statement_s, timeouts.lock_s, timeouts.sqlite_busy_s) == (2.0, None, 4.0)
    for bad in ({"DIALER_VOICE_API_TIMEOUT_S": "soon"}, {"DIALER_DAEMON_DRAIN_TIMEOUT_S": "0"},
                {"DIALER_DATABASE_CONNECT_TIMEOUT_S": "-1"}):
        with pytest.raises(DialerError, match=f"{next(iter(bad))} is '.*'; expected a number of seconds"):
            _ = DialerConfig.from_env(bad).daemon_deadlines, DialerConfig.from_env(bad).database_timeouts
    # A bad daemon-only setting fails the daemon, not batch work (every other command).
    assert DialerConfig.from_env({"DIALER_DATABASE_STATEMENT_TIMEOUT_S": "soon"}).batch_timeouts.connect_s == 10.0
    # Dagster runs take the batch limits from the same settings (the resource is built from the config).
    resource = DatabaseResource.from_config(config)
    assert (resource.connect_timeout_s, resource.sqlite_busy_timeout_s) == (10.0, 4.0)
    daemon_engine = db.make_engine(db_url, timeouts=timeouts)
    batch_engine = DatabaseResource(url=db_url, sqlite_busy_timeout_s=resource.sqlite_busy_timeout_s).engine
    try:
        with daemon_engine.connect() as daemon_conn, batch_engine.connect() as batch_conn:
            if backend == "postgres":  # ingestion's long statements are never cut by the daemon's limit
                assert daemon_conn.exec_driver_sql("SHOW statement_timeout").scalar() == "2s"
                assert daemon_conn.exec_driver_sql("SHOW lock_timeout").scalar() == "0"
                assert batch_conn.exec_driver_sql("SHOW statement_timeout").scalar() == "0"
            else:
                assert daemon_conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 4000
        if backend != "postgres":  # after the daemon's connection: each begins SQLite's write transaction
            with batch_engine.connect() as batch_conn:
                assert batch_conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 4000
    finally:
        daemon_engine.dispose()
        batch_engine.dispose()


@POSTGRES
def test_a_sensors_query_is_cut_at_the_sensor_limit_while_runs_keep_no_limit(db_url):
    resource = DatabaseResource(url=db_url, sensor_statement_timeout_s=0.5)
    try:
        with resource.engine.connect() as batch_conn:
            assert batch_conn.exec_driver_sql("SHOW statement_timeout").scalar() == "0"
        with resource.sensor_engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "500ms"
            assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "500ms"
            started = time.monotonic()
            with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
                conn.exec_driver_sql("SELECT pg_sleep(5)")
            assert time.monotonic() - started < 3
    finally:
        resource.teardown_after_execution(None)  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError):
        DatabaseResource(url=db_url, sensor_statement_timeout_s=0)


RELAY = """
import socket, sys, threading
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen(64)
print("ready", flush=True)

def pipe(a, b):
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

while True:
    client, _ = server.accept()
    upstream = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
    for a, b in ((client, upstream), (upstream, client)):
        threading.Thread(target=pipe, args=(a, b), daemon=True).start()
"""


def _relay(port: int, target: int) -> subprocess.Popen:
    """A TCP relay to PostgreSQL in a process of its own, so the test can SIGSTOP it: frozen, it
    forwards nothing and closes nothing, and its kernel still accepts and ACKs."""
    process = subprocess.Popen([sys.executable, "-c", RELAY, str(port), str(target)], stdout=subprocess.PIPE,
                               text=True, start_new_session=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


@POSTGRES
def test_a_frozen_then_dead_database_is_one_fault_healthz_says_so_and_sigterm_ends_within_the_bound(
        engine, db_url, tmp_path):
    sim = Simulator(seed=3, start=START, speed=1.0, default=Profile(sessions=4))
    server = serve(sim)
    cid = campaign(engine, dialer_interval_s=2)
    add_prospects(engine, cid, phones(60), now=START - timedelta(hours=1))
    url = sa.make_url(db_url)
    port = free_port()
    env = _env(url.set(port=port).render_as_string(hide_password=False), tmp_path,
               f"http://127.0.0.1:{server.server_port}", DIALER_DATABASE_STATEMENT_TIMEOUT_S="1",
               DIALER_DATABASE_LOCK_TIMEOUT_S="1", DIALER_DATABASE_CONNECT_TIMEOUT_S="2")
    relay = _relay(port, url.port or 5432)
    daemon = DaemonProcess(env, "--lease-seconds", "6")
    try:
        wait_for(lambda: sim.calls() and daemon.healthz()[0] == 200, 30)
        os.kill(relay.pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        wait_for(lambda: daemon.healthz()[0] == 503, 15)
        detected = time.monotonic() - frozen_at
        status, health = daemon.healthz()
        time.sleep(2)  # the outage goes on: the loop keeps failing, and says nothing more
        relay.kill()  # then the relay dies: connections reset, new ones refused until it is back
        relay.wait(timeout=10)
        time.sleep(1)
        relay = _relay(port, url.port or 5432)
        wait_for(lambda: daemon.events("fault_cleared") and daemon.healthz()[0] == 200, 30)
        told = [e for e in daemon.events() if e.get("event", "").startswith("fault")]
        log_bytes = daemon.log_bytes
        wait_for(lambda: daemon.events("tick")[-1]["ts"] > told[-1]["ts"], 30)  # it ticks again
        # Frozen again, and SIGTERM: the daemon still ends within the drain bound.
        os.kill(relay.pid, signal.SIGSTOP)
        time.sleep(0.5)
        took = daemon.sigterm()
    finally:
        relay.kill()
        daemon.kill()
        platform_log = sim.calls()
        server.shutdown()
    assert detected < 10, f"the frozen database was noticed after {detected:.1f} s"
    assert status == 503 and any(r.startswith("the database: ") for r in health["reasons"]), health
    assert [(e["event"], e["fault"]) for e in told] == [("fault", "the database"), ("fault_cleared", "the database")], [
        e["msg"] for e in told]
    assert log_bytes < 20_000, f"{log_bytes} bytes of logs"
    _no_traceback(daemon)
    assert took < DRAIN_S + 1 and daemon.process.returncode in (0, 1), "".join(daemon.lines[-10:])
    # Nothing dialed twice: every call the platform made is an attempt, every attempt confirmed
    # was placed once; those still unconfirmed (`placing`) the next daemon settles by their key.
    recorded = attempts(engine)
    platform_keys = [c["idempotency_key"] for c in platform_log]
    confirmed = {a.idempotency_key for a in recorded if a.platform_call_id}
    placing = {a.idempotency_key for a in recorded if a.status == "placing"}
    assert len(platform_keys) == len(set(platform_keys))
    assert confirmed <= set(platform_keys) <= confirmed | placing
