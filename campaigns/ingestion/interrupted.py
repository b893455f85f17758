"""Uploads a killed run left `processing`: resumed by the inbox sensor and by `dialer list upload`.

An upload is interrupted when no run has shown progress on it for
`upload_claims.STALE_AFTER` (see there for how a run shows it is alive).

- The inbox sensor (`review_inbox`) requests one more run of an interrupted
  upload whose file is still in the inbox. The run starts the upload over from
  its file: staging replaces the orphan rows, and the load had not committed
  (it is all-or-nothing, and the upload would be `loaded`), so no row is
  loaded twice and the accounting is the file's. After `MAX_RESUMES` restarts
  the sensor gives up: the upload is refused with a sentence, its staging rows
  dropped and its file moved to rejected/. An interrupted upload whose file
  version left the inbox is abandoned the same way (nothing to resume from).
- `dialer list upload` of the same bytes with the same options into the same
  campaign (`place_in_inbox`) reuses the copy waiting in the inbox and so its
  upload, instead of copying the file again as a second upload. It takes over
  an interrupted upload, or one whose last run failed, at once, and refuses
  while another run is live (`UploadBusy`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.errors import DialerError
from campaigns.core.lifecycle import UploadStatus
from campaigns.ingestion import upload_claims, upload_record
from campaigns.ingestion.bucket import MAX_NAME_BYTES, Bucket, ObjectInfo, fitted_key
from campaigns.ingestion.inbox import (
    BadKey,
    InboxFile,
    UploadOptions,
    parse_inbox_key,
    read_sidecar,
)
from campaigns.ingestion.staging_table import Opener
from campaigns.ingestion.upload_claims import ClaimState, UploadBusy
from campaigns.ingestion.uploads import reject_file

# Restarts the sensor makes of one upload before refusing it: an upload that keeps
# dying (a crash in the run itself) must not be retried for ever.
MAX_RESUMES = 3


class InboxAction(StrEnum):
    """What the inbox sensor does with a file version already registered as an upload."""

    DONE = "done"  # loaded and filed away, refused, or being loaded by a live run
    FILE_AWAY = "file-away"  # loaded, but the run died before filing the file away
    RESUME = "resume"  # interrupted: one more run starts it over


@dataclass(frozen=True)
class Registered:
    action: InboxAction
    attempt: int = 0  # the restart a RESUME asks for (1, 2, …)

    def run_key(self, key: str, version: str) -> str:
        """Unique per attempt, so Dagster neither repeats a request nor swallows the next restart."""
        suffix = f"#resume-{self.attempt}" if self.action == InboxAction.RESUME else f"#{self.action}"
        return f"{key}@{version}{suffix}"


@dataclass
class InboxReview:
    registered: dict[tuple[str, str], Registered] = field(default_factory=dict)
    # One sentence per upload refused or abandoned on this tick, for the sensor's log.
    notices: list[str] = field(default_factory=list)


def _row_state(row) -> ClaimState:
    return ClaimState(
        status=row.status, claimed_by=row.claimed_by, heartbeat_at=row.heartbeat_at,
        created_at=row.created_at, resumes=row.resumes,
    )


def _refuse_if_still_interrupted(engine: sa.Engine, upload_id: int, message: str, now: datetime) -> bool:
    """Refuse the upload (status, sentence, staging rows dropped) unless a run took it up meanwhile."""
    with engine.begin() as conn:
        if not upload_claims.state(conn, upload_id, lock=True).interrupted(now):
            return False
        upload_record.reject_upload(conn, upload_id, message, now)
    return True


def review_inbox(engine: sa.Engine, bucket: Bucket, listed: list[ObjectInfo], now: datetime, *,
                 reader: sa.Engine | None = None) -> InboxReview:
    """What to do with each listed file version already registered, after settling interrupted uploads.

    Refuses (and moves to rejected/) an interrupted upload restarted MAX_RESUMES
    times, and abandons one whose file version is no longer in the inbox. The registered
    uploads are read with `reader` (a sensor's engine, with its statement limit) when given;
    a refusal, which deletes the upload's staged rows (millions, for a big file), is written
    with `engine`.
    """
    pl = t.prospect_lists
    present = {(o.key, o.version) for o in listed}
    last_sign = sa.func.coalesce(pl.c.heartbeat_at, pl.c.created_at)
    with (reader or engine).connect() as conn:
        rows = conn.execute(
            sa.select(
                pl.c.id, pl.c.source_key, pl.c.source_version, pl.c.status, pl.c.archived_key,
                pl.c.claimed_by, pl.c.heartbeat_at, pl.c.created_at, pl.c.resumes,
            ).where(
                sa.or_(
                    pl.c.source_key.in_(sorted({o.key for o in listed})),
                    sa.and_(
                        pl.c.status == str(UploadStatus.PROCESSING),
                        last_sign < sa.literal(now - upload_claims.STALE_AFTER, pl.c.created_at.type),
                    ),
                )
            )
        ).all()
    review = InboxReview()
    for row in rows:
        version = (row.source_key, row.source_version)
        held = _row_state(row)
        if version not in present:
            if held.interrupted(now):
                message = (
                    f"{row.source_key}: its load was interrupted and that version of the file is no longer "
                    f"in the inbox, so upload {row.id} was abandoned; drop the file into the inbox again to load it."
                )
                if _refuse_if_still_interrupted(engine, row.id, message, now):
                    review.notices.append(message)
            continue
        if row.status == UploadStatus.LOADED and row.archived_key is None:
            review.registered[version] = Registered(InboxAction.FILE_AWAY)
        elif held.interrupted(now) and row.resumes < MAX_RESUMES:
            review.registered[version] = Registered(InboxAction.RESUME, row.resumes + 1)
        elif held.interrupted(now):
            review.notices.append(_give_up(engine, bucket, row, held, now))
            review.registered[version] = Registered(InboxAction.DONE)
        else:
            review.registered[version] = Registered(InboxAction.DONE)
    return review


def _give_up(engine: sa.Engine, bucket: Bucket, row, held: ClaimState, now: datetime) -> str:
    message = (
        f"{row.source_key}: its load was interrupted {row.resumes + 1} times (last progress at "
        f"{held.last_sign_of_life:%Y-%m-%d %H:%M:%S} UTC), so it was refused and moved to rejected/; "
        "read the failed runs' logs, fix the cause, then drop the file into the inbox again."
    )
    if not _refuse_if_still_interrupted(engine, row.id, message, now):
        return f"{row.source_key}: a run took the interrupted upload {row.id} up again."
    try:
        reject_file(bucket, parse_inbox_key(row.source_key), message, now)
    except (OSError, BadKey) as exc:  # the upload is refused either way; say where the file stayed
        return f"{message} (The file could not be moved: {exc}.)"
    return message


# --- `dialer list upload` ------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """Where a CLI upload's file goes in the inbox, and whether it must be copied there."""

    inbox_file: InboxFile
    copy: bool  # False: the same file is already there (an interrupted or unfinished upload)


def _same_bytes(bucket: Bucket, key: str, local: Opener, size: int) -> bool:
    info = bucket.info(key)
    if info is None or info.size != size:
        return False
    chunk = 1 << 20
    with bucket.open(key) as theirs, local() as ours:
        while True:
            a, b = theirs.read(chunk), ours.read(chunk)
            if a != b:
                return False
            if not a:
                return True


def _same_options(bucket: Bucket, candidate: InboxFile, options: UploadOptions) -> bool:
    try:
        return read_sidecar(bucket, candidate)[0] == options
    except DialerError:
        return False


def place_in_inbox(
    engine: sa.Engine,
    bucket: Bucket,
    workspace: str,
    slug: str,
    filename: str,
    local: Opener,
    size: int,
    options: UploadOptions,
    now: datetime,
) -> Placement:
    """The inbox key for a file given to `dialer list upload`: a free one, or the one its copy already has.

    A key taken by another file gets a numbered name (a.1.csv, …); a name too long for the
    file system (with its `.yaml` sidecar, if the options need one) is cut as `fitted_key`
    cuts it. The same
    bytes with the same options at a key whose upload is unregistered, loaded
    but not filed away, or processing with no live run, are resumed there.
    Raises UploadBusy while a live run loads that copy.
    """
    stem, suffix = (filename[:-7], filename[-7:]) if filename.lower().endswith(".csv.gz") else (filename[:-4], filename[-4:])
    with engine.connect() as conn:
        campaign = upload_record.campaign_info(conn, workspace, slug)
    room = MAX_NAME_BYTES - len(".yaml") if options != UploadOptions() else MAX_NAME_BYTES
    n = 0
    while True:
        name = filename if n == 0 else f"{stem}.{n}{suffix}"
        candidate = parse_inbox_key(fitted_key(f"inbox/{workspace}/{slug}/{name}", room))
        n += 1
        if not any(bucket.exists(k) for k in (candidate.key, *candidate.sidecar_keys())):
            return Placement(candidate, copy=True)
        if not _same_options(bucket, candidate, options):
            continue
        info = bucket.info(candidate.key)
        if info is None:  # only our sidecar: a copy killed before its file was in place
            return Placement(candidate, copy=True)
        if not _same_bytes(bucket, candidate.key, local, size):
            continue
        with engine.connect() as conn:
            upload = upload_record.find_upload(conn, campaign.id, candidate.key, info.version)
            held = None if upload is None else upload_claims.state(conn, upload.id)
        if held is None or held.status == UploadStatus.LOADED:
            return Placement(candidate, copy=False)
        if held.status != UploadStatus.PROCESSING:
            continue
        if held.live_elsewhere(None, now):
            raise UploadBusy(upload_claims.busy_message(candidate.key, held, now))
        return Placement(candidate, copy=False)
