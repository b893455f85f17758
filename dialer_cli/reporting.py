"""`dialer report`: build (and optionally email) a campaign's daily report from a terminal."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape
from rich.table import Table

from campaigns.core.errors import DialerError
from campaigns.ingestion.bucket import Bucket
from campaigns.reporting import reports
from campaigns.reporting.delivery import deliver
from campaigns.setup import registry
from dialer_cli.common import (
    JsonFlag,
    config_of,
    database,
    now,
    out,
    print_json,
    user_errors,
)

commands = typer.Typer()


def _day(value: str | None, zone: str, now: datetime) -> date:
    if value is None:
        return now.astimezone(ZoneInfo(zone)).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DialerError(f"--date {value!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-10-21.") from None


@commands.command("report")
@user_errors
def report_cmd(
    ctx: typer.Context,
    campaign: Annotated[str, typer.Argument(help="SLUG or WORKSPACE/SLUG.")],
    day: Annotated[str | None, typer.Option("--date", help="The dialing day, YYYY-MM-DD (default: today in the campaign's report time zone).")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Also copy the export into this local folder (it is always written to the bucket, at reports/WORKSPACE/SLUG/DATE/).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Export format (csv).")] = "csv",
    compression: Annotated[str | None, typer.Option("--compression", help="none, zip or gz (default: the campaign's setting).")] = None,
    email: Annotated[bool, typer.Option("--email", help="Send it to the campaign's recipients.")] = False,
    resend: Annotated[bool, typer.Option("--resend", help="With --email: send even if this day's report was sent.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Build a campaign's report for one dialing day: the calls export and its summary.

    The export goes to the bucket (DIALER_BUCKET_URL), at
    reports/WORKSPACE/SLUG/DATE/SLUG-DATE-calls.csv[.zip|.gz], where the scheduled report
    and its email read it; --out also writes a copy into a local folder.
    """
    from campaigns.reporting.mailer import Mailer

    if fmt != "csv":
        raise DialerError(f"--format {fmt!r}: the only export format is csv.")
    if compression is not None and compression not in ("none", "zip", "gz"):
        raise DialerError(f"--compression {compression!r}: expected none, zip or gz.")
    config = config_of(ctx)
    moment = now()
    with database(config) as engine:
        with engine.connect() as conn:
            ref = registry.resolve_campaign(conn, campaign)
            the_day = _day(day, registry.load_campaign(conn, ref.id).report_timezone, moment)
            bucket = Bucket.from_config(config)
            try:
                report = reports.build(conn, ref.id, the_day, moment, bucket=bucket, compression=compression)
            except OSError as exc:
                raise DialerError(f"cannot write the report to the bucket {bucket.url} ({exc.strerror or exc}); "
                                  "check DIALER_BUCKET_URL and that it can be written to.") from None
        copy = _copy(report, out_dir) if out_dir is not None else None
        delivered = None
        if email:
            delivery = deliver(engine, ref.id, report, lambda: Mailer.from_config(config.mail), now, resend=resend)
            if not delivery.recipients:
                raise DialerError(f"{ref.qualified_slug}: no report recipients; set reports.recipients in its campaign file.")
            if not delivery.sent:
                raise DialerError(f"{ref.qualified_slug}: the report for {the_day} was sent at "
                                  f"{delivery.sent_before:%Y-%m-%d %H:%M} UTC; add --resend to send it again.")
            delivered = delivery.sent_via
    if json_out:
        print_json({**report.summary.as_dict(), "rows": report.rows, "file": report.url,
                    "copy": None if copy is None else str(copy), "emailed_to": delivered})
        return
    out.print(summary_table(report.summary))
    out.print(f"{report.rows} call attempts in {escape(report.url)}", soft_wrap=True)
    if copy is not None:
        out.print(f"copied to {escape(str(copy))}", soft_wrap=True)
    if delivered:
        out.print(f"emailed via {delivered}")


def _copy(report: reports.Report, folder: Path) -> Path:
    """Write the export, as it is in the bucket, into the operator's own folder under its own name."""
    target = folder / report.filename  # a slug and a date: never a path of its own
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target.write_bytes(report.content)
    except OSError as exc:
        raise DialerError(f"--out {folder}: cannot write {report.filename} there ({exc.strerror or exc}); "
                          f"the report is in the bucket at {report.url}; name a folder you can write to.") from None
    return target


def summary_table(s: reports.Summary, extra: list[tuple[str, str]] = ()) -> Table:
    """A report summary's headline figures, one a row (`dialer report`, `dialer demo`)."""
    table = Table(f"{s.campaign} — {s.day.isoformat()}", "")
    for label, value in [("dials", f"{s.dials:,}"), ("answered", f"{s.answered:,}"), ("contacted", f"{s.contacted:,}"),
                         ("qualified", f"{s.qualified:,}"), ("callbacks scheduled", f"{s.callbacks:,}"),
                         ("DNC added", f"{s.dnc_added:,}"), ("abandoned", f"{s.abandoned:,} ({s.abandon_rate:.1%})"),
                         ("abandon rate, 30 days", f"{s.period_abandon_rate:.2%}" + (" — above 3%" if s.period_flagged else "")),
                         ("not placed", f"{s.not_placed:,}"), ("still to dial", f"{s.remaining_dialable:,}"),
                         *extra]:
        table.add_row(label, value)
    return table
