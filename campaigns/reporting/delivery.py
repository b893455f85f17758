"""Delivering a day's report: mail it to the campaign's recipients, once, and record that it went.

One use case for every way a report goes out: the Dagster `report_summary` asset on the
campaign's schedule, `dialer report --email`, and the last step of `dialer demo`. Each
adapter builds the `Report` its own way (from the export `report_detail` wrote to the bucket,
or afresh, writing it there) and phrases the answer in its own words; the email attaches the
report's export as it is in the bucket, and whether to send is decided here only:

- no recipients: nothing is sent;
- a report of that campaign and day already sent: nothing is sent, unless `resend`;
- otherwise the message goes out and the delivery is recorded (`reports_sent`), so the
  scheduled run of the same day never sends it again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from campaigns.reporting import report_email, reports
from campaigns.reporting.mailer import Mailer
from campaigns.setup import registry


@dataclass(frozen=True)
class Delivery:
    """What became of one report: who it is for, where it went, and any earlier delivery."""

    recipients: tuple[str, ...]
    sent_via: str | None = None  # where the mailer delivered it (a server, a file); None: not sent
    sent_before: datetime | None = None  # when this campaign's report of the day was sent before

    @property
    def sent(self) -> bool:
        return self.sent_via is not None


def deliver(engine: sa.Engine, campaign_id: int, report: reports.Report, mailer: Callable[[], Mailer],
            clock: Callable[[], datetime], *, resend: bool = False) -> Delivery:
    """Mail `report` to the campaign's recipients unless it went out before (or has nowhere to go).

    `mailer` is called only when there is something to send, so a malformed mail setting fails a
    delivery, never a report with nothing to deliver. A failed send raises `MailError` and records
    nothing: the next try sends again. No transaction is held while the mail server answers.
    The delivery is recorded at `clock()` once the mail server has taken the message.
    """
    day = report.summary.day
    with engine.connect() as conn:
        recipients = registry.load_campaign(conn, campaign_id).report_recipients
        before = reports.sent_at(conn, campaign_id, day)
    if not recipients or (before is not None and not resend):
        return Delivery(recipients, sent_before=before)
    sent_via = mailer().send(report_email.compose(report, list(recipients)))
    with engine.begin() as conn:
        reports.record_sent(conn, campaign_id, day, list(recipients), report.url, clock())
    return Delivery(recipients, sent_via=sent_via, sent_before=before)
