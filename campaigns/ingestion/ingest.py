"""Loading one prospect list: register → stage (validate) → dedupe → DNC scrub → load.

Each stage is one function the matching Dagster asset calls, working on the
staging table `upload_rows` keyed by upload and row number, so no DataFrame is
passed between stages and every step after staging is set-based SQL. Every
stage is idempotent: re-running an upload never loads a row twice.

Accounting (DESIGN.md §4): `rows == loaded + duplicates + invalid + dnc` for
every upload; `accounting_holds` checks it against the staging table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import BinaryIO

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from campaigns.core import schema as t
from campaigns.core.db import insert_for
from campaigns.core.errors import DialerError, NotFound
from campaigns.core.lifecycle import ProspectStatus, RowOutcome, UploadStatus
from campaigns.core.types import UTCDateTime
from campaigns.ingestion import csvfile, validation
from campaigns.ingestion.bucket import ObjectInfo
from campaigns.ingestion.inbox import InboxFile, UploadOptions
from campaigns.ingestion.staging import (
    STAGING_COLUMNS,
    as_frame,
    normalize_batch,
    staging_csv,
)
from campaigns.ingestion.staging import records as staging_records

Opener = Callable[[], BinaryIO]


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


@dataclass(frozen=True)
class Upload:
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


class StagingIncomplete(DialerError):
    """The staging table does not hold the whole file (a crash or a partial re-run)."""


def campaign_info(conn: sa.Connection, workspace: str, slug: str) -> CampaignInfo:
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


def known_versions(conn: sa.Connection, source_keys: list[str]) -> dict[tuple[str, str], str]:
    """(key, version) pairs already registered as uploads → what the sensor should do with them.

    "file-away" when the upload loaded but its file is still in the inbox (the
    run died after the load committed), else "done".
    """
    if not source_keys:
        return {}
    pl = t.prospect_lists
    rows = conn.execute(
        sa.select(pl.c.source_key, pl.c.source_version, pl.c.status, pl.c.archived_key).where(
            pl.c.source_key.in_(source_keys)
        )
    )
    return {
        (r.source_key, r.source_version): (
            "file-away" if r.status == UploadStatus.LOADED and r.archived_key is None else "done"
        )
        for r in rows
    }


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
    return find_upload(conn, campaign.id, inbox_file.key, info.version)


def reject_upload(conn: sa.Connection, upload_id: int, error: str, now: datetime) -> None:
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
    stored = conn.execute(
        sa.select(t.prospect_lists.c.file_format).where(t.prospect_lists.c.id == upload_id)
    ).scalar_one_or_none()
    return csvfile.Layout.from_json(stored) if stored else None


# --- staging -----------------------------------------------------------------

_progress_hooks: list[Callable[[int, float], None]] = []


class progress_hook:
    """Context manager: call `hook(rows, share_read)` after each staged batch (the CLI's progress bar)."""

    def __init__(self, hook: Callable[[int, float], None]) -> None:
        self.hook = hook

    def __enter__(self):
        _progress_hooks.append(self.hook)
        return self

    def __exit__(self, *exc) -> None:
        _progress_hooks.remove(self.hook)


def report_progress(rows: int, share_read: float) -> None:
    for hook in list(_progress_hooks):
        hook(rows, share_read)



def _write_staging(conn: sa.Connection, staged) -> None:
    """Bulk-write a batch: COPY on PostgreSQL, one executemany on SQLite."""
    columns = ", ".join(STAGING_COLUMNS)
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()
        # Staging is re-created from the file on any re-run, so its commits need not wait for disk.
        cursor.execute("SET LOCAL synchronous_commit TO OFF")
        # The batch goes as one CSV payload written by Arrow in C, not row by row from
        # Python: this thread then holds the GIL only briefly while the next batch is
        # normalised. Every value is quoted and NULL is an unquoted empty field.
        with cursor.copy(f"COPY upload_rows ({columns}) FROM STDIN WITH (FORMAT csv, ENCODING 'UTF8')") as copy:
            copy.write(staging_csv(staged))
        return
    placeholders = ", ".join("?" for _ in STAGING_COLUMNS)
    conn.exec_driver_sql(
        f"INSERT INTO upload_rows ({columns}) VALUES ({placeholders})", staging_records(staged)
    )


def stage_rows(
    engine: sa.Engine,
    upload: Upload,
    campaign: CampaignInfo,
    opener: Opener,
    name: str,
    layout: csvfile.Layout,
    *,
    batch_rows: int | None = None,
    on_batch: Callable[[int, float], None] | None = None,
) -> dict[str, int]:
    """Read the file in batches, normalise each row and write it to the staging table.

    Starts clean (a re-run replaces the upload's staging rows). Each batch is
    its own transaction, so the database never holds a long write lock, and
    is written by a second thread while the next batch is normalised (the
    database driver releases the GIL while the server works). Each batch is
    checked against the staging contract (`validation.StagedRows`) before it
    is written. Returns counts: rows, valid, invalid, and the contract's
    failures by check under "schema_failures".
    """
    from concurrent.futures import ThreadPoolExecutor

    with engine.begin() as conn:
        conn.execute(sa.delete(t.upload_rows).where(t.upload_rows.c.upload_id == upload.id))
        # The new staging rows carry no dedupe yet: the load must not trust an earlier one.
        conn.execute(
            sa.update(t.prospect_lists)
            .where(t.prospect_lists.c.id == upload.id)
            .values(deduped_at_loads=None)
        )
    counts: dict = {"rows": 0, "valid": 0, "invalid": 0, "schema_failures": {}}

    def write(staged) -> None:
        with engine.begin() as conn:
            _write_staging(conn, staged)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="staging-writer") as writer:
        pending = None
        for batch in csvfile.read_batches(opener, name, layout, batch_rows or csvfile.BATCH_ROWS):
            staged = normalize_batch(batch, campaign.locale, upload.id)
            for check, failed in validation.failure_counts(as_frame(staged, validation.CONTRACT_COLUMNS)).items():
                counts["schema_failures"][check] = counts["schema_failures"].get(check, 0) + failed
            if pending is not None:
                pending.result()  # one batch in flight at most: memory stays bounded
            pending = writer.submit(write, staged)
            invalid = int((staged["outcome"] == str(RowOutcome.INVALID)).sum())
            counts["rows"] += len(batch)
            counts["invalid"] += invalid
            counts["valid"] += len(batch) - invalid
            if on_batch:
                on_batch(counts["rows"], batch.progress)
        if pending is not None:
            pending.result()
    with engine.begin() as conn:
        conn.execute(
            sa.update(t.prospect_lists)
            .where(t.prospect_lists.c.id == upload.id)
            .values(rows=counts["rows"], invalid=counts["invalid"])
        )
        if conn.dialect.name == "postgresql":
            # Fresh statistics, so dedupe and the DNC scrub are planned for a million
            # staged rows rather than for what autovacuum last saw (ANALYZE reads a sample).
            conn.exec_driver_sql("ANALYZE upload_rows")
    return counts


def staged_frames(engine: sa.Engine, upload_id: int, batch_rows: int = csvfile.BATCH_ROWS) -> Iterator:
    """The staging rows of an upload, in batches of DataFrames (for checks and tests)."""
    import pandas as pd

    last = 0
    columns = [t.upload_rows.c[c] for c in STAGING_COLUMNS]
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(*columns)
                .where(t.upload_rows.c.upload_id == upload_id, t.upload_rows.c.row_number > last)
                .order_by(t.upload_rows.c.row_number)
                .limit(batch_rows)
            ).tuples().all()
        if not rows:
            return
        frame = pd.DataFrame.from_records(rows, columns=list(STAGING_COLUMNS))
        last = int(frame["row_number"].iloc[-1])
        yield frame


# --- dedupe and DNC ----------------------------------------------------------

_LIVE = (str(RowOutcome.VALID), str(RowOutcome.DNC))

# Dedupe and DNC scrub: find the rows with a read-only query, which PostgreSQL may
# run on parallel workers (a data-modifying statement never does), then update
# those rows by row number. work_mem lets the hash joins and aggregates over a
# million staged rows stay in memory, for this transaction only.
BULK_WORK_MEM = "128MB"


def _bulk_session(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL work_mem = '{BULK_WORK_MEM}'")


def _update_rows(conn: sa.Connection, upload_id: int, rows: list[dict]) -> int:
    """Set per-row values on an upload's staging rows; every dict has `row_number` and the same keys."""
    if not rows:
        return 0
    u = t.upload_rows
    keys = [k for k in rows[0] if k != "row_number"]
    if not all(k in u.c for k in keys):  # column names, never data, go into the SQL
        raise ValueError(f"not staging columns: {keys}")
    if conn.dialect.name == "postgresql":
        def array_of(column: str) -> str:
            kind = u.c[column].type
            return "boolean" if isinstance(kind, sa.Boolean) else "integer" if isinstance(kind, sa.Integer) else "text"

        arrays = ", ".join(f"CAST(:{c} AS {array_of(c)}[])" for c in ["row_number", *keys])
        sets = ", ".join(f"{c} = m.{c}" for c in keys)
        result = conn.execute(
            sa.text(
                f"UPDATE upload_rows AS u SET {sets} "
                f"FROM unnest({arrays}) AS m(row_number, {', '.join(keys)}) "
                "WHERE u.upload_id = :upload_id AND u.row_number = m.row_number"
            ),
            {"upload_id": upload_id, **{c: [r[c] for r in rows] for c in ["row_number", *keys]}},
        )
        return result.rowcount
    # SQLite: one executemany (bind names must differ from the column names).
    conn.execute(
        sa.update(u)
        .where(u.c.upload_id == upload_id, u.c.row_number == sa.bindparam("b_row_number"))
        .values({k: sa.bindparam(f"b_{k}") for k in keys}),
        [{f"b_{k}": v for k, v in r.items()} for r in rows],
    )
    return len(rows)


def mark_duplicates_within(conn: sa.Connection, upload_id: int) -> int:
    """Later occurrences of a number in the same file are duplicates of the first."""
    _bulk_session(conn)
    u = t.upload_rows
    live = (
        sa.select(u.c.row_number, u.c.phone_e164)
        .where(u.c.upload_id == upload_id, u.c.outcome.in_(_LIVE))
        .subquery("live")
    )
    firsts = (
        sa.select(live.c.phone_e164, sa.func.min(live.c.row_number).label("first_row"))
        .group_by(live.c.phone_e164)
        .having(sa.func.count() > 1)
        .subquery("firsts")
    )
    found = conn.execute(
        sa.select(live.c.row_number, firsts.c.first_row)
        .join(firsts, firsts.c.phone_e164 == live.c.phone_e164)
        .where(live.c.row_number > firsts.c.first_row)
    ).all()
    return _update_rows(
        conn,
        upload_id,
        [
            {
                "row_number": row,
                "outcome": str(RowOutcome.DUPLICATE),
                "duplicate_of": f"row {first}",
                "reason": f"duplicate of row {first} in this file",
            }
            for row, first in found
        ],
    )


def mark_duplicates_across(conn: sa.Connection, upload: Upload, campaign_id: int, now: datetime) -> int:
    """Numbers loaded into the campaign within the upload's dupe days are duplicates (-1 disables).

    Records the campaign's load count as read *before* the dedupe query, so a
    load that commits in between makes `load_prospects` repeat this check.
    """
    if upload.dupe_days < 0:
        return 0
    _bulk_session(conn)
    u, p = t.upload_rows, t.prospects
    loads = conn.execute(
        sa.select(t.campaigns.c.list_loads).where(t.campaigns.c.id == campaign_id)
    ).scalar_one()
    cutoff = now - timedelta(days=upload.dupe_days)
    earlier = (
        sa.select(
            p.c.phone_e164,
            sa.func.min(p.c.id).label("prospect_id"),
            sa.func.min(p.c.list_id).label("list_id"),
        )
        .where(
            p.c.campaign_id == campaign_id,
            p.c.list_id != upload.id,
            p.c.loaded_at >= sa.literal(cutoff, UTCDateTime),
            p.c.phone_e164.in_(
                sa.select(u.c.phone_e164).where(u.c.upload_id == upload.id, u.c.outcome.in_(_LIVE))
            ),
        )
        .group_by(p.c.phone_e164)
        .subquery("earlier")
    )
    found = conn.execute(
        sa.select(u.c.row_number, earlier.c.prospect_id, earlier.c.list_id)
        .join(earlier, earlier.c.phone_e164 == u.c.phone_e164)
        .where(u.c.upload_id == upload.id, u.c.outcome.in_(_LIVE))
    ).all()
    flagged = _update_rows(
        conn,
        upload.id,
        [
            {
                "row_number": row,
                "outcome": str(RowOutcome.DUPLICATE),
                "duplicate_of": f"prospect {prospect}",
                "reason": f"loaded into the campaign within {upload.dupe_days} days "
                f"(upload {list_id}, prospect {prospect})",
            }
            for row, prospect, list_id in found
        ],
    )
    conn.execute(
        sa.update(t.prospect_lists)
        .where(t.prospect_lists.c.id == upload.id)
        .values(deduped_at_loads=loads)
    )
    return flagged


def mark_dnc(conn: sa.Connection, upload: Upload, campaign: CampaignInfo) -> tuple[int, int]:
    """Flag numbers on any of the campaign's DNC lists; returns (matched, flagged as DNC).

    With a DNC disposition, matches are loaded with it (never dialed, counted
    as dnc); without one they load as normal and the summary warns.
    """
    _bulk_session(conn)
    u, d, link = t.upload_rows, t.dnc_numbers, t.campaign_dnc_lists
    # A re-run starts from the deduplicated rows: undo an earlier scrub's flags (one pass).
    was_dnc = u.c.outcome == str(RowOutcome.DNC)
    conn.execute(
        sa.update(u)
        .where(u.c.upload_id == upload.id, sa.or_(u.c.on_dnc.is_(True), was_dnc))
        .values(
            on_dnc=False,
            outcome=sa.case((was_dnc, str(RowOutcome.VALID)), else_=u.c.outcome),
            reason=sa.case((was_dnc, sa.null()), else_=u.c.reason),
        )
    )
    on_list = (
        sa.select(sa.literal(1))
        .select_from(d.join(link, link.c.dnc_list_id == d.c.dnc_list_id))
        .where(link.c.campaign_id == campaign.id, d.c.phone_e164 == u.c.phone_e164)
        .exists()
    )
    found = conn.execute(
        sa.select(u.c.row_number).where(u.c.upload_id == upload.id, u.c.outcome.in_(_LIVE), on_list)
    ).scalars().all()
    if campaign.dnc_disposition:
        values = {
            "on_dnc": True,
            "outcome": str(RowOutcome.DNC),
            "reason": f"on a DNC list; loaded with disposition {campaign.dnc_disposition!r}",
        }
    else:
        values = {"on_dnc": True}
    matched = _update_rows(conn, upload.id, [{"row_number": row, **values} for row in found])
    return matched, (matched if campaign.dnc_disposition else 0)


def outcome_counts(conn: sa.Connection, upload_id: int) -> dict[str, int]:
    counts = {str(o): 0 for o in RowOutcome}
    for outcome, count in conn.execute(
        sa.select(t.upload_rows.c.outcome, sa.func.count())
        .where(t.upload_rows.c.upload_id == upload_id)
        .group_by(t.upload_rows.c.outcome)
    ):
        counts[outcome] = count
    return counts


def dnc_matches(conn: sa.Connection, upload_id: int) -> int:
    return conn.execute(
        sa.select(sa.func.count())
        .select_from(t.upload_rows)
        .where(t.upload_rows.c.upload_id == upload_id, t.upload_rows.c.on_dnc.is_(True))
    ).scalar_one()


# --- load --------------------------------------------------------------------


def _lock_campaign(conn: sa.Connection, campaign_id: int) -> int:
    """Serialise loads into one campaign, so two uploads cannot both load a number.

    PostgreSQL: a row lock on the campaign, held to commit. SQLite: every
    transaction already began with BEGIN IMMEDIATE, which admits one writer.
    Returns the campaign's `list_loads` as of the lock.
    """
    query = sa.select(t.campaigns.c.list_loads).where(t.campaigns.c.id == campaign_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).scalar_one()


def load_prospects(engine: sa.Engine, upload: Upload, campaign: CampaignInfo, now: datetime) -> Summary:
    """Insert the upload's valid and DNC-flagged rows as prospects, in one transaction."""
    u, p = t.upload_rows, t.prospects
    with engine.begin() as conn:
        # Lock first, then read the status: a second runner of the same upload (CLI and
        # sensor) waits here and then sees the first one's load committed.
        loads = _lock_campaign(conn, campaign.id)
        current = conn.execute(
            sa.select(t.prospect_lists.c.status, t.prospect_lists.c.rows, t.prospect_lists.c.deduped_at_loads)
            .where(t.prospect_lists.c.id == upload.id)
        ).one()
        if current.status == UploadStatus.LOADED:
            return summary(conn, upload.id)
        if current.status != UploadStatus.PROCESSING:
            raise NotFound(f"{upload.source_key}: upload {upload.id} was {current.status}; it cannot be loaded.")
        counts = outcome_counts(conn, upload.id)
        staged = sum(counts.values())
        recorded_rows = current.rows
        if staged == 0 or staged != recorded_rows:
            # Staging is UNLOGGED and rebuilt on re-runs: never load from a partial copy.
            raise StagingIncomplete(
                f"{upload.source_key}: {staged:,} of {recorded_rows:,} rows are staged; "
                "re-run the whole upload (validated_rows onwards) to stage the file again."
            )
        # Another upload may have loaded the same numbers since this one was deduplicated:
        # if any load came between, dedupe again (under the lock, nothing else can load now).
        if current.deduped_at_loads != loads and mark_duplicates_across(conn, upload, campaign.id, now):
            counts = outcome_counts(conn, upload.id)
        custom = u.c.custom_fields
        if conn.dialect.name == "postgresql":
            custom = sa.cast(sa.func.coalesce(custom, "{}"), postgresql.JSONB)
        else:
            custom = sa.func.coalesce(custom, "{}")
        is_dnc = u.c.outcome == str(RowOutcome.DNC)
        source = sa.select(
            sa.literal(campaign.id),
            sa.literal(upload.id),
            u.c.row_number,
            u.c.phone_e164,
            u.c.phone_ext,
            u.c.first_name,
            u.c.last_name,
            u.c.address_state,
            u.c.zip_code,
            u.c.area_code_state,
            u.c.candidate_zones,
            u.c.zone_group,
            sa.literal(upload.priority),
            sa.case((is_dnc, str(ProspectStatus.DNC)), else_=str(ProspectStatus.READY)),
            sa.case((is_dnc, sa.literal(campaign.dnc_disposition)), else_=sa.null()),
            sa.literal(0),
            sa.literal(now, UTCDateTime),
            sa.literal(now + timedelta(days=upload.expire_days), UTCDateTime),
            sa.literal(now, UTCDateTime),
            sa.literal(now, UTCDateTime),
            custom,
        ).where(u.c.upload_id == upload.id, u.c.outcome.in_(_LIVE))
        # A plain INSERT: the status check above, under the lock and in this transaction,
        # already rules out a second load, and (list_id, source_row) stays unique, so an
        # impossible repeat fails loudly instead of being skipped (ON CONFLICT slows every row).
        insert = sa.insert(p).from_select(
            [
                "campaign_id", "list_id", "source_row", "phone_e164", "phone_ext", "first_name",
                "last_name", "address_state", "zip_code", "area_code_state", "candidate_zones",
                "zone_group", "priority", "status", "disposition", "attempts", "next_dial_at",
                "expires_at", "loaded_at", "updated_at", "custom_fields",
            ],
            source,
        )
        conn.execute(insert)
        conn.execute(
            sa.update(t.campaigns)
            .where(t.campaigns.c.id == campaign.id)
            .values(list_loads=t.campaigns.c.list_loads + 1)
        )
        # Once the upload is marked loaded (below, same transaction), its valid rows are its prospects.
        warnings = []
        if not campaign.dnc_disposition:
            matched = dnc_matches(conn, upload.id)
            if matched:
                warnings.append(
                    f"{matched} number(s) are on the campaign's DNC lists but the campaign has no "
                    "DNC disposition, so they were loaded as normal prospects; the dialer still "
                    "skips them while they are listed. Set dnc.dnc_disposition to flag them at upload."
                )
        conn.execute(
            sa.update(t.prospect_lists)
            .where(t.prospect_lists.c.id == upload.id)
            .values(
                status=str(UploadStatus.LOADED),
                rows=sum(counts.values()),
                loaded=counts[RowOutcome.VALID],
                duplicates=counts[RowOutcome.DUPLICATE],
                invalid=counts[RowOutcome.INVALID],
                dnc=counts[RowOutcome.DNC],
                warnings=warnings,
                completed_at=now,
            )
        )
        return summary(conn, upload.id)


def summary(conn: sa.Connection, upload_id: int) -> Summary:
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


def accounting_holds(conn: sa.Connection, upload_id: int) -> tuple[bool, Summary, dict[str, int]]:
    """The recorded summary balances, and agrees with the staging rows and the prospects table."""
    recorded = summary(conn, upload_id)
    staged = outcome_counts(conn, upload_id)
    prospects = conn.execute(
        sa.select(sa.func.count()).select_from(t.prospects).where(t.prospects.c.list_id == upload_id)
    ).scalar_one()
    detail = {**staged, "prospects": prospects}
    if sum(staged.values()) == 0 and recorded.status == UploadStatus.LOADED:
        # Staging rows are purged once the file is filed away; the totals remain.
        return recorded.balanced and prospects == recorded.loaded + recorded.dnc, recorded, detail
    ok = (
        recorded.balanced
        and recorded.rows == sum(staged.values())
        and recorded.loaded == staged[RowOutcome.VALID]
        and recorded.duplicates == staged[RowOutcome.DUPLICATE]
        and recorded.invalid == staged[RowOutcome.INVALID]
        and recorded.dnc == staged[RowOutcome.DNC]
        and prospects == recorded.loaded + recorded.dnc
    )
    return ok, recorded, detail


# --- rejects file --------------------------------------------------------------


def rejected_rows(conn: sa.Connection, upload_id: int) -> dict[int, str]:
    u = t.upload_rows
    rows = conn.execute(
        sa.select(u.c.row_number, u.c.reason).where(
            u.c.upload_id == upload_id,
            u.c.outcome.in_((str(RowOutcome.INVALID), str(RowOutcome.DUPLICATE))),
        )
    )
    return {r.row_number: r.reason or "rejected" for r in rows}


def write_rejects(
    opener: Opener, name: str, layout: csvfile.Layout, reasons: dict[int, str]
) -> bytes:
    """The rejects file: the rejected rows' original columns, plus `row` and `reason`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = list(layout.header)
    row_col = "row" if "row" not in header else "dialer_row"
    reason_col = "reason" if "reason" not in header else "dialer_reason"
    writer.writerow([*header, row_col, reason_col])
    for number, cells in csvfile.iter_rows(opener, name, layout):
        reason = reasons.get(number)
        if reason is not None:
            writer.writerow([*cells, number, reason])
    return out.getvalue().encode("utf-8")


def set_rejects_file(conn: sa.Connection, upload_id: int, key: str | None) -> None:
    conn.execute(
        sa.update(t.prospect_lists).where(t.prospect_lists.c.id == upload_id).values(rejects_file=key)
    )


def purge_staging(conn: sa.Connection, upload_id: int) -> int:
    """Drop a loaded upload's staging rows: prospects, counts and the rejects file hold what matters."""
    return conn.execute(sa.delete(t.upload_rows).where(t.upload_rows.c.upload_id == upload_id)).rowcount


def set_archived_key(conn: sa.Connection, upload_id: int, key: str) -> None:
    conn.execute(
        sa.update(t.prospect_lists).where(t.prospect_lists.c.id == upload_id).values(archived_key=key)
    )


__all__ = [
    "CampaignInfo",
    "Summary",
    "Upload",
    "accounting_holds",
    "campaign_info",
    "load_prospects",
    "mark_dnc",
    "mark_duplicates_across",
    "mark_duplicates_within",
    "register_upload",
    "stage_rows",
]
