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
            "custom_fields": np.array(
                [json.dumps(c, ensure_ascii=False) if c else None for c in batch.custom], dtype=object
            ),
            "outcome": np.where(valid, str(RowOutcome.VALID), str(RowOutcome.INVALID)).astype(object),
            "reason": reason,
        }
    )
    frame.loc[~valid, ["phone_e164", "phone_ext"]] = None
    with_zones = np.full(n, None, dtype=object), np.full(n, None, dtype=object), np.full(n, None, dtype=object)
    if valid.any():
        located = zones.zones_for_frame(frame.loc[valid, ["phone_e164", "address_state", "address_zone"]], locale)
        for column, target in zip(("area_code_state", "candidate_zones", "zone_group"), with_zones):
            target[valid] = located[column].to_numpy(dtype=object)
        address_state[valid] = located["address_state"].to_numpy(dtype=object)
        frame["address_state"] = address_state
    frame["area_code_state"], frame["candidate_zones"], frame["zone_group"] = with_zones
    frame = frame.astype(object).where(frame.notna(), None)
    return frame[list(STAGING_COLUMNS)]
