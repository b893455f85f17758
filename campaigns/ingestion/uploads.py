"""An upload's journey through the bucket: find it, refuse it, stage it, or file it away.

Loading one prospect list: register → stage (validate) → dedupe → DNC scrub →
load → file away. The database half of each stage is its own module
(`upload_record`, `staging_table`, `dedupe`, `dnc_scrub`, `load`,
`accounting`); this module ties them to the bucket's files: a refused file
goes to `rejected/` beside an `.error.txt` that says why, a loaded one to
`processed/`, and per-row rejects to `rejects/`.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from campaigns.core.errors import DialerError
from campaigns.core.lifecycle import UploadStatus
from campaigns.ingestion import accounting, csvfile, upload_claims, upload_record
from campaigns.ingestion.bucket import Bucket, UnsafeKey, fitted_key
from campaigns.ingestion.inbox import (
    BadKey,
    InboxFile,
    inbox_file_for_partition,
    read_sidecar,
)
from campaigns.ingestion.staging_table import OnBatch, stage_rows


@dataclass(frozen=True)
class OpenedUpload:
    inbox_file: InboxFile
    campaign: upload_record.CampaignInfo
    upload: upload_record.Upload
    layout: csvfile.Layout | None
    source_key: str  # where the file is now: inbox/… or processed/…

    @property
    def already_loaded(self) -> bool:
        return self.upload.status == UploadStatus.LOADED

    def opener(self, bucket: Bucket):
        return lambda: bucket.open(self.source_key)


def _error_text(key: str, message: str, now: datetime) -> str:
    return f"{message}\n\nFile: {key}\nRefused at: {now.isoformat()}\n"


def reject_key(bucket: Bucket, key: str, message: str, now: datetime) -> str:
    """Move a file that does not fit the layout aside; returns where it went."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", key.replace("/", "__"))[:200] or "file"
    destination = bucket.quarantine(key, f"rejected/_unsorted/{safe}")
    bucket.write_text(fitted_key(destination + ".error.txt"), _error_text(key, message, now))
    return destination


def reject_file(bucket: Bucket, inbox_file: InboxFile, message: str, now: datetime) -> str:
    destination = inbox_file.moved_key("rejected")
    if bucket.exists(inbox_file.key):
        destination = bucket.move(inbox_file.key, destination)
    for sidecar in inbox_file.sidecar_keys():
        if bucket.exists(sidecar):
            bucket.move(sidecar, "rejected/" + sidecar.split("/", 1)[1])
    bucket.write_text(fitted_key(destination + ".error.txt"), _error_text(inbox_file.key, message, now))
    return destination


def open_upload(engine: sa.Engine, bucket: Bucket, partition_key: str, now: datetime, runner: str) -> OpenedUpload:
    """Find the partition's file, register its upload (claimed by the run `runner`) and read its layout.

    Raises `csvfile.FileRejected` after moving a refused file aside and
    recording why; a file already loaded comes back with `already_loaded`.
    An upload a killed run left processing starts over here (`interrupted`).
    """
    try:
        inbox_file = inbox_file_for_partition(partition_key)
    except BadKey as exc:
        raise csvfile.FileRejected(str(exc)) from None
    try:
        info = bucket.info(inbox_file.key)
    except UnsafeKey as exc:
        # A link on the key's path: that file is not this key's to load or move; it stays where it is.
        raise csvfile.FileRejected(str(exc)) from None
    try:
        with engine.begin() as conn:
            campaign = upload_record.campaign_info(conn, inbox_file.workspace, inbox_file.campaign)
    except DialerError as exc:
        message = f"{inbox_file.key}: {exc}"
        if info is not None:
            reject_file(bucket, inbox_file, message, now)
        raise csvfile.FileRejected(message) from None
    if info is None:
        with engine.begin() as conn:
            previous = upload_record.latest_upload(conn, campaign.id, inbox_file.key)
            archived = upload_record.summary(conn, previous.id).archived_key if previous else None
        if previous is not None and previous.status == UploadStatus.LOADED and archived:
            return OpenedUpload(inbox_file, campaign, previous, None, archived)
        raise csvfile.FileRejected(
            f"{inbox_file.key}: is not in the bucket {bucket.url} any more; drop it into the inbox again."
        )
    try:
        options, sidecar_key = read_sidecar(bucket, inbox_file)
    except DialerError as exc:
        reject_file(bucket, inbox_file, str(exc), now)
        raise csvfile.FileRejected(str(exc)) from None
    with engine.begin() as conn:
        upload = upload_record.register_upload(conn, campaign, inbox_file, info, options, now, sidecar_key=sidecar_key)
        upload_claims.claim(conn, upload.id, runner, now, restart=True)
    if upload.status == UploadStatus.LOADED:
        return OpenedUpload(inbox_file, campaign, upload, None, inbox_file.key)
    try:
        layout = csvfile.inspect(lambda: bucket.open(inbox_file.key), inbox_file.key, campaign.limits)
    except csvfile.FileRejected as exc:
        with engine.begin() as conn:
            upload_record.reject_upload(conn, upload.id, str(exc), now)
        reject_file(bucket, inbox_file, str(exc), now)
        raise
    with engine.begin() as conn:
        upload_record.record_layout(conn, upload.id, layout)
    return OpenedUpload(inbox_file, campaign, upload, layout, inbox_file.key)


def current_upload(engine: sa.Engine, bucket: Bucket, partition_key: str) -> OpenedUpload:
    """The upload a later stage works on: the newest registered for the partition's key."""
    inbox_file = inbox_file_for_partition(partition_key)
    with engine.connect() as conn:
        campaign = upload_record.campaign_info(conn, inbox_file.workspace, inbox_file.campaign)
        upload = upload_record.latest_upload(conn, campaign.id, inbox_file.key)
    if upload is None:
        raise DialerError(f"{inbox_file.key}: has not been registered; materialise upload_file first.")
    source = inbox_file.key
    if not bucket.exists(source):
        with engine.connect() as conn:
            source = upload_record.summary(conn, upload.id).archived_key or source
    layout = None
    if upload.status != UploadStatus.LOADED and bucket.exists(source):
        # upload_file scanned the file once and recorded how to read it.
        with engine.connect() as conn:
            layout = upload_record.recorded_layout(conn, upload.id)
        layout = layout or csvfile.inspect(lambda: bucket.open(source), source, campaign.limits)
    return OpenedUpload(inbox_file, campaign, upload, layout, source)


def stage(engine: sa.Engine, bucket: Bucket, opened: OpenedUpload, on_batch: OnBatch | None = None) -> dict:
    """Stage the file's rows, telling `on_batch` after each batch; a file that breaks half-way (bad quote,
    bad byte) is refused whole."""
    if opened.layout is None:
        raise csvfile.FileRejected(
            f"{opened.inbox_file.key}: is not in the bucket any more; drop it into the inbox again."
        )
    try:
        return stage_rows(
            engine, opened.upload, opened.campaign, opened.opener(bucket), opened.source_key,
            opened.layout, on_batch=on_batch,
        )
    except (csvfile.FileRejected, UnicodeError, csv.Error) as exc:
        message = str(exc) if isinstance(exc, csvfile.FileRejected) else f"{opened.source_key}: {exc}."
        now = datetime.now(UTC)
        with engine.begin() as conn:
            upload_record.reject_upload(conn, opened.upload.id, message, now)
        reject_file(bucket, opened.inbox_file, message, now)
        raise csvfile.FileRejected(message) from None


def finish_upload(engine: sa.Engine, bucket: Bucket, opened: OpenedUpload) -> upload_record.Summary:
    """Write the rejects file (if any row was rejected) and move the file to processed/."""
    inbox_file = opened.inbox_file
    with engine.connect() as conn:
        any_rejected = accounting.has_rejected_rows(conn, opened.upload.id)
        recorded = upload_record.summary(conn, opened.upload.id)
    rejects_key = recorded.rejects_file
    if any_rejected and rejects_key is None and bucket.exists(opened.source_key):
        # The file was accepted when it was staged: a limit lowered since must not strand its load.
        layout = opened.layout or csvfile.inspect(opened.opener(bucket), opened.source_key)
        rejects_key = bucket.free_key(inbox_file.rejects_key)  # an earlier upload's stays
        # Streamed: the reasons from the database and the rows from the file, side by side.
        with engine.connect() as conn, bucket.open(rejects_key, "wb") as out:
            reasons = accounting.rejected_rows(conn, opened.upload.id)
            accounting.write_rejects(opened.opener(bucket), opened.source_key, layout, reasons, out)
        with engine.begin() as conn:
            upload_record.set_rejects_file(conn, opened.upload.id, rejects_key)
    # Staging goes before the file moves: a run killed in between leaves the file in the
    # inbox for the sensor's file-away run, and no staging rows that nothing would purge.
    with engine.begin() as conn:
        accounting.purge_staging(conn, opened.upload.id)
    if bucket.exists(inbox_file.key):
        archived = bucket.move(inbox_file.key, inbox_file.moved_key("processed"))
        for sidecar in inbox_file.sidecar_keys():
            if bucket.exists(sidecar):
                bucket.move(sidecar, archived.rsplit("/", 1)[0] + "/" + sidecar.rsplit("/", 1)[1])
        with engine.begin() as conn:
            upload_record.set_archived_key(conn, opened.upload.id, archived)
    with engine.connect() as conn:
        return upload_record.summary(conn, opened.upload.id)
