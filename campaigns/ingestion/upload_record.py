"""An upload's record in `prospect_lists`: its campaign, registering it, refusing it, its summary.

An upload is one version of one bucket file loaded into one campaign. The record
is created when the file is first seen (`register_upload`, idempotent), says how
the file is read (`record_layout`), and ends up either `rejected` with the reason
or `loaded` with its accounting (`Summary`), rejects file and archived key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.db import insert_for
from campaigns.core.errors import NotFound
from campaigns.core.lifecycle import UploadStatus
from campaigns.ingestion import csvfile
from campaigns.ingestion.bucket import ObjectInfo
from campaigns.ingestion.inbox import InboxFile, UploadOptions


@dataclass(frozen=True)
class CampaignInfo:
    """What loading a list needs to know about its campaign."""

    id: int
    workspace_id: int
    workspace: str
    slug: str
    locale: str
    state: str
    dupe_days: int
    expire_days: int
    list_priority: int
    dnc_disposition: str | None
    max_upload_rows: int
    max_upload_bytes: int
    dnc_national_registry: bool = False

    @property
    def limits(self) -> csvfile.ReadLimits:
        """How large a file this campaign takes (`uploads.max_rows`, `uploads.max_uncompressed_bytes`)."""
        return csvfile.ReadLimits(max_rows=self.max_upload_rows, max_uncompressed_bytes=self.max_upload_bytes)


@dataclass(frozen=True)
class Upload:
    """One registered upload: a version of a bucket file, and the options it loads with."""

    id: int
    campaign_id: int
    source_key: str
    source_version: str
    filename: str
    status: str
    priority: int
    dupe_days: int
    expire_days: int


@dataclass
class Summary:
    """An upload's accounting, as shown in Dagster metadata, the CLI and `prospect_lists`."""

    upload_id: int
    status: str
    rows: int = 0
    loaded: int = 0
    duplicates: int = 0
    invalid: int = 0
    dnc: int = 0
    warnings: list[str] = field(default_factory=list)
    rejects_file: str | None = None
    error: str | None = None
    archived_key: str | None = None

    @property
    def balanced(self) -> bool:
        return self.rows == self.loaded + self.duplicates + self.invalid + self.dnc

    def as_dict(self) -> dict:
        return asdict(self)


def campaign_info(conn: sa.Connection, workspace: str, slug: str) -> CampaignInfo:
    """The campaign a file in `inbox/<workspace>/<slug>/` loads into; `NotFound` says which part is missing."""
    row = conn.execute(
        sa.select(
            t.campaigns.c.id,
            t.campaigns.c.workspace_id,
            t.workspaces.c.name.label("workspace"),
            t.campaigns.c.slug,
            t.campaigns.c.locale,
            t.campaigns.c.state,
            t.campaigns.c.dupe_days,
            t.campaigns.c.expire_days,
            t.campaigns.c.list_priority,
            t.campaigns.c.dnc_disposition,
            t.campaigns.c.max_upload_rows,
            t.campaigns.c.max_upload_bytes,
            t.campaigns.c.dnc_national_registry,
        )
        .join(t.workspaces, t.workspaces.c.id == t.campaigns.c.workspace_id)
        .where(t.workspaces.c.name == workspace, t.campaigns.c.slug == slug)
    ).one_or_none()
    if row is None:
        exists = conn.execute(
            sa.select(t.workspaces.c.id).where(t.workspaces.c.name == workspace)
        ).scalar_one_or_none()
        what = f"campaign `{slug}` in workspace `{workspace}`" if exists else f"workspace `{workspace}`"
        raise NotFound(f"There is no {what}; create it with `dialer campaign apply FILE` first.")
    return CampaignInfo(**row._mapping)


def _upload_from_row(row) -> Upload:
    return Upload(
        id=row.id,
        campaign_id=row.campaign_id,
        source_key=row.source_key,
        source_version=row.source_version,
        filename=row.filename,
        status=row.status,
        priority=row.priority,
        dupe_days=row.dupe_days,
        expire_days=row.expire_days,
    )


def find_upload(conn: sa.Connection, campaign_id: int, source_key: str, version: str) -> Upload | None:
    """The upload of this version of a bucket key, if it was registered."""
    row = conn.execute(
        sa.select(t.prospect_lists).where(
            t.prospect_lists.c.campaign_id == campaign_id,
            t.prospect_lists.c.source_key == source_key,
            t.prospect_lists.c.source_version == version,
        )
    ).one_or_none()
    return None if row is None else _upload_from_row(row)


def latest_upload(conn: sa.Connection, campaign_id: int, source_key: str) -> Upload | None:
    """The newest upload of a bucket key (a key may be uploaded again with new content)."""
    row = conn.execute(
        sa.select(t.prospect_lists)
        .where(t.prospect_lists.c.campaign_id == campaign_id, t.prospect_lists.c.source_key == source_key)
        .order_by(t.prospect_lists.c.id.desc())
        .limit(1)
    ).one_or_none()
    return None if row is None else _upload_from_row(row)


def register_upload(
    conn: sa.Connection,
    campaign: CampaignInfo,
    inbox_file: InboxFile,
    info: ObjectInfo,
    options: UploadOptions,
    now: datetime,
    *,
    sidecar_key: str | None = None,
) -> Upload:
    """The upload row for this file version, created on first sight (idempotent)."""
    existing = find_upload(conn, campaign.id, inbox_file.key, info.version)
    if existing is not None:
        return existing
    effective = UploadOptions(
        priority=campaign.list_priority, dupe_days=campaign.dupe_days, expire_days=campaign.expire_days
    ).merged(options)
    insert = insert_for(conn, t.prospect_lists)
    conn.execute(
        insert.values(
            campaign_id=campaign.id,
            source_key=inbox_file.key,
            source_version=info.version,
            filename=inbox_file.filename,
            status=str(UploadStatus.PROCESSING),
            priority=effective.priority,
            dupe_days=effective.dupe_days,
            expire_days=effective.expire_days,
            warnings=[],
            created_at=now,
            sidecar_key=sidecar_key,
        )
        # A second runner of the same file version (CLI and sensor) gets the same row.
        .on_conflict_do_nothing(index_elements=["campaign_id", "source_key", "source_version"])
    )
    registered = find_upload(conn, campaign.id, inbox_file.key, info.version)
    assert registered is not None  # inserted just now, or by the other runner
    return registered


def reject_upload(conn: sa.Connection, upload_id: int, error: str, now: datetime) -> None:
    """Mark the upload refused, with the sentence that says why, and drop its staging rows."""
    conn.execute(sa.delete(t.upload_rows).where(t.upload_rows.c.upload_id == upload_id))
    conn.execute(
        sa.update(t.prospect_lists)
        .where(t.prospect_lists.c.id == upload_id)
        .values(status=str(UploadStatus.REJECTED), error=error, completed_at=now)
    )


def record_layout(conn: sa.Connection, upload_id: int, layout: csvfile.Layout) -> None:
    """Store how the file is read, so later stages need not scan it again."""
    conn.execute(
        sa.update(t.prospect_lists)
        .where(t.prospect_lists.c.id == upload_id)
        .values(file_format=layout.as_json())
    )


def recorded_layout(conn: sa.Connection, upload_id: int) -> csvfile.Layout | None:
    """How the file is read, as `record_layout` stored it (None before that)."""
    stored = conn.execute(
        sa.select(t.prospect_lists.c.file_format).where(t.prospect_lists.c.id == upload_id)
    ).scalar_one_or_none()
    return csvfile.Layout.from_json(stored) if stored else None


def summary(conn: sa.Connection, upload_id: int) -> Summary:
    """The upload's recorded accounting and outcome."""
    row = conn.execute(sa.select(t.prospect_lists).where(t.prospect_lists.c.id == upload_id)).one()
    return Summary(
        upload_id=row.id,
        status=row.status,
        rows=row.rows,
        loaded=row.loaded,
        duplicates=row.duplicates,
        invalid=row.invalid,
        dnc=row.dnc,
        warnings=list(row.warnings or []),
        rejects_file=row.rejects_file,
        error=row.error,
        archived_key=row.archived_key,
    )


def set_rejects_file(conn: sa.Connection, upload_id: int, key: str | None) -> None:
    conn.execute(
        sa.update(t.prospect_lists).where(t.prospect_lists.c.id == upload_id).values(rejects_file=key)
    )


def set_archived_key(conn: sa.Connection, upload_id: int, key: str) -> None:
    conn.execute(
        sa.update(t.prospect_lists).where(t.prospect_lists.c.id == upload_id).values(archived_key=key)
    )
