"""Hostile but honest prospect files: memory bounded by design, one sentence, nothing left half-way.

The memory cases run `dialer list upload` in a child process under an address-space limit
(`RLIMIT_AS`, 1.5 GiB, set before anything is imported) and also read the child's own peak
RSS, which must stay under 1 GB. The child's mimalloc (pyarrow's allocator) is told to
reserve 64 MiB of address space per arena instead of 1 GiB (`MIMALLOC_ARENA_RESERVE`):
that reservation is never touched, so it costs no memory, but `RLIMIT_AS` counts it, and
with it the job's imports and threads alone (about 0.8 GiB of address space for 0.3 GB
resident) would leave almost nothing under the limit. Each hostile file is generated on
the fly as a gzip of repeated members, so a gigabyte of CSV costs a megabyte of disk.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from campaigns.core import schema as t
from campaigns.ingestion import csvfile, staging_table
from campaigns.ingestion.bucket import MAX_NAME_BYTES, Bucket, fitted_key
from dialer_cli.main import app
from tests.helpers import UPLOADS_CAMPAIGN, apply_campaign

ROOT = Path(__file__).resolve().parent.parent
AS_LIMIT = 1536 * 1024 * 1024
PEAK_RSS_MB = 1024
runner = CliRunner()

CHILD = """
import resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import atexit

def _peak():
    with open(sys.argv[2], "w") as out:
        out.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))

atexit.register(_peak)
from dialer_cli.main import app
app(sys.argv[3:], prog_name="dialer")
"""


def _member(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def repeated_gzip(path: Path, head: bytes, block: bytes, times: int, tail: bytes = b"") -> Path:
    """A gzip of `head`, `times` × `block` and `tail`: `block` is compressed once and its member
    written again and again (a gzip may hold many members; readers join them)."""
    member = _member(block)
    with path.open("wb") as out:
        out.write(_member(head))
        for _ in range(times):
            out.write(member)
        if tail:
            out.write(_member(tail))
    return path


def rows_block(count: int, extra: str = "") -> bytes:
    return "".join(f"415555{i % 10_000:04d}{extra}\n" for i in range(count)).encode()


def upload_in_child(path: Path, target: str = "acme/renewals") -> tuple[subprocess.CompletedProcess, int]:
    """`dialer list upload` in a child under RLIMIT_AS; (the finished process, its peak RSS in MB)."""
    peak = path.with_suffix(".peak")
    env = dict(os.environ, MIMALLOC_ARENA_RESERVE="64MiB", COLUMNS="200")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(AS_LIMIT), str(peak), "list", "upload", target, str(path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    return done, int(peak.read_text()) // 1024


def one_line(text: str) -> str:
    return " ".join(text.split())


def upload_row(engine, filename: str):
    with engine.connect() as conn:
        return conn.execute(
            sa.select(t.prospect_lists).where(t.prospect_lists.c.filename == filename)
        ).one()


def staged_rows(engine, upload_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(t.upload_rows).where(t.upload_rows.c.upload_id == upload_id)
        ).scalar_one()


def assert_refused(engine, bucket: Path, filename: str, stderr: str, *sentence: str) -> None:
    """Refused whole: the sentence and no traceback, the upload rejected with it, nothing staged,
    the file in rejected/ beside its explanation and gone from the inbox."""
    said = one_line(stderr)
    assert said.startswith(f"error: inbox/acme/renewals/{filename}: "), said
    assert all(part in said for part in sentence), said
    assert "Traceback" not in stderr and "Error occurred while executing" not in stderr
    upload = upload_row(engine, filename)
    assert upload.status == "rejected" and all(part in upload.error for part in sentence)
    assert staged_rows(engine, upload.id) == 0
    assert not (bucket / "inbox/acme/renewals" / filename).exists()
    assert (bucket / "rejected/acme/renewals" / filename).exists()
    explanation = (bucket / "rejected/acme/renewals" / f"{filename}.error.txt").read_text()
    assert all(part in one_line(explanation) for part in sentence)


def campaign_with(engine, **uploads):
    return apply_campaign(engine, {**UPLOADS_CAMPAIGN, "uploads": uploads})


@pytest.fixture
def bucket(dialer_env) -> Path:
    return Path(dialer_env["DIALER_HOME"]) / "bucket"


# --- memory: each case in a child under RLIMIT_AS ----------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_gzip_of_one_huge_line_is_refused_before_the_line_is_read(engine, bucket, tmp_path):
    campaign_with(engine)
    # 1.1 GB: one row of 'a's after a good one, from a 1 MB file.
    path = repeated_gzip(tmp_path / "oneline.csv.gz", b"phone,note\n4155551234,x\n4155551235,", b"a" * (1 << 20),
                         1100, b"\n4155551236,x\n")
    assert path.stat().st_size < 2 * 1024 * 1024
    done, peak_mb = upload_in_child(path)
    assert done.returncode == 2, done.stderr
    assert_refused(engine, bucket, "oneline.csv.gz", done.stderr,
                   "the row starting at line 3 is longer than 1,048,576 characters")
    assert peak_mb < PEAK_RSS_MB


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_gzip_that_expands_past_the_campaigns_limit_is_refused(engine, bucket, tmp_path):
    campaign_with(engine, max_uncompressed_bytes=64 * 1024 * 1024)
    # About 1 GB of valid rows (75 million) from a few megabytes.
    path = repeated_gzip(tmp_path / "bomb.csv.gz", b"phone,note\n", rows_block(1000, ",x") * 1000, 80)
    done, peak_mb = upload_in_child(path)
    assert done.returncode == 2, done.stderr
    assert_refused(engine, bucket, "bomb.csv.gz", done.stderr,
                   "expands to more than 67,108,864 bytes", "uploads.max_uncompressed_bytes")
    assert peak_mb < PEAK_RSS_MB


def test_a_file_past_max_rows_is_refused_and_its_staged_rows_dropped(engine, bucket, tmp_path):
    campaign_with(engine, max_rows=60_000)
    # One batch (50,000 rows) is staged before row 60,001 refuses the file.
    path = repeated_gzip(tmp_path / "many.csv.gz", b"phone,note\n", rows_block(10_000, ",x"), 7)
    done, peak_mb = upload_in_child(path)
    assert done.returncode == 2, done.stderr
    assert_refused(engine, bucket, "many.csv.gz", done.stderr, "has more than 60,000 rows", "uploads.max_rows")
    assert peak_mb < PEAK_RSS_MB


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_5000_column_file_loads_in_batches_bounded_by_bytes(engine, bucket, tmp_path):
    campaign_with(engine)
    # 100 MB of 20-character cells, 5,000 a row: read 50,000 rows at a time (all of it at once)
    # this took more than the 1.5 GiB of address space.
    cells = b"," + b",".join([b"abcdefghijklmnopqrst"] * 4999) + b"\n"
    with gzip.open(tmp_path / "wide.csv.gz", "wb", compresslevel=1) as out:
        out.write(("phone," + ",".join(f"field_{i}" for i in range(4999)) + "\n").encode())
        for i in range(1000):  # distinct numbers: no rejects file to write
            out.write(f"(415) 555-{i:04d}".encode() + cells)
    path = tmp_path / "wide.csv.gz"
    done, peak_mb = upload_in_child(path)
    assert done.returncode == 0, done.stderr
    upload = upload_row(engine, "wide.csv.gz")
    assert (upload.status, upload.rows, upload.loaded) == ("loaded", 1000, 1000)
    assert staged_rows(engine, upload.id) == 0
    assert (bucket / "processed/acme/renewals/wide.csv.gz").exists()
    assert peak_mb < PEAK_RSS_MB


# --- the same limits, read in process ------------------------------------------------------


def test_a_row_spanning_many_lines_is_refused_once_it_passes_the_limit():
    # Every line is short and every field under the field limit, but the row goes on.
    field = '"' + "b\n" * 1000 + '"'
    data = ("phone,note\n4155551234," + ",".join([field] * 600) + "\n").encode()
    with pytest.raises(csvfile.FileRejected) as refused:
        csvfile.inspect(lambda: io.BytesIO(data), "quoted.csv")
    assert "quoted.csv: the row starting at line 2 is longer than 1,048,576 characters" in str(refused.value)


def test_a_field_past_the_field_limit_is_refused_with_its_line():
    data = b"phone,note\n4155551234,x\n4155551235," + b"c" * 200_000 + b"\n"
    layout = csvfile.inspect(lambda: io.BytesIO(data), "field.csv")
    with pytest.raises(csvfile.FileRejected) as refused:
        list(csvfile.read_batches(lambda: io.BytesIO(data), "field.csv", layout))
    assert str(refused.value) == "field.csv: has a field longer than 131,072 characters near line 3."


def test_a_plain_file_past_the_size_limit_is_refused_by_the_scan():
    data = b"phone\n" + b"4155551234\n" * 500
    with pytest.raises(csvfile.FileRejected) as refused:
        csvfile.inspect(lambda: io.BytesIO(data), "big.csv", csvfile.ReadLimits(max_uncompressed_bytes=1024))
    assert str(refused.value).startswith("big.csv: is larger than 1,024 bytes, the campaign's uploads.max_uncompressed_bytes")


def test_a_header_wider_than_the_column_limit_is_refused():
    data = ("phone," + ",".join(f"c{i}" for i in range(csvfile.MAX_COLUMNS)) + "\n4155551234\n").encode()
    with pytest.raises(csvfile.FileRejected) as refused:
        csvfile.inspect(lambda: io.BytesIO(data), "columns.csv")
    assert "columns.csv: has 10,001 columns; a prospect list may have at most 10,000" in str(refused.value)


def test_batches_are_bounded_by_bytes_as_well_as_rows():

    cells = 200
    lines = [f"415555{i:04d},".encode() + b",".join([b"x" * 30] * (cells - 1)) + b"\n" for i in range(1000)]
    data = ("phone," + ",".join(f"c{i}" for i in range(cells - 1)) + "\n").encode() + b"".join(lines)
    layout = csvfile.inspect(lambda: io.BytesIO(data), "w.csv")
    row_cost = len(lines[0]) + cells * csvfile.CELL_BYTES  # its characters, and what each cell costs
    batches = list(csvfile.read_batches(lambda: io.BytesIO(data), "w.csv", layout, batch_bytes=100 * row_cost))
    assert [len(b) for b in batches] == [100] * 10
    assert [b.row_numbers[0] for b in batches] == list(range(1, 1001, 100))
    assert batches[3].custom_columns["c7"][0] == "x" * 30 and batches[3].phone[0] == "4155550300"


def test_upload_limits_are_settings_with_defaults(engine):
    from campaigns.setup.registry import load_settings
    from campaigns.setup.settings import SettingsError, parse_settings

    settings = parse_settings(UPLOADS_CAMPAIGN)
    assert (settings.uploads.max_rows, settings.uploads.max_uncompressed_bytes) == (5_000_000, 2 * 1024**3)
    with pytest.raises(SettingsError) as refused:
        parse_settings({**UPLOADS_CAMPAIGN, "uploads": {"max_rows": 0}})
    assert "`uploads.max_rows` must be" in str(refused.value)
    applied = campaign_with(engine, max_rows=1234, max_uncompressed_bytes=4096)
    with engine.connect() as conn:
        stored = load_settings(conn, applied.campaign_id).uploads
    assert (stored.max_rows, stored.max_uncompressed_bytes) == (1234, 4096)


def test_a_file_of_one_repeated_number_is_deduplicated_a_part_at_a_time(engine, dialer_env, tmp_path, monkeypatch):
    campaign_with(engine)
    monkeypatch.setattr(staging_table, "FETCH_ROWS", 2)
    monkeypatch.setattr(staging_table, "UPDATE_ROWS", 3)
    path = tmp_path / "same.csv"
    path.write_text("phone\n" + "(415) 555-1234\n" * 10)
    result = runner.invoke(app, ["list", "upload", "renewals", str(path), "--json"])
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert (payload["loaded"], payload["duplicates"]) == (1, 9)
    rejects = Path(payload["rejects_file"]).read_text().splitlines()
    assert rejects[0] == "phone,row,reason" and len(rejects) == 10
    assert rejects[1] == "(415) 555-1234,2,duplicate of row 1 in this file"


# --- long file names ---------------------------------------------------------------------


def test_derived_names_fit_255_bytes_and_stay_apart():
    accents = "é" * 130  # 260 bytes of UTF-8
    one = fitted_key(f"rejects/acme/renewals/{accents}a.csv.rejects.csv")
    two = fitted_key(f"rejects/acme/renewals/{accents}b.csv.rejects.csv")
    for key in (one, two):
        name = key.rsplit("/", 1)[1]
        assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
        assert name.startswith("é" * 50) and name.endswith(".csv.rejects.csv")
        assert key.startswith("rejects/acme/renewals/")
    assert one != two
    assert fitted_key("rejects/acme/renewals/short.csv.rejects.csv") == "rejects/acme/renewals/short.csv.rejects.csv"


def test_a_250_character_file_name_loads_and_files_its_rejects(engine, bucket, tmp_path):
    campaign_with(engine)
    filename = "n" * 246 + ".csv"
    path = tmp_path / filename
    path.write_text("phone\n(415) 555-1234\nnope\n")
    first = runner.invoke(app, ["list", "upload", "renewals", str(path), "--json"])
    second = runner.invoke(app, ["list", "upload", "renewals", str(path), "--json"])
    assert (first.exit_code, second.exit_code) == (0, 0), first.stderr + second.stderr
    rejects = [Path(json.loads(r.stdout)["rejects_file"]) for r in (first, second)]
    assert rejects[0] != rejects[1] and all(r.exists() for r in rejects)
    for r in rejects:
        assert len(r.name.encode()) <= MAX_NAME_BYTES and r.name.startswith("n" * 200)
        assert r.name.endswith(".rejects.csv") and "nope" in r.read_text()
    assert (bucket / "processed/acme/renewals" / filename).exists()
    assert not list((bucket / "inbox/acme/renewals").iterdir())
    with engine.connect() as conn:
        statuses = conn.execute(sa.select(t.prospect_lists.c.status)).scalars().all()
    assert statuses == ["loaded", "loaded"]


@pytest.mark.parametrize("flags", [[], ["--priority", "60"]], ids=["plain", "with-sidecar"])
def test_a_file_name_of_253_bytes_is_copied_into_the_inbox_and_loads(engine, bucket, tmp_path, flags):
    # The CLI copies under a `.part` name first, 5 bytes longer than the file's own: fitted too.
    campaign_with(engine)
    filename = "p" * 249 + ".csv"
    path = tmp_path / filename
    path.write_text("phone\n(415) 555-1234\n")
    result = runner.invoke(app, ["list", "upload", "renewals", str(path), "--json", *flags])
    assert result.exit_code == 0, result.stderr
    [processed] = [p for p in (bucket / "processed/acme/renewals").iterdir() if p.name.endswith(".csv")]
    assert len(processed.name.encode()) <= MAX_NAME_BYTES and processed.name.startswith("p" * 200)
    assert not list((bucket / "inbox/acme/renewals").iterdir())


def test_a_long_file_name_refused_whole_is_filed_beside_its_explanation(engine, bucket, tmp_path):
    campaign_with(engine)
    filename = "r" * 250 + ".csv"  # 254 bytes: its .error.txt would be 264
    path = tmp_path / filename
    path.write_text("name\nAnn\n")
    result = runner.invoke(app, ["list", "upload", "renewals", str(path)])
    assert result.exit_code == 2
    assert f"{filename}: has no phone column" in one_line(result.stderr)
    assert "Traceback" not in result.stderr
    rejected = bucket / "rejected/acme/renewals"
    assert (rejected / filename).exists()
    [explanation] = [p for p in rejected.iterdir() if p.name.endswith(".error.txt")]
    assert len(explanation.name.encode()) <= MAX_NAME_BYTES and "has no phone column" in explanation.read_text()


def test_rows_loaded_but_not_filed_away_exit_1_not_refused(engine, bucket, tmp_path, monkeypatch):
    campaign_with(engine)
    move = Bucket.move

    def no_room(self, source, destination):
        if destination.startswith("processed/"):
            raise OSError(36, "File name too long", destination)
        return move(self, source, destination)

    monkeypatch.setattr(Bucket, "move", no_room)
    path = tmp_path / "leads.csv"
    path.write_text("phone\n(415) 555-1234\n")
    result = runner.invoke(app, ["list", "upload", "renewals", str(path)])
    said = one_line(result.stderr)
    assert result.exit_code == 1, said
    assert "leads.csv: upload" in said and "was loaded (1 rows: 1 loaded" in said
    assert "File name too long" in said and "the inbox sensor finishes filing it away" in said
    assert "Traceback" not in result.stderr
    with engine.connect() as conn:
        assert conn.execute(sa.select(t.prospect_lists.c.status)).scalar_one() == "loaded"
    assert (bucket / "inbox/acme/renewals/leads.csv").exists()


def test_a_dnc_file_of_one_huge_line_is_refused_with_the_sentence(engine, dialer_env, tmp_path):
    campaign_with(engine)
    path = tmp_path / "dnc.txt"
    path.write_bytes(b"4155551234\n" + b"9" * (2 * 1024 * 1024) + b"\n")
    result = runner.invoke(app, ["dnc", "import", "acme/internal", str(path)])
    assert result.exit_code == 2
    assert "dnc.txt: the row starting at line 2 is longer than 1,048,576 characters" in one_line(result.stderr)
    assert "Traceback" not in result.stderr
