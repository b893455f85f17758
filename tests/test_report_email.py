"""The report email: the dialing day by hour, its charts, and the HTML a manager opens.

The hour tests are a table on hand-made rows (whose clock an hour is, the DST fold, a day
reaching back to Guam's evening and on past Hawaii's midnight); the occupancy test counts agent
time from the database; the browser test opens the HTML with its inline images in headless
Chromium, saves a screenshot to `test-artifacts/report-email.png`, and reads the figures off the
page to compare them with the summary and with a count of its own over the export's rows.
"""

from __future__ import annotations

import email
import email.policy
import random
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.dialing import runtime
from campaigns.ingestion.bucket import Bucket
from campaigns.reporting import charts, hourly, report_email, reports
from tests.helpers import UPLOADS_CAMPAIGN, add_prospects, apply_campaign, email_page
from tests.test_browser import ARTIFACTS, _chromium

NEW_YORK = ZoneInfo("America/New_York")
DAY = date(2026, 10, 21)  # a Wednesday, New York on EDT (UTC-4)


def _row(placed: str, outcome: str = "no_answer", answered: bool = False, talk_s: float = 60.0) -> dict:
    """A detail row as read back from the export: strings only."""
    at = datetime.fromisoformat(placed)
    return {"called_at_utc": at.isoformat(), "outcome": outcome,
            "answered_at_utc": (at + timedelta(seconds=5)).isoformat() if answered else "",
            "ended_at_utc": (at + timedelta(seconds=5 + talk_s)).isoformat()}


def test_hours_are_clock_hours_of_the_report_time_zone_from_guams_evening_to_hawaiis_night():
    rows = [
        _row("2026-10-20T23:10:00+00:00"),  # Guam 09:10 on the 21st: New York's 19:00 on the 20th
        _row("2026-10-21T14:00:00+00:00", "completed", answered=True),  # New York 10:00
        _row("2026-10-21T14:59:59+00:00", "abandoned"),  # New York 10:59
        _row("2026-10-21T15:00:00+00:00", "not_placed"),  # no dial: counts in no hour
        # Honolulu 20:00 on the 21st (its dialing day): New York's 02:00 on the 22nd; the call
        # ends in the next hour, which is kept (agents were on it).
        _row("2026-10-22T06:00:00+00:00", "completed", answered=True, talk_s=3600),
    ]
    hours = hourly.day_hours(rows, NEW_YORK)
    starts = [h.start for h in hours]
    assert starts[0] == datetime(2026, 10, 20, 19, tzinfo=NEW_YORK)
    assert starts[-1] == datetime(2026, 10, 22, 3, tzinfo=NEW_YORK)
    assert all(b - a == timedelta(hours=1) for a, b in zip(starts, starts[1:]))  # empty hours kept
    by_start = {h.start.replace(tzinfo=None): h for h in hours}
    ten = by_start[datetime(2026, 10, 21, 10)]
    assert (ten.dials, ten.answered, ten.abandoned, dict(ten.by_outcome)) == (
        2, 1, 1, {"completed": 1, "abandoned": 1})
    hawaii = by_start[datetime(2026, 10, 22, 2)]
    assert (hawaii.dials, hawaii.answered, dict(hawaii.by_outcome)) == (1, 1, {"completed": 1})
    assert by_start[datetime(2026, 10, 22, 3)].dials == 0
    assert sum(h.dials for h in hours) == 4 and hourly.day_hours([rows[3]], NEW_YORK) == []
    # The same rows on a Honolulu clock: the late call is 20:00 on the day itself.
    honolulu = {h.start.replace(tzinfo=None): h.dials for h in hourly.day_hours(rows, ZoneInfo("Pacific/Honolulu"))}
    assert honolulu[datetime(2026, 10, 21, 20)] == 1


def test_the_repeated_hour_of_the_autumn_change_is_two_hours():
    # 2026-11-01, New York: 01:00–02:00 happens twice (EDT, then EST).
    rows = [_row("2026-11-01T05:30:00+00:00"), _row("2026-11-01T06:30:00+00:00"), _row("2026-11-01T06:40:00+00:00")]
    hours = hourly.day_hours(rows, NEW_YORK)
    assert [(f"{h.start:%H:%M %Z}", h.dials) for h in hours] == [("01:00 EDT", 1), ("01:00 EST", 2)]


def test_hours_follow_a_half_hour_zone():
    rows = [_row("2026-10-21T04:00:00+00:00"), _row("2026-10-21T04:45:00+00:00")]  # 09:30 and 10:15 in India
    hours = hourly.day_hours(rows, ZoneInfo("Asia/Kolkata"))
    assert [(f"{h.start:%H:%M}", h.dials) for h in hours] == [("09:00", 1), ("10:00", 1)]


STATES = [("NY", "America/New_York"), ("FL", "America/New_York"), ("TX", "America/Chicago"),
          ("CO", "America/Denver"), ("CA", "America/Los_Angeles"), ("HI", "Pacific/Honolulu"),
          ("GU", "Pacific/Guam"), ("NJ", "America/New_York")]
DISPOSITIONS = [{"title": "Interested", "contacted": True, "qualified": True},
                {"title": "Not Interested", "contacted": True},
                {"title": "Call Back", "contacted": True, "callback": True},
                {"title": "Do Not Call", "contacted": True, "dnc": True}]
LIST_NAME = "<b>Q4</b> & $leads$.csv"
OUTCOMES = [("completed", 0.36), ("no_answer", 0.34), ("busy", 0.08), ("machine", 0.12), ("abandoned", 0.04),
            ("failed", 0.03), ("not_placed", 0.03)]


@pytest.fixture
def busy_day(engine):
    return add_busy_day(engine)


def add_busy_day(engine) -> int:
    """A campaign with a day of a few hundred calls across the country, Guam and Hawaii, with
    seeded outcomes; returns its id."""
    data = {**UPLOADS_CAMPAIGN, "dispositions": DISPOSITIONS,
            "reports": {"recipients": ["ops@example.com"], "compression": "zip"}}
    cid = apply_campaign(engine, data, now=datetime(2026, 10, 1, tzinfo=UTC)).campaign_id
    ids = add_prospects(engine, cid, [{"phone": f"+1212555{n:04d}", "zones": (zone,), "state": state}
                                      for n, (state, zone) in enumerate(STATES)], now=datetime(2026, 10, 1, tzinfo=UTC))
    with engine.begin() as conn:  # an uploaded file's name is data, shown in the email's by-list table
        conn.execute(sa.update(t.prospect_lists).values(filename=LIST_NAME))
    rng = random.Random(20)
    weights = [1.0, 0.8, 0.7, 0.3, 0.6, 0.2, 0.1, 0.05]
    n = 0
    with engine.begin() as conn:
        for pid, (state, zone), weight in zip(ids, STATES, weights, strict=True):
            for local_hour in range(9, 21):
                busy = 1.6 if 10 <= local_hour <= 12 or 17 <= local_hour <= 19 else 1.0
                for _ in range(rng.randint(0, int(14 * weight * busy))):
                    n += 1
                    placed = datetime(DAY.year, DAY.month, DAY.day, local_hour, rng.randrange(60), rng.randrange(60),
                                      tzinfo=ZoneInfo(zone)).astimezone(UTC)
                    outcome = rng.choices([o for o, _ in OUTCOMES], [w for _, w in OUTCOMES])[0]
                    answered = outcome == "completed"
                    conn.execute(sa.insert(t.call_attempts).values(
                        campaign_id=cid, prospect_id=pid, attempt_number=n, idempotency_key=f"busy-{n}",
                        phone_e164=f"+1212555{ids.index(pid):04d}", status="ended", outcome=outcome,
                        disposition=rng.choice(DISPOSITIONS)["title"] if answered else None, created_at=placed,
                        answered_at=placed + timedelta(seconds=9) if answered else None,
                        ended_at=placed + timedelta(seconds=9 + (rng.uniform(40, 420) if answered else 20)),
                        duration_s=None))
        runtime.events_cursor(conn, cid)  # makes the campaign's runtime row
        runtime.record_sessions(conn, cid, 4, datetime(2026, 10, 21, 12, tzinfo=UTC))
    return cid


def _report(engine, cid: int, tmp_path: Path) -> reports.Report:
    bucket = Bucket(str(tmp_path / "bucket"))
    with engine.connect() as conn:
        reports.build(conn, cid, DAY, datetime(2026, 10, 22, 12, tzinfo=UTC), bucket=bucket)
        return reports.written_report(conn, cid, DAY, datetime(2026, 10, 22, 12, tzinfo=UTC), bucket=bucket)


def test_occupancy_is_agent_time_from_the_database_over_the_sessions_last_reported(engine, busy_day, tmp_path):
    report = _report(engine, busy_day, tmp_path)
    s = report.summary
    assert s.timezone == "America/New_York" and s.agent_sessions == 4
    # A call of another dialing day in one of the day's hours (Guam's next morning, New York's
    # evening): the agents were on it, so the hour's occupancy counts it though the export does not.
    hour = next(h for h in s.hours if h.start.replace(tzinfo=None) == datetime(2026, 10, 21, 19))
    with engine.begin() as conn:
        guam = conn.execute(sa.select(t.prospects.c.id).where(t.prospects.c.address_state == "GU")).scalar_one()
        start = hour.start.astimezone(UTC) + timedelta(minutes=10)
        conn.execute(sa.insert(t.call_attempts).values(
            campaign_id=busy_day, prospect_id=guam, attempt_number=999, idempotency_key="guam-next-day",
            phone_e164="+12125550006", status="ended", outcome="completed", created_at=start - timedelta(seconds=9),
            answered_at=start, ended_at=start + timedelta(minutes=30)))
    again = _report(engine, busy_day, tmp_path).summary
    later = next(h for h in again.hours if h.start == hour.start)
    assert later.dials == hour.dials, "the export (and the dials) are the day's only"
    assert later.on_call_s == pytest.approx(hour.on_call_s + 1800)
    assert later.occupancy(4) == pytest.approx(later.on_call_s / (4 * 3600))
    # Recounted from the database: every answered call's time inside each hour.
    with engine.connect() as conn:
        spans = conn.execute(sa.select(t.call_attempts.c.answered_at, t.call_attempts.c.ended_at)
                             .where(t.call_attempts.c.answered_at.is_not(None))).all()
    for h in again.hours:
        since = h.start.astimezone(UTC)
        until = since + timedelta(hours=1)
        assert h.on_call_s == pytest.approx(sum(max(0.0, (min(e, until) - max(a, since)).total_seconds())
                                                for a, e in spans))


def test_without_a_session_count_the_chart_shows_agent_minutes(engine, busy_day, tmp_path):
    with engine.begin() as conn:
        conn.execute(sa.update(t.campaign_runtime).values(agent_sessions=None))
    s = _report(engine, busy_day, tmp_path).summary
    assert s.agent_sessions is None and all(h.occupancy(None) is None for h in s.hours)
    chart = charts.occupancy_by_hour(s)
    assert chart.title == "Agent minutes on calls by hour" and chart.png.startswith(b"\x89PNG")
    assert "cannot be given" in report_email.html(s, [chart], "x.csv")


def _independent_hours(rows: list[dict]) -> dict[str, tuple[int, int, int]]:
    """(dials, answered, abandoned) per New York hour label, counted here from the export's rows."""
    counts: dict[str, list[int]] = {}
    for row in rows:
        if row["outcome"] == "not_placed":
            continue
        local = datetime.fromisoformat(row["called_at_utc"]).astimezone(NEW_YORK)
        label = f"{local:%H}:00" if local.date() == DAY else f"{local:%a %H}:00"
        c = counts.setdefault(label, [0, 0, 0])
        c[0] += 1
        c[1] += bool(row["answered_at_utc"])
        c[2] += row["outcome"] == "abandoned"
    return {k: (a, b, c) for k, (a, b, c) in counts.items()}


def test_the_email_is_html_with_inline_charts_a_text_alternative_and_the_export(engine, busy_day, tmp_path):
    report = _report(engine, busy_day, tmp_path)
    s = report.summary
    message = email.message_from_bytes(bytes(report_email.compose(report, ["ops@example.com"])),
                                       policy=email.policy.default)
    assert message.get_content_type() == "multipart/mixed"
    [alternative, attachment] = message.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    [text, related] = alternative.get_payload()
    assert text.get_content_type() == "text/plain"
    assert text.get_content().replace("\r\n", "\n") == reports.summary_text(s)
    assert related.get_content_type() == "multipart/related"
    html_part, *images = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    assert [i.get_content_type() for i in images] == ["image/png"] * 4
    page = html_part.get_content()
    for image in images:
        assert f'src="cid:{image["Content-ID"].strip("<>")}"' in page
        assert image.get_content().startswith(b"\x89PNG") and image.get_filename() is None
    assert attachment.get_filename() == report.filename and attachment.get_content() == report.content
    # Names are data: escaped in the HTML, never markup.
    assert "&lt;b&gt;Q4&lt;/b&gt; &amp; $leads$.csv" in page and "<b>Q4</b>" not in page


def _int(shown: str) -> int:
    return int(shown.replace(",", ""))


@pytest.mark.browser
def test_the_report_email_in_a_browser_shows_the_summarys_figures(engine, busy_day, tmp_path):
    report = _report(engine, busy_day, tmp_path)
    s = report.summary
    message = email.message_from_bytes(bytes(report_email.compose(report, ["ops@example.com"])),
                                       policy=email.policy.default)
    shown = email_page(message, tmp_path / "page", _chromium(), ARTIFACTS / "report-email.png")
    assert shown["title"] == "acme/renewals — dialing day Wed 2026-10-21"
    assert shown["images_loaded"] == 4
    figures = shown["figures"]
    assert figures["dials"] == f"{s.dials:,}" and figures["answered"] == f"{s.answered:,}"
    assert figures["contacted"] == f"{s.contacted:,}" and figures["qualified"] == f"{s.qualified:,}"
    assert figures["abandoned"] == f"{s.abandoned:,}" and figures["abandon-rate-30-days"] == f"{s.period_abandon_rate:.2%}"
    assert (figures["callbacks"], figures["still-to-dial"]) == (f"{s.callbacks:,}", f"{s.remaining_dialable:,}")
    assert {state: (_int(d), _int(a)) for state, d, a in shown["tables"]["by-state"]} == {
        state: (n, s.answered_by_state.get(state, 0)) for state, n in s.by_state.items()}
    assert {o: _int(n) for o, n in shown["tables"]["by-outcome"]} == dict(s.by_outcome)
    assert {name: _int(n) for name, n in shown["tables"]["by-list"]} == dict(s.by_list) == {LIST_NAME: s.dials}
    # The charts' alt texts are the charts' figures: per hour, as counted here from the export.
    alts = shown["alts"]
    assert alts == [chart.alt for chart in charts.report_charts(s)]
    per_hour = {label: (int(d), int(a), int(b)) for label, d, a, b in
                re.findall(r"((?:\w{3} )?\d\d:00) (\d+) dials, (\d+) answered, (\d+) abandoned", alts[0])}
    rows = reports.read_export(report.key, report.content)
    assert {k: v for k, v in per_hour.items() if v[0]} == _independent_hours(rows)
    assert sum(d for d, _, _ in per_hour.values()) == s.dials
    occupancy = dict(re.findall(r"((?:\w{3} )?\d\d:00) (\d+)% ", alts[1]))
    assert occupancy == {charts.hour_label(h, s): f"{100 * h.occupancy(4):.0f}" for h in s.hours}
    state_alt = dict(re.findall(r"([^:;]+?) (\d+) dials, \d+ answered", alts[3].split(": ", 1)[1]))
    top = sorted(s.by_state.items(), key=lambda kv: (-kv[1], kv[0]))
    assert {k.strip(): int(v) for k, v in state_alt.items()} == dict(top[:charts.TOP_STATES])
    assert (ARTIFACTS / "report-email.png").stat().st_size > 50_000


def test_matplotlib_is_imported_only_when_a_report_is_composed():
    import subprocess
    import sys

    code = ("import sys, dialer_cli.main, dialer_daemon.daemon, pipelines.definitions, campaigns.reporting.delivery; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.browser
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the UI does not depend on the database
def test_the_dagster_ui_shows_the_chart_on_the_report_summary_materialization(engine, db_url, dialer_env, busy_day,
                                                                               tmp_path):
    """The markdown metadata's `data:` PNG, as Dagster's UI shows it: `test-artifacts/report-summary-chart.png`."""
    import os
    import subprocess
    import sys
    import urllib.request

    import dagster as dg
    from dagster._core.instance.ref import InstanceRef
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    from assets.reports import report_detail, report_summary
    from campaigns.core.config import DialerConfig
    from dialer_cli.dev import seed_dagster_home, stop_process_group
    from resources.bucket import BucketResource
    from resources.database import DatabaseResource
    from resources.mailer import MailerResource
    from tests.helpers import free_port

    chromium = _chromium()
    home = tmp_path / "dagster"
    seed_dagster_home(home)
    cfg = DialerConfig.from_env()
    key = dg.MultiPartitionKey({"campaign": "acme/renewals", "day": DAY.isoformat()})
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        instance.add_dynamic_partitions("report_campaigns", ["acme/renewals"])
        assert dg.materialize([report_detail, report_summary], partition_key=key, instance=instance, resources={
            "database": DatabaseResource(url=db_url), "mailer": MailerResource.from_config(cfg),
            "bucket": BucketResource.from_config(cfg)}).success
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_TELEMETRY_URL": "http://127.0.0.1:9/actions"}
    process = subprocess.Popen([str(Path(sys.executable).parent / "dagster-webserver"), "-h", "127.0.0.1", "-p",
                                str(port), "-w", "workspace.yaml"], cwd=Path(__file__).resolve().parent.parent,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        def up() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=3):
                    return True
            except OSError:
                return False

        from tests.helpers import wait_for
        wait_for(up, timeout=120, step=1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.route("**/*", lambda route: route.continue_()
                       if route.request.url.startswith((f"http://127.0.0.1:{port}", "data:")) else route.abort())
            page.goto(f"http://127.0.0.1:{port}/assets/report_summary?view=events", wait_until="networkidle")
            skip = page.get_by_role("button", name="Skip")  # a first visit's newsletter dialog
            try:
                skip.click(timeout=8000)
            except PlaywrightTimeout:
                pass
            row = page.locator("tr", has_text="by_hour_chart")
            row.get_by_text("Show Markdown").click(timeout=30_000)
            dialog = page.get_by_role("dialog")
            image = dialog.locator("img")
            image.wait_for(timeout=15_000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(ARTIFACTS / "report-summary-chart.png"))
            shown = image.evaluate("i => [i.src.slice(0, 22), i.naturalWidth, i.alt]")
            browser.close()
    finally:
        stop_process_group(process)
    s = _report(engine, busy_day, tmp_path).summary
    assert shown == ["data:image/png;base64,", 640, charts.calls_by_hour(s).alt]
