"""`report_sensor`: requests each campaign's daily report once it is due, once per campaign-day.

Per campaign (not archived, schedule not `disabled`) the cursor holds the last
dialing day requested. Each tick walks the days after it, in order, and
requests every day whose report is due by now (`campaigns.reports.due_at`:
after the window closed in the campaign's last zone, or midnight in its report
zone), so days missed while Dagster was down are caught up in order. The run
key (`report:<campaign>:<day>`) makes a second request of the same day a no-op
even if the cursor were lost.
"""


import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from assets.partitions import report_campaigns, report_days
from campaigns.core import db
from campaigns.reporting import reports
from campaigns.setup import registry
from pipelines.jobs import campaign_report_job
from resources.database import DatabaseResource

FIRST_DAY = date.fromisoformat(report_days.start.strftime("%Y-%m-%d"))
CATCH_UP_DAYS = 62  # at most this many days per campaign and tick


def _now() -> datetime:
    return datetime.now(UTC)


def due_requests(conn: db.Connection, now: datetime, cursor: dict[str, str]) -> tuple[list[tuple[str, date]], dict]:
    """(campaign key, day) pairs due by `now` and not yet requested; the cursor after them."""
    due: list[tuple[str, date]] = []
    cursor = dict(cursor)
    for campaign in registry.report_scheduled_campaigns(conn):
        key = campaign.qualified_slug
        last = cursor.get(key)
        day = (date.fromisoformat(last) + timedelta(days=1) if last
               else max(FIRST_DAY, campaign.created_at.astimezone(ZoneInfo(campaign.report_timezone)).date()))
        for _ in range(CATCH_UP_DAYS):
            when = reports.due_at(conn, campaign.id, day)
            if when is None or when > now:
                break
            due.append((key, day))
            cursor[key] = day.isoformat()
            day += timedelta(days=1)
    return due, cursor


@dg.sensor(job=campaign_report_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def report_sensor(context: dg.SensorEvaluationContext, database: DatabaseResource):
    """Request each campaign's report for a dialing day once it is due by the campaign's schedule."""
    try:
        cursor = json.loads(context.cursor) if context.cursor else {}
    except ValueError:
        cursor = {}
    with database.sensor_engine.connect() as conn:
        due, cursor = due_requests(conn, _now(), cursor)
    if not due:
        return dg.SensorResult(skip_reason="no campaign's report is due", cursor=json.dumps(cursor, sort_keys=True))
    known = set(context.instance.get_dynamic_partitions(report_campaigns.name))
    new = sorted({key for key, _ in due} - known)
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=f"report:{key}:{day.isoformat()}",
                          partition_key=dg.MultiPartitionKey({"campaign": key, "day": day.isoformat()}))
            for key, day in due
        ],
        dynamic_partitions_requests=[report_campaigns.build_add_request(new)] if new else [],
        cursor=json.dumps(cursor, sort_keys=True),
    )
