"""Freshness checks: is the hopper being filled, is the inbox being picked up?

Two asset checks beside the registry's (`national_registry_fresh`, on `hopper`):
`hopper_filled_on_time` on `hopper` and `inbox_files_picked_up` on `upload_file`. The rules
live in the core (`campaigns.dialing.hopper_watch`, `campaigns.ingestion.inbox_watch`);
`freshness_sensor` (pipelines/freshness_sensor.py) evaluates all three every minute without a
run, and each check can also be executed from the UI. A violation fails the check with ERROR
severity, which the UI shows red on the asset and in the graph.
"""


from collections.abc import Sequence
from datetime import UTC, datetime

import dagster as dg

from assets.hopper import hopper
from assets.ingestion import upload_file
from campaigns.dialing.hopper_watch import HopperWatch, describe, hopper_watch, overdue
from campaigns.ingestion.inbox_watch import WAIT_LIMIT, WaitingFile, inbox_waiting
from resources.bucket import BucketResource
from resources.database import DatabaseResource

HOPPER_CHECK = "hopper_filled_on_time"
INBOX_CHECK = "inbox_files_picked_up"
LISTED = 20  # files or campaigns named in a description or a metadata list


def hopper_check_fields(watched: Sequence[HopperWatch], now: datetime) -> dict[str, object]:
    """The `hopper_filled_on_time` outcome for the active campaigns `watched` at `now`."""
    late = [w for w in watched if overdue(w, now)]
    lines = ["| campaign | last filled (UTC) | fill interval | open zone groups | filled on time |",
             "|---|---|---:|---:|---|"]
    for w in watched:
        last = f"{w.last_filled_at:%Y-%m-%d %H:%M:%S}" if w.last_filled_at else "never"
        lines.append(f"| {w.campaign} | {last} | {w.fill_interval.total_seconds() / 60:.0f} min "
                     f"| {w.open_groups} | {'NO' if w in late else 'yes'} |")
    if late:
        description = "; ".join(describe(w, now) for w in late[:LISTED]) + "."
    elif watched:
        description = (f"No hopper is overdue: each of the {len(watched)} active campaign(s) was filled within two "
                       "fill intervals or has had no dial window open that long.")
    else:
        description = "No campaign is active."
    return dict(
        check_name=HOPPER_CHECK, passed=not late, severity=dg.AssetCheckSeverity.ERROR, description=description,
        metadata={"active_campaigns": len(watched), "overdue": len(late),
                  "overdue_campaigns": dg.MetadataValue.json([w.campaign for w in late[:LISTED]]),
                  "campaigns": dg.MetadataValue.md("\n".join(lines) if watched else "No campaign is active.")},
    )


def inbox_check_fields(waiting: Sequence[WaitingFile]) -> dict[str, object]:
    """The `inbox_files_picked_up` outcome for the inbox files `waiting`."""
    limit = f"{WAIT_LIMIT.total_seconds() / 60:.0f} minutes"
    if waiting:
        names = ", ".join(w.describe() for w in waiting[:LISTED])
        description = (f"{len(waiting)} file(s) waited in the inbox more than {limit} with no run loading them: "
                       f"{names}; check that inbox_sensor is running and that its runs succeed.")
    else:
        description = f"No file waited in the inbox more than {limit}."
    return dict(
        check_name=INBOX_CHECK, passed=not waiting, severity=dg.AssetCheckSeverity.ERROR, description=description,
        metadata={"waiting": len(waiting),
                  "longest_wait_min": round(waiting[0].waited.total_seconds() / 60, 1) if waiting else 0.0,
                  "files": dg.MetadataValue.json([w.key for w in waiting[:LISTED]])},
    )


@dg.asset_check(
    asset=hopper, name=HOPPER_CHECK, blocking=False,
    description="Each active campaign's hopper was filled within two fill intervals while one of its "
                "zone groups' dial windows has been open (a daemon holds and fills it).",
)
def hopper_filled_on_time(database: DatabaseResource) -> dg.AssetCheckResult:
    now = datetime.now(UTC)
    with database.engine.connect() as conn:
        watched = hopper_watch(conn, now)
    return dg.AssetCheckResult(**hopper_check_fields(watched, now))


@dg.asset_check(
    asset=upload_file, name=INBOX_CHECK, blocking=False,
    description="No prospect list waits in the inbox more than 10 minutes without a run loading it.",
)
def inbox_files_picked_up(database: DatabaseResource, bucket: BucketResource) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(**inbox_check_fields(inbox_waiting(database.engine, bucket.get(), datetime.now(UTC))))


FRESHNESS_CHECKS = [hopper_filled_on_time, inbox_files_picked_up]
