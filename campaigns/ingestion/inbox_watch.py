"""Is any prospect list waiting in the inbox longer than it should?

The inbox sensor requests a load within a minute of a file settling, and a loaded file
leaves the inbox for processed/ (or rejected/). A file still there more than WAIT_LIMIT
after it was written, with no live run loading it, means the pipeline is not picking it
up (the sensor stopped, the run queue is stuck, runs fail before filing it away). A file
a live run is loading is not waiting, however long a large file takes. The rule is
`waiting_files`, a pure function of what `inbox_entries` reads; Dagster's
`inbox_files_picked_up` check reports it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.lifecycle import UploadStatus
from campaigns.ingestion import upload_claims
from campaigns.ingestion.bucket import Bucket
from campaigns.ingestion.inbox import INBOX, is_hidden, is_sidecar

WAIT_LIMIT = timedelta(minutes=10)


@dataclass(frozen=True)
class InboxEntry:
    """A prospect file in the inbox, as the rule sees it."""

    key: str
    modified_at: datetime | None  # when it was written (unknown: never counted as waiting)
    loading: bool  # a run holds its upload and showed progress lately


@dataclass(frozen=True)
class WaitingFile:
    key: str
    waited: timedelta

    def describe(self) -> str:
        return f"{self.key} ({self.waited.total_seconds() / 60:.0f} min)"


def waiting_files(entries: Iterable[InboxEntry], now: datetime, limit: timedelta = WAIT_LIMIT) -> list[WaitingFile]:
    """The files no run is loading that were written more than `limit` before `now`, longest waiting first."""
    waiting = [WaitingFile(e.key, now - e.modified_at) for e in entries
               if not e.loading and e.modified_at is not None and now - e.modified_at > limit]
    return sorted(waiting, key=lambda w: (-w.waited, w.key))


def inbox_entries(engine: sa.Engine, bucket: Bucket, now: datetime) -> list[InboxEntry]:
    """Every prospect file in the inbox (sidecars, hidden files and `.error.txt` notes left out)."""
    files = [o for o in bucket.scan(INBOX).files
             if not (is_sidecar(o.key) or is_hidden(o.key) or o.key.endswith(".error.txt"))]
    if not files:
        return []
    pl = t.prospect_lists
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(pl.c.source_key, pl.c.source_version, pl.c.status, pl.c.claimed_by, pl.c.heartbeat_at,
                      pl.c.created_at, pl.c.resumes)
            .where(pl.c.source_key.in_(sorted({o.key for o in files})),
                   pl.c.status == str(UploadStatus.PROCESSING))
        ).all()
    loading = {(r.source_key, r.source_version) for r in rows
               if not upload_claims.ClaimState(r.status, r.claimed_by, r.heartbeat_at, r.created_at,
                                               r.resumes).interrupted(now)}
    return [InboxEntry(o.key, o.modified_at, (o.key, o.version) in loading) for o in files]


def inbox_waiting(engine: sa.Engine, bucket: Bucket, now: datetime) -> list[WaitingFile]:
    """The inbox's files waiting more than WAIT_LIMIT at `now` (the rule over what is there)."""
    return waiting_files(inbox_entries(engine, bucket, now), now)
