"""Reading CSV files as ops produce them, and refusing whole files with one sentence."""

from __future__ import annotations

import codecs
import gzip
import io

import pytest

from campaigns.ingestion import csvfile


def _read(data: bytes, name: str = "list.csv"):
    opener = lambda: io.BytesIO(data)  # noqa: E731
    layout = csvfile.inspect(opener, name)
    rows = []
    for b in csvfile.read_batches(opener, name, layout):
        custom = [
            {k: values[i] for k, values in b.custom_columns.items() if values[i] != ""} for i in range(len(b))
        ]
        rows += list(zip(b.row_numbers, b.phone, b.first_name, b.state, b.zip, custom, b.problem))
    return layout, rows


def test_utf8_bom_crlf_quotes_and_aliases():
    text = 'Phone Number,First Name,State,Zip Code,Notes\r\n"(415) 555-1234","Ann, Jr.",CA,94103,"line one\r\nline two"\r\n\r\n212-555-0100,Zoë,NY,10001,\r\n'
    layout, rows = _read(codecs.BOM_UTF8 + text.encode("utf-8"))
    assert layout.encoding == "utf-8-sig" and layout.delimiter == ","
    assert layout.columns == {"phone": 0, "first_name": 1, "state": 2, "zip": 3}
    assert list(layout.custom) == ["Notes"]
    assert rows[0] == (1, "(415) 555-1234", "Ann, Jr.", "CA", "94103", {"Notes": "line one\r\nline two"}, None)
    assert rows[1][:3] == (2, "212-555-0100", "Zoë")  # the blank line is not a row


@pytest.mark.parametrize("delimiter", [";", "\t", "|", ","])
def test_delimiters_are_sniffed(delimiter):
    text = delimiter.join(["primary_phone", "last_name", "zip"]) + "\n" + delimiter.join(["4155551234", "Smith", "94103"]) + "\n"
    layout, rows = _read(text.encode())
    assert layout.delimiter == delimiter
    assert rows[0][1] == "4155551234"


@pytest.mark.parametrize("heading", ["primary_phone", "phone", "phone_number", "Phone Number", "  PHONE  ", "Phone-Number", "Telephone"])
def test_phone_header_aliases(heading):
    layout, rows = _read(f"{heading},name\n4155551234,A\n".encode())
    assert layout.columns["phone"] == 0
    assert layout.custom == {"name": 1}


def test_latin1_fallback():
    layout, rows = _read("phone,first_name\n4155551234,Jos\xe9\n".encode("latin-1"))
    assert layout.encoding in ("cp1252", "latin-1")
    assert rows[0][2] == "José"


def test_gzip_file():
    layout, rows = _read(gzip.compress(b"phone\n4155551234\n4155551235\n"), "list.csv.gz")
    assert layout.compressed and [r[1] for r in rows] == ["4155551234", "4155551235"]


def test_ragged_rows_are_problems_not_losses():
    layout, rows = _read(b"phone,name\n4155551234,A,extra\n4155551235\n")
    assert rows[0][-1] == "row has 3 fields, the header has 2"
    assert rows[1][-1] is None and rows[1][1] == "4155551235"


def test_duplicate_and_blank_custom_headers_keep_every_column():
    layout, rows = _read(b"phone,note,note,\n4155551234,a,b,c\n")
    assert list(layout.custom) == ["note", "note_2", "column_4"]
    assert rows[0][5] == {"note": "a", "note_2": "b", "column_4": "c"}


@pytest.mark.parametrize(
    ("data", "name", "sentence"),
    [
        (b"name,email\nAnn,a@example.com\n", "x.csv", "x.csv: has no phone column; name one of primary_phone, phone, phone_number"),
        (b"phone,name\n", "x.csv", "x.csv: has a header but no prospect rows."),
        (b"phone,name\n\n\r\n", "x.csv", "x.csv: has a header but no prospect rows."),
        (b"", "x.csv", "x.csv: is empty"),
        (b"   \n\n", "x.csv", "x.csv: is empty"),
        (b"phone\n415\x00555\n", "x.csv", "x.csv: contains binary data (NUL bytes)"),
        (b"PK\x03\x04\x14\x00\x06\x00", "x.csv", "x.csv: is a ZIP archive or Excel workbook (.xlsx); export the sheet as CSV."),
        (codecs.BOM_UTF16_LE + "phone\n4155551234\n".encode("utf-16-le"), "x.csv", "x.csv: is UTF-16 encoded"),
        (b"not gzip at all", "x.csv.gz", "x.csv.gz: is not a readable gzip file"),
        (bytes(range(1, 32)) * 50 + b"\nphone\n", "x.csv", "looks binary or is in an unreadable encoding"),
    ],
)
def test_whole_file_rejections_are_one_sentence(data, name, sentence):
    with pytest.raises(csvfile.FileRejected) as info:
        csvfile.inspect(lambda: io.BytesIO(data), name)
    assert sentence in str(info.value)
    assert "\n" not in str(info.value)


def test_an_unbalanced_quote_refuses_the_file_instead_of_swallowing_rows():
    data = b"phone,name\n" + b"".join(b"212555%04d,Ann\n" % i for i in range(4)) + b'2125550005,"Bob,ok\n' + b"".join(
        b"212555%04d,Cy\n" % i for i in range(6, 1000)
    )
    opener = lambda: io.BytesIO(data)  # noqa: E731
    layout = csvfile.inspect(opener, "x.csv")
    with pytest.raises(csvfile.FileRejected, match="x.csv: has an unbalanced double quote near line"):
        list(csvfile.read_batches(opener, "x.csv", layout))


def test_cp1252_or_latin1_is_decided_from_the_whole_file():
    # 0x93/0x94 are curly quotes in Windows-1252; 0x81 further on is undefined there.
    body = "".join(f"4155551{i:03d},Ann\n" for i in range(999)).encode() * 10
    data = b"phone,name\n" + body + b"4155550000,\x93Q\x94\n" + b"4155550001,Z\x81\n"
    layout = csvfile.inspect(lambda: io.BytesIO(data), "x.csv")
    assert layout.encoding == "latin-1"
    names = [n for b in csvfile.read_batches(lambda: io.BytesIO(data), "x.csv", layout) for n in b.custom_columns["name"]]
    assert names[-2:] == ["\x93Q\x94", "Z\x81"]


def test_a_utf8_bom_then_invalid_utf8_is_refused():
    data = codecs.BOM_UTF8 + b"phone,name\n4155551234,Jos\xe9\n"
    with pytest.raises(csvfile.FileRejected, match="starts with a UTF-8 marker but is not valid UTF-8"):
        csvfile.inspect(lambda: io.BytesIO(data), "x.csv")
