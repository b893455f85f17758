"""The daily report per campaign and dialing day: the calls export, then the summary and its email."""


from datetime import UTC, date, datetime

import dagster as dg

from assets.calls import call_attempts
from assets.partitions import reports as report_partitions
from campaigns.reporting import reports as domain
from campaigns.reporting.delivery import deliver
from campaigns.setup import registry
from resources.bucket import BucketResource
from resources.database import DatabaseResource
from resources.mailer import MailerResource


def _partition(context) -> tuple[str, date]:
    keys = context.partition_key.keys_by_dimension
    return keys["campaign"], date.fromisoformat(keys["day"])


@dg.asset(group_name="reports", kinds={"csv"}, partitions_def=report_partitions, deps=[call_attempts])
def report_detail(context: dg.AssetExecutionContext, database: DatabaseResource,
                  bucket: BucketResource) -> dg.MaterializeResult:
    """Every call attempt of the campaign's dialing day, one CSV row each (UTC and prospect-local
    times, number, list, attempt number, outcome, disposition, duration, custom fields), with
    formula cells neutralised, compressed as the campaign asks; kept in the bucket under
    `reports/<workspace>/<campaign>/<day>/`, where any later run reads it."""
    campaign, day = _partition(context)
    with database.engine.connect() as conn:
        ref = registry.resolve_campaign(conn, campaign)
        report = domain.build(conn, ref.id, day, datetime.now(UTC), bucket=bucket.get())
    return dg.MaterializeResult(metadata={"file": dg.MetadataValue.url(report.url), "rows": report.rows})


@dg.asset(
    group_name="reports", kinds={"email"}, partitions_def=report_partitions, deps=[report_detail],
    retry_policy=dg.RetryPolicy(max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL),
    check_specs=[dg.AssetCheckSpec("abandon_rate_30_days", asset="report_summary",
                                   description="Abandoned ÷ answered by a person over 30 days stays at or below 3%.")],
)
def report_summary(context: dg.AssetExecutionContext, database: DatabaseResource, mailer: MailerResource,
                   bucket: BucketResource):
    """The day's figures, computed from the detail export itself as `report_detail` left it in the
    bucket, mailed with it to the campaign's recipients — once per campaign and day (a sent report
    is recorded and never sent again)."""
    campaign, day = _partition(context)
    now = datetime.now(UTC)
    engine = database.engine
    with engine.connect() as conn:
        ref = registry.resolve_campaign(conn, campaign)
        report = domain.written_report(conn, ref.id, day, now, bucket=bucket.get())  # report_detail's export
    delivered = deliver(engine, ref.id, report, mailer.mailer, lambda: datetime.now(UTC))  # a failed send raises: the run fails, is retried
    delivery = (f"sent via {delivered.sent_via}" if delivered.sent
                else f"already sent at {delivered.sent_before.isoformat()}" if delivered.sent_before is not None
                else "no recipients set")
    context.log.info(f"{campaign} {day}: {delivery}")
    summary = report.summary
    figures = summary.as_dict()
    yield dg.MaterializeResult(metadata={
        **_chart_metadata(report, bucket),
        **{k: v for k, v in figures.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
        "by_disposition": dg.MetadataValue.json(figures["by_disposition"]),
        "by_state": dg.MetadataValue.json(figures["by_state"]),
        "by_hour": dg.MetadataValue.json(figures["by_hour"]),
        "file": dg.MetadataValue.url(report.url),
        "delivery": delivery,
        "summary": dg.MetadataValue.md(f"```\n{domain.summary_text(summary)}```"),
    })
    yield dg.AssetCheckResult(
        check_name="abandon_rate_30_days", passed=not summary.period_flagged,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"abandon_rate_30_days": summary.period_abandon_rate,
                  "abandoned": summary.period_abandoned, "answered_by_a_person": summary.period_answered},
    )


def _chart_metadata(report: domain.Report, bucket: BucketResource) -> dict:
    """The email's calls-by-hour chart, written beside the export: its address, and the picture
    itself inline (the UI's markdown shows `data:` images), so the materialization shows the day."""
    import base64

    from campaigns.reporting import charts

    published = charts.publish_by_hour(report, bucket.get())
    if published is None:
        return {}
    url, chart = published
    alt = chart.alt.replace("[", "(").replace("]", ")")
    picture = f"![{alt}](data:image/png;base64,{base64.b64encode(chart.png).decode('ascii')})"
    return {"chart": dg.MetadataValue.url(url),
            "by_hour_chart": dg.MetadataValue.md(f"{picture}\n\nHours on the {report.summary.timezone} clock.")}
