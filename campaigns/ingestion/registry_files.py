"""Reading the National DNC Registry's flat files: full lists and change lists, plain, `.gz` or `.zip`.

The lines accepted, and nothing else (`docs/OPERATIONS.md`, "National DNC Registry"):

```
full list      NNNNNNNNNN           ten digits: area code and number
               NNN,NNNNNNN          area code, then the 7-digit number
change list    NNN,NNNNNNN,A        A adds the number, D deletes it (either case)
               NNNNNNNNNN,D
```

Spaces and tabs around a line or a field, CRLF line ends, blank lines, a UTF-8 byte-order mark
and a missing last line break are tolerated. An area code is 200-999 and the number's exchange
200-999 (a number below 2,000,000 cannot be dialed). Any other line refuses the whole import
with one sentence naming the file, the line and what was expected.

Files are read in chunks of `CHUNK_BYTES` and each chunk is parsed as a byte array with numpy —
one pass per character position of a line shape, never a Python step per line — so memory is
bounded by the chunk, not the file. A zip is read member by member (an archive inside an archive
is refused); every byte read after decompression counts against `max_bytes` for the import.
"""

from __future__ import annotations

import gzip
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import BinaryIO

import numpy as np

from campaigns.core.errors import DialerError
from campaigns.core.text import escaped

CHUNK_BYTES = 16 << 20
MAX_LINE_BYTES = 4096  # a line can be 15 characters; a longer run without a line break is refused early
MAX_BYTES = 8 << 30  # uncompressed bytes an import may read (a full registry is about 3 GB of text)
_GZIP, _ZIP = b"\x1f\x8b", b"PK\x03\x04"
_BOM = b"\xef\xbb\xbf"

_SPACE = np.zeros(256, dtype=bool)
_SPACE[[9, 13, 32]] = True
_DIGIT = np.zeros(256, dtype=bool)
_DIGIT[48:58] = True
_FIELD = _DIGIT.copy()  # bytes a field is made of: a space between two of them is not "around" a field
_FIELD[65:91] = _FIELD[97:123] = True
_MARK = np.zeros(256, dtype=bool)
_MARK[[ord(c) for c in "AaDd"]] = True

# A line's shape by its length once spaces are gone: (kind, positions of the area code + number digits,
# positions of commas, position of the add/delete mark or None).
_SHAPES = {
    10: ("full", range(10), (), None),
    11: ("full", (*range(3), *range(4, 11)), (3,), None),
    12: ("changes", range(10), (10,), 11),
    13: ("changes", (*range(3), *range(4, 11)), (3, 11), 12),
}


class RegistryKind(StrEnum):
    FULL = "full"  # every listed number of the area codes it names
    CHANGES = "changes"  # numbers added to and deleted from the registry since the last download


FULL_LINE = "a full-list line (NNNNNNNNNN or NNN,NNNNNNN)"
CHANGE_LINE = "a change-list line (NNN,NNNNNNN,A or NNN,NNNNNNN,D)"
ANY_LINE = f"{FULL_LINE} or {CHANGE_LINE}"


class RegistryRefused(DialerError):
    """An import refused whole; the message is one sentence naming the file (and line)."""


@dataclass(frozen=True)
class RegistryFile:
    """A file to import: the name sentences show (a path or bucket key) and how to open it."""

    name: str
    open: Callable[[], BinaryIO]


@dataclass(frozen=True)
class Records:
    """One chunk's records: area code, 7-digit number, and for a change list whether each adds."""

    kind: RegistryKind
    area: np.ndarray  # int32
    local: np.ndarray  # uint32
    add: np.ndarray  # bool; all True in a full list


def refusal(name: str, line: int, expected: str, got: bytes) -> RegistryRefused:
    shown = escaped(got.decode("utf-8", "replace").strip())
    shown = shown if len(shown) <= 40 else shown[:40] + "…"
    return RegistryRefused(f"{name}, line {line:,}: expected {expected}, got {shown!r}; no version was made.")


def _line_text(chunk: np.ndarray, index: int) -> bytes:
    """The `index`th line (from 0) of a chunk as it was read."""
    breaks = np.flatnonzero(chunk == 10)
    start = int(breaks[index - 1]) + 1 if index > 0 else 0
    end = int(breaks[index]) if index < len(breaks) else len(chunk)
    return chunk[start:end].tobytes()


class ChunkParser:
    """Parses the chunks of one import, holding the kind its first record (or the caller) set."""

    def __init__(self, kind: RegistryKind | None) -> None:
        self.kind = kind
        self.asserted = kind is not None
        self.first: str | None = None  # "<file>, line N", where an inferred kind was set

    def expected(self) -> str:
        if self.kind is None:
            return ANY_LINE
        line = FULL_LINE if self.kind == RegistryKind.FULL else CHANGE_LINE
        flag = "--full" if self.kind == RegistryKind.FULL else "--changes"
        what = "a full list" if self.kind == RegistryKind.FULL else "a change list"
        why = f"{flag} was given" if self.asserted else f"the import is {what} from {self.first} on"
        return f"{line} because {why} (one import is one kind)"

    def _fixed_width(self, raw: np.ndarray, name: str, first_line: int) -> tuple[Records, int] | None:
        """A chunk whose lines all have one shape and no spaces (the FTC's files, most exports), read
        as a matrix by column, without gathering; None when it is not one (the general path decides)."""
        breaks = np.flatnonzero(raw[:16] == 10)
        if not len(breaks):
            return None
        width = int(breaks[0]) + 1
        if width - 1 not in _SHAPES or len(raw) % width:
            return None
        matrix = raw.reshape(-1, width)
        kind = RegistryKind(_SHAPES[width - 1][0])
        if (self.kind not in (None, kind)) or not (matrix[:, -1] == 10).all():
            return None
        ok, dialable, area, local, add = _decode(lambda position: matrix[:, position], len(matrix), width - 1)
        if not (ok.all() and dialable.all()):
            return None
        if self.kind is None:
            self.kind, self.first = kind, f"{name}, line {first_line:,}"
        return Records(kind, area, local, add), len(matrix)

    def parse(self, raw: np.ndarray, name: str, first_line: int) -> tuple[Records | None, int]:
        """A chunk of whole lines (bytes as uint8) → its records and how many lines it held."""
        fast = self._fixed_width(raw, name, first_line)
        if fast is not None:
            return fast
        space = _SPACE[raw]
        kept = raw
        if space.any():
            where = np.flatnonzero(~space)
            kept = raw[where]
            # A space between two characters of one field ("212 5550100") is not "around" a field.
            inside = (np.diff(where) > 1) & _FIELD[kept[:-1]] & _FIELD[kept[1:]]
            if inside.any():
                first = int(np.argmax(inside)) + 1
                index = int(np.count_nonzero(kept[:first] == 10))
                raise refusal(name, first_line + index, self.expected(), _line_text(raw, index))
        breaks = np.flatnonzero(kept == 10)
        lines = len(breaks) + (1 if len(kept) and kept[-1] != 10 else 0)
        starts = np.empty(lines, dtype=np.int64)
        starts[0:1] = 0
        starts[1:] = breaks[: lines - 1] + 1
        ends = np.append(breaks, len(kept))[:lines]
        lengths = ends - starts
        bad_index = lines  # the first refused line's index in the chunk
        out_of_range = lines  # the first well-formed line whose area code or exchange is not 200-999
        parts: list[tuple[np.ndarray, RegistryKind, np.ndarray, np.ndarray, np.ndarray]] = []
        for length, (kind_name, *_) in _SHAPES.items():
            rows = np.flatnonzero(lengths == length)
            if not len(rows):
                continue
            kind = RegistryKind(kind_name)
            at = starts[rows]
            ok, dialable, area, local, add = _decode(lambda position: kept[at + position], len(rows), length)
            if not ok.all():
                bad_index = min(bad_index, int(rows[np.argmin(ok)]))
            if not dialable.all() and int(rows[np.argmin(dialable)]) < min(bad_index, out_of_range):
                out_of_range = int(rows[np.argmin(dialable)])
            parts.append((rows, kind, area, local, add))
        shaped = np.zeros(lines, dtype=bool)
        shaped[lengths == 0] = True
        for rows, *_ in parts:
            shaped[rows] = True
        if not shaped.all():
            bad_index = min(bad_index, int(np.argmin(shaped)))
        kinds = {kind for _, kind, *_ in parts}
        if self.kind is None and kinds:
            first_kind = min(parts, key=lambda p: p[0][0])[1]
            first_row = int(min(p[0][0] for p in parts))
            if first_row < bad_index:
                self.kind, self.first = first_kind, f"{name}, line {first_line + first_row:,}"
        for rows, kind, *_ in parts:
            if kind != self.kind and self.kind is not None:
                bad_index = min(bad_index, int(rows[0]))
        if out_of_range < bad_index:
            raise refusal(name, first_line + out_of_range, "an area code and an exchange of 200-999",
                          _line_text(raw, out_of_range))
        if bad_index < lines:
            raise refusal(name, first_line + bad_index, self.expected(), _line_text(raw, bad_index))
        if not parts:
            return None, lines
        if len(parts) == 1:
            _, kind, area, local, add = parts[0]
            return Records(kind, area, local, add), lines
        order = np.argsort(np.concatenate([p[0] for p in parts]), kind="stable")  # back to file order
        return Records(
            parts[0][1],
            np.concatenate([p[2] for p in parts])[order],
            np.concatenate([p[3] for p in parts])[order],
            np.concatenate([p[4] for p in parts])[order],
        ), lines


def _decode(column: Callable[[int], np.ndarray], count: int, length: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lines of one shape, given their characters column by column → (well formed, area code and
    exchange dialable, area code, 7-digit number, adds)."""
    _, digits, commas, mark = _SHAPES[length]
    ok = np.ones(count, dtype=bool)
    whole = np.zeros(count, dtype=np.int64)
    for position in digits:
        values = column(position)
        ok &= _DIGIT[values]
        whole = whole * 10 + (values.astype(np.int64) - 48)
    for position in commas:
        ok &= column(position) == 44
    add = np.ones(count, dtype=bool)
    if mark is not None:
        values = column(mark)
        ok &= _MARK[values]
        add = (values | 0x20) == ord("a")
    area, local = whole // 10_000_000, whole % 10_000_000
    dialable = (area >= 200) & (area <= 999) & (local >= 2_000_000)
    return ok, dialable, area.astype(np.int32), local.astype(np.uint32), add


class Budget:
    """The uncompressed bytes an import may still read."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.used = max_bytes, 0

    def take(self, n: int, name: str) -> None:
        self.used += n
        if self.used > self.max_bytes:
            raise RegistryRefused(
                f"{name}: the import's files expand to more than {self.max_bytes:,} bytes of text, more than "
                "the whole registry takes; it is refused as a possible zip bomb, split it into several imports."
            )


def _chunks(stream: BinaryIO, name: str, budget: Budget) -> Iterator[tuple[np.ndarray, int]]:
    """A stream as chunks of whole lines (uint8 arrays) with each chunk's first line number."""
    carry, line, first = b"", 1, True
    while True:
        data = stream.read(CHUNK_BYTES)
        budget.take(len(data), name)
        if first:
            if data.startswith((_GZIP, _ZIP)):
                raise RegistryRefused(f"{name}: is an archive inside an archive; unpack it and import its files.")
            data, first = data.removeprefix(_BOM), not data
        if not data:
            if carry:
                yield np.frombuffer(carry, dtype=np.uint8), line
            return
        buffer = carry + data if carry else data
        cut = buffer.rfind(b"\n")
        if len(buffer) - cut - 1 > MAX_LINE_BYTES:
            raise refusal(name, line + buffer.count(b"\n", 0, cut + 1), ANY_LINE, buffer[cut + 1: cut + 61])
        if cut < 0:
            carry = buffer
            continue
        chunk = np.frombuffer(buffer, dtype=np.uint8, count=cut + 1)
        yield chunk, line
        line += int(np.count_nonzero(chunk == 10))
        carry = buffer[cut + 1:]


def read(file: RegistryFile, budget: Budget) -> Iterator[tuple[str, np.ndarray, int]]:
    """Every chunk of a file as (the name to show, chunk, its first line number): a plain file, a
    gzip stream, or each member of a zip in turn."""
    try:
        with file.open() as raw:
            magic = raw.read(4)
            raw.seek(0)
            if magic.startswith(_GZIP):
                with gzip.GzipFile(fileobj=raw) as stream:
                    for chunk, line in _chunks(stream, file.name, budget):  # type: ignore[arg-type]
                        yield file.name, chunk, line
            elif magic == _ZIP:
                yield from _zip_members(raw, file.name, budget)
            else:
                for chunk, line in _chunks(raw, file.name, budget):
                    yield file.name, chunk, line
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise RegistryRefused(f"{file.name}: cannot be read ({exc}); no version was made.") from None


def _zip_members(raw: BinaryIO, name: str, budget: Budget) -> Iterator[tuple[str, np.ndarray, int]]:
    with zipfile.ZipFile(raw) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            member = f"{name}:{info.filename}"
            if info.filename.lower().endswith((".zip", ".gz", ".tgz", ".7z", ".rar", ".bz2", ".xz")):
                raise RegistryRefused(f"{member}: is an archive inside an archive; unpack it and import its files.")
            if info.file_size > budget.max_bytes - budget.used:
                budget.take(info.file_size, member)
            try:
                stream = archive.open(info)
            except (NotImplementedError, RuntimeError) as exc:  # encrypted, or a method zipfile lacks
                raise RegistryRefused(f"{member}: cannot be read ({exc}); no version was made.") from None
            with stream:
                for chunk, line in _chunks(stream, member, budget):  # type: ignore[arg-type]
                    yield member, chunk, line
