"""The staging table `upload_rows`: a file's rows written into it, then updated in bulk by later stages.

Every stage after staging works on this table, keyed by upload and row number,
with set-based SQL: no DataFrame is passed between stages, and re-running a
stage never loads a row twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import BinaryIO

import numpy as np
import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.db import driver_connection
from campaigns.core.lifecycle import RowOutcome
from campaigns.ingestion import csvfile, validation
from campaigns.ingestion.staging import (
    STAGING_COLUMNS,
    as_frame,
    normalize_batch,
    staging_csv,
)
from campaigns.ingestion.staging import records as staging_records
from campaigns.ingestion.upload_record import CampaignInfo, Upload

Opener = Callable[[], BinaryIO]

# Progress while staging: called with (rows staged so far, share of the file read, 0–1).
OnBatch = Callable[[int, float], None]


def _write_staging(conn: sa.Connection, staged) -> None:
    """Bulk-write a batch: COPY on PostgreSQL, one executemany on SQLite."""
    columns = ", ".join(STAGING_COLUMNS)
    if conn.dialect.name == "postgresql":
        cursor = driver_connection(conn).cursor()
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
    on_batch: OnBatch | None = None,
) -> dict[str, int]:
    """Read the file in batches, normalise each row and write it to the staging table.

    Starts clean (a re-run replaces the upload's staging rows). Each batch is
    its own transaction, so the database never holds a long write lock, and
    is written by a second thread while the next batch is normalised (the
    database driver releases the GIL while the server works). Each batch is
    checked against the staging contract (`validation.StagedRows`) before it
    is written. After each batch `on_batch(rows so far, share of the file
    read)` is called, if given (a progress bar, a log line). Returns counts:
    rows, valid, invalid, and the contract's failures by check under
    "schema_failures". A file past the campaign's limits is refused
    (`csvfile.FileRejected`) as soon as it passes them; the caller refuses
    the upload, which drops the rows staged so far.
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
        batches = csvfile.read_batches(opener, name, layout, batch_rows or csvfile.BATCH_ROWS, campaign.limits)
        for batch in batches:
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


# --- bulk updates (dedupe and the DNC scrub) ---------------------------------

# The outcomes of rows that become prospects (a DNC-flagged row loads with its disposition).
LIVE = (str(RowOutcome.VALID), str(RowOutcome.DNC))

# Dedupe and DNC scrub: find the rows with a read-only query, which PostgreSQL may
# run on parallel workers (a data-modifying statement never does), then update
# those rows by row number. work_mem lets the hash joins and aggregates over a
# million staged rows stay in memory, for this transaction only.
BULK_WORK_MEM = "128MB"


def bulk_session(conn: sa.Connection) -> None:
    """Give this transaction the memory a bulk query over the staging table needs (PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL work_mem = '{BULK_WORK_MEM}'")


# Rows found by a bulk query are read this many at a time into a compact array, and
# updated this many at a time: a file whose million rows all repeat one number costs
# tens of MB, not the GB a list of rows and their dicts would.
FETCH_ROWS = 10_000
UPDATE_ROWS = 100_000


def int_rows(conn: sa.Connection, query: sa.Select) -> np.ndarray:
    """The query's rows, all integer columns, as one int64 array (8 bytes a value), read in parts."""
    width = len(query.selected_columns)
    # Plain tuples: numpy would probe each Row for array attributes, a slow lookup per row.
    parts = [
        np.array(list(map(tuple, part)), dtype=np.int64).reshape(-1, width)
        for part in conn.execute(query).partitions(FETCH_ROWS)
    ]
    return np.concatenate(parts) if parts else np.empty((0, width), dtype=np.int64)


def each_row(found: np.ndarray) -> Iterator[list[int]]:
    """The array's rows as lists of Python ints, converted a part at a time."""
    for start in range(0, len(found), UPDATE_ROWS):
        yield from found[start : start + UPDATE_ROWS].tolist()


def update_rows(conn: sa.Connection, upload_id: int, rows: Iterable[dict]) -> int:
    """Set per-row values on an upload's staging rows, UPDATE_ROWS at a time; every dict has
    `row_number` and the same keys. Returns how many rows were updated."""
    pending = iter(rows)
    updated = 0
    while chunk := list(islice(pending, UPDATE_ROWS)):
        updated += _update_chunk(conn, upload_id, chunk)
    return updated


def _update_chunk(conn: sa.Connection, upload_id: int, rows: list[dict]) -> int:
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
