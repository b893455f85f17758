"""`dialer campaign status --watch`: the live view in a pseudo-terminal and as lines for scripts,
and the figures it adds to the status use case (calls over the last 5 minutes)."""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.dialing.history import call_counts
from campaigns.reporting.call_activity import calls_between
from campaigns.reporting.status import campaign_status, recent_calls
from tests.helpers import add_prospects
from tests.test_daemon import START, campaign, phones

BIN = Path(sys.executable).parent
SQLITE = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
HEADER = b"dialer campaign status"


def _attempt(conn, cid: int, pid: int, n: int, created, **extra) -> None:
    conn.execute(sa.insert(t.call_attempts).values(
        campaign_id=cid, prospect_id=pid, attempt_number=n, idempotency_key=f"k{n}", phone_e164="+12125550000",
        status="ended", created_at=created, **extra))


def test_recent_calls_count_each_event_when_it_happened_in_the_last_five_minutes(engine):
    cid = campaign(engine)
    [pid] = add_prospects(engine, cid, phones(1), now=START - timedelta(hours=1))
    m = timedelta(minutes=1)
    with engine.begin() as conn:
        # placed and answered before the span: neither counts
        _attempt(conn, cid, pid, 1, START - 6 * m, placed_at=START - 6 * m, answered_at=START - 6 * m)
        # placed before the span, answered in it: the answer counts
        _attempt(conn, cid, pid, 2, START - 6 * m, placed_at=START - 6 * m, answered_at=START - 4 * m)
        # placed exactly at the span's start: (now - 5 min, now] leaves it out, and its answer counts
        _attempt(conn, cid, pid, 3, START - 5 * m, placed_at=START - 5 * m, answered_at=START - 3 * m)
        _attempt(conn, cid, pid, 4, START - 3 * m, placed_at=START - 3 * m, answered_at=START - 3 * m,
                 ended_at=START - m, outcome="completed")
        # a person answered, nobody was free: abandoned when it ended
        _attempt(conn, cid, pid, 5, START - 2 * m, placed_at=START - 2 * m, ended_at=START - 2 * m,
                 outcome="abandoned")
        _attempt(conn, cid, pid, 6, START - 2 * m, placed_at=START - 2 * m, ended_at=START - m, outcome="no_answer")
        # the platform never placed it: no call
        _attempt(conn, cid, pid, 7, START - m, ended_at=START - m, outcome="not_placed")
        # placed exactly at `now`: counts; after `now`: does not
        _attempt(conn, cid, pid, 8, START, placed_at=START)
        _attempt(conn, cid, pid, 9, START + m, placed_at=START + m, answered_at=START + m)
    with engine.connect() as conn:
        recent = recent_calls(conn, cid, START)
        assert (recent.calls, recent.answered, recent.abandoned) == (4, 3, 1)
        # the same counter the pacer's feedback and the call_attempts sensor read
        counts = call_counts(conn, cid, START - 5 * m, START)
        assert (counts.placed, counts.answered, counts.abandoned, counts.ended) == (4, 3, 1, 4)
        [listed] = calls_between(conn, START - 5 * m, START)
        assert listed.campaign == "acme/renewals" and listed.counts == counts
        assert campaign_status(conn, cid, START).as_dict()["recent"] == {
            "minutes": 5.0, "calls": 4, "answered": 3, "abandoned": 1}
        assert campaign_status(conn, cid, START).dialer_interval_s == 10


def _read_until(fd: int, done, deadline: float) -> bytes:
    data = b""
    while time.monotonic() < deadline and not done(data):
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            data += chunk
    return data


@SQLITE
def test_watch_in_a_terminal_refreshes_and_ctrl_c_leaves_cleanly(engine, dialer_env):
    cid = campaign(engine, dialer_interval_s=2)
    add_prospects(engine, cid, phones(5), now=START)
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
    env = {**os.environ, **dialer_env, "TERM": "xterm-256color"}
    process = subprocess.Popen([str(BIN / "dialer"), "campaign", "status", "acme/renewals", "--watch"],
                               stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    try:
        began = time.monotonic()
        shown = _read_until(master, lambda data: data.count(HEADER) >= 2, began + 60)
        assert shown.count(HEADER) >= 2, shown.decode(errors="replace")[-2000:]
        assert time.monotonic() - began >= 2  # the second refresh waited for the dialer interval
        process.send_signal(signal.SIGINT)
        rest = _read_until(master, lambda data: process.poll() is not None, time.monotonic() + 30)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        os.close(master)
    screen = (shown + rest).decode(errors="replace")
    assert process.returncode == 0, screen[-2000:]
    assert "Traceback" not in screen and "KeyboardInterrupt" not in screen
    assert "acme/renewals" in screen and "Ctrl-C to leave" in screen and "no daemon holds its lease" in screen
    # Live hid the cursor while drawing and showed it again on the way out.
    assert screen.rfind("\x1b[?25h") > screen.rfind("\x1b[?25l") >= 0


@SQLITE
def test_watch_without_a_terminal_prints_each_refresh_and_json_lines(engine, dialer_env):
    cid = campaign(engine, dialer_interval_s=2)
    add_prospects(engine, cid, phones(5), now=START)
    env = {**os.environ, **dialer_env}
    began = time.monotonic()
    result = subprocess.run([str(BIN / "dialer"), "campaign", "status", "--watch", "--count", "2", "--json"],
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - began >= 2
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["as_of"] < second["as_of"] and first["interval_s"] == 2
    [shown] = first["campaigns"]  # every active campaign: the one there is
    assert shown["slug"] == "renewals" and shown["paced_by"] is None and shown["hopper_depth"] == 0
    assert shown["recent"] == {"minutes": 5.0, "calls": 0, "answered": 0, "abandoned": 0}
    assert shown["dialability"]["open_prospects"] == 5
    text = subprocess.run([str(BIN / "dialer"), "campaign", "status", "renewals", "--watch", "--count", "2"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert text.returncode == 0, text.stderr
    assert text.stdout.count("dialer campaign status") == 2 and "\x1b" not in text.stdout
    assert "last 5 min: 0 calls, 0 answered, 0 abandoned" in text.stdout


@SQLITE
def test_watch_flags_are_checked(engine, dialer_env):
    campaign(engine)
    env = {**os.environ, **dialer_env}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "dialer"), "campaign", "status", *args], env=env, capture_output=True,
                              text=True, timeout=60, check=False)

    for args, says in [(("renewals", "--watch", "--at", "2026-10-21T15:00Z"), "--at and --watch"),
                       (("renewals", "--count", "2"), "--count goes with --watch"),
                       ((), "name a campaign"),
                       (("nope", "--watch"), "No campaign `nope`")]:
        result = run(*args)
        assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr, args
