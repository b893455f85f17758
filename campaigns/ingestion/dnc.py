"""Do-not-call lists: importing a file of numbers into a workspace's list.

Accepted files: one number per line (any shape the phone normaliser takes,
including the national registry's plain 10-digit lines; `#` starts a comment
line), the registry's `area code,number` pairs, or a CSV with a phone column. Numbers are stored in
E.164; importing the same file twice adds nothing.
"""

from __future__ import annotations

import builtins
import csv
import io
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import BinaryIO

import pandas as pd
import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.db import driver_connection
from campaigns.core.errors import NotFound
from campaigns.ingestion import csvfile, phones
from campaigns.setup.registry import ensure_dnc_list

BATCH = 100_000


@dataclass
class DncImport:
    workspace: str
    list: str  # the DNC list's name; `dialer dnc import --json` prints it under this key
    rows: int = 0
    added: int = 0
    already_listed: int = 0
    invalid: int = 0
    # `builtins.`: inside this class body `list` names the field above
    examples: builtins.list[str] = field(default_factory=builtins.list)

    def as_dict(self) -> dict:
        return asdict(self)


def _workspace_id(conn: sa.Connection, workspace: str) -> int:
    found = conn.execute(
        sa.select(t.workspaces.c.id).where(t.workspaces.c.name == workspace)
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(
            f"There is no workspace `{workspace}`; apply a campaign file that names it first."
        )
    return found


def _numbers(opener: Callable[[], BinaryIO], name: str):
    """Yield raw number strings from a DNC file, batch by batch."""
    with opener() as raw:
        stream = csvfile.open_binary(raw, name)
        head = stream.read(csvfile.SAMPLE_BYTES)
    if not head.strip():
        raise csvfile.FileRejected(f"{name}: is empty; expected one number per line or a CSV with a phone column.")
    if b"\x00" in head:
        raise csvfile.FileRejected(f"{name}: contains binary data, not a list of numbers.")
    encoding = "utf-8-sig" if not head or _utf8(head) else "latin-1"
    sample = head.decode(encoding, errors="replace")
    first = next((line for line in sample.splitlines() if line.strip()), "")
    delimiter = csvfile._sniff_delimiter(sample) if any(d in first for d in csvfile.DELIMITERS) else ","
    cells = next(csv.reader([first], delimiter=delimiter), [])
    normal = [csvfile._normal(c) for c in cells]
    phone_index = next(
        (normal.index(a) for a in csvfile.ALIASES["phone"] if a in normal), None
    )
    area_index = next((normal.index(a) for a in ("area_code", "areacode", "npa") if a in normal), None)
    with opener() as raw:
        text = io.TextIOWrapper(csvfile.open_binary(raw, name), encoding=encoding, newline="", errors="replace")
        lines = csvfile.BoundedLines(text, name)  # a one-line file is refused, not held whole
        reader = csv.reader(lines, delimiter=delimiter)
        batch: list[str] = []
        for i, row in enumerate(reader):
            lines.row_done()
            if phone_index is not None and i == 0:
                continue  # the header
            if not any(c.strip() for c in row) or row[0].lstrip().startswith("#"):
                continue  # blank lines and comments
            if phone_index is not None:
                value = row[phone_index] if phone_index < len(row) else ""
                digits = value.strip()
                if area_index is not None and area_index < len(row) and len(digits) == 7 and digits.isdigit():
                    value = row[area_index].strip() + digits  # registry export: AreaCode,PhoneNumber
            elif len(row) >= 2 and row[0].strip().isdigit() and len(row[0].strip()) == 3 and len(row[1].strip()) == 7:
                value = row[0].strip() + row[1].strip()  # registry format: area code, number
            else:
                value = row[0]
            batch.append(value)
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch


def _read_guarded(opener, name: str):
    """`_numbers`, with broken files turned into one sentence."""
    import zlib

    try:
        yield from _numbers(opener, name)
    except csv.Error as exc:
        raise csvfile.FileRejected(f"{name}: cannot be parsed as a list of numbers ({exc}).") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise csvfile.FileRejected(f"{name}: cannot be read ({exc}).") from None


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(data) - 4  # a character cut at the sample's end
    return True


def _insert(conn: sa.Connection, list_id: int, numbers: list[str], now: datetime, source: str) -> int:
    if not numbers:
        return 0
    if conn.dialect.name == "postgresql":
        cursor = driver_connection(conn).cursor()
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS dnc_incoming (phone_e164 varchar(20)) ON COMMIT DROP"
        )
        cursor.execute("TRUNCATE dnc_incoming")
        with cursor.copy("COPY dnc_incoming (phone_e164) FROM STDIN") as copy:
            for number in numbers:
                copy.write_row((number,))
        cursor.execute(
            "INSERT INTO dnc_numbers (dnc_list_id, phone_e164, added_at, source) "
            "SELECT DISTINCT %s, phone_e164, %s, %s FROM dnc_incoming "
            "ON CONFLICT (dnc_list_id, phone_e164) DO NOTHING",
            (list_id, now, source),
        )
        return cursor.rowcount
    before = conn.exec_driver_sql("SELECT total_changes()").scalar_one()
    conn.exec_driver_sql(
        "INSERT OR IGNORE INTO dnc_numbers (dnc_list_id, phone_e164, added_at, source) VALUES (?, ?, ?, ?)",
        [(list_id, n, now.replace(tzinfo=None), source) for n in numbers],
    )
    return conn.exec_driver_sql("SELECT total_changes()").scalar_one() - before


def import_numbers(
    engine: sa.Engine,
    workspace: str,
    list_name: str,
    opener: Callable[[], BinaryIO],
    name: str,
    now: datetime,
    *,
    create: bool = True,
) -> DncImport:
    """Add a file's numbers to the workspace's DNC list (created if missing when `create`)."""
    summary = DncImport(workspace=workspace, list=list_name)
    with engine.begin() as conn:
        workspace_id = _workspace_id(conn, workspace)
        if create:
            list_id, _ = ensure_dnc_list(conn, workspace_id, list_name, now)
        else:
            found = conn.execute(
                sa.select(t.dnc_lists.c.id).where(
                    t.dnc_lists.c.workspace_id == workspace_id, t.dnc_lists.c.name == list_name
                )
            ).scalar_one_or_none()
            if found is None:
                raise NotFound(f"There is no DNC list `{list_name}` in workspace `{workspace}`.")
            list_id = found
    for raw in _read_guarded(opener, name):
        normalized = phones.normalize_many(pd.Series(raw, dtype=object), "US")
        good = normalized["e164"].dropna().astype(str).unique().tolist()
        bad = normalized["reason"].notna()
        summary.rows += len(raw)
        summary.invalid += int(bad.sum())
        if bad.any() and len(summary.examples) < 5:
            for value, reason in zip(pd.Series(raw)[bad.to_numpy()], normalized["reason"][bad]):
                if len(summary.examples) >= 5:
                    break
                summary.examples.append(f"{value!r}: {phones.REASONS[reason]}")
        with engine.begin() as conn:
            added = _insert(conn, list_id, good, now, name[-200:])
        summary.added += added
    summary.already_listed = summary.rows - summary.invalid - summary.added
    return summary
