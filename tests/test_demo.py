"""`dialer demo` end to end (as `make demo` runs it, shorter), and `dialer dev`'s start and Ctrl-C.

The demo runs as a real process in its own session, like a terminal's foreground job, so
"no process left behind" is checked on its process group; every figure it prints is
re-counted here from its SQLite database and, independently of `campaigns.reports`, from
the zipped CSV it wrote and the email it left in the mail folder.
"""

from __future__ import annotations

import csv
import email
import email.policy
import io
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import yaml

from campaigns.core import db
from campaigns.core import schema as t
from campaigns.core.errors import DialerError
from campaigns.ingestion.zones import locale_zones
from dialer_cli import demo, demo_data
from tests.helpers import free_port
from tests.test_dagster_dev import _locations

ROOT = Path(__file__).resolve().parent.parent
DIALER = str(Path(sys.executable).parent / "dialer")


def _run_demo(tmp_path: Path, home: Path, *extra: str) -> tuple[int, str, str]:
    env = {**os.environ, "DIALER_HOME": str(tmp_path / "elsewhere"),
           # the demo must ignore these: it runs on its own embedded defaults
           "DIALER_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none", "DIALER_SMTP_HOST": "127.0.0.1"}
    process = subprocess.Popen(
        [DIALER, "demo", "--home", str(home), "--prospects", "500", "--seconds", "6", *extra],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    # Nothing of it is left: not the simulator, not the daemon, not a Dagster subprocess.
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)
    return process.returncode, stdout, stderr


def _report_rows(path: Path) -> list[dict]:
    with zipfile.ZipFile(path) as archive:
        [name] = archive.namelist()
        return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"), newline="")))


def _local_day(created: datetime, zone_group: str) -> date:
    first_zone = zone_group.split("|")[0].split(",")[0]
    return created.astimezone(ZoneInfo(first_zone)).date()


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> tuple[Path, dict]:
    """One `dialer demo --json` shared by the tests below (the second test runs it again)."""
    tmp_path = tmp_path_factory.mktemp("demo")
    home = tmp_path / "demo"
    code, stdout, stderr = _run_demo(tmp_path, home, "--json")
    assert code == 0, stderr
    return home, json.loads(stdout)


def test_demo_figures_match_the_database_and_the_report_file(first_run):
    home, result = first_run
    engine = db.make_engine(f"sqlite:///{home / 'dialer.sqlite3'}")
    try:
        with engine.connect() as conn:
            [campaign] = conn.execute(sa.select(t.campaigns)).all()
            [upload] = conn.execute(sa.select(t.prospect_lists)).all()
            prospects = conn.execute(sa.select(t.prospects)).all()
            attempts = conn.execute(sa.select(t.call_attempts, t.prospects.c.zone_group)
                                    .join(t.prospects, t.prospects.c.id == t.call_attempts.c.prospect_id)).all()
            dispositions = {r.title: r for r in conn.execute(sa.select(t.dispositions))}
            sent = conn.execute(sa.select(t.reports_sent)).all()
            leftovers = {
                "hopper claims": conn.execute(sa.select(sa.func.count()).select_from(t.hopper)
                                              .where(t.hopper.c.status == "claimed")).scalar_one(),
                "daemons": conn.execute(sa.select(sa.func.count()).select_from(t.daemons)).scalar_one(),
                "leases held": conn.execute(sa.select(sa.func.count()).select_from(t.campaign_leases)).scalar_one(),
            }
    finally:
        engine.dispose()

    # The upload: what the generator put in the file, every row accounted for.
    u = result["upload"]
    expected = u["expected"]
    assert (upload.rows, upload.loaded, upload.duplicates, upload.invalid, upload.dnc) == (
        u["rows"], u["loaded"], u["duplicates"], u["invalid"], u["dnc"])
    assert (u["rows"], u["loaded"], u["duplicates"], u["invalid"], u["dnc"]) == (
        500, expected["valid"], expected["duplicate"], expected["invalid"], expected["dnc"])
    assert min(u["invalid"], u["duplicates"], u["dnc"]) > 0
    assert len(prospects) == u["loaded"] + u["dnc"]
    zones = {zone for p in prospects for zone in p.candidate_zones.split(",")}
    assert zones >= set(locale_zones("US")), "every US/Canada zone has prospects"
    assert set(u["zones"]) == set(locale_zones("US"))

    # Dialing: the live figures are the database's, every placed call is one attempt.
    d = result["dialing"]
    placed = [a for a in attempts if a.outcome != "not_placed"]
    assert d["calls"] == len(placed) > 0
    assert d["answered"] == sum(a.answered_at is not None for a in attempts)
    assert d["abandoned"] == sum(a.outcome == "abandoned" for a in attempts)
    assert d["platform_calls"] == len({a.platform_call_id for a in attempts if a.platform_call_id})
    assert all(a.status == "ended" for a in attempts), "no call left mid-way"
    assert leftovers == {"hopper claims": 0, "daemons": 0, "leases held": 0}
    assert campaign.state == "active", "paused for the last calls, then resumed"

    # The report: re-counted from the zipped CSV, which holds exactly the day's attempts.
    r = result["report"]
    day = date.fromisoformat(result["day"]["date"])
    assert r["day"] == day.isoformat() and day.weekday() < 5
    path = Path(r["file"])
    assert path.parent == home / "bucket" / "reports" / "demo" / "energy-survey" / day.isoformat()
    rows = _report_rows(path)
    of_the_day = {a.id for a in attempts if _local_day(a.created_at, a.zone_group) == day}
    assert {int(row["attempt_id"]) for row in rows} == of_the_day
    assert r["rows"] == len(rows) and r["attempts_in_database"] == len(attempts)
    assert r["attempts_other_days"] == len(attempts) - len(rows)
    dials = [row for row in rows if row["outcome"] != "not_placed"]
    completed = Counter(row["disposition"] for row in dials if row["outcome"] == "completed")
    assert r["dials"] == len(dials)
    assert r["answered"] == sum(1 for row in dials if row["answered_at_utc"])
    assert r["abandoned"] == sum(1 for row in dials if row["outcome"] == "abandoned")
    assert r["contacted"] == sum(n for title, n in completed.items() if dispositions[title].contacted)
    assert r["qualified"] == sum(n for title, n in completed.items() if dispositions[title].qualified)
    assert r["callbacks"] == sum(n for title, n in completed.items() if dispositions[title].callback)
    assert r["dnc_added"] == sum(n for title, n in completed.items() if dispositions[title].dnc)
    assert r["by_outcome"] == dict(Counter(row["outcome"] for row in rows))
    assert r["prospects"] == {**{k: 0 for k in r["prospects"]}, **Counter(p.status for p in prospects)}
    finished = datetime.fromisoformat(d["simulated_until"])
    max_calls = campaign.max_calls_per_prospect
    assert r["remaining_dialable"] == sum(
        1 for p in prospects
        if p.status in ("ready", "callback") and p.attempts < max_calls and p.expires_at > finished
    ), "still to dial: waiting, calls left, not expired — whatever the hour"
    # Everyone dialed was in their window: 09:00–21:00 in the zone the report dates them by.
    for row in rows:
        assert "09:00" <= row["called_at_local"][11:16] < "21:00"

    # Predictive pacing; its abandon rate and the agents' occupancy, re-counted from the database.
    assert (campaign.pacing_mode, campaign.target_abandon_rate, campaign.dialer_interval_s) == ("predictive", 0.02, 5)
    assert (d["pacing"], d["target_abandon_rate"]) == ("predictive", 0.02)
    placed_today = [a for a in placed if a.id in of_the_day]
    lost = sum(a.outcome == "abandoned" for a in placed_today)
    assert d["abandon_rate"] == r["abandon_rate"] == round(
        lost / (lost + sum(a.answered_at is not None for a in placed_today)), 4)
    since, until = (datetime.fromisoformat(d["stepped_exactly"][k]) for k in ("from", "until"))
    assert d["occupancy"] == pytest.approx(_occupancy(placed_today, since, until), abs=1e-4)
    hour = datetime.fromisoformat(d["busiest_hour"])
    assert r["busiest_hour"] == d["busiest_hour"] and since <= hour < hour + timedelta(hours=1) <= until
    hourly = {since + timedelta(hours=h): _occupancy(placed_today, since + timedelta(hours=h),
                                                     since + timedelta(hours=h + 1))
              for h in range(int((until - since).total_seconds() // 3600))}
    assert max(hourly, key=hourly.__getitem__) == hour
    assert r["busiest_hour_occupancy"] == d["busiest_hour_occupancy"] == pytest.approx(hourly[hour], abs=1e-4)
    assert hourly[hour] > 0.3, "ten sessions kept busy by the pacing, not idle between ticks"
    in_hour = [a for a in placed_today if hour <= a.created_at < hour + timedelta(hours=1)]
    lost_in_hour = sum(a.outcome == "abandoned" for a in in_hour)
    assert d["busiest_hour_abandon_rate"] == round(
        lost_in_hour / (lost_in_hour + sum(a.answered_at is not None for a in in_hour)), 4)
    # The day as the daemon saw it: every 15-minute slot ticked, the busiest hours every dialer
    # interval exactly (the clock steps once per tick, so occupancy there is the pacing's).
    start, end = (datetime.fromisoformat(result["day"][k]) for k in ("start", "end"))
    log = map(json.loads, (home / "daemon.log").read_text().splitlines())
    ticks = [datetime.fromisoformat(entry["at"]) for entry in log if entry.get("event") == "tick"]
    assert ticks == sorted(ticks) and ticks[0] == start and d["daemon_ticks"] == len(ticks)
    assert {(t - start) // demo.SLOT for t in ticks if t < end} == set(range(math.ceil((end - start) / demo.SLOT)))
    assert [t for t in ticks if since <= t < until] == [
        since + timedelta(seconds=5 * k) for k in range(int((until - since).total_seconds()) // 5)]

    # The email in the mail folder carries the same file and figures.
    [eml] = (home / "mail").glob("*.eml")
    assert r["email"] == str(eml)
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert message["To"] == "ops@example.com"
    assert f"{r['dials']} dials, {r['contacted']} contacted" in message["Subject"]
    [attachment] = [part for part in message.walk() if part.get_filename()]
    assert attachment.get_filename() == path.name and attachment.get_payload(decode=True) == path.read_bytes()
    body = next(part for part in message.walk() if part.get_content_type() == "text/plain").get_content()
    assert re.search(rf"^Dials\s+{r['dials']}$", body, re.MULTILINE)
    # The HTML report: the text alternative beside HTML whose charts are inline PNG images.
    assert [part.get_content_type() for part in message.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "multipart/related", "text/html",
        "image/png", "image/png", "image/png", "image/png", "application/zip"]
    html = message.get_body(("html",)).get_content()
    for image in (part for part in message.walk() if part.get_content_type() == "image/png"):
        assert image.get_content().startswith(b"\x89PNG")
        assert f'src="cid:{image["Content-ID"].strip("<>")}"' in html
    by_hour = r["by_hour"]
    assert sum(h["dials"] for h in by_hour) == r["dials"] and sum(h["answered"] for h in by_hour) == r["answered"]
    assert r["agent_sessions"] == demo.SESSIONS and r["timezone"] == "America/New_York"
    assert [(s.report_date, s.kind) for s in sent] == [(day, "daily")]


@pytest.mark.browser
def test_the_demos_email_opens_in_a_browser_with_its_charts(first_run, tmp_path):
    """The demo's own email, as a mail client shows it: `test-artifacts/demo-report-email.png`."""
    from tests.helpers import email_page
    from tests.test_browser import ARTIFACTS, _chromium

    home, result = first_run
    r = result["report"]
    [eml] = (home / "mail").glob("*.eml")
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    shown = email_page(message, tmp_path / "page", _chromium(), ARTIFACTS / "demo-report-email.png")
    assert shown["images_loaded"] == 4
    assert shown["title"].startswith("demo/energy-survey — dialing day ")
    figures = shown["figures"]
    assert [figures[k] for k in ("dials", "answered", "contacted", "qualified", "abandoned")] == [
        f"{r[k]:,}" for k in ("dials", "answered", "contacted", "qualified", "abandoned")]
    assert {state: int(dials.replace(",", "")) for state, dials, _ in shown["tables"]["by-state"]} == r["by_state"]
    assert shown["alts"][0].startswith("Calls by hour (America/New_York): ")
    assert sum(int(n) for n in re.findall(r"(\d+) dials", shown["alts"][0])) == r["dials"]


def _occupancy(attempts, since: datetime, until: datetime, sessions: int = demo.SESSIONS) -> float:
    """The sessions' share of [since, until) on calls, from attempts' answered and ended instants."""
    on_calls = sum(max(0.0, (min(a.ended_at or until, until) - max(a.answered_at, since)).total_seconds())
                   for a in attempts if a.answered_at is not None)
    return on_calls / (sessions * (until - since).total_seconds())


def test_demo_runs_again_from_scratch_and_prints_its_tables(first_run, tmp_path):
    home = tmp_path / "demo"
    shutil.copytree(first_run[0], home)  # a folder a demo made (the shared run stays as it was)
    code, stdout, stderr = _run_demo(tmp_path, home)
    assert code == 0, stderr
    engine = db.make_engine(f"sqlite:///{home / 'dialer.sqlite3'}")
    try:
        with engine.connect() as conn:
            uploads = conn.execute(sa.select(t.prospect_lists.c.loaded, t.prospect_lists.c.duplicates)).all()
            dials = conn.execute(sa.select(sa.func.count()).select_from(t.call_attempts)
                                 .where(t.call_attempts.c.outcome != "not_placed")).scalar_one()
            attempts = conn.execute(sa.select(t.call_attempts, t.prospects.c.zone_group)
                                    .join(t.prospects, t.prospects.c.id == t.call_attempts.c.prospect_id)).all()
    finally:
        engine.dispose()
    # A fresh start: one upload, loaded in full again (not duplicates of the first run's numbers).
    assert len(uploads) == 1 and uploads[0].loaded > 400
    for heading in ("1. Campaign", "2. DNC list", "3. Upload", "4. Hopper", "5. Dialing", "6. Report"):
        assert heading in stdout
    assert re.search(r"┃\s+rows\s+┃\s+loaded\s+┃\s+duplicates\s+┃\s+invalid\s+┃\s+dnc\s+┃", stdout)
    assert re.search(r"calls [\d,]+\s+answered [\d,]+\s+abandoned [\d,]+ \([\d.]+%\)\s+occupancy \d+%", stdout)
    [report_file] = home.glob("bucket/reports/demo/energy-survey/*/*.zip")
    assert str(report_file) in stdout
    printed_dials = re.search(r"│ dials\s+│ ([\d,]+)", stdout).group(1).replace(",", "")
    in_file = sum(1 for row in _report_rows(report_file) if row["outcome"] != "not_placed")
    assert int(printed_dials) == in_file <= dials
    # The pacing's figures as printed: the day's abandon rate and the busiest hour's occupancy,
    # re-counted from the database.
    assert re.search(r"│ pacing\s+│ predictive, abandon-rate target 2\.0%", stdout)
    day = date.fromisoformat(report_file.parent.name)
    today = [a for a in attempts if a.outcome != "not_placed" and _local_day(a.created_at, a.zone_group) == day]
    lost = sum(a.outcome == "abandoned" for a in today)
    rate = lost / (lost + sum(a.answered_at is not None for a in today))
    assert re.search(rf"│ abandon rate\s+│ {rate:.1%} of the calls a person answered", stdout), stdout
    busiest = re.search(r"│ agent occupancy, busiest hour\s+│ (\d+)% \((\w+) (\d\d):00 UTC, stepped every 5 s\)",
                        stdout)
    weekday, hh = busiest.group(2), int(busiest.group(3))
    [hour] = [datetime.combine(d, datetime.min.time(), UTC) + timedelta(hours=hh)
              for d in (day, day + timedelta(days=1)) if d.strftime("%a") == weekday]
    assert busiest.group(1) == f"{_occupancy(today, hour, hour + timedelta(hours=1)) * 100:.0f}"


def test_ctrl_c_during_the_day_drains_and_exits_130(tmp_path):
    home = tmp_path / "demo"
    process = subprocess.Popen(
        [DIALER, "demo", "--home", str(home), "--prospects", "500", "--seconds", "60"],
        cwd=tmp_path, env={**os.environ, "DIALER_HOME": str(tmp_path)}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _attempts(home):
            if process.poll() is not None:
                pytest.fail(f"the demo exited {process.returncode} before dialing:\n{process.stdout.read()}")
            time.sleep(0.5)
        assert _attempts(home), "the demo never started dialing"
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, output
    assert "interrupted: no new call was started, the calls on ended and the daemon drained" in output
    assert _group_gone(process.pid)
    engine = db.make_engine(f"sqlite:///{home / 'dialer.sqlite3'}")
    try:
        with engine.connect() as conn:
            statuses = Counter(conn.execute(sa.select(t.call_attempts.c.status)).scalars())
            assert set(statuses) == {"ended"}, statuses
            assert conn.execute(sa.select(t.campaigns.c.state)).scalar_one() == "active"
            assert conn.execute(sa.select(sa.func.count()).select_from(t.daemons)).scalar_one() == 0
            assert conn.execute(sa.select(sa.func.count()).select_from(t.hopper)
                                .where(t.hopper.c.status == "claimed")).scalar_one() == 0
            assert conn.execute(sa.select(sa.func.count()).select_from(t.reports_sent)).scalar_one() == 0
    finally:
        engine.dispose()


def _attempts(home: Path) -> int:
    if not (home / "dialer.sqlite3").exists():
        return 0
    engine = db.make_engine(f"sqlite:///{home / 'dialer.sqlite3'}")
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(t.call_attempts)).scalar_one()
    except sa.exc.OperationalError:
        return 0
    finally:
        engine.dispose()


def test_demo_refuses_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(DialerError, match="did not make"):
        demo.prepare_home(tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_dialing_day_is_an_ordinary_weekday_after_today():
    def opens(day: date) -> datetime:
        return datetime.combine(day, datetime.min.time(), UTC) - timedelta(hours=1)

    # Wednesday before Thanksgiving 2026: Thursday is a banned holiday (e.g. Louisiana), Friday is not.
    assert demo.dialing_day(datetime(2026, 11, 25, 12, tzinfo=UTC), opens) == date(2026, 11, 27)
    # Friday → Monday; and never a day whose window opened already.
    assert demo.dialing_day(datetime(2026, 11, 27, 12, tzinfo=UTC), opens) == date(2026, 11, 30)
    assert demo.dialing_day(datetime(2026, 12, 1, 23, 30, tzinfo=UTC), opens) == date(2026, 12, 3)


# A day shaped like the demo's: Guam's lonely morning, the mainland opening zone by zone, its
# plateau, the evening tail, then nothing open at all (hour by hour, four 15-minute slots each).
DAY_START = datetime(2026, 11, 30, 8, tzinfo=UTC)
HOURLY_SHARES = [0.01] * 5 + [0.02, 0.42, 0.75, 0.87] + [1.0] * 7 + [0.88, 0.42, 0.2, 0.09] + [0.0] * 4


def _day_plan(seconds: float) -> demo.DayPlan:
    shares = [share for share in HOURLY_SHARES for _ in range(4)]
    return demo.plan_day(DAY_START, DAY_START + timedelta(hours=24), shares, 5.0, seconds)


def _run_day(plan: demo.DayPlan, seconds: float, tick_s) -> tuple[demo.DayRunner, float]:
    """The runner on a fake wall clock: each tick costs `tick_s(step before it)` wall seconds."""
    wall = {"t": 1000.0}
    clock = demo.Stepped()
    runner: demo.DayRunner

    def tick() -> None:
        wall["t"] += tick_s(runner.step_s)

    runner = demo.DayRunner(plan, clock, tick=tick, in_flight=lambda: 0, pause=lambda: None,
                            stop=threading.Event(), seconds=seconds, monotonic=lambda: wall["t"])
    runner.day()
    return runner, wall["t"] - 1000.0


def test_the_day_plan_steps_the_busiest_hours_exactly():
    plan = _day_plan(60.0)
    slot = demo.SLOT_S
    # One hour fits in half of a minute at TICK_S a tick, two do not: the first hour of the plateau,
    # 17:00 UTC (the earliest of equals: the fewer busy hours stepped long before it the better).
    assert plan.exact_span() == (DAY_START + timedelta(hours=9), DAY_START + timedelta(hours=10))
    assert sorted(plan.exact) == [36, 37, 38, 39]
    assert all(plan.shares[i] == max(plan.shares) for i in plan.exact)
    assert plan.per_slot == slot / 5
    # More wall time buys more hours, in a row, with nearly as many prospects (16:00 has 87%);
    # a few seconds still buy one.
    assert _day_plan(150.0).exact_span() == (DAY_START + timedelta(hours=8), DAY_START + timedelta(hours=11))
    assert len(_day_plan(5.0).exact) == 4


@pytest.mark.parametrize("tick_ms", [20, 90])
def test_the_day_runner_steps_the_busiest_hours_exactly_and_the_rest_as_the_wall_time_allows(tick_ms):
    """A tick costs `tick_ms` (more after a long step: its calls and events), on a machine as fast as
    `TICK_S` assumes or three times slower; the day is stepped through either way."""
    plan = _day_plan(60.0)
    runner, wall = _run_day(plan, 60.0, lambda step_s: tick_ms / 1000 * (1 + min(step_s, 300) / 300))
    instants = runner.instants
    # The whole day, in order, every slot starting on a tick, and the clock at the day's end.
    assert instants[0] == 0.0 and instants == sorted(set(instants)) and instants[-1] < plan.span_s
    assert runner.clock.value == plan.span_s
    assert {int(t // demo.SLOT_S) for t in instants} == set(range(96))
    assert all(any(t == i * demo.SLOT_S for t in instants) for i in range(96))
    # The busiest hour: one tick per dialer interval, 720 of them.
    since, until = (t.timestamp() - DAY_START.timestamp() for t in plan.exact_span())
    exact = [t for t in instants if since <= t < until]
    assert exact == [since + 5.0 * k for k in range(720)]
    per_hour = Counter(int(t // 3600) for t in instants)
    assert [per_hour[h] for h in range(20, 24)] == [4, 4, 4, 4]  # nothing open: one step per slot
    if tick_ms == 20:
        # Ticks as cheap as TICK_S says: about `seconds`, the plateau's other hours stepped more
        # often than the evening tail's.
        assert 54 <= wall <= 66 and len(instants) <= 66 / 0.02
        assert min(per_hour[h] for h in range(10, 16)) > per_hour[18] > per_hour[19] > 4
    else:
        # Three times dearer: the exact hour takes what it takes, the wall time is gone by its end,
        # and the rest of the day passes a slot a tick.
        assert wall < 720 * 0.09 * 1.1 + 30
        assert all(per_hour[h] == 4 for h in range(10, 24))


def test_the_day_runner_finishes_early_by_pausing_and_letting_the_calls_on_end():
    plan = _day_plan(60.0)
    clock = demo.Stepped()
    left = iter([3, 1, 0])
    events: list[str] = []
    runner = demo.DayRunner(plan, clock, tick=lambda: events.append("tick"), in_flight=lambda: next(left),
                            pause=lambda: events.append("pause"), stop=threading.Event(), seconds=60.0)
    runner.finish.set()  # Ctrl-C before the day began
    runner.run()
    assert runner.failure is None and runner.paused and runner.instants == []
    assert events == ["pause", "tick", "tick", "tick"]
    assert clock.value == 2 * demo.LAST_CALLS_STEP_S  # a minute between the ticks after the pause


def test_generated_list_is_reproducible_and_covers_every_region():
    first, again = demo_data.generate(400, seed=3), demo_data.generate(400, seed=3)
    assert first.csv_text == again.csv_text and first.dnc_text == again.dnc_text
    assert demo_data.generate(400, seed=4).csv_text != first.csv_text
    rows = list(csv.DictReader(io.StringIO(first.csv_text)))
    assert len(rows) == 400 == sum(first.expected.values())
    from campaigns.core.regions import LOCALES

    assert set(first.regions) == set(LOCALES["US"]["regions"])
    with pytest.raises(ValueError, match="too few"):
        demo_data.generate(100)


def test_dev_starts_dagster_the_simulator_and_the_daemon_and_ctrl_c_stops_all(tmp_path):
    port, simulator_port = free_port(), free_port()
    home = tmp_path / "dialer"
    env = {**os.environ, "DIALER_HOME": str(home), "DIALER_DATABASE_URL": "", "DIALER_BUCKET_URL": "",
           "DAGSTER_HOME": "", "DAGSTER_TELEMETRY_URL": "http://127.0.0.1:9/actions"}
    subprocess.run([DIALER, "init"], env=env, check=True, capture_output=True, timeout=120)
    subprocess.run([DIALER, "campaign", "apply", str(ROOT / "examples/campaign.yaml")], env=env, check=True,
                   capture_output=True, timeout=120)
    log = (tmp_path / "dev.log").open("w")
    process = subprocess.Popen(
        [DIALER, "dev", "--port", str(port), "--simulator-port", str(simulator_port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    dagster_pid = None
    try:
        deadline = time.monotonic() + 150
        heartbeat = loaded = False
        while time.monotonic() < deadline and not (heartbeat and loaded):
            time.sleep(1)
            assert process.poll() is None, (tmp_path / "dev.log").read_text()
            entries = _locations(port)
            loaded = bool(entries) and entries[0]["loadStatus"] == "LOADED"
            heartbeat = _daemons(home) == ["dev"]
        assert loaded and heartbeat, (tmp_path / "dev.log").read_text()
        with socket.create_connection(("127.0.0.1", simulator_port), timeout=5):
            pass
        dagster_pid = int(re.search(r"dagster dev, pid (\d+)", (tmp_path / "dev.log").read_text()).group(1))
        assert (home / "dagster" / "dagster.yaml").exists()
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends the terminal's foreground job
        assert process.wait(timeout=90) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        if dagster_pid:
            try:
                os.killpg(dagster_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()
    for group in (process.pid, dagster_pid):
        assert _group_gone(group), subprocess.run(["ps", "-eo", "pid,pgid,stat,cmd"], check=False, capture_output=True,
                                                  text=True).stdout
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", simulator_port), timeout=2)
    assert _daemons(home) == [], "the daemon drained and removed its heartbeat"
    assert "Stopped dagster dev, the daemon and the simulator." in (tmp_path / "dev.log").read_text()


def _group_gone(group: int, within_s: float = 10.0) -> bool:
    """No process of the group is left (a SIGKILLed one may take a moment to be reaped)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def _daemons(home: Path) -> list[str]:
    engine = db.make_engine(f"sqlite:///{home / 'dialer.sqlite3'}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(t.daemons.c.id)).scalars())
    except sa.exc.OperationalError:
        return []
    finally:
        engine.dispose()


def test_demo_campaign_file_is_a_valid_campaign():
    from campaigns.setup.settings import parse_settings

    settings = parse_settings(yaml.safe_load(demo.campaign_file()))
    assert settings.workspace == "demo" and settings.dnc.dnc_disposition == "Do Not Call"
    assert (settings.dialing.pacing, settings.dialing.target_abandon_rate) == ("predictive", 0.02)
    assert set(demo.DISPOSITION_MIX) == {d.title for d in settings.dispositions}
