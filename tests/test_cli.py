"""The `dialer` command, end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from campaigns.core import db
from dialer_cli.main import app
from tests.helpers import EXAMPLES, MINIMAL, campaign_file, snapshot

runner = CliRunner()
DIALER = shutil.which("dialer", path=str(Path(sys.executable).parent)) or "dialer"


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def dialer(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The installed console script, in a child process, as a person would run it."""
    return subprocess.run(
        [DIALER, *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_the_commands():
    result = run("--help")
    assert result.exit_code == 0
    for command in ("init", "campaign"):
        assert command in result.stdout
    sub = run("campaign", "--help")
    for command in ("apply", "list", "show", "status", "pause", "resume", "deactivate", "archive"):
        assert command in sub.stdout


def test_every_way_of_starting_the_command_lists_every_command():
    """`python -m dialer_cli` and `python -m dialer_cli.main` build the one app with all its commands
    (no command module registers itself on a copy of it), and `-m dialer_cli daemon --help` works."""
    import typer

    names = sorted(typer.main.get_command(app).commands)
    assert {"init", "campaign", "daemon", "demo", "dev", "explain", "hopper", "list", "dnc", "report",
            "simulator"} <= set(names)
    for module in ("dialer_cli", "dialer_cli.main"):
        result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True,
                                timeout=120, env={**os.environ, "COLUMNS": "200"})
        assert result.returncode == 0, result.stderr
        missing = [name for name in names if not re.search(rf"^│ {name} ", result.stdout, re.MULTILINE)]
        assert missing == [], (module, result.stdout)
    daemon = subprocess.run([sys.executable, "-m", "dialer_cli", "daemon", "--help"], capture_output=True,
                            text=True, timeout=120)
    assert daemon.returncode == 0, daemon.stderr
    assert "--exit-when-done" in daemon.stdout


def test_done_when_flow_in_a_child_process(blank_db_url, tmp_path):
    """`dialer init && dialer campaign apply examples/campaign.yaml && dialer campaign status --json`."""
    env = {"DIALER_DATABASE_URL": blank_db_url, "DIALER_HOME": str(tmp_path / "home")}
    elsewhere = tmp_path / "somewhere-else"
    elsewhere.mkdir()
    # From another directory: the migrations ship inside the installed package.
    init = dialer(env, "init", cwd=elsewhere)
    assert init.returncode == 0, init.stderr
    assert "migrated from empty to revision" in init.stdout
    applied = dialer(env, "campaign", "apply", str(EXAMPLES / "campaign.yaml"), cwd=elsewhere)
    assert applied.returncode == 0, applied.stderr
    assert "Campaign acme/feb-reminders created." in applied.stdout
    status = dialer(env, "campaign", "status", "feb-reminders", "--json", cwd=elsewhere)
    assert status.returncode == 0, status.stderr
    payload = json.loads(status.stdout)
    assert payload["status"] == "Stopped" and payload["state"] == "active"
    assert payload["prospects_total"] == 0 and set(payload["prospects"]) >= {"ready", "done", "dnc"}


def test_default_database_is_a_sqlite_file_under_dialer_home(tmp_path):
    env = {"DIALER_HOME": str(tmp_path / "home"), "DIALER_DATABASE_URL": ""}
    assert dialer(env, "init").returncode == 0
    assert (tmp_path / "home" / "dialer.sqlite3").exists()
    assert dialer(env, "campaign", "apply", str(EXAMPLES / "campaign.yaml")).returncode == 0
    listed = dialer(env, "campaign", "list", "--json")
    assert [c["slug"] for c in json.loads(listed.stdout)] == ["feb-reminders"]


def test_bad_file_exits_2_with_a_sentence_and_writes_nothing(dialer_env, engine, tmp_path):
    path = campaign_file(tmp_path, dialing={"dialer_interval_s": 30})
    before = snapshot(engine)
    result = run("campaign", "apply", str(path))
    assert result.exit_code == 2
    assert "`dialing.dialer_interval_s` must be between 2 and 15 (got 30)" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert snapshot(engine) == before


def test_apply_twice_then_locale_change_is_refused(dialer_env, engine, tmp_path):
    path = campaign_file(tmp_path)
    assert "created" in run("campaign", "apply", str(path)).stdout
    before = snapshot(engine)
    second = run("campaign", "apply", str(path), "--json")
    assert json.loads(second.stdout)["action"] == "unchanged"
    assert snapshot(engine) == before
    canada = campaign_file(tmp_path, locale="CA", name="ca.yaml")
    refused = run("campaign", "apply", str(canada))
    assert refused.exit_code == 2
    assert "`locale` is US and cannot be changed to CA" in refused.stderr
    assert snapshot(engine) == before


def test_show_prints_effective_settings_that_apply_back_unchanged(dialer_env, tmp_path):
    run("campaign", "apply", str(EXAMPLES / "campaign.yaml"))
    shown = run("campaign", "show", "acme/feb-reminders")
    assert shown.exit_code == 0
    assert "call_ratio: 1.0" in shown.stdout and "dnc_disposition: Do Not Call" in shown.stdout
    assert "pacing: ratio" in shown.stdout and "target_abandon_rate: 0.02" in shown.stdout
    exported = tmp_path / "exported.yaml"
    exported.write_text(shown.stdout)
    assert "unchanged" in run("campaign", "apply", str(exported)).stdout
    as_json = json.loads(run("campaign", "show", "feb-reminders", "--json").stdout)
    assert as_json["dialing"]["dialer_interval_s"] == 10
    assert (as_json["dialing"]["pacing"], as_json["dialing"]["target_abandon_rate"]) == ("ratio", 0.02)
    assert as_json["reports"]["recipients"] == ["ops@example.com"]


@pytest.mark.parametrize(
    ("command", "state", "status"),
    [("pause", "paused", "Inactive"), ("deactivate", "inactive", "Inactive"),
     ("archive", "archived", "Inactive"), ("resume", "active", "Stopped")],
)
def test_state_commands(dialer_env, tmp_path, command, state, status):
    run("campaign", "apply", str(campaign_file(tmp_path)))
    if command == "resume":
        run("campaign", "pause", "spring-renewals")
    result = run("campaign", command, "spring-renewals")
    assert result.exit_code == 0, result.stderr
    again = run("campaign", command, "spring-renewals")
    assert f"already {state}" in again.stdout
    payload = json.loads(run("campaign", "status", "spring-renewals", "--json").stdout)
    assert (payload["state"], payload["status"]) == (state, status)


def test_human_output_of_list_and_status(dialer_env, tmp_path):
    assert "No campaigns yet" in run("campaign", "list").stdout
    run("campaign", "apply", str(campaign_file(tmp_path)))
    assert "spring-renewals" in run("campaign", "list").stdout
    status = run("campaign", "status", "spring-renewals").stdout
    assert "status Stopped" in status and "exhausted" in status


def test_unknown_campaign_and_uninitialised_database(blank_db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DIALER_DATABASE_URL", blank_db_url)
    result = run("campaign", "status", "nope")
    assert result.exit_code == 2
    assert "has not been initialised; run `dialer init`" in result.stderr
    assert run("init").exit_code == 0
    missing = run("campaign", "show", "nope")
    assert missing.exit_code == 2 and "No campaign `nope`" in missing.stderr


def test_unreachable_postgres_is_a_sentence(monkeypatch):
    monkeypatch.setenv("DIALER_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    result = run("campaign", "list")
    assert result.exit_code == 2
    assert "Cannot reach the database at postgresql+psycopg://nobody@127.0.0.1:1/none" in result.stderr


def test_migration_state_mismatch_is_explained(blank_db_url, monkeypatch):
    engine = db.make_engine(blank_db_url)
    db.migrate(engine, "0001")
    engine.dispose()
    monkeypatch.setenv("DIALER_DATABASE_URL", blank_db_url)
    result = run("campaign", "list")
    assert result.exit_code == 2
    assert f"is at schema revision 0001, this code expects {db.head_revision()}; run `dialer init`" in " ".join(
        result.stderr.split()
    )
    assert run("init").exit_code == 0
    assert run("campaign", "list").exit_code == 0


from tests.test_settings import BAD_VALUES  # noqa: E402


@pytest.mark.parametrize(("change", "sentence"), BAD_VALUES, ids=[s for _, s in BAD_VALUES])
def test_every_bad_value_exits_2_through_the_cli(tmp_path, monkeypatch, change, sentence):
    monkeypatch.setenv("DIALER_DATABASE_URL", f"sqlite:///{tmp_path / 'untouched.sqlite3'}")
    path = campaign_file(tmp_path, {**MINIMAL, **change})
    result = run("campaign", "apply", str(path))
    assert result.exit_code == 2
    assert sentence in " ".join(result.stderr.split())
    assert not (tmp_path / "untouched.sqlite3").exists()
