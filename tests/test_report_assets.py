"""The report assets in Dagster, and `report_sensor` at instants around each schedule's due time."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

import pipelines.report_sensor as sensor_module
from assets.reports import report_detail, report_summary
from campaigns.core import schema as t
from campaigns.core.config import DialerConfig
from pipelines.report_sensor import report_sensor
from resources.bucket import BucketResource
from resources.database import DatabaseResource
from resources.mailer import MailerResource
from tests.helpers import UPLOADS_CAMPAIGN, add_prospects, apply_campaign
from tests.test_reports import DAY, day_of_calls  # noqa: F401  (a fixture: a day of calls)


def _campaign(engine, slug: str, created: datetime, **reports) -> int:
    data = {**UPLOADS_CAMPAIGN, "name": slug, "slug": slug, "reports": reports}
    return apply_campaign(engine, data, now=created).campaign_id


def _tick(db_url, monkeypatch, now: datetime, cursor: str | None = None):
    monkeypatch.setattr(sensor_module, "_now", lambda: now)
    resources = {"database": DatabaseResource(url=db_url)}
    with dg.instance_for_test() as instance, \
            dg.build_sensor_context(cursor=cursor, instance=instance, resources=resources) as context:
        result = report_sensor(context)
    keys = [(r.partition_key.keys_by_dimension["campaign"], r.partition_key.keys_by_dimension["day"])
            for r in result.run_requests or []]
    return keys, result.cursor, result


def test_end_of_dialing_waits_for_the_last_zone_on_the_day_dst_ends(engine, db_url, monkeypatch):
    # 2026-11-01: clocks go back in the US. Los Angeles closes at 21:00 PST = 05:00 UTC on the 2nd.
    cid = _campaign(engine, "eod", datetime(2026, 11, 1, 12, 0, tzinfo=UTC), schedule="end_of_dialing")
    add_prospects(engine, cid, [{"phone": "+12125550100", "zones": ("America/New_York",), "state": "NY"},
                                {"phone": "+13105550100", "zones": ("America/Los_Angeles",), "state": "CA"}])
    before, cursor, result = _tick(db_url, monkeypatch, datetime(2026, 11, 2, 4, 59, tzinfo=UTC))
    assert before == [] and "no campaign" in result.skip_reason.skip_message
    after, cursor, result = _tick(db_url, monkeypatch, datetime(2026, 11, 2, 5, 0, tzinfo=UTC), cursor)
    assert after == [("acme/eod", "2026-11-01")]
    assert result.run_requests[0].run_key == "report:acme/eod:2026-11-01"
    assert result.dynamic_partitions_requests[0].partition_keys == ["acme/eod"]
    again, _, _ = _tick(db_url, monkeypatch, datetime(2026, 11, 2, 6, 0, tzinfo=UTC), cursor)
    assert again == []  # once per campaign-day


def test_midnight_follows_the_report_zone_across_the_spring_change(engine, db_url, monkeypatch):
    # 2026-03-08: clocks go forward in New York; midnight after it is 04:00 UTC (EDT).
    _campaign(engine, "mid", datetime(2026, 3, 8, 12, 0, tzinfo=UTC), schedule="midnight",
              timezone="America/New_York")
    before, cursor, _ = _tick(db_url, monkeypatch, datetime(2026, 3, 9, 3, 59, tzinfo=UTC))
    assert before == []
    after, _, _ = _tick(db_url, monkeypatch, datetime(2026, 3, 9, 4, 0, tzinfo=UTC), cursor)
    assert after == [("acme/mid", "2026-03-08")]


def test_days_missed_while_dagster_was_down_are_requested_in_order_and_disabled_never(engine, db_url,
                                                                                      monkeypatch):
    _campaign(engine, "mid", datetime(2026, 3, 8, 12, 0, tzinfo=UTC), schedule="midnight",
              timezone="America/Chicago")
    _campaign(engine, "off", datetime(2026, 3, 1, 12, 0, tzinfo=UTC), schedule="disabled")
    requested, cursor, _ = _tick(db_url, monkeypatch, datetime(2026, 3, 12, 9, 0, tzinfo=UTC))
    assert requested == [("acme/mid", "2026-03-08"), ("acme/mid", "2026-03-09"), ("acme/mid", "2026-03-10"),
                         ("acme/mid", "2026-03-11")]
    assert json.loads(cursor) == {"acme/mid": "2026-03-11"}
    later, _, _ = _tick(db_url, monkeypatch, datetime(2026, 3, 12, 23, 0, tzinfo=UTC), cursor)
    assert later == []  # the 12th closes at midnight in Chicago, 05:00 UTC on the 13th


def test_the_report_assets_write_the_export_mail_the_summary_once_and_check_the_abandon_rate(
        engine, db_url, dialer_env, day_of_calls):  # noqa: F811
    import email
    from email import policy

    with engine.begin() as conn:
        conn.execute(sa.update(t.campaigns).where(t.campaigns.c.id == day_of_calls)
                     .values(report_recipients=["ops@example.com"], report_compression="gz"))
    key = dg.MultiPartitionKey({"campaign": "acme/renewals", "day": DAY.isoformat()})
    cfg = DialerConfig.from_env()
    resources = {"database": DatabaseResource(url=db_url), "mailer": MailerResource.from_config(cfg),
                 "bucket": BucketResource.from_config(cfg)}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("report_campaigns", ["acme/renewals"])
        for _ in range(2):  # the second run must not send the report again
            result = dg.materialize([report_detail, report_summary], partition_key=key, resources=resources,
                                    instance=instance)
            assert result.success
        records = instance.fetch_materializations(dg.AssetKey("report_summary"), limit=2).records
        [summary_event, first_summary] = records  # newest first
        metadata = summary_event.asset_materialization.metadata
        checks = [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    # 1 abandoned of 5 answered by a person over the 30 days: 20%, above the 3% a telemarketer must keep.
    [check] = checks
    assert not check.event_specific_data.passed
    assert check.event_specific_data.severity == dg.AssetCheckSeverity.WARN
    mails = list((Path(dialer_env["DIALER_HOME"]) / "mail").glob("*.eml"))
    assert len(mails) == 1
    message = email.message_from_bytes(mails[0].read_bytes(), policy=policy.default)
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "renewals-2026-10-21-calls.csv.gz"
    key = "reports/acme/renewals/2026-10-21/renewals-2026-10-21-calls.csv.gz"
    # The second run wrote the export again (same rows; gzip stamps the time) and mailed nothing.
    in_bucket = (Path(dialer_env["DIALER_HOME"]) / "bucket" / key).read_bytes()
    assert gzip.decompress(attachment.get_content()) == gzip.decompress(in_bucket)
    assert metadata["file"] == dg.MetadataValue.url(f"{cfg.bucket_url}/{key}")
    assert metadata["dials"].value == 6 and metadata["abandoned"].value == 1
    # The email's calls-by-hour chart: beside the export in the bucket, and shown inline in the UI.
    chart_key = "reports/acme/renewals/2026-10-21/renewals-2026-10-21-by-hour.png"
    assert metadata["chart"] == dg.MetadataValue.url(f"{cfg.bucket_url}/{chart_key}")
    chart = (Path(dialer_env["DIALER_HOME"]) / "bucket" / chart_key).read_bytes()
    assert chart.startswith(b"\x89PNG")
    picture = metadata["by_hour_chart"].value
    assert picture.startswith("![Calls by hour (America/New_York): 10:00 1 dials, 1 answered, 0 abandoned;")
    assert f"(data:image/png;base64,{base64.b64encode(chart).decode()})" in picture
    # New York's 10:00–14:00 (13:00's call was not placed), Los Angeles' 20:30 (23:30), Honolulu's 20:00 (02:00).
    assert [(h["hour"][11:16], h["dials"]) for h in metadata["by_hour"].value if h["dials"]] == [
        ("10:00", 1), ("11:00", 1), ("12:00", 1), ("14:00", 1), ("23:00", 1), ("02:00", 1)]
    assert len(metadata["by_hour"].value) == 17  # 10:00 to 02:00 the next day, empty hours kept
    assert metadata["delivery"].value.startswith("already sent")
    assert first_summary.asset_materialization.metadata["delivery"].value.startswith("sent via")
