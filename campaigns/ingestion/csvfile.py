"""Reading prospect CSV files the way ops actually produce them.

Accepts UTF-8 with or without BOM and falls back to Windows-1252/Latin-1;
CRLF or LF; quoted fields with commas and newlines; `,` `;` tab or `|`
delimiters (sniffed); gzip-compressed `.csv.gz`. Header names match case-
and space-insensitively with common aliases; columns the dialer does not know
become the prospect's custom fields. A file that cannot be read as a CSV of
prospects is refused whole (`FileRejected`) with one sentence naming it.

Memory is bounded by design, whatever the file: a row (quoted line breaks
included) is refused once it passes `MAX_ROW_CHARS` while it is being read,
before it is held whole; a header wider than `MAX_COLUMNS` is refused; rows
come in batches bounded by an estimate of their size in memory
(`BATCH_BYTES`) as well as by count (`BATCH_ROWS`); and a file is refused
once it passes its upload limits (`ReadLimits`: rows, and characters after
decompression), so a small gzip cannot expand without bound.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from campaigns.core.errors import DialerError

BATCH_ROWS = 50_000
# What a batch may hold, estimated as the characters read plus CELL_BYTES per cell: the
# Python strings, the DataFrame and the JSON built from it and the COPY payload
# take a small multiple of this, twice over while one batch is written and the
# next is read. Narrow files stay at BATCH_ROWS per batch (about 25 MB).
BATCH_BYTES = 32 * 1024 * 1024
CELL_BYTES = 64
# A row, quoted line breaks included, is refused beyond this many characters; a
# single field beyond csv.field_size_limit() (131,072).
MAX_ROW_CHARS = 1024 * 1024
MAX_COLUMNS = 10_000
SAMPLE_BYTES = 64 * 1024
DELIMITERS = ",;\t|"

# Canonical column → accepted header spellings, in order of preference.
ALIASES: dict[str, tuple[str, ...]] = {
    "phone": (
        "primary_phone", "phone_number", "phone", "phonenumber", "primary_phone_number",
        "telephone", "telephone_number", "tel", "mobile", "mobile_phone", "cell", "cell_phone",
    ),
    "first_name": ("first_name", "firstname", "first", "given_name"),
    "last_name": ("last_name", "lastname", "last", "surname", "family_name"),
    "state": ("state", "st", "province", "state_province", "state_or_province"),
    "zip": ("zip", "zip_code", "zipcode", "postal_code", "postcode", "postal", "zip_postal_code"),
}
KNOWN = tuple(ALIASES)

_MAGIC = [
    (b"PK\x03\x04", "a ZIP archive or Excel workbook (.xlsx); export the sheet as CSV"),
    (b"\xd0\xcf\x11\xe0", "an old Excel/Office document (.xls); export the sheet as CSV"),
    (b"%PDF", "a PDF document, not a CSV file"),
    (b"\x89PNG", "a PNG image, not a CSV file"),
    (b"GIF8", "a GIF image, not a CSV file"),
    (b"\xff\xd8\xff", "a JPEG image, not a CSV file"),
]


class FileRejected(DialerError):
    """The whole file cannot be loaded; the message is one sentence naming it."""


@dataclass(frozen=True)
class ReadLimits:
    """An upload's size limits (the campaign's `uploads.max_rows` and `uploads.max_uncompressed_bytes`)."""

    max_rows: int | None = None
    max_uncompressed_bytes: int | None = None

    def too_large(self, name: str) -> FileRejected:
        size = "expands to more than" if name.lower().endswith(".gz") else "is larger than"
        return FileRejected(
            f"{name}: {size} {self.max_uncompressed_bytes:,} bytes, the campaign's "
            "uploads.max_uncompressed_bytes; split it into smaller files or raise that setting in "
            "the campaign file."
        )

    def too_many_rows(self, name: str) -> FileRejected:
        return FileRejected(
            f"{name}: has more than {self.max_rows:,} rows, the campaign's uploads.max_rows; split it "
            "into smaller files or raise that setting in the campaign file."
        )


NO_LIMITS = ReadLimits()


@dataclass(frozen=True)
class Layout:
    """How to read a file: found once, from its bytes and its header."""

    encoding: str
    delimiter: str
    header: tuple[str, ...]
    columns: dict[str, int]  # canonical name → column index
    custom: dict[str, int]  # custom field name → column index
    compressed: bool
    size_bytes: int

    def as_json(self) -> dict:
        """What `prospect_lists.file_format` stores: enough to read the file again without a scan."""
        return {
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "header": list(self.header),
            "columns": dict(self.columns),
            "custom": dict(self.custom),
            "compressed": self.compressed,
            "size_bytes": self.size_bytes,
        }

    @classmethod
    def from_json(cls, data: dict) -> Layout:
        return cls(
            encoding=data["encoding"],
            delimiter=data["delimiter"],
            header=tuple(data["header"]),
            columns={k: int(v) for k, v in data["columns"].items()},
            custom={k: int(v) for k, v in data["custom"].items()},
            compressed=bool(data["compressed"]),
            size_bytes=int(data["size_bytes"]),
        )


@dataclass
class Batch:
    """Up to BATCH_ROWS data rows (and about BATCH_BYTES), as raw strings; `problem` is set for rows
    that cannot be read."""

    row_numbers: list[int] = field(default_factory=list)
    phone: list[str] = field(default_factory=list)
    first_name: list[str] = field(default_factory=list)
    last_name: list[str] = field(default_factory=list)
    state: list[str] = field(default_factory=list)
    zip: list[str] = field(default_factory=list)
    custom_columns: dict[str, list[str]] = field(default_factory=dict)
    problem: list[str | None] = field(default_factory=list)
    # Share of the (possibly compressed) file read so far, for progress bars.
    progress: float = 0.0

    def __len__(self) -> int:
        return len(self.row_numbers)


def _parse_error(name: str, line: int, exc: csv.Error) -> str:
    text = str(exc)
    if "unexpected end of data" in text or "expected after" in text:
        return (
            f"{name}: has an unbalanced double quote near line {line} ({text}); a quoted field "
            "must end with a closing quote. Fix that line and upload the file again."
        )
    if "field larger than field limit" in text:
        return f"{name}: has a field longer than {csv.field_size_limit():,} characters near line {line}."
    return f"{name}: cannot be parsed as CSV near line {line}: {text}."


def _row_too_long(name: str, line: int, limit: int = MAX_ROW_CHARS) -> FileRejected:
    return FileRejected(
        f"{name}: the row starting at line {line:,} is longer than {limit:,} characters, the most a row may "
        "hold; the file was refused without reading that row whole. Check that its quotes are "
        "balanced, or shorten the row."
    )


def _normal(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "_", name.strip().casefold()).strip("_")


def open_binary(raw: BinaryIO, name: str) -> BinaryIO:
    """The file's bytes, decompressed when the name ends in .gz."""
    if name.lower().endswith(".gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


_CONTROL_BYTES = bytes([*range(0x01, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])


def _detect_encoding(stream: BinaryIO, name: str, limits: ReadLimits) -> tuple[str, int]:
    """Scan every byte once: refuse binary content and a file past its size limit, pick UTF-8(-sig)
    or the 8-bit fallback."""
    try:
        head = stream.read(SAMPLE_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise FileRejected(f"{name}: is not a readable gzip file ({exc}).") from None
    if not head.strip():
        raise FileRejected(f"{name}: is empty; expected a header row and at least one prospect.")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileRejected(f"{name}: is UTF-16 encoded; save it as \"CSV UTF-8\" and upload it again.")
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise FileRejected(f"{name}: is {what}.")
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8 = True
    cp1252 = True  # bytes 0x81 0x8D 0x8F 0x90 0x9D are undefined in Windows-1252
    size = 0
    chunk = head
    bad_controls = 0
    chars = 0
    max_bytes = limits.max_uncompressed_bytes
    # A stretch without a line break longer than any row may be (in bytes, at up to four a
    # character) is refused here, before the rest of a one-line 5 GB file is even scanned.
    max_run = 4 * MAX_ROW_CHARS
    run = 0  # bytes since the last line break
    lines = 1
    while chunk:
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise limits.too_large(name)
        last = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        if last < 0:
            run += len(chunk)
        else:
            first = min(i for i in (chunk.find(b"\n"), chunk.find(b"\r")) if i >= 0)
            if run + first > max_run:
                raise _row_too_long(name, lines)
            lines += chunk.count(b"\n")
            run = len(chunk) - last - 1
        if run > max_run:
            raise _row_too_long(name, lines)
        if b"\x00" in chunk:
            raise FileRejected(
                f"{name}: contains binary data (NUL bytes), not CSV text; export the list as CSV."
            )
        if utf8:
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                utf8 = False
        if cp1252 and re.search(rb"[\x81\x8d\x8f\x90\x9d]", chunk):
            cp1252 = False
        bad_controls += len(chunk) - len(chunk.translate(None, _CONTROL_BYTES))
        chars += len(chunk)
        try:
            chunk = stream.read(1 << 20)
        except (OSError, EOFError, zlib.error) as exc:
            raise FileRejected(f"{name}: is not a readable gzip file ({exc}).") from None
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    if bad_controls > max(8, chars // 100):
        raise FileRejected(
            f"{name}: has {bad_controls} control characters; it looks binary or is in an "
            "unreadable encoding. Export the list as CSV UTF-8."
        )
    if utf8:
        return ("utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"), size
    if head.startswith(codecs.BOM_UTF8):
        raise FileRejected(
            f"{name}: starts with a UTF-8 marker but is not valid UTF-8 further on; "
            "save it again as \"CSV UTF-8\"."
        )
    return ("cp1252" if cp1252 else "latin-1"), size


def _sniff_delimiter(sample: str) -> str:
    lines = [line for line in sample.splitlines() if line.strip()][:50]
    if not lines:
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        counts = {d: lines[0].count(d) for d in DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def _map_header(header: list[str], name: str) -> tuple[dict[str, int], dict[str, int]]:
    normal = [_normal(h) for h in header]
    columns: dict[str, int] = {}
    for canonical, spellings in ALIASES.items():
        for spelling in spellings:
            if spelling in normal and normal.index(spelling) not in columns.values():
                columns[canonical] = normal.index(spelling)
                break
    if "phone" not in columns:
        found = ", ".join(h.strip() or "(blank)" for h in header[:12])
        raise FileRejected(
            f"{name}: has no phone column; name one of primary_phone, phone, phone_number or "
            f"\"Phone Number\" (the header has: {found})."
        )
    custom: dict[str, int] = {}
    used = set(columns.values())
    next_suffix: dict[str, int] = {}  # so a header of 10,000 equal names is not read 10,000² times
    for index, heading in enumerate(header):
        if index in used:
            continue
        key = heading.strip() or f"column_{index + 1}"
        base, n = key, next_suffix.get(key, 2)
        while key in custom:
            key, n = f"{base}_{n}", n + 1
        next_suffix[base] = n
        custom[key] = index
    return columns, custom


def inspect(opener: Callable[[], BinaryIO], name: str, limits: ReadLimits = NO_LIMITS) -> Layout:
    """Read the file once to decide encoding, delimiter and columns, or refuse it whole."""
    with opener() as raw:
        stream = open_binary(raw, name)
        encoding, size = _detect_encoding(stream, name, limits)
    with opener() as raw:
        text = io.TextIOWrapper(open_binary(raw, name), encoding=encoding, newline="")
        sample = text.read(SAMPLE_BYTES)
        delimiter = _sniff_delimiter(sample)
    with opener() as raw:
        text = io.TextIOWrapper(open_binary(raw, name), encoding=encoding, newline="")
        lines = BoundedLines(text, name, limits)
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        header = None
        has_row = False
        try:
            for row in reader:
                lines.row_done()
                if not any(cell.strip() for cell in row):
                    continue
                if header is None:
                    header = row
                    continue
                has_row = True
                break
        except csv.Error as exc:
            raise FileRejected(_parse_error(name, reader.line_num, exc)) from None
        except UnicodeDecodeError as exc:
            raise FileRejected(f"{name}: cannot be decoded as {encoding} ({exc.reason}).") from None
    if header is None:
        raise FileRejected(f"{name}: is empty; expected a header row and at least one prospect.")
    if len(header) > MAX_COLUMNS:
        raise FileRejected(
            f"{name}: has {len(header):,} columns; a prospect list may have at most {MAX_COLUMNS:,}. "
            "Remove the columns the campaign does not need."
        )
    columns, custom = _map_header(header, name)
    if not has_row:
        raise FileRejected(f"{name}: has a header but no prospect rows.")
    return Layout(
        encoding=encoding,
        delimiter=delimiter,
        header=tuple(header),
        columns=columns,
        custom=custom,
        compressed=name.lower().endswith(".gz"),
        size_bytes=size,
    )


def _size_of(raw: BinaryIO) -> int:
    try:
        position = raw.tell()
        size = raw.seek(0, 2)
        raw.seek(position)
        return size or 0
    except (OSError, AttributeError, ValueError):
        return 0


class BoundedLines:
    """A text stream's lines for `csv.reader`, refusing a row once it passes MAX_ROW_CHARS.

    The csv module reads a whole line before it checks any field, so a file
    that is one 5 GB line would be held whole first: here no read asks for
    more than the row's remaining allowance. `row_done()` is called after each
    row the reader returns, since a quoted field may span lines. The whole
    text is refused once it passes `limits.max_uncompressed_bytes` characters
    (a character is at least one byte).
    """

    __slots__ = ("chars", "limits", "line", "max_chars", "name", "readline", "row_chars", "row_limit", "row_start")

    def __init__(
        self, text: io.TextIOBase, name: str, limits: ReadLimits = NO_LIMITS, row_limit: int = MAX_ROW_CHARS
    ) -> None:
        self.readline = text.readline
        self.name = name
        self.limits = limits
        self.max_chars = limits.max_uncompressed_bytes
        self.row_limit = row_limit
        self.row_chars = 0
        self.chars = 0
        self.line = 0
        self.row_start = 1

    def __iter__(self) -> BoundedLines:
        return self

    def __next__(self) -> str:
        line = self.readline(self.row_limit + 1 - self.row_chars)
        if not line:
            raise StopIteration
        self.line += 1
        if not self.row_chars:
            self.row_start = self.line
        self.row_chars += len(line)
        self.chars += len(line)
        if self.row_chars > self.row_limit:
            raise _row_too_long(self.name, self.row_start, self.row_limit)
        if self.max_chars is not None and self.chars > self.max_chars:
            raise self.limits.too_large(self.name)
        return line

    def row_done(self) -> None:
        self.row_chars = 0


def iter_rows(
    opener: Callable[[], BinaryIO],
    name: str,
    layout: Layout,
    progress: list[float] | None = None,
    limits: ReadLimits = NO_LIMITS,
    chars: list[int] | None = None,
) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) for every data row; row 1 is the first row after the header.

    Blank lines are not rows. Raises FileRejected when the CSV structure breaks
    (e.g. an unterminated quote), naming the line, and when the file passes a
    limit (a row's length, `limits`) as soon as it does. When `progress` is
    given, its first item is kept at the share of the file read so far; when
    `chars` is, at the characters read so far.
    """
    max_rows = limits.max_rows
    with opener() as raw:
        size = _size_of(raw) if progress is not None else 0
        text = io.TextIOWrapper(open_binary(raw, name), encoding=layout.encoding, newline="")
        lines = BoundedLines(text, name, limits)
        # strict: an unbalanced quote is an error instead of silently swallowing later rows
        reader = csv.reader(lines, delimiter=layout.delimiter, strict=True)
        seen_header = False
        number = 0
        try:
            for row in reader:
                lines.row_done()
                if not any(cell.strip() for cell in row):
                    continue
                if not seen_header:
                    seen_header = True
                    continue
                number += 1
                if max_rows is not None and number > max_rows:
                    raise limits.too_many_rows(name)
                if progress is not None and size and number % 1000 == 0:
                    progress[0] = min(1.0, raw.tell() / size)
                if chars is not None:
                    chars[0] = lines.chars
                yield number, row
        except csv.Error as exc:
            raise FileRejected(_parse_error(name, reader.line_num, exc)) from None
        except UnicodeDecodeError as exc:
            raise FileRejected(f"{name}: cannot be decoded as {layout.encoding} ({exc.reason}).") from None


def read_batches(
    opener: Callable[[], BinaryIO],
    name: str,
    layout: Layout,
    batch_rows: int = BATCH_ROWS,
    limits: ReadLimits = NO_LIMITS,
    batch_bytes: int = BATCH_BYTES,
) -> Iterator[Batch]:
    """The file's rows in batches of at most `batch_rows` rows and about `batch_bytes` of memory."""
    width = len(layout.header)
    col = layout.columns
    optional = {k: col.get(k) for k in ("first_name", "last_name", "state", "zip")}
    custom_items = list(layout.custom.items())

    def batch_of(numbers: list[int], columns: list[list[str]], problems: list[str | None], share: float) -> Batch:
        return Batch(
            row_numbers=numbers,
            phone=columns[col["phone"]],
            **{k: columns[i] if i is not None else [""] * len(numbers) for k, i in optional.items()},
            custom_columns={k: columns[i] for k, i in custom_items},
            problem=problems,
            progress=share,
        )

    numbers: list[int] = []
    columns: list[list[str]] = [[] for _ in range(width)]
    problems: list[str | None] = []
    progress = [0.0]
    chars = [0]
    batch_start = 0  # characters read before the batch's first row
    row_cost = CELL_BYTES * width
    for number, row in iter_rows(opener, name, layout, progress, limits, chars):
        problem = None
        if len(row) > width:
            problem = f"row has {len(row)} fields, the header has {width}"
        elif len(row) < width:
            row += [""] * (width - len(row))
        # Each cell goes to its column in a loop run by C (map stops at the header's width):
        # 5,000 columns cost no Python bytecode per cell, and no row is kept as a list.
        any(map(list.append, columns, row))
        numbers.append(number)
        problems.append(problem)
        if len(numbers) >= batch_rows or chars[0] - batch_start + row_cost * len(numbers) >= batch_bytes:
            yield batch_of(numbers, columns, problems, progress[0])
            numbers, columns, problems = [], [[] for _ in range(width)], []
            batch_start = chars[0]
    if numbers:
        yield batch_of(numbers, columns, problems, 1.0)
