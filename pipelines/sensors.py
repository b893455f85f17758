"""Sensors that watch the bucket: prospect lists under inbox/, DNC files under dnc/.

The inbox drains as files are processed (they move to processed/ or
rejected/), so each tick lists what is still there. The cursor holds only the
last key requested and the versions of files seen once and still settling: a
file is requested when it shows the same version (size and mtime, or ETag)
on two ticks in a row, so a file still being written waits. A version already
registered as an upload (e.g. by `dialer list upload`) is not requested again,
except once more if it loaded but is still in the inbox (the run died before
filing it away).
Keys that do not fit the layout are moved to rejected/ with an explanation.
"""


import json
from datetime import UTC, datetime

import dagster as dg

from assets.partitions import dnc_files, uploads
from campaigns.ingestion.inbox import (
    BadKey,
    is_hidden,
    is_sidecar,
    parse_dnc_key,
    parse_inbox_key,
)
from campaigns.ingestion.upload_record import known_versions
from campaigns.ingestion.uploads import reject_key
from pipelines.jobs import import_dnc_file, load_prospect_list
from resources.bucket import BucketResource
from resources.database import DatabaseResource


def _cursor(raw: str | None) -> dict:
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = {}
    return {"last_key": data.get("last_key"), "pending": dict(data.get("pending") or {})}


def _scan(context, store, prefix, parse, partitions_def, known=None):
    known = known or {}
    now = datetime.now(UTC)
    state = _cursor(context.cursor)
    settling: dict[str, str] = {}
    requests: list[dg.RunRequest] = []
    new_partitions: list[str] = []
    for obj in store.list(prefix):
        if is_sidecar(obj.key) or is_hidden(obj.key) or obj.key.endswith(".error.txt"):
            continue
        try:
            target = parse(obj.key)
        except BadKey as exc:
            context.log.warning(str(exc))
            try:
                reject_key(store, obj.key, str(exc), now)
            except OSError as move_error:  # one stuck file must not stop the others
                context.log.warning(f"{obj.key}: could not be moved aside ({move_error}).")
            continue
        if (obj.key, obj.version) in known:
            if known[(obj.key, obj.version)] == "file-away":
                # Loaded, but the run died before filing the file away: one more run finishes it.
                new_partitions.append(target.partition_key)
                requests.append(
                    dg.RunRequest(run_key=f"{obj.key}@{obj.version}#file-away", partition_key=target.partition_key)
                )
            continue
        if state["pending"].get(obj.key) != obj.version:
            settling[obj.key] = obj.version
            continue
        new_partitions.append(target.partition_key)
        requests.append(
            dg.RunRequest(run_key=f"{obj.key}@{obj.version}", partition_key=target.partition_key)
        )
        state["last_key"] = obj.key
    cursor = json.dumps({"last_key": state["last_key"], "pending": settling}, sort_keys=True)
    dynamic = [partitions_def.build_add_request(new_partitions)] if new_partitions else []
    if not requests:
        waiting = f"{len(settling)} file(s) settling" if settling else "no new files"
        return dg.SensorResult(skip_reason=waiting, cursor=cursor)
    return dg.SensorResult(run_requests=requests, dynamic_partitions_requests=dynamic, cursor=cursor)


@dg.sensor(
    job=load_prospect_list,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests one load_prospect_list run per new CSV under inbox/<workspace>/<campaign>/.",
)
def inbox_sensor(context: dg.SensorEvaluationContext, bucket: BucketResource, database: DatabaseResource):
    store = bucket.get()
    keys = [o.key for o in store.list("inbox")]
    with database.engine.connect() as conn:
        known = known_versions(conn, keys)
    return _scan(context, store, "inbox", parse_inbox_key, uploads, known)


@dg.sensor(
    job=import_dnc_file,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests one import_dnc_file run per new file under dnc/<workspace>/<list>/.",
)
def dnc_sensor(context: dg.SensorEvaluationContext, bucket: BucketResource):
    return _scan(context, bucket.get(), "dnc", parse_dnc_key, dnc_files)
