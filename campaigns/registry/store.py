"""Versions of the National DNC Registry and membership in them.

A version is a manifest: for each area code it covers, the exact set of the area code's listed
numbers, when that area code's data was obtained, and how many numbers it holds. A set is the
area code's 7-digit numbers (NXX-XXXX, below 10^7) in a 32-bit roaring bitmap, serialised and
stored once in `dnc_registry_sets` under its SHA-256: a version made by a partial full import or
a change list shares every set it did not change with the version it was based on. The version's
own checksum is the SHA-256 of its manifest, so it names the exact set a call was checked
against. Nothing here can answer "not listed" for a listed number: sets are exact, and a set
whose bytes do not match its checksum is refused when read.

Sets are read when first asked for (`RegistrySet`), so a daemon dialing a few area codes holds
only those; `load_all` reads every one (an upload's scrub, the benchmark). `RegistryCache`
keeps the current version of a long-running process and notices a newer one.
"""

from __future__ import annotations

import array
import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from pyroaring import BitMap, FrozenBitMap

from campaigns.core import schema as t
from campaigns.core.db import driver_connection, insert_for
from campaigns.core.errors import DialerError

AREA_SPAN = 10_000_000  # the 7-digit numbers of one area code
KEEP_SETS_OF = 3  # versions whose sets `prune` keeps (the newest); older ones keep their record


@dataclass(frozen=True)
class AreaSet:
    """One area code of a version: its set's checksum, how many numbers, when obtained."""

    area_code: int
    sha256: str
    numbers: int
    obtained_at: datetime


@dataclass(frozen=True)
class Version:
    id: int
    kind: str  # full | changes
    obtained_at: datetime
    imported_at: datetime
    based_on_id: int | None
    source: str
    area_codes: int
    numbers: int
    added: int
    deleted: int
    checksum: str
    sets_kept: bool

    @classmethod
    def from_row(cls, row: sa.Row) -> Version:
        m = row._mapping
        return cls(**{f: m[f] for f in cls.__dataclass_fields__})

    def age_days(self, now: datetime) -> float:
        return (now - self.obtained_at).total_seconds() / 86400


class RegistryCorrupt(DialerError):
    """A stored set's bytes do not match its checksum."""


def _arrow_strings(phones: Iterable[str] | pd.Series | np.ndarray) -> pa.LargeStringArray:
    """The numbers as one Arrow array of strings (None and NaN as nulls; other values as their text)."""
    values = phones if isinstance(phones, pd.Series | np.ndarray) else list(phones)
    try:
        found = pa.array(values, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        found = pa.array(pd.Series(values, dtype=object).astype("string[pyarrow]"), from_pandas=True)
    if isinstance(found, pa.ChunkedArray):
        found = found.combine_chunks()
    return found.cast(pa.large_string())


def _whole_numbers(phones: Iterable[str] | pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the 10 digits after `+1` as an integer, is a +1 number) for each number, vectorised.

    The strings are read from Arrow's buffers one character position at a time, never a Python
    step per number; when every string has 12 characters (a clean upload) they are one matrix.
    """
    strings = _arrow_strings(phones)
    n = len(strings)
    _, offsets_buffer, data_buffer = strings.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[strings.offset: strings.offset + n + 1]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    rows = np.flatnonzero(np.diff(offsets) == 12)
    if len(rows) == n and n:
        matrix = data[offsets[0]: offsets[0] + 12 * n].reshape(n, 12)
        columns = lambda position: matrix[:, position]  # noqa: E731
    else:
        starts = offsets[:-1][rows]
        columns = lambda position: data[starts + position]  # noqa: E731
    ok = (columns(0) == ord("+")) & (columns(1) == ord("1"))
    whole = np.zeros(len(rows), dtype=np.int64)
    for position in range(2, 12):
        digit = columns(position).astype(np.int64) - 48
        ok &= (digit >= 0) & (digit <= 9)
        whole = whole * 10 + digit
    if len(rows) == n:
        return np.where(ok, whole, 0), ok
    full, nanp = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    full[rows[ok]], nanp[rows[ok]] = whole[ok], True
    return full, nanp


def nanp_parts(phone_e164: str) -> tuple[int, int] | None:
    """A +1 number in E.164 as (area code, 7-digit number); None for any other number."""
    if len(phone_e164) != 12 or not phone_e164.startswith("+1") or not phone_e164[2:].isdigit():
        return None
    whole = int(phone_e164[2:])
    return whole // AREA_SPAN, whole % AREA_SPAN


def set_bytes(bitmap: BitMap) -> tuple[bytes, str]:
    """A set as stored: the bitmap run-optimised and serialised, and its SHA-256."""
    bitmap = BitMap(bitmap)
    bitmap.run_optimize()
    data = bitmap.serialize()
    return data, hashlib.sha256(data).hexdigest()


def manifest_checksum(areas: Iterable[AreaSet]) -> str:
    lines = "".join(f"{a.area_code},{a.sha256},{a.numbers},{a.obtained_at.isoformat()}\n"
                    for a in sorted(areas, key=lambda a: a.area_code))
    return hashlib.sha256(lines.encode()).hexdigest()


class RegistrySet:
    """The exact set of one version; an area code's bitmap is read on first use and kept."""

    def __init__(self, version: Version, areas: Mapping[int, AreaSet], fetch: Callable[[str], bytes]) -> None:
        self.version = version
        self.areas = dict(areas)
        self._fetch = fetch
        self._bitmaps: dict[int, FrozenBitMap] = {}
        self._lock = threading.Lock()

    def covers(self, area_code: int) -> bool:
        return area_code in self.areas

    def obtained_at(self, area_code: int) -> datetime | None:
        area = self.areas.get(area_code)
        return area.obtained_at if area else None

    def bitmap(self, area_code: int) -> FrozenBitMap:
        """The area code's set (empty when the version does not cover it)."""
        found = self._bitmaps.get(area_code)
        if found is not None:
            return found
        area = self.areas.get(area_code)
        if area is None:
            return FrozenBitMap()
        with self._lock:
            found = self._bitmaps.get(area_code)
            if found is None:
                data = self._fetch(area.sha256)
                if hashlib.sha256(data).hexdigest() != area.sha256:
                    raise RegistryCorrupt(f"the National DNC Registry set of area code {area_code} in version "
                                          f"{self.version.id} does not match its checksum; import the registry again")
                found = self._bitmaps[area_code] = FrozenBitMap.deserialize(data)
        return found

    def load_all(self) -> None:
        for area_code in self.areas:
            self.bitmap(area_code)

    def contains_number(self, area_code: int, number: int) -> bool:
        return number in self.bitmap(area_code)

    def contains(self, phone_e164: str) -> bool:
        """Is this E.164 number listed in this version? (False outside +1 or an uncovered area code.)"""
        parts = nanp_parts(phone_e164)
        return parts is not None and self.contains_number(*parts)

    def listed(self, phones: Iterable[str] | pd.Series | np.ndarray) -> np.ndarray:
        """For each number, is it listed in this version? Vectorised: the numbers sorted once, then
        one bitmap intersection per area code."""
        whole, ok = _whole_numbers(phones)
        result = np.zeros(len(whole), dtype=bool)
        rows = np.flatnonzero(ok)
        if not len(rows):
            return result
        rows = rows[np.argsort(whole[rows])]
        ordered = whole[rows] // AREA_SPAN
        numbers = (whole[rows] % AREA_SPAN).astype(np.uint32)
        bounds = [0, *(np.flatnonzero(np.diff(ordered)) + 1).tolist(), len(rows)]
        for start, end in zip(bounds, bounds[1:]):
            area_code = int(ordered[start])
            if area_code not in self.areas:
                continue
            group, wanted = rows[start:end], numbers[start:end]  # sorted: pyroaring's fast path
            hits = np.frombuffer(
                (BitMap(array.array("I", wanted.tobytes())) & self.bitmap(area_code)).to_array(), dtype=np.uint32)
            if len(hits):
                at = np.minimum(np.searchsorted(hits, wanted), len(hits) - 1)
                result[group] = hits[at] == wanted
        return result

    @property
    def loaded_bytes(self) -> int:
        """What the bitmaps read so far take in memory, about."""
        total = 0
        for bitmap in self._bitmaps.values():
            stats = bitmap.get_statistics()
            total += (stats["n_bytes_array_containers"] + stats["n_bytes_bitset_containers"]
                      + stats["n_bytes_run_containers"])
        return total


# -- reading ----------------------------------------------------------------------------------

def current(conn: sa.Connection) -> Version | None:
    """The newest version (the one every check uses), or None before the first import."""
    v = t.dnc_registry_versions
    row = conn.execute(sa.select(v).order_by(v.c.id.desc()).limit(1)).first()
    return Version.from_row(row) if row else None


def current_id(conn: sa.Connection) -> int | None:
    v = t.dnc_registry_versions
    return conn.execute(sa.select(sa.func.max(v.c.id))).scalar_one_or_none()


def version(conn: sa.Connection, version_id: int) -> Version | None:
    v = t.dnc_registry_versions
    row = conn.execute(sa.select(v).where(v.c.id == version_id)).first()
    return Version.from_row(row) if row else None


def versions(conn: sa.Connection, limit: int = 50) -> list[Version]:
    """The newest `limit` versions, newest first."""
    v = t.dnc_registry_versions
    return [Version.from_row(r) for r in conn.execute(sa.select(v).order_by(v.c.id.desc()).limit(limit))]


def manifest(conn: sa.Connection, version_id: int) -> dict[int, AreaSet]:
    a = t.dnc_registry_areas
    return {r.area_code: AreaSet(r.area_code, r.set_sha256, r.numbers, r.obtained_at) for r in conn.execute(
        sa.select(a.c.area_code, a.c.set_sha256, a.c.numbers, a.c.obtained_at).where(a.c.version_id == version_id)
    )}


def _read_set(conn: sa.Connection, sha256: str) -> bytes:
    s = t.dnc_registry_sets
    if conn.dialect.name == "postgresql":
        # bytea over the binary protocol: as text (hex) a 1 MB set takes five times as long to read.
        with driver_connection(conn).cursor(binary=True) as cursor:
            cursor.execute("SELECT data FROM dnc_registry_sets WHERE sha256 = %s", (sha256,))
            row = cursor.fetchone()
        data = row[0] if row else None
    else:
        data = conn.execute(sa.select(s.c.data).where(s.c.sha256 == sha256)).scalar_one_or_none()
    if data is None:
        raise RegistryCorrupt(f"a National DNC Registry set ({sha256[:12]}…) is missing from the database; "
                              "import the registry again")
    return bytes(data)


def _fetcher(engine: sa.Engine) -> Callable[[str], bytes]:
    def fetch(sha256: str) -> bytes:
        with engine.connect() as conn:
            return _read_set(conn, sha256)

    return fetch


def _opened(conn: sa.Connection, version_id: int | None, fetch: Callable[[str], bytes]) -> RegistrySet | None:
    found = current(conn) if version_id is None else version(conn, version_id)
    if found is None:
        return None
    if not found.sets_kept:
        raise DialerError(f"National DNC Registry version {found.id} keeps its record but no longer its sets")
    return RegistrySet(found, manifest(conn, found.id), fetch)


def open_version(engine: sa.Engine, version_id: int | None = None) -> RegistrySet | None:
    """A version's set (the current one by default), its bitmaps read on first use; None before
    the first import. A version whose sets were pruned cannot be opened."""
    with engine.connect() as conn:
        return _opened(conn, version_id, _fetcher(engine))


def open_in(conn: sa.Connection, version_id: int | None = None) -> RegistrySet | None:
    """`open_version` inside a transaction: the version as `conn` sees it, its bitmaps read through
    `conn` on first use, so only while the transaction lasts (a scrub, a fill, an import reading
    the version it is based on in the transaction that writes the next one)."""
    return _opened(conn, version_id, lambda sha256: _read_set(conn, sha256))


class RegistryCache:
    """The current version for a long-running process (a daemon, a run's fill): asks the
    database for the newest version id at most every `check_every_s`, and opens a newer one
    when there is one (its bitmaps read again on first use)."""

    def __init__(self, engine: sa.Engine, check_every_s: float = 30.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.engine, self.check_every_s, self.monotonic = engine, check_every_s, monotonic
        self._set: RegistrySet | None = None
        self._checked_at: float | None = None
        self._lock = threading.Lock()

    def get(self) -> RegistrySet | None:
        now = self.monotonic()
        if self._checked_at is not None and now - self._checked_at < self.check_every_s:
            return self._set
        with self._lock:
            if self._checked_at is None or now - self._checked_at >= self.check_every_s:
                with self.engine.connect() as conn:
                    newest = current_id(conn)
                if newest is None:
                    self._set = None
                elif self._set is None or self._set.version.id != newest:
                    self._set = open_version(self.engine, newest)
                self._checked_at = now
        return self._set


# -- writing ----------------------------------------------------------------------------------

def save_version(conn: sa.Connection, *, kind: str, obtained_at: datetime, imported_at: datetime, source: str,
                 base: RegistrySet | None, sets: Mapping[int, BitMap], refreshed: Iterable[int] = (),
                 added: int, deleted: int) -> Version:
    """Record a new version: `base`'s manifest with `sets` replacing (or adding) area codes,
    those and the `refreshed` area codes obtained at `obtained_at`, the others as they were.
    Sets already stored (same checksum) are not written again."""
    s, a, v = t.dnc_registry_sets, t.dnc_registry_areas, t.dnc_registry_versions
    areas: dict[int, AreaSet] = dict(base.areas) if base else {}
    for area_code in refreshed:
        old = areas.get(area_code)
        if old is not None:
            areas[area_code] = AreaSet(area_code, old.sha256, old.numbers, obtained_at)
    for area_code, bitmap in sets.items():
        if not 200 <= area_code <= 999:
            raise DialerError(f"{area_code} is not an area code (200-999)")
        data, sha = set_bytes(bitmap)
        conn.execute(insert_for(conn, s).values(sha256=sha, area_code=area_code, numbers=len(bitmap), data=data,
                                                created_at=imported_at).on_conflict_do_nothing())
        areas[area_code] = AreaSet(area_code, sha, len(bitmap), obtained_at)
    version_id = conn.execute(v.insert().values(
        kind=kind, obtained_at=obtained_at, imported_at=imported_at, based_on_id=base.version.id if base else None,
        source=source, area_codes=len(areas), numbers=sum(x.numbers for x in areas.values()), added=added,
        deleted=deleted, checksum=manifest_checksum(areas.values()), sets_kept=True,
    ).returning(v.c.id)).scalar_one()
    if areas:
        conn.execute(a.insert(), [{"version_id": version_id, "area_code": x.area_code, "set_sha256": x.sha256,
                                   "numbers": x.numbers, "obtained_at": x.obtained_at} for x in areas.values()])
    found = version(conn, version_id)
    assert found is not None
    return found


def prune(conn: sa.Connection, keep: int = KEEP_SETS_OF) -> int:
    """Drop the sets of all but the newest `keep` versions; returns how many stored sets were
    deleted. Their records and manifests stay, as evidence: which version a call was checked
    against, how old each area code's data was, and the checksum that names the exact set."""
    s, a, v = t.dnc_registry_sets, t.dnc_registry_areas, t.dnc_registry_versions
    newest = sa.select(v.c.id).order_by(v.c.id.desc()).limit(max(keep, 1))
    old = list(conn.execute(sa.select(v.c.id).where(v.c.sets_kept.is_(True), v.c.id.not_in(newest))).scalars())
    if not old:
        return 0
    conn.execute(sa.update(v).where(v.c.id.in_(old)).values(sets_kept=False))
    in_use = sa.select(a.c.set_sha256).join(v, v.c.id == a.c.version_id).where(v.c.sets_kept.is_(True))
    return conn.execute(sa.delete(s).where(s.c.sha256.not_in(in_use))).rowcount
