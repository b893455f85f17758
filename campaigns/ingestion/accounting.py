"""An upload's accounting and rejects: the counts by outcome, the balance check, the rejects file.

Accounting (DESIGN.md §4): `rows == loaded + duplicates + invalid + dnc` for
every upload; `accounting_holds` checks the recorded summary against the
staging table and the prospects table. Once the file is filed away its staging
rows are purged: the prospects, the counts and the rejects file hold what matters.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import BinaryIO

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

# Rows fetched at a time when the rejected rows are read in order: a million rejects are
# streamed into the rejects file, never held.
STREAM_ROWS = 10_000


def _rejected(upload_id: int) -> sa.Select:
    u = t.upload_rows
    return sa.select(u.c.row_number, u.c.reason).where(
        u.c.upload_id == upload_id,
        u.c.outcome.in_((str(RowOutcome.INVALID), str(RowOutcome.DUPLICATE))),
    )


def has_rejected_rows(conn: sa.Connection, upload_id: int) -> bool:
    """Whether any row is listed in the rejects file (invalid or duplicate)."""
    return conn.execute(sa.select(_rejected(upload_id).exists())).scalar_one()


def rejected_rows(conn: sa.Connection, upload_id: int) -> Iterator[tuple[int, str]]:
    """(row number, reason) for the rows the rejects file lists (invalid and duplicate), in row order,
    streamed from the database."""
    result = conn.execution_options(yield_per=STREAM_ROWS).execute(
        _rejected(upload_id).order_by(t.upload_rows.c.row_number)
    )
    for number, reason in result:
        yield number, reason or "rejected"


def reason_counts(conn: sa.Connection, upload_id: int, top: int = 20) -> dict[str, int]:
    """The most common reasons rows were rejected (the text after the value they quote), most common first."""
    counts: Counter[str] = Counter()
    result = conn.execution_options(yield_per=STREAM_ROWS).execute(_rejected(upload_id))
    for _, reason in result:
        counts[(reason or "rejected").split(":")[-1].strip()] += 1
    return dict(counts.most_common(top))


def write_rejects(
    opener: Opener,
    name: str,
    layout: csvfile.Layout,
    reasons: Iterable[tuple[int, str]],
    out: BinaryIO,
) -> None:
    """Write the rejects file to `out`: the rejected rows' original columns, plus `row` and `reason`.

    `reasons` come in row order, so the file and the reasons are read side by
    side and neither is held whole.
    """
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    writer = csv.writer(text, lineterminator="\r\n")
    header = list(layout.header)
    row_col = "row" if "row" not in header else "dialer_row"
    reason_col = "reason" if "reason" not in header else "dialer_reason"
    writer.writerow([*header, row_col, reason_col])
    pending = iter(reasons)
    wanted = next(pending, None)
    if wanted is not None:
        for number, cells in csvfile.iter_rows(opener, name, layout):
            while wanted is not None and wanted[0] < number:
                wanted = next(pending, None)
            if wanted is None:
                break
            if wanted[0] == number:
                writer.writerow([*cells, number, wanted[1]])
                wanted = next(pending, None)
    text.flush()
    text.detach()  # the caller closes `out`


def purge_staging(conn: sa.Connection, upload_id: int) -> int:
    """Drop a loaded upload's staging rows: prospects, counts and the rejects file hold what matters."""
    return conn.execute(sa.delete(t.upload_rows).where(t.upload_rows.c.upload_id == upload_id)).rowcount
