"""An upload's accounting and rejects: the counts by outcome, the balance check, the rejects file.

Accounting (DESIGN.md §4): `rows == loaded + duplicates + invalid + dnc` for
every upload; `accounting_holds` checks the recorded summary against the
staging table and the prospects table. Once the file is filed away its staging
rows are purged: the prospects, the counts and the rejects file hold what matters.
"""

from __future__ import annotations

import csv
import io

import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.lifecycle import RowOutcome, UploadStatus
from campaigns.ingestion import csvfile
from campaigns.ingestion.staging_table import Opener
from campaigns.ingestion.upload_record import Summary, summary


def outcome_counts(conn: sa.Connection, upload_id: int) -> dict[str, int]:
    """The upload's staging rows counted by outcome (every outcome present, 0 if none)."""
    counts = {str(o): 0 for o in RowOutcome}
    for outcome, count in conn.execute(
        sa.select(t.upload_rows.c.outcome, sa.func.count())
        .where(t.upload_rows.c.upload_id == upload_id)
        .group_by(t.upload_rows.c.outcome)
    ):
        counts[outcome] = count
    return counts


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
    """Row number → reason, for the rows the rejects file lists (invalid and duplicate)."""
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


def purge_staging(conn: sa.Connection, upload_id: int) -> int:
    """Drop a loaded upload's staging rows: prospects, counts and the rejects file hold what matters."""
    return conn.execute(sa.delete(t.upload_rows).where(t.upload_rows.c.upload_id == upload_id)).rowcount
