"""Where a prospect may be: candidate time zones and the states whose rules apply.

DESIGN.md §5: a prospect's candidate zones come from every signal available —
the address (the ZIP's zone where the ZIP is known, which replaces the
state's, since a state may span several zones) and the number (libphonenumber's
zone data at NPA-NXX precision). The dial window must be open in every one.

Everything here is data lookup: ZIPs from the `zipcodes` package, number
zones and area-code regions from libphonenumber's own tables, and the zones
of each state or province from `data/region_zones.csv`. All lookups are
cached, and `locate` works on a whole batch by mapping unique keys.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from functools import lru_cache
from zoneinfo import available_timezones

import numpy as np
import pandas as pd

from campaigns.core import DATA_DIR
from campaigns.core.regions import CA_PROVINCES, LOCALES, REGION_NAMES

DATA = DATA_DIR  # campaigns/core/data

_US_ZIP = re.compile(r"^\s*(\d{5})(?:[-\s]?\d{4})?\s*$")
_CA_POSTAL = re.compile(r"^\s*([A-Za-z])\d[A-Za-z]\s?\d[A-Za-z]\d\s*$")
_POSTAL_PROVINCE = {
    "A": "NL", "B": "NS", "C": "PE", "E": "NB", "G": "QC", "H": "QC", "J": "QC",
    "K": "ON", "L": "ON", "M": "ON", "N": "ON", "P": "ON", "R": "MB", "S": "SK",
    "T": "AB", "V": "BC", "X": "NT", "Y": "YT",
}


@lru_cache(maxsize=1)
def region_zones() -> dict[str, tuple[str, ...]]:
    """State/province/territory → its IANA zones (first is the main one)."""
    with (DATA / "region_zones.csv").open(encoding="utf-8") as handle:
        return {row["region"]: tuple(row["zones"].split(";")) for row in csv.DictReader(handle)}


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=1)
def _zip_table() -> dict[str, tuple[str, str | None]]:
    """5-digit ZIP → (state, zone or None), from the `zipcodes` package's embedded data."""
    import zipcodes

    known = _known_zones()
    table = {}
    for entry in zipcodes.list_all():
        zone = entry.get("timezone") or None
        table[entry["zip_code"]] = (entry["state"], zone if zone in known else None)
    return table


def parse_region(value: object) -> str | None | bool:
    """A state/province code from a code or an English name; None when blank, False when unknown."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if text.upper() in region_zones():
        return text.upper()
    by_name = {name.casefold(): code for name, code in REGION_NAMES.items()}
    return by_name.get(text.casefold(), False)


def parse_postal(value: object) -> tuple[str | None, str | None, str | None] | bool:
    """(normalised ZIP/postal code, region, zone) for a US ZIP or Canadian postal code.

    None fields when unknown; False when the value is not a ZIP or postal code at all.
    """
    if value is None:
        return (None, None, None)
    text = str(value).strip()
    if not text:
        return (None, None, None)
    if match := _US_ZIP.match(text):
        zip5 = match.group(1)
        state, zone = _zip_table().get(zip5, (None, None))
        return (zip5, state, zone)
    if match := _CA_POSTAL.match(text):
        compact = re.sub(r"\s", "", text).upper()
        province = _POSTAL_PROVINCE.get(match.group(1).upper())
        if province == "NT" and compact[:3] in ("X0A", "X0B", "X0C"):
            province = "NU"  # Nunavut shares the X prefix with the Northwest Territories
        return (f"{compact[:3]} {compact[3:]}", province, None)
    if re.fullmatch(r"\s*\d{3,4}\s*", text):
        # A ZIP that lost its leading zeros in a spreadsheet (e.g. 2134 for 02134).
        return parse_postal(text.strip().zfill(5))
    return False


@lru_cache(maxsize=1)
def _tz_prefixes() -> dict[str, tuple[str, ...]]:
    from phonenumbers.tzdata import TIMEZONE_DATA

    return {k: tuple(v) for k, v in TIMEZONE_DATA.items() if k.startswith("1") and len(k) > 1}


@lru_cache(maxsize=None)
def number_zones(npa_nxx: str) -> tuple[str, ...]:
    """Zones libphonenumber gives the NANP prefix (6 digits, NPA-NXX), longest prefix first."""
    table = _tz_prefixes()
    for length in range(len(npa_nxx), 2, -1):
        zones = table.get("1" + npa_nxx[:length])
        if zones:
            return tuple(z for z in zones if z in _known_zones())
    return ()


@lru_cache(maxsize=1)
def _npa_regions() -> dict[str, str]:
    from phonenumbers.geodata import GEOCODE_DATA

    names = {name: code for name, code in REGION_NAMES.items()}
    votes: dict[str, Counter] = {}
    direct: dict[str, str] = {}
    for prefix, descriptions in GEOCODE_DATA.items():
        if not prefix.startswith("1") or len(prefix) < 4:
            continue
        text = descriptions.get("en", "")
        npa = prefix[1:4]
        code = names.get(text)
        if code is None and ", " in text:
            suffix = text.rsplit(", ", 1)[1]
            code = suffix if suffix in region_zones() else names.get(suffix)
        if code is None:
            continue
        if len(prefix) == 4:
            direct[npa] = code
        else:
            votes.setdefault(npa, Counter())[code] += 1
    table = {npa: counts.most_common(1)[0][0] for npa, counts in votes.items()}
    table.update(direct)
    # US territories are NANP regions of their own; their area codes are their leading digits.
    from phonenumbers import PhoneMetadata

    for territory in ("PR", "VI", "GU", "AS", "MP"):
        metadata = PhoneMetadata.metadata_for_region(territory)
        leading = (metadata.leading_digits if metadata else None) or ""
        for npa in re.findall(r"\d{3}", leading):
            table[npa] = territory
    return table


def area_code_region(npa: str) -> str | None:
    """The state or province an area code belongs to (FL, OK and CT apply their rules to it)."""
    return _npa_regions().get(npa)


def locale_zones(locale: str) -> tuple[str, ...]:
    zones = {z for region in LOCALES[locale]["regions"] for z in region_zones().get(region, ())}
    return tuple(sorted(zones))


def candidate_zones(
    address_zones: tuple[str, ...], phone_zones: tuple[str, ...], locale: str
) -> tuple[str, ...]:
    zones = set(address_zones) | set(phone_zones)
    return tuple(sorted(zones)) if zones else locale_zones(locale)


def zone_group(zones: tuple[str, ...] | str, address_state: str | None, area_state: str | None) -> str:
    """The key the hopper fill filters on: prospects sharing it share every dial-window answer."""
    joined = zones if isinstance(zones, str) else ",".join(zones)
    return f"{joined}|{address_state or '-'}|{area_state or '-'}"


def _map_unique(values: np.ndarray, fn) -> np.ndarray:
    """Apply `fn` once per distinct value (a batch has few distinct prefixes, ZIPs or states)."""
    # factorize hashes where np.unique would sort: cheaper on a batch of mostly repeated values.
    codes, uniques = pd.factorize(values.astype(str))
    return np.array([fn(u) for u in uniques], dtype=object)[codes]


def locate(
    e164: np.ndarray, address_state: np.ndarray, address_zone: np.ndarray, locale: str
) -> dict[str, np.ndarray]:
    """Candidate zones for a batch of valid numbers (object arrays, None for unknown).

    Returns `address_state` (the given one, else the area code's),
    `area_code_state`, `candidate_zones` and `zone_group`, one per row. Each
    lookup runs once per distinct value: a batch has few distinct prefixes.
    """
    n = len(e164)
    if n == 0:
        empty = np.full(0, None, dtype=object)
        return {k: empty for k in ("address_state", "area_code_state", "candidate_zones", "zone_group")}
    npa_nxx = np.array([x[2:8] for x in e164], dtype=object)
    phone_zones = _map_unique(npa_nxx, lambda p: ",".join(number_zones(p)))
    area_state = _map_unique(np.array([x[:3] for x in npa_nxx], dtype=object), area_code_region)
    state = np.where(pd.isna(address_state), area_state, address_state)
    zones_of = region_zones()

    def text(value) -> str:
        return value if isinstance(value, str) else ""

    key = np.array(
        [f"{text(z)}|{text(s)}|{p}" for z, s, p in zip(address_zone, state, phone_zones)],
        dtype=object,
    )

    def combine(k: str) -> str:
        zone, region, by_phone = k.split("|")
        address = (zone,) if zone else zones_of.get(region, ())
        parts = address + tuple(x for x in by_phone.split(",") if x)
        return ",".join(candidate_zones(parts, (), locale))

    candidates = _map_unique(key, combine)
    group = np.array(
        [f"{c}|{text(s) or '-'}|{text(a) or '-'}" for c, s, a in zip(candidates, state, area_state)],
        dtype=object,
    )
    return {
        "address_state": state.astype(object),
        "area_code_state": area_state,
        "candidate_zones": candidates,
        "zone_group": group,
    }




__all__ = [
    "CA_PROVINCES",
    "area_code_region",
    "candidate_zones",
    "number_zones",
    "parse_postal",
    "parse_region",
    "region_zones",
    "zone_group",
    "locate",
]
