"""Turning raw CSV rows into staging rows: normalised phones, states, ZIPs and zones.

One batch at a time (DataFrame in, DataFrame out), so a million-row file never
sits in memory whole. Every row comes out either `valid` or `invalid` with a
reason naming the column, the value and what was wrong.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from campaigns import phones, zones
from campaigns.csvfile import Batch
from campaigns.lifecycle import RowOutcome
from campaigns.regions import regions_for

STAGING_COLUMNS = (
    "upload_id", "row_number", "phone_raw", "phone_e164", "phone_ext", "first_name",
    "last_name", "address_state", "zip_code", "area_code_state", "candidate_zones",
    "zone_group", "custom_fields", "outcome", "reason",
)
NAME_LIMIT = 200
RAW_LIMIT = 100


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


def _custom_json(batch: Batch) -> np.ndarray:
    """Each row's custom fields as a JSON object (empty cells left out), built by pandas in C."""
    if not batch.custom_columns:
        return np.full(len(batch), None, dtype=object)
    frame = pd.DataFrame(batch.custom_columns, dtype=object).replace("", None)
    lines = frame.to_json(orient="records", lines=True, force_ascii=False).splitlines()
    empty = frame.isna().all(axis=1).to_numpy()
    out = np.array(lines, dtype=object)
    out[empty] = None
    # Dropping null members keeps the stored object to the cells the file filled in.
    has_null = np.array(['":null' in line for line in lines], dtype=bool) & ~empty
    for i in np.flatnonzero(has_null):
        out[i] = json.dumps({k: v for k, v in json.loads(out[i]).items() if v is not None}, ensure_ascii=False)
    return out


def normalize_batch(batch: Batch, locale: str, upload_id: int) -> pd.DataFrame:
    n = len(batch)
    allowed = regions_for(locale)
    phone = phones.normalize_many(pd.Series(batch.phone, dtype=object), locale)
    regions = _mapped(batch.state, zones.parse_region)
    postals = _mapped(batch.zip, zones.parse_postal)

    reason = np.full(n, None, dtype=object)
    address_state = np.full(n, None, dtype=object)
    address_zone = np.full(n, None, dtype=object)
    zip_code = np.full(n, None, dtype=object)
    phone_reason = phone["reason"].to_numpy(dtype=object)
    phone_detail = phone["detail"].to_numpy(dtype=object)
    for i in range(n):
        problem = batch.problem[i]
        if problem:
            reason[i] = problem
            continue
        if isinstance(phone_reason[i], str):
            shown = batch.phone[i].strip()[:40]
            text = phones.message_for(phone_reason[i], phone_detail[i] if isinstance(phone_detail[i], str) else None)
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
        zip_code[i] = code
        address_state[i] = region or (zip_region if zip_region in allowed else None)
        address_zone[i] = zone if (region is None or zip_region in (None, region)) else None

    valid = np.array([r is None for r in reason], dtype=bool)
    frame = pd.DataFrame(
        {
            "upload_id": np.full(n, upload_id, dtype=np.int64),
            "row_number": np.array(batch.row_numbers, dtype=np.int64),
            "phone_raw": _clip(batch.phone, RAW_LIMIT),
            "phone_e164": phone["e164"].to_numpy(dtype=object),
            "phone_ext": phone["extension"].to_numpy(dtype=object),
            "first_name": _clip(batch.first_name, NAME_LIMIT),
            "last_name": _clip(batch.last_name, NAME_LIMIT),
            "address_state": address_state,
            "address_zone": address_zone,
            "zip_code": zip_code,
            "custom_fields": _custom_json(batch),
            "outcome": np.where(valid, str(RowOutcome.VALID), str(RowOutcome.INVALID)).astype(object),
            "reason": reason,
        }
    )
    for column in ("phone_e164", "phone_ext"):
        values = frame[column].to_numpy(dtype=object).copy()
        values[~valid] = None
        values[pd.isna(values)] = None
        frame[column] = pd.Series(values, dtype=object, index=frame.index)
    with_zones = np.full(n, None, dtype=object), np.full(n, None, dtype=object), np.full(n, None, dtype=object)
    if valid.any():
        located = zones.zones_for_frame(frame.loc[valid, ["phone_e164", "address_state", "address_zone"]], locale)
        for column, target in zip(("area_code_state", "candidate_zones", "zone_group"), with_zones):
            target[valid] = located[column].to_numpy(dtype=object)
        address_state[valid] = located["address_state"].to_numpy(dtype=object)
        frame["address_state"] = address_state
    frame["area_code_state"], frame["candidate_zones"], frame["zone_group"] = with_zones
    return frame[list(STAGING_COLUMNS)]


def records(frame: pd.DataFrame) -> list[tuple]:
    """The staging rows as tuples in STAGING_COLUMNS order, missing values as None (NULL)."""
    columns = []
    for column in STAGING_COLUMNS:
        values = frame[column].to_numpy(dtype=object)
        missing = pd.isna(values)
        if missing.any():
            values = values.copy()
            values[missing] = None
        if column in ("upload_id", "row_number"):
            values = [int(v) for v in values]
        columns.append(values)
    return list(zip(*columns))
