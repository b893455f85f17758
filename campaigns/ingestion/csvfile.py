"""Reading prospect CSV files the way ops actually produce them.

Accepts UTF-8 with or without BOM and falls back to Windows-1252/Latin-1;
CRLF or LF; quoted fields with commas and newlines; `,` `;` tab or `|`
delimiters (sniffed); gzip-compressed `.csv.gz`. Header names match case-
and space-insensitively with common aliases; columns the dialer does not know
become the prospect's custom fields. A file that cannot be read as a CSV of
prospects is refused whole (`FileRejected`) with one sentence naming it.
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
    """Up to BATCH_ROWS data rows, as raw strings; `problem` is set for rows that cannot be read."""

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


def _normal(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "_", name.strip().casefold()).strip("_")


def open_binary(raw: BinaryIO, name: str) -> BinaryIO:
    """The file's bytes, decompressed when the name ends in .gz."""
    if name.lower().endswith(".gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def _detect_encoding(stream: BinaryIO, name: str) -> tuple[str, int]:
    """Scan every byte once: refuse binary content, pick UTF-8(-sig) or the 8-bit fallback."""
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
    while chunk:
        size += len(chunk)
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
        bad_controls += len(re.findall(rb"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]", chunk))
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
    for index, heading in enumerate(header):
        if index in used:
            continue
        key = heading.strip() or f"column_{index + 1}"
        base, n = key, 2
        while key in custom:
            key, n = f"{base}_{n}", n + 1
        custom[key] = index
    return columns, custom


def inspect(opener: Callable[[], BinaryIO], name: str) -> Layout:
    """Read the file once to decide encoding, delimiter and columns, or refuse it whole."""
    with opener() as raw:
        stream = open_binary(raw, name)
        encoding, size = _detect_encoding(stream, name)
    with opener() as raw:
        text = io.TextIOWrapper(open_binary(raw, name), encoding=encoding, newline="")
        sample = text.read(SAMPLE_BYTES)
        delimiter = _sniff_delimiter(sample)
    with opener() as raw:
        text = io.TextIOWrapper(open_binary(raw, name), encoding=encoding, newline="")
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        header = None
        has_row = False
        try:
            for row in reader:
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


def iter_rows(
    opener: Callable[[], BinaryIO], name: str, layout: Layout, progress: list[float] | None = None
) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) for every data row; row 1 is the first row after the header.

    Blank lines are not rows. Raises FileRejected when the CSV structure breaks
    (e.g. an unterminated quote), naming the line. When `progress` is given,
    its first item is kept at the share of the file read so far.
    """
    with opener() as raw:
        size = _size_of(raw) if progress is not None else 0
        text = io.TextIOWrapper(open_binary(raw, name), encoding=layout.encoding, newline="")
        # strict: an unbalanced quote is an error instead of silently swallowing later rows
        reader = csv.reader(text, delimiter=layout.delimiter, strict=True)
        seen_header = False
        number = 0
        try:
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if not seen_header:
                    seen_header = True
                    continue
                number += 1
                if progress is not None and size and number % 1000 == 0:
                    progress[0] = min(1.0, raw.tell() / size)
                yield number, row
        except csv.Error as exc:
            raise FileRejected(_parse_error(name, reader.line_num, exc)) from None
        except UnicodeDecodeError as exc:
            raise FileRejected(f"{name}: cannot be decoded as {layout.encoding} ({exc.reason}).") from None


def read_batches(
    opener: Callable[[], BinaryIO], name: str, layout: Layout, batch_rows: int = BATCH_ROWS
) -> Iterator[Batch]:
    width = len(layout.header)
    col = layout.columns
    phone_i = col["phone"]
    optional = {k: col.get(k) for k in ("first_name", "last_name", "state", "zip")}
    custom_items = list(layout.custom.items())
    def new_batch() -> Batch:
        return Batch(custom_columns={k: [] for k, _ in custom_items})

    batch = new_batch()
    progress = [0.0]
    for number, row in iter_rows(opener, name, layout, progress):
        problem = None
        if len(row) > width:
            problem = f"row has {len(row)} fields, the header has {width}"
        elif len(row) < width:
            row = row + [""] * (width - len(row))
        batch.row_numbers.append(number)
        batch.phone.append(row[phone_i])
        for key, index in optional.items():
            getattr(batch, key).append(row[index] if index is not None else "")
        for key, index in custom_items:
            batch.custom_columns[key].append(row[index])
        batch.problem.append(problem)
        if len(batch) >= batch_rows:
            batch.progress = progress[0]
            yield batch
            batch = new_batch()
    if len(batch):
        batch.progress = 1.0
        yield batch
