"""`dialer list upload` through the same Dagster job, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from campaigns.ingestion import upload_record
from dialer_cli.main import app
from tests.helpers import EXAMPLES, apply_campaign

runner = CliRunner()
KEYS = {"rows", "loaded", "duplicates", "invalid", "dnc", "warnings", "rejects_file"}


@pytest.fixture
def campaign(engine, dialer_env):
    return apply_campaign(engine)


def test_upload_prints_the_summary_as_json(campaign, tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text("phone,first_name\n(415) 555-1234,Ann\n415.555.1234,Again\nnope,Bad\n")
    result = runner.invoke(app, ["list", "upload", "renewals", str(path), "--json"])
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert KEYS <= set(payload)
    assert {k: payload[k] for k in ("rows", "loaded", "duplicates", "invalid", "dnc")} == {
        "rows": 3, "loaded": 1, "duplicates": 1, "invalid": 1, "dnc": 0
    }
    assert payload["rejects_file"].endswith("rejects/acme/renewals/leads.csv.rejects.csv")
    assert Path(payload["rejects_file"]).exists()


def test_upload_of_the_example_list(campaign, dialer_env):
    result = runner.invoke(app, ["list", "upload", "acme/renewals", str(EXAMPLES / "prospects.csv"), "--json"])
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["rows"] == payload["loaded"] + payload["duplicates"] + payload["invalid"] + payload["dnc"]
    assert payload["loaded"] > 0 and payload["invalid"] > 0 and payload["duplicates"] > 0


def test_flags_override_upload_options_and_same_name_uploads_twice(campaign, engine, tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text("phone\n(415) 555-1234\n")
    first = json.loads(runner.invoke(app, ["list", "upload", "renewals", str(path), "--json", "--priority", "80"]).stdout)
    second = json.loads(
        runner.invoke(app, ["list", "upload", "renewals", str(path), "--json", "--dupe-days", "-1"]).stdout
    )
    assert (first["loaded"], second["loaded"]) == (1, 1)
    assert second["source"].endswith("processed/acme/renewals/leads.1.csv")
    assert first["source"].endswith("processed/acme/renewals/leads.csv")
    with engine.connect() as conn:
        uploads = [upload_record.summary(conn, i) for i in (first["upload_id"], second["upload_id"])]
        import sqlalchemy as sa

        from campaigns.core import schema as t

        priorities = conn.execute(sa.select(t.prospect_lists.c.priority).order_by(t.prospect_lists.c.id)).scalars().all()
    assert priorities == [80, 50] and all(u.status == "loaded" for u in uploads)


@pytest.mark.parametrize("filename", ["names.csv", "[bold]x[red].csv"])  # the second is not Rich markup
def test_rejected_file_exits_2_with_the_sentence(campaign, tmp_path, filename):
    path = tmp_path / filename
    path.write_text("name\nAnn\n")
    result = runner.invoke(app, ["list", "upload", "renewals", str(path)])
    assert result.exit_code == 2
    assert f"{filename}: has no phone column" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr and "STEP_FAILURE" not in result.stderr


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--priority", "101"], "--priority must be between 0 and 100 (got 101)"),
        (["--dupe-days", "-2"], "--dupe-days must be between -1 and 3650 (got -2)"),
        (["--expire-days", "0"], "--expire-days must be between 1 and 3650 (got 0)"),
    ],
)
def test_bad_flags_are_refused(campaign, tmp_path, args, sentence):
    path = tmp_path / "leads.csv"
    path.write_text("phone\n4155551234\n")
    result = runner.invoke(app, ["list", "upload", "renewals", str(path), *args])
    assert result.exit_code == 2 and sentence in result.stderr


def test_missing_file_and_unknown_campaign(campaign, tmp_path):
    missing = runner.invoke(app, ["list", "upload", "renewals", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "nope.csv: no such file" in missing.stderr
    path = tmp_path / "leads.csv"
    path.write_text("phone\n4155551234\n")
    unknown = runner.invoke(app, ["list", "upload", "nope", str(path)])
    assert unknown.exit_code == 2 and "No campaign `nope`" in unknown.stderr


def test_progress_hook_sees_every_batch(campaign, tmp_path, monkeypatch):
    from rich.progress import Progress

    from campaigns.ingestion import csvfile

    monkeypatch.setattr(csvfile, "BATCH_ROWS", 10)
    seen: list[tuple[int, float]] = []
    path = tmp_path / "leads.csv"
    path.write_text("phone\n" + "".join(f"415555{i:04d}\n" for i in range(35)))
    # The upload's progress bar is told of every staged batch.
    monkeypatch.setattr(Progress, "update", lambda self, task, completed=None, rows=None, **_: seen.append((rows, completed)))
    result = runner.invoke(app, ["list", "upload", "renewals", str(path), "--json"])
    assert result.exit_code == 0, result.stderr
    assert [rows for rows, _ in seen] == [10, 20, 30, 35] and seen[-1][1] == 1.0


def test_same_name_uploads_keep_both_rejects_files(campaign, tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text("phone\nnope\n4155551234\n")
    first = json.loads(runner.invoke(app, ["list", "upload", "renewals", str(path), "--json"]).stdout)
    second = json.loads(runner.invoke(app, ["list", "upload", "renewals", str(path), "--json"]).stdout)
    assert first["rejects_file"] != second["rejects_file"]
    assert Path(first["rejects_file"]).exists() and Path(second["rejects_file"]).exists()
