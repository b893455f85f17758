"""Sensors that watch the bucket: prospect lists under inbox/, DNC files under dnc/, National DNC
Registry files under dnc/_registry/.

The inbox drains as files are processed (they move to processed/ or
rejected/), so each tick lists what is still there. The cursor holds only the
last key requested and the versions of files seen once and still settling: a
file is requested when it shows the same version (size and mtime, or ETag)
on two ticks in a row, so a file still being written waits. A version already
registered as an upload (e.g. by `dialer list upload`) is not requested again,
except once more if it loaded but is still in the inbox (the run died before
filing it away), or if its load was interrupted (a killed run left it
processing: `campaigns.ingestion.interrupted` says when, and when to give up).
Keys that do not fit the layout are moved to rejected/ with an explanation;
symbolic links (a folder bucket) are refused in the log, once, and left alone.
"""


import json
from datetime import UTC, datetime

import dagster as dg

from assets.partitions import dnc_files, registry_files, uploads
from campaigns.ingestion.bucket import Listing
from campaigns.ingestion.inbox import (
    BadKey,
    is_hidden,
    is_sidecar,
    parse_dnc_key,
    parse_inbox_key,
)
from campaigns.ingestion.interrupted import InboxAction, Registered, review_inbox
from campaigns.ingestion.registry_bucket import (
    PREFIX,
    is_registry_key,
    parse_registry_key,
)
from campaigns.ingestion.uploads import reject_key
from pipelines.jobs import import_dnc_file, import_registry_file, load_prospect_list
from resources.bucket import BucketResource
from resources.database import DatabaseResource


def _cursor(raw: str | None) -> dict:
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = {}
    return {
        "last_key": data.get("last_key"),
        "pending": dict(data.get("pending") or {}),
        "links": list(data.get("links") or []),
    }


def _scan(context, store, listing: Listing, parse, partitions_def, known: dict[tuple[str, str], Registered] | None = None):
    known = known or {}
    now = datetime.now(UTC)
    state = _cursor(context.cursor)
    for link in listing.links:
        if link not in state["links"]:  # once per link, not once per tick
            context.log.warning(store.refusal(link) or f"{link}: is a symbolic link; it was left untouched.")
    settling: dict[str, str] = {}
    requests: list[dg.RunRequest] = []
    new_partitions: list[str] = []
    for obj in listing.files:
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
        registered = known.get((obj.key, obj.version))
        if registered is not None:
            if registered.action != InboxAction.DONE:
                # Loaded but not filed away, or interrupted: one more run finishes it or starts it over.
                new_partitions.append(target.partition_key)
                requests.append(
                    dg.RunRequest(run_key=registered.run_key(obj.key, obj.version), partition_key=target.partition_key)
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
    data: dict = {"last_key": state["last_key"], "pending": settling}
    if listing.links:
        data["links"] = listing.links
    cursor = json.dumps(data, sort_keys=True)
    dynamic = [partitions_def.build_add_request(new_partitions)] if new_partitions else []
    if not requests:
        waiting = f"{len(settling)} file(s) settling" if settling else "no new files"
        if listing.links:
            waiting += f"; {len(listing.links)} symbolic link(s) left untouched"
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
    listing = store.scan("inbox")
    review = review_inbox(database.engine, store, listing.files, datetime.now(UTC), reader=database.sensor_engine)
    for notice in review.notices:  # an upload refused or abandoned: logged once, as it happens
        context.log.warning(notice)
    return _scan(context, store, listing, parse_inbox_key, uploads, review.registered)


def _file_sensor(job, what: str) -> dict:
    """How the DNC folders' sensors are set up: every 30 s, running by default, one run per new file."""
    return {"job": job, "minimum_interval_seconds": 30, "default_status": dg.DefaultSensorStatus.RUNNING,
            "description": f"Requests one {job.name} run per new {what}."}


@dg.sensor(**_file_sensor(import_dnc_file, "file under dnc/<workspace>/<list>/"))
def dnc_sensor(context: dg.SensorEvaluationContext, bucket: BucketResource):
    store = bucket.get()
    listing = store.scan("dnc")
    # dnc/_registry/ is the registry sensor's (`_registry` is never a workspace's name).
    lists = Listing([f for f in listing.files if not is_registry_key(f.key)],
                    [k for k in listing.links if not is_registry_key(k)])
    return _scan(context, store, lists, parse_dnc_key, dnc_files)


@dg.sensor(**_file_sensor(import_registry_file, "National DNC Registry file under dnc/_registry/"))
def registry_sensor(context: dg.SensorEvaluationContext, bucket: BucketResource):
    store = bucket.get()
    return _scan(context, store, store.scan(PREFIX), parse_registry_key, registry_files)
