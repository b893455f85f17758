"""`freshness_sensor`: the freshness checks, evaluated every minute without a run.

It reads the hoppers, the inbox and the National DNC Registry at one instant
(`campaigns.reporting.freshness`) and reports the three checks as asset check evaluations:
`hopper_filled_on_time` and `national_registry_fresh` on `hopper`, `inbox_files_picked_up` on
`upload_file`. A check is reported when its outcome changes (passed or not, severity, the
campaigns or files it names) and otherwise every REPORT_EVERY, so the UI always shows a
recent evaluation without an event a minute per check.

Why checks and not Dagster's FreshnessPolicy: a policy judges one asset by the age of its last
materialization, evaluated by a daemon that is off unless the instance enables it. The hopper is
one asset for every campaign, each with its own fill interval and dial windows, and an inbox
file's wait is no materialization at all; a check carries the rule's own answer (which campaign,
which file) and turns red in any Dagster instance.
"""


import json
from datetime import UTC, datetime, timedelta

import dagster as dg

from assets.freshness import hopper_check_fields, inbox_check_fields
from assets.hopper import registry_check_fields
from campaigns.reporting.freshness import freshness
from resources.bucket import BucketResource
from resources.database import DatabaseResource

INTERVAL_S = 60
REPORT_EVERY = timedelta(minutes=15)
# The metadata entries that name what a check is about: a change in them is a new outcome.
_SUBJECTS = ("overdue_campaigns", "files", "version_id", "campaigns")


def _signature(fields: dict) -> str:
    metadata = fields["metadata"]
    subjects = {k: getattr(metadata[k], "value", metadata[k]) for k in _SUBJECTS if k in metadata
                and not isinstance(metadata[k], dg.MarkdownMetadataValue)}
    return json.dumps([fields["passed"], str(fields["severity"]), subjects], sort_keys=True, default=str)


def _cursor(raw: str | None) -> dict[str, list]:
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _older_than(stamp: object, moment: datetime) -> bool:
    try:
        return datetime.fromisoformat(str(stamp)) <= moment
    except ValueError:
        return True


@dg.sensor(
    name="freshness_sensor", minimum_interval_seconds=INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Evaluates the freshness checks (hopper filled on time, inbox picked up, National DNC "
                "Registry age) every minute, without a run.",
)
def freshness_sensor(context: dg.SensorEvaluationContext, database: DatabaseResource, bucket: BucketResource):
    now = datetime.now(UTC)
    fresh = freshness(database.sensor_engine, bucket.get(), now)
    checks = [("hopper", hopper_check_fields(fresh.hoppers, now)),
              ("upload_file", inbox_check_fields(fresh.inbox)),
              ("hopper", registry_check_fields(fresh.registry))]
    last = _cursor(context.cursor)  # check name -> [signature, when reported]
    events, cursor = [], {}
    for asset, fields in checks:
        signature = _signature(fields)
        before = last.get(fields["check_name"])
        signed, reported = before if isinstance(before, list) and len(before) == 2 else (None, None)
        if signed != signature or _older_than(reported, now - REPORT_EVERY):
            events.append(dg.AssetCheckEvaluation(asset_key=dg.AssetKey(asset), **fields))
            reported = now.isoformat()
        cursor[fields["check_name"]] = [signature, reported]
    encoded = json.dumps(cursor, sort_keys=True)
    if not events:
        return dg.SensorResult(skip_reason="No freshness check changed since its last report.", cursor=encoded)
    return dg.SensorResult(asset_events=events, cursor=encoded)
