"""Turning raw CSV rows into staging rows: normalised phones, states, ZIPs and zones.

One batch at a time, as column arrays (no DataFrame round-trips), so a
million-row file never sits in memory whole. Every row comes out either
`valid` or `invalid` with a reason naming the column, the value and what was
wrong.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from campaigns.core.lifecycle import RowOutcome
from campaigns.core.regions import regions_for
from campaigns.ingestion import phones, zones
from campaigns.ingestion.csvfile import Batch

STAGING_COLUMNS = (
    "upload_id", "row_number", "phone_raw", "phone_e164", "phone_ext", "first_name",
    "last_name", "address_state", "zip_code", "area_code_state", "candidate_zones",
    "zone_group", "custom_fields", "outcome", "reason",
)
NAME_LIMIT = 200
RAW_LIMIT = 100

StagedBatch = dict[str, np.ndarray]


def _clip(values: list[str], limit: int) -> np.ndarray:
    return np.array([v.strip()[:limit] or None for v in values], dtype=object)


def _mapped(values: list[str], parse) -> list:
    cache: dict[str, object] = {}
    out = []
    for v in values:
        if v not in cache:
            cache[v] = parse(v)
        out.append(cache[v])
    return out


def _none_for_missing(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=object)
    missing = pd.isna(values)
    if missing.any():
        values = values.copy()
        values[missing] = None
    return values


def _custom_json(batch: Batch) -> np.ndarray:
    """Each row's custom fields as a JSON object (empty cells left out), built by pandas in C."""
    if not batch.custom_columns:
        return np.full(len(batch), None, dtype=object)
    frame = pd.DataFrame(batch.custom_columns, dtype=object).replace("", None)
    # Records are separated by "\n" (escaped inside strings); splitlines() would also split on U+2028.
    lines = frame.to_json(orient="records", lines=True, force_ascii=False).rstrip("\n").split("\n")
    empty = frame.isna().all(axis=1).to_numpy()
    out = np.array(lines, dtype=object)
    out[empty] = None
    # Dropping null members keeps the stored object to the cells the file filled in.
    has_null = np.array(['":null' in line for line in lines], dtype=bool) & ~empty
    for i in np.flatnonzero(has_null):
        out[i] = json.dumps({k: v for k, v in json.loads(out[i]).items() if v is not None}, ensure_ascii=False)
    return out


def normalize_batch(batch: Batch, locale: str, upload_id: int) -> StagedBatch:
    """One batch of raw rows → staging columns (object arrays, None for NULL)."""
    n = len(batch)
    allowed = regions_for(locale)
    phone = phones.normalize_columns(np.array(batch.phone, dtype=object), locale)
    regions = _mapped(batch.state, zones.parse_region)
    postals = _mapped(batch.zip, zones.parse_postal)

    reason = np.full(n, None, dtype=object)
    address_state = np.full(n, None, dtype=object)
    address_zone = np.full(n, None, dtype=object)
    zip_code = np.full(n, None, dtype=object)
    phone_reason = phone["reason"]
    phone_detail = phone["detail"]
    for i in range(n):
        problem = batch.problem[i]
        if problem:
            reason[i] = problem
            continue
        if phone_reason[i] is not None:
            shown = batch.phone[i].strip()[:40]
            text = phones.message_for(phone_reason[i], phone_detail[i])
            shown = shown.replace("\n", " ").replace("\r", " ")
            reason[i] = f"phone {shown!r}: {text}" if shown else f"phone: {text}"
            continue
        region = regions[i]
        if region is False or (isinstance(region, str) and region not in allowed):
            reason[i] = (
                f"state {batch.state[i].strip()!r}: not a state, province or territory of locale {locale}"
            )
            continue
        postal = postals[i]
        if postal is False:
            reason[i] = f"zip {batch.zip[i].strip()!r}: not a US ZIP or Canadian postal code"
            continue
        code, zip_region, zone = postal
        if zip_region is not None and zip_region not in allowed:
            reason[i] = f"zip {batch.zip[i].strip()!r}: in {zip_region}, outside locale {locale}"
            continue
        zip_code[i] = code
        address_state[i] = region or (zip_region if zip_region in allowed else None)
        address_zone[i] = zone if (region is None or zip_region in (None, region)) else None

    valid = np.array([r is None for r in reason], dtype=bool)
    e164 = phone["e164"].copy()
    extension = phone["extension"].copy()
    e164[~valid] = None
    extension[~valid] = None
    located = {k: np.full(n, None, dtype=object) for k in ("area_code_state", "candidate_zones", "zone_group")}
    if valid.any():
        found = zones.locate(e164[valid], address_state[valid], address_zone[valid], locale)
        address_state[valid] = found["address_state"]
        for column in located:
            located[column][valid] = found[column]
    return {
        "upload_id": np.full(n, upload_id, dtype=np.int64),
        "row_number": np.array(batch.row_numbers, dtype=np.int64),
        "phone_raw": _clip(batch.phone, RAW_LIMIT),
        "phone_e164": e164,
        "phone_ext": extension,
        "first_name": _clip(batch.first_name, NAME_LIMIT),
        "last_name": _clip(batch.last_name, NAME_LIMIT),
        "address_state": _none_for_missing(address_state),
        "zip_code": zip_code,
        "area_code_state": _none_for_missing(located["area_code_state"]),
        "candidate_zones": located["candidate_zones"],
        "zone_group": located["zone_group"],
        "custom_fields": _custom_json(batch),
        "outcome": np.where(valid, str(RowOutcome.VALID), str(RowOutcome.INVALID)).astype(object),
        "reason": reason,
    }


def as_frame(staged: StagedBatch, columns: tuple[str, ...] = STAGING_COLUMNS) -> pd.DataFrame:
    """The batch (or some of its columns) as a DataFrame of Python objects (for the pandera contract and tests)."""
    frame = pd.DataFrame({c: pd.Series(staged[c], dtype=object) for c in columns})
    return frame.astype({c: "int64" for c in ("upload_id", "row_number") if c in columns})


def staging_csv(staged: StagedBatch) -> bytes:
    """The batch as CSV for PostgreSQL's COPY (FORMAT csv), in STAGING_COLUMNS order.

    Values are all quoted, so an empty string stays empty and only a missing
    value (an unquoted empty field) is read as NULL.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.table(
        {
            c: pa.array(staged[c], type=pa.int64() if c in ("upload_id", "row_number") else pa.string())
            for c in STAGING_COLUMNS
        }
    )
    out = pa.BufferOutputStream()
    pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=False, quoting_style="all_valid"))
    return out.getvalue().to_pybytes()


def records(staged: StagedBatch) -> list[tuple]:
    """The staging rows as tuples in STAGING_COLUMNS order, missing values as None (NULL)."""
    columns = [staged[c].tolist() for c in STAGING_COLUMNS]
    return list(zip(*columns))
