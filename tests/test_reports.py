"""The daily report's content: dialing-day boundaries, summary against detail, CSV safety, compression."""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.config import DialerConfig
from campaigns.reporting import reports
from tests.helpers import UPLOADS_CAMPAIGN, add_prospects, apply_campaign

DAY = date(2026, 10, 21)  # a Wednesday
DISPOSITIONS = [
    {"title": "Do Not Call", "contacted": True, "dnc": True},
    {"title": "Interested", "contacted": True, "qualified": True},
    {"title": "Call Back", "contacted": True, "callback": True},
    {"title": "Not Home"},
]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def day_of_calls(engine):
    cid = apply_campaign(engine, {**UPLOADS_CAMPAIGN, "dispositions": DISPOSITIONS},
                         now=_at("2026-10-01T00:00")).campaign_id
    ny, la, hi = add_prospects(engine, cid, [
        {"phone": "+12125550100", "zones": ("America/New_York",), "state": "NY"},
        {"phone": "+13105550100", "zones": ("America/Los_Angeles",), "state": "CA"},
        {"phone": "+18085550100", "zones": ("Pacific/Honolulu",), "state": "HI"},
    ], now=_at("2026-10-01T00:00"))
    with engine.begin() as conn:
        conn.execute(sa.update(t.prospects).where(t.prospects.c.id == ny).values(
            first_name="=HYPERLINK(\"http://evil\")", last_name="@SUM(A1)", custom_fields={"note": "+cmd|' /C calc'!A0"}))
    calls = [  # (key, prospect, placed at UTC, outcome, disposition, answered)
        ("ny-1", ny, "2026-10-21T14:00", "completed", "Interested", True),
        ("la-late", la, "2026-10-22T03:30", "no_answer", None, False),  # 20:30 in Los Angeles on the 21st
        ("hi-late", hi, "2026-10-22T06:00", "abandoned", None, False),  # 20:00 in Honolulu on the 21st
        ("ny-next", ny, "2026-10-22T13:30", "busy", None, False),  # the 22nd in New York
        ("ny-before", ny, "2026-10-21T03:00", "no_answer", None, False),  # 23:00 on the 20th in New York
        ("ny-cb", ny, "2026-10-21T15:00", "completed", "Call Back", True),
        ("ny-dnc", ny, "2026-10-21T16:00", "completed", "Do Not Call", True),
        ("ny-np", ny, "2026-10-21T17:00", "not_placed", None, False),
        ("ny-nh", ny, "2026-10-21T18:00", "completed", "Not Home", True),
    ]
    with engine.begin() as conn:
        for n, (key, pid, at, outcome, disposition, answered) in enumerate(calls, start=1):
            placed = _at(at)
            conn.execute(sa.insert(t.call_attempts).values(
                campaign_id=cid, prospect_id=pid, attempt_number=n, idempotency_key=key,
                phone_e164={ny: "+12125550100", la: "+13105550100", hi: "+18085550100"}[pid],
                status="ended", outcome=outcome, disposition=disposition, created_at=placed,
                answered_at=placed + timedelta(seconds=8) if answered else None,
                ended_at=placed + timedelta(seconds=60), duration_s=52.0 if answered else None,
            ))
    return cid


def test_the_report_day_is_the_prospects_local_dialing_day(engine, day_of_calls):
    with engine.connect() as conn:
        rows = reports.detail_rows(conn, day_of_calls, DAY)
    assert [r["outcome"] for r in rows] == [
        "completed", "completed", "completed", "not_placed", "completed", "no_answer", "abandoned"]
    la = next(r for r in rows if r["phone"] == "+13105550100")
    assert (la["called_at_utc"], la["called_at_local"], la["local_zone"]) == (
        "2026-10-22T03:30:00+00:00", "2026-10-21T20:30:00-07:00", "America/Los_Angeles")
    assert {r["list"] for r in rows} == {"seed.csv"}


def test_the_summary_agrees_with_the_detail_file(engine, day_of_calls, tmp_path):
    with engine.connect() as conn:
        rows = reports.detail_rows(conn, day_of_calls, DAY)
        summary = reports.summary(conn, day_of_calls, DAY, rows, now=_at("2026-10-22T12:00"))
    _, content = reports.export_bytes(rows, reports.DETAIL_COLUMNS, "detail.csv")
    detail = list(csv.DictReader(io.StringIO(content.decode("utf-8"), newline="")))
    outcomes = Counter(r["outcome"] for r in detail)
    placed = [r for r in detail if r["outcome"] != "not_placed"]
    assert summary.dials == len(placed) == 6 and summary.not_placed == outcomes["not_placed"] == 1
    assert summary.answered == sum(1 for r in placed if r["answered_at_utc"]) == 4
    assert summary.abandoned == outcomes["abandoned"] == 1
    assert summary.abandon_rate == pytest.approx(1 / 5)
    assert dict(summary.by_disposition) == dict(Counter(r["disposition"] for r in placed if r["disposition"]))
    assert (summary.contacted, summary.qualified, summary.callbacks, summary.dnc_added) == (3, 1, 1, 1)
    assert dict(summary.by_state) == dict(Counter(r["state"] for r in placed)) == {"NY": 4, "CA": 1, "HI": 1}
    assert sum(summary.by_outcome.values()) == len(detail)
    assert sum(summary.prospects.values()) == 3
    data = summary.as_dict()
    assert data["abandon_rate"] == 0.2 and data["by_list"] == {"seed.csv": 6}


def test_cells_a_spreadsheet_would_run_are_neutralised(engine, day_of_calls):
    with engine.connect() as conn:
        rows = reports.detail_rows(conn, day_of_calls, DAY)
    _, content = reports.export_bytes(rows, reports.DETAIL_COLUMNS, "detail.csv")
    detail = csv.DictReader(io.StringIO(content.decode("utf-8"), newline=""))
    [first] = [r for r in detail if r["phone"] == "+12125550100"][:1]
    assert first["first_name"] == "'=HYPERLINK(\"http://evil\")"
    assert first["last_name"] == "'@SUM(A1)"
    assert first["custom_fields"] == '{"note": "+cmd|\' /C calc\'!A0"}'  # JSON text starts with {: harmless
    assert first["phone"] == "+12125550100"  # a plain number hides no formula
    for cell, expected in [("=1+1", "'=1+1"), ("+1+cmd", "'+1+cmd"), ("-2+3", "'-2+3"), ("@x", "'@x"),
                           ("\tTAB", "'\tTAB"), ("\rCR", "'\rCR"), ("-3.5", "-3.5"), ("plain", "plain"), (None, "")]:
        assert reports.neutralise(cell) == expected


@pytest.mark.parametrize("compression", ["zip", "gz"])
def test_zip_and_gz_open_with_the_standard_library(engine, day_of_calls, compression):
    with engine.connect() as conn:
        rows = reports.detail_rows(conn, day_of_calls, DAY)
    _, plain = reports.export_bytes(rows, reports.DETAIL_COLUMNS, "detail.csv")
    name, packed = reports.export_bytes(rows, reports.DETAIL_COLUMNS, "detail.csv", compression)
    assert name == f"detail.csv.{compression}"
    if compression == "gz":
        content = gzip.decompress(packed)
    else:
        with zipfile.ZipFile(io.BytesIO(packed)) as archive:
            assert archive.namelist() == ["detail.csv"]
            content = archive.read("detail.csv")
    assert content == plain
    header = next(csv.reader(io.StringIO(content.decode("utf-8"))))
    assert header == reports.DETAIL_COLUMNS
    assert reports.read_export(name, packed) == reports.read_export("detail.csv", plain)
    with pytest.raises(ValueError, match="compression"):
        reports.export_bytes(rows, reports.DETAIL_COLUMNS, "x.csv", "rar")


def test_the_30_day_abandon_rate_is_flagged_above_three_percent(engine, day_of_calls):
    with engine.begin() as conn:
        [ny] = conn.execute(sa.select(t.prospects.c.id).where(t.prospects.c.phone_e164 == "+12125550100")).scalars()
        for i in range(30):  # one connected call a day for 30 days before, and one abandoned 40 days before
            placed = _at("2026-10-20T15:00") - timedelta(days=i)
            conn.execute(sa.insert(t.call_attempts).values(
                campaign_id=day_of_calls, prospect_id=ny, attempt_number=100 + i, idempotency_key=f"old-{i}",
                phone_e164="+12125550100", status="ended", outcome="completed", created_at=placed,
                answered_at=placed))
        conn.execute(sa.insert(t.call_attempts).values(
            campaign_id=day_of_calls, prospect_id=ny, attempt_number=200, idempotency_key="too-old",
            phone_e164="+12125550100", status="ended", outcome="abandoned", created_at=_at("2026-09-10T15:00")))
        abandoned, answered = reports.abandon_counts_period(conn, day_of_calls, DAY)
        # The day's 4 connected + 1 abandoned, and 29 of the 30 earlier days (the 30th is outside).
        assert (abandoned, answered) == (1, 4 + 1 + 29)
        rows = reports.detail_rows(conn, day_of_calls, DAY)
        summary = reports.summary(conn, day_of_calls, DAY, rows, now=_at("2026-10-22T12:00"))
    assert summary.period_abandon_rate == pytest.approx(1 / 34)
    assert not summary.period_flagged  # 2.9%
    with engine.begin() as conn:
        conn.execute(sa.update(t.call_attempts).where(t.call_attempts.c.idempotency_key == "old-3")
                     .values(outcome="abandoned", answered_at=None))
        rows = reports.detail_rows(conn, day_of_calls, DAY)
        summary = reports.summary(conn, day_of_calls, DAY, rows, now=_at("2026-10-22T12:00"))
    assert summary.period_abandon_rate == pytest.approx(2 / 34) and summary.period_flagged


# -- `dialer report` and delivery --------------------------------------------------------

def _invoke(*args):
    from typer.testing import CliRunner

    from dialer_cli.main import app

    return CliRunner().invoke(app, ["report", *args])


def _recipients(engine, cid, addresses):
    with engine.begin() as conn:
        conn.execute(sa.update(t.campaigns).where(t.campaigns.c.id == cid).values(report_recipients=addresses))


def test_dialer_report_writes_the_export_to_the_bucket_and_prints_the_summary(engine, day_of_calls, dialer_env,
                                                                             tmp_path):
    import json

    bucket = Path(dialer_env["DIALER_HOME"]) / "bucket"
    key = "reports/acme/renewals/2026-10-21/renewals-2026-10-21-calls.csv.gz"
    result = _invoke("renewals", "--date", "2026-10-21", "--compression", "gz", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["dials"], data["rows"], data["emailed_to"], data["copy"]) == (6, 7, None, None)
    assert data["file"] == f"{bucket}/{key}"
    in_bucket = (bucket / key).read_bytes()
    assert len(gzip.decompress(in_bucket).decode().splitlines()) == 8
    assert [p.relative_to(bucket).as_posix() for p in bucket.rglob("*") if p.is_file()] == [key]
    # --out: a local copy as well, the same bytes as the bucket's.
    copied = _invoke("renewals", "--date", "2026-10-21", "--compression", "gz", "--out", str(tmp_path / "out"),
                     "--json")
    assert copied.exit_code == 0, copied.output
    copy = Path(json.loads(copied.output)["copy"])
    assert copy == tmp_path / "out" / "renewals-2026-10-21-calls.csv.gz"
    assert gzip.decompress(copy.read_bytes()) == gzip.decompress((bucket / key).read_bytes())
    text = _invoke("renewals", "--date", "2026-10-21")
    assert text.exit_code == 0 and "dials" in text.output, text.output
    assert f"7 call attempts in {bucket}/reports/acme/renewals/2026-10-21/renewals-2026-10-21-calls.csv" in text.output
    (tmp_path / "a-file").write_text("")
    refused = _invoke("renewals", "--date", "2026-10-21", "--out", str(tmp_path / "a-file"))
    assert refused.exit_code == 2 and "--out" in refused.output and "is in the bucket at" in refused.output
    for bad, message in ((["--date", "21/10/2026"], "YYYY-MM-DD"), (["--compression", "rar"], "none, zip or gz"),
                         (["--format", "xlsx"], "csv"), (["--email"], "no report recipients")):
        refused = _invoke("renewals", *bad)
        assert refused.exit_code == 2 and message in refused.output


class _Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server(monkeypatch):
    """A real SMTP server (aiosmtpd) on loopback; the dialer pointed at it."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("DIALER_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("DIALER_SMTP_PORT", str(port))
    monkeypatch.setenv("DIALER_SMTP_SECURITY", "none")
    monkeypatch.setenv("DIALER_MAIL_FROM", "reports@dialer.test")
    yield inbox
    controller.stop()


def test_dialer_report_emails_the_export_through_smtp_once(engine, day_of_calls, dialer_env, smtp_server, tmp_path):
    import email
    from email import policy

    _recipients(engine, day_of_calls, ["ops@example.com", "lead@example.com"])
    result = _invoke("renewals", "--date", "2026-10-21", "--out", str(tmp_path), "--compression", "zip", "--email")
    assert result.exit_code == 0, result.output
    [envelope] = smtp_server.messages
    assert sorted(envelope.rcpt_tos) == ["lead@example.com", "ops@example.com"]
    message = email.message_from_bytes(envelope.content, policy=policy.default)
    assert message["From"] == "reports@dialer.test"
    assert "acme/renewals — 2026-10-21: 6 dials, 3 contacted" in message["Subject"]
    body = message.get_body(("plain",)).get_content()
    assert "Dials                 6" in body and "Abandoned             1 (20.0%" in body
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "renewals-2026-10-21-calls.csv.zip"
    sent = attachment.get_content()
    assert sent == (tmp_path / "renewals-2026-10-21-calls.csv.zip").read_bytes()
    key = "reports/acme/renewals/2026-10-21/renewals-2026-10-21-calls.csv.zip"
    assert sent == (Path(dialer_env["DIALER_HOME"]) / "bucket" / key).read_bytes()
    with zipfile.ZipFile(io.BytesIO(sent)) as archive:
        assert archive.read("renewals-2026-10-21-calls.csv").decode().startswith("attempt_id,called_at_utc")
    again = _invoke("renewals", "--date", "2026-10-21", "--out", str(tmp_path), "--email")
    assert again.exit_code == 2 and "was sent at" in again.output and len(smtp_server.messages) == 1
    assert _invoke("renewals", "--date", "2026-10-21", "--out", str(tmp_path), "--email", "--resend").exit_code == 0
    assert len(smtp_server.messages) == 2
    with engine.connect() as conn:
        [row] = conn.execute(sa.select(t.reports_sent)).all()
    assert (row.report_date, row.kind, sorted(row.recipients)) == (DAY, "daily", ["lead@example.com", "ops@example.com"])
    # The last send (the campaign's own compression, none): the bucket's URL of what it attached.
    assert row.attachment == f"{dialer_env['DIALER_HOME']}/bucket/{key.removesuffix('.zip')}"


def test_without_an_smtp_host_the_report_lands_in_the_mail_folder(engine, day_of_calls, dialer_env, tmp_path):
    import email
    from email import policy

    _recipients(engine, day_of_calls, ["ops@example.com"])
    result = _invoke("renewals", "--date", "2026-10-21", "--out", str(tmp_path), "--email")
    assert result.exit_code == 0, result.output
    [path] = (Path(dialer_env["DIALER_HOME"]) / "mail").glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["To"] == "ops@example.com"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "text/csv"
    assert attachment.get_content().startswith("attempt_id,called_at_utc")


def test_a_failed_delivery_is_retried_then_reported(monkeypatch):
    import socket

    from campaigns.reporting.mailer import Mailer, MailError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    mailer = Mailer(host="127.0.0.1", port=port, security="none", retries=1, pause_s=0.01, timeout=2)
    from email.message import EmailMessage

    message = EmailMessage()
    message["To"] = "ops@example.com"
    message.set_content("x")
    with pytest.raises(MailError, match="after 2 tries"):
        mailer.send(message)
    with pytest.raises(MailError, match="DIALER_SMTP_SECURITY"):
        Mailer.from_config(DialerConfig.from_env({"DIALER_SMTP_SECURITY": "tls-please"}).mail)


def test_an_undeliverable_report_fails_the_command_and_is_not_recorded(engine, day_of_calls, dialer_env,
                                                                      monkeypatch, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    monkeypatch.setenv("DIALER_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("DIALER_SMTP_PORT", str(port))
    monkeypatch.setenv("DIALER_SMTP_SECURITY", "none")
    _recipients(engine, day_of_calls, ["ops@example.com"])
    result = _invoke("renewals", "--date", "2026-10-21", "--out", str(tmp_path), "--email")
    assert result.exit_code == 2 and "could not deliver" in result.output
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.reports_sent)).scalar_one() == 0
