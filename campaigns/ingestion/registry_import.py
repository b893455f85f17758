"""Importing the National DNC Registry: files in, one new version out (or none at all).

A **full** import makes, for every area code its files name (and every area code given in
`area_codes`, which may have no numbers), a new exact set that replaces that area code in the
newest version; area codes it does not name keep their set and their obtained-at. A **change
list** applies its adds and deletes to the newest version's sets of the area codes it names;
`added` and `deleted` count effective changes only (adding a number already listed, or
deleting one that is not, changes nothing and is not counted). Within one import the last
record of a number wins.

A change list refreshes the obtained-at of the area codes it names and of those given in
`area_codes`, and no others: the FTC sells change lists for the subscription's area codes, but
a file with no record for an area code cannot tell "no changes" from "not in this download", so
the operator says which area codes the download covered.

Files are parsed before any transaction (`registry_files`); the new version, its sets and the
pruning of old sets are then written in one transaction, so a refused file or a failure leaves
no version.
"""

from __future__ import annotations

import array
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

import numpy as np
import sqlalchemy as sa
from pyroaring import BitMap

from campaigns.core.errors import DialerError
from campaigns.ingestion.registry_files import (
    MAX_BYTES,
    Budget,
    ChunkParser,
    Records,
    RegistryFile,
    RegistryKind,
    RegistryRefused,
    read,
)
from campaigns.registry import store
from campaigns.registry.status import RULE_DAYS

IMPORT_LOCK = 0x444E4352  # "DNCR": the advisory lock that serialises registry imports on PostgreSQL


@dataclass
class RegistryImport:
    """What one import made: the version, and what it read and changed."""

    version: store.Version
    kind: RegistryKind
    files: list[str]
    lines: int
    records: int
    area_codes: list[int]  # replaced (full), or changed and refreshed (change list)
    sets_pruned: int
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        v = self.version
        return {
            "version_id": v.id, "kind": self.kind.value, "obtained_at": v.obtained_at.date().isoformat(),
            "based_on_id": v.based_on_id, "files": self.files, "lines": self.lines, "records": self.records,
            "area_codes_imported": self.area_codes, "area_codes": v.area_codes, "numbers": v.numbers,
            "added": v.added, "deleted": v.deleted, "checksum": v.checksum, "sets_pruned": self.sets_pruned,
            "warnings": self.warnings,
        }


def obtained_instant(obtained_on: date | None, now: datetime) -> tuple[datetime, list[str]]:
    """The obtained-at instant (UTC midnight of the day; today by default) and its warnings; a day
    in the future is refused."""
    today = now.astimezone(UTC).date()
    day = obtained_on or today
    if day > today:
        raise DialerError(f"obtained-at {day.isoformat()} is in the future (today is {today.isoformat()} UTC); "
                          "give the day the registry data was downloaded.")
    age = (today - day).days
    warnings = []
    if age > RULE_DAYS:
        warnings.append(f"obtained-at {day.isoformat()} is {age} days ago: under the 31-day rule the area codes "
                        "this import refreshes are already too old to call against; import a newer download.")
    return datetime.combine(day, time(), tzinfo=UTC), warnings


def checked_area_codes(area_codes: Iterable[int]) -> set[int]:
    found = set()
    for code in area_codes:
        if not 200 <= code <= 999:
            raise DialerError(f"area code {code} is not an area code (200-999).")
        found.add(int(code))
    return found


def as_bitmap(numbers: np.ndarray) -> BitMap:
    """A bitmap of 32-bit numbers: sorted first and passed as an array, pyroaring's fast path
    (unsorted, or as a numpy array, it is 20 times slower)."""
    return BitMap(array.array("I", np.sort(numbers.astype(np.uint32, copy=False)).tobytes()))


def _by_area(records: Records) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(area code, its 7-digit numbers, their add marks) for each area code of a chunk, file order kept."""
    area = records.area
    if area[0] == area[-1] and (area == area[0]).all():
        yield int(area[0]), records.local, records.add
        return
    order = np.argsort(area, kind="stable")
    ordered = area[order]
    bounds = [0, *(np.flatnonzero(np.diff(ordered)) + 1).tolist(), len(order)]
    for start, end in zip(bounds, bounds[1:]):
        rows = order[start:end]
        yield int(ordered[start]), records.local[rows], records.add[rows]


class _Changes:
    """A change list's net effect per area code: the last record of a number wins."""

    def __init__(self) -> None:
        self.adds: dict[int, BitMap] = {}
        self.deletes: dict[int, BitMap] = {}

    def apply(self, area: int, local: np.ndarray, add: np.ndarray) -> None:
        adds = self.adds.setdefault(area, BitMap())
        deletes = self.deletes.setdefault(area, BitMap())
        if not add.all() and add.any():
            last = len(local) - 1 - np.unique(local[::-1], return_index=True)[1]
            local, add = local[last], add[last]
        added, deleted = as_bitmap(local[add]), as_bitmap(local[~add])
        adds.difference_update(deleted)
        adds.update(added)
        deletes.difference_update(added)
        deletes.update(deleted)


def import_registry(
    engine: sa.Engine,
    files: Sequence[RegistryFile],
    *,
    now: datetime,
    kind: RegistryKind | None = None,
    obtained_on: date | None = None,
    area_codes: Iterable[int] = (),
    max_bytes: int = MAX_BYTES,
    keep: int = store.KEEP_SETS_OF,
) -> RegistryImport:
    """Import registry files as one new version; the kind is read from the content (`kind` asserts it)."""
    if not files:
        raise DialerError("name at least one registry file to import.")
    obtained_at, warnings = obtained_instant(obtained_on, now)
    named = checked_area_codes(area_codes)
    parser, budget = ChunkParser(kind), Budget(max_bytes)
    full: dict[int, BitMap] = {}
    changes = _Changes()
    lines = records = 0
    for file in files:
        for name, chunk, first_line in read(file, budget):
            found, count = parser.parse(chunk, name, first_line)
            lines += count
            if found is None:
                continue
            records += len(found.area)
            for area, local, add in _by_area(found):
                if found.kind == RegistryKind.FULL:
                    full.setdefault(area, BitMap()).update(as_bitmap(local))
                else:
                    changes.apply(area, local, add)
    names = [os.path.basename(f.name.rstrip("/")) or f.name for f in files]
    if parser.kind is None:
        if kind is None or not named:
            raise RegistryRefused(f"{', '.join(names)}: holds no numbers, so nothing says which area codes it "
                                  "covers; give --full or --changes with --area-codes (kind and area_codes in a bucket sidecar), "
                                  "or import the right file.")
        parser.kind = kind
    source = ", ".join(names)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Imports one at a time (SQLite's BEGIN IMMEDIATE already is): each builds on the newest version.
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(IMPORT_LOCK)))
        base = store.open_in(conn)
        if parser.kind == RegistryKind.FULL:
            for area in named:
                full.setdefault(area, BitMap())
            version = _save_full(conn, base, full, obtained_at, now, source, warnings)
            imported = sorted(full)
        else:
            version, imported = _save_changes(conn, base, changes, named, obtained_at, now, source, files[0].name)
        pruned = store.prune(conn, keep)
    return RegistryImport(version, RegistryKind(parser.kind), names, lines, records, imported, pruned, warnings)


def _save_full(conn: sa.Connection, base: store.RegistrySet | None, sets: dict[int, BitMap], obtained_at: datetime,
               now: datetime, source: str, warnings: list[str]) -> store.Version:
    added = deleted = 0
    for area, bitmap in sets.items():
        if base is None or not base.covers(area):
            added += len(bitmap)
            continue
        old = base.bitmap(area)
        added += bitmap.difference_cardinality(old)
        deleted += old.difference_cardinality(bitmap)
        was = base.obtained_at(area)
        if was is not None and was > obtained_at:
            warnings.append(f"area code {area} was obtained on {was.date().isoformat()}, after this import's "
                            f"{obtained_at.date().isoformat()}: the older list replaces it.")
    return store.save_version(conn, kind=RegistryKind.FULL.value, obtained_at=obtained_at, imported_at=now,
                              source=source, base=base, sets=sets, added=added, deleted=deleted)


def _save_changes(conn: sa.Connection, base: store.RegistrySet | None, changes: _Changes, named: set[int],
                  obtained_at: datetime, now: datetime, source: str, first_file: str) -> tuple[store.Version, list[int]]:
    if base is None:
        raise RegistryRefused(f"{first_file}: is a change list, but there is no registry version to apply it to; "
                              "import a full list first.")
    areas = sorted(set(changes.adds) | named)
    for area in areas:
        if not base.covers(area):
            raise RegistryRefused(f"{first_file}: changes area code {area}, which registry version {base.version.id} "
                                  "does not cover; import that area code's full list first.")
        was = base.obtained_at(area)
        if was is not None and was > obtained_at:
            raise RegistryRefused(
                f"{first_file}: a change list obtained on {obtained_at.date().isoformat()} is older than area code "
                f"{area}'s data ({was.date().isoformat()}); give its real --obtained-at or import a newer one.")
    sets: dict[int, BitMap] = {}
    added = deleted = 0
    for area, adds in changes.adds.items():
        deletes = changes.deletes[area]
        old = base.bitmap(area)
        new_adds, gone = adds.difference_cardinality(old), deletes.intersection_cardinality(old)
        if new_adds or gone:
            sets[area] = (BitMap(old) - deletes) | adds
            added, deleted = added + new_adds, deleted + gone
    version = store.save_version(conn, kind=RegistryKind.CHANGES.value, obtained_at=obtained_at, imported_at=now,
                                 source=source, base=base, sets=sets, refreshed=areas, added=added, deleted=deleted)
    return version, areas
