"""Synthetic prospects for `dialer demo`: every state, province and territory of the US locale.

The list looks like what ops receive: phone numbers written five ways, names with
accents, a state and a ZIP or postal code on most rows (not all, so some
prospects are placed by their area code alone), custom columns, and the usual
mess — a few invalid numbers (letters, too short or long, a spreadsheet's
`4.15555E+09`, a Jamaican number, an impossible area code, an empty cell),
numbers repeated in another format, and numbers on the DNC list. Everything
comes from one seeded generator, so a seed gives the same file every time.

Area codes, ZIPs and zones are the project's own data (libphonenumber's tables,
the `zipcodes` package), so every number is valid and lands where its row says.
"""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache

import phonenumbers

from campaigns.core.regions import LOCALES, US_TERRITORIES
from campaigns.ingestion.zones import _npa_regions, region_zones

COLUMNS = ["Phone Number", "First Name", "Last Name", "State", "ZIP", "Account", "Plan", "Customer Since"]
# Regions without an area code of their own share a neighbour's.
SHARED_AREA_CODES = {"NU": "NT", "YT": "NT", "PE": "NS"}
FIRST = ["Ada", "Ben", "Chloé", "Dmitri", "Elena", "Farah", "Gus", "Hana", "Ivan", "José", "Kai", "Lena",
         "Malik", "Nora", "Owen", "Priya", "Quinn", "Rosa", "Sam", "Tomás", "Uma", "Vic", "Wen", "Xavier",
         "Yara", "Zoë", "Ngozi", "Siobhán", "Björn", "Mei"]
LAST = ["Anderson", "Brown", "Castillo", "Dubois", "Evans", "Fischer", "García", "Hughes", "Ishikawa",
        "Johnson", "Kowalski", "Lefèvre", "Martin", "Nguyễn", "O'Brien", "Patel", "Quispe", "Rossi", "Smith",
        "Tremblay", "Usman", "Vargas", "Williams", "Xu", "Young", "Zhang", "Côté", "Roy", "Gagnon", "Kealoha"]
PLANS = ["basic", "plus", "premium"]
CA_POSTAL_LETTER = {"NL": "A", "NS": "B", "PE": "C", "NB": "E", "QC": "H", "ON": "M", "MB": "R", "SK": "S",
                    "AB": "T", "BC": "V", "NT": "X", "NU": "X", "YT": "Y"}
# (kind, value): one of each reason the ingestion gives, in turn.
INVALID = [
    ("letters", "415-555-CALL"), ("too_short", "555-1234"), ("spreadsheet_mangled", "4.15555E+09"),
    ("outside_locale", "+1 876 927 1234"), ("invalid_number", "(123) 456-7890"), ("too_long", "+1 415 555 12345 6789"),
    ("missing_phone", ""),
]


@dataclass
class DemoList:
    csv_text: str
    dnc_text: str  # the national registry's plain 10-digit format, one number a line
    rows: int
    expected: Counter = field(default_factory=Counter)  # valid, duplicate, invalid, dnc
    regions: Counter = field(default_factory=Counter)


@lru_cache(maxsize=1)
def _area_codes() -> dict[str, list[str]]:
    by_region: dict[str, list[str]] = {}
    for npa, region in sorted(_npa_regions().items()):
        by_region.setdefault(region, []).append(npa)
    for region, neighbour in SHARED_AREA_CODES.items():
        by_region.setdefault(region, list(by_region.get(neighbour, [])))
    return by_region


@lru_cache(maxsize=1)
def _zips() -> dict[str, list[str]]:
    import zipcodes

    by_state: dict[str, list[str]] = {}
    for entry in zipcodes.list_all():
        if entry["zip_code_type"] == "STANDARD" or entry["state"] in US_TERRITORIES:
            by_state.setdefault(entry["state"], []).append(entry["zip_code"])
    return by_state


def _valid_number(rng: random.Random, npa: str, taken: set[str]) -> str | None:
    for _ in range(200):
        national = f"{npa}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
        if national[3:6].endswith("11") or national[3:6] == "555" or national in taken:
            continue
        if phonenumbers.is_valid_number(phonenumbers.parse("+1" + national)):
            taken.add(national)
            return national
    return None


def _written(rng: random.Random, national: str) -> str:
    npa, nxx, line = national[:3], national[3:6], national[6:]
    return rng.choice([
        f"+1{national}", f"({npa}) {nxx}-{line}", f"{npa}.{nxx}.{line}", f"1-{npa}-{nxx}-{line}",
        f"{npa} {nxx} {line}",
    ])


def _postal(rng: random.Random, region: str) -> str:
    if region in CA_POSTAL_LETTER:
        d, letters = rng.randint, "ABCEGHJKLMNPRSTVWXYZ"
        return f"{CA_POSTAL_LETTER[region]}{d(0, 9)}{rng.choice(letters)} {d(0, 9)}{rng.choice(letters)}{d(0, 9)}"
    zips = _zips().get(region)
    return rng.choice(zips) if zips else ""


def _weights(regions: list[str]) -> list[float]:
    """Roughly by population: the number of area codes a region has (at least one)."""
    codes = _area_codes()
    return [max(1, len([n for n in codes.get(r, []) if _npa_regions().get(n) == r])) for r in regions]


def generate(rows: int, seed: int = 7, *, invalid_share: float = 0.03, duplicate_share: float = 0.04,
             dnc_share: float = 0.02, dnc_extra: int = 250, today: date | None = None) -> DemoList:
    """A prospect CSV of `rows` rows over every region of the US locale, and its DNC file."""
    rng = random.Random(seed)
    regions = sorted(LOCALES["US"]["regions"])
    codes = _area_codes()
    n_invalid = round(rows * invalid_share)
    n_duplicate = round(rows * duplicate_share)
    n_dnc = round(rows * dnc_share)
    n_valid = rows - n_invalid - n_duplicate  # DNC hits are valid, unique rows too
    if n_valid < 2 * len(regions):
        raise ValueError(f"{rows} rows are too few: the demo list needs at least two per region "
                         f"({2 * len(regions) + n_invalid + n_duplicate} rows)")
    # Two rows per region first, so every zone is present; the rest by weight.
    picks = [r for r in regions for _ in range(2)]
    picks += rng.choices(regions, weights=_weights(regions), k=n_valid - len(picks))
    taken: set[str] = set()
    today = today or date(2026, 1, 1)
    out: list[dict] = []
    result = DemoList("", "", rows)
    for i, region in enumerate(picks):
        national = None
        while national is None:
            national = _valid_number(rng, rng.choice(codes[region]), taken)
        # A region's first row has its state and postal code, its second the state alone (so the
        # prospect may be in any of the state's zones); the rest a mix, some placed by area code alone.
        roll = rng.random() if i >= 2 * len(regions) else (0.0 if i % 2 == 0 else 0.7)
        state = region if roll < 0.85 else ""
        postal = _postal(rng, region) if roll < 0.6 else ""
        out.append({
            "Phone Number": _written(rng, national), "First Name": rng.choice(FIRST),
            "Last Name": rng.choice(LAST), "State": state, "ZIP": postal, "Account": f"ACC-{100000 + i}",
            "Plan": rng.choice(PLANS), "Customer Since": (today - timedelta(days=rng.randint(30, 2000))).isoformat(),
            "_national": national,
        })
        result.regions[region] += 1
    dnc_hits = rng.sample(range(len(out)), n_dnc)
    listed = {out[i]["_national"] for i in dnc_hits}
    while len(listed) < n_dnc + dnc_extra:  # numbers on the list that are not prospects
        npa = rng.choice(codes[rng.choice(regions)])
        number = _valid_number(rng, npa, taken)
        if number:
            listed.add(number)
    for k in range(n_duplicate):
        original = out[rng.randrange(len(out))]
        out.append({**original, "Phone Number": _written(rng, original["_national"]),
                    "First Name": rng.choice(FIRST), "Account": f"ACC-{200000 + k}"})
    for k in range(n_invalid):
        _, value = INVALID[k % len(INVALID)]
        out.append({"Phone Number": value, "First Name": rng.choice(FIRST), "Last Name": rng.choice(LAST),
                    "State": "", "ZIP": "", "Account": f"ACC-{300000 + k}", "Plan": rng.choice(PLANS),
                    "Customer Since": today.isoformat(), "_national": None})
    # Whichever of two rows with one number comes first is loaded; the other is the duplicate.
    shuffled = out[:]
    rng.shuffle(shuffled)
    result.expected = Counter(valid=n_valid - n_dnc, dnc=n_dnc, duplicate=n_duplicate, invalid=n_invalid)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(shuffled)
    result.csv_text = buffer.getvalue()
    result.dnc_text = "".join(f"{n}\n" for n in sorted(listed))
    return result


def zones_covered(regions: Counter) -> set[str]:
    """Every zone of the list's regions (each region has a row with its state alone, placed in all of them)."""
    return {zone for region in regions for zone in region_zones().get(region, ())}
