"""Hostile but honest operators: uploads killed half-way, and bucket folders that are symbolic links.

A killed upload (a real SIGKILL inside the load's transaction, or a run left
at staging with its heartbeat aged past the limit) is resumed by the inbox
sensor and by `dialer list upload` of the same file: one upload, no phone
loaded twice, the accounting adds up, no staging rows left. A live one is not
taken over. A key whose real place is elsewhere (a file link or a folder link)
is refused by the sensor, the CLI and a requested partition, with one
sentence, and the file stays where it is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from campaigns.core import schema as t
from campaigns.core.config import DialerConfig
from campaigns.ingestion import accounting, interrupted, upload_claims, upload_record
from campaigns.ingestion.bucket import Bucket
from campaigns.ingestion.inbox import UploadOptions, parse_inbox_key
from dialer_cli.main import app
from pipelines.sensors import inbox_sensor
from resources.bucket import BucketResource
from resources.database import DatabaseResource
from tests.helpers import UPLOADS_CAMPAIGN, apply_campaign, drop, failure, run_upload

HEADER = "phone,first_name\n"
# 40 numbers, one of them twice and one invalid: rows 42 = loaded 40 + duplicates 1 + invalid 1.
ROWS = "".join(f"415555{i:04d},P{i}\n" for i in range(40)) + "4155550007,Again\nnope,Bad\n"
EXPECTED = {"rows": 42, "loaded": 40, "duplicates": 1, "invalid": 1, "dnc": 0}
KEY = "inbox/acme/renewals/leads.csv"
cli = CliRunner()


@pytest.fixture
def bucket_dir(dialer_env) -> Path:
    return Path(dialer_env["DIALER_HOME"]) / "bucket"


@pytest.fixture
def instance(tmp_path):
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as test_instance:
        yield test_instance


def _tick(instance, cursor=None):
    from pipelines.definitions import defs

    config = DialerConfig.from_env()
    with dg.build_sensor_context(
        instance=instance, instance_ref=instance.get_ref(), cursor=cursor, definitions=defs,
        resources={"bucket": BucketResource.from_config(config), "database": DatabaseResource.from_config(config)},
    ) as context:
        return inbox_sensor.evaluate_tick(context)


def _uploads(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.select(t.prospect_lists).order_by(t.prospect_lists.c.id)).all()


def _staged(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(t.upload_rows)).scalar_one()


def _phones(engine) -> list[str]:
    with engine.connect() as conn:
        return conn.execute(sa.select(t.prospects.c.phone_e164)).scalars().all()


def _age_heartbeat(engine, upload_id: int, by: timedelta = upload_claims.STALE_AFTER + timedelta(seconds=5)) -> None:
    """What the clock does to a killed run's upload: its last sign of life falls behind."""
    with engine.begin() as conn:
        conn.execute(
            sa.update(t.prospect_lists).where(t.prospect_lists.c.id == upload_id)
            .values(heartbeat_at=datetime.now(UTC) - by)
        )


def _assert_loaded_once(engine, upload_id: int) -> None:
    """One upload, its accounting balanced against the prospects, no phone twice, no staging rows."""
    phones = _phones(engine)
    assert len(phones) == len(set(phones)) == EXPECTED["loaded"]
    with engine.connect() as conn:
        ok, recorded, _ = accounting.accounting_holds(conn, upload_id)
    assert ok and recorded.status == "loaded"
    assert {k: getattr(recorded, k) for k in EXPECTED} == EXPECTED
    assert _staged(engine) == 0
    assert len(_uploads(engine)) == 1


def _staged_then_killed(engine, bucket_dir) -> int:
    """A run that staged the file and died: the upload processing, its rows staged, its heartbeat old."""
    drop(bucket_dir, KEY, HEADER + ROWS)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("uploads", ["acme/renewals/leads.csv"])
    from pipelines.definitions import build_definitions

    staged = build_definitions(DialerConfig.from_env()).resolve_job_def("load_prospect_list").execute_in_process(
        partition_key="acme/renewals/leads.csv", instance=instance, raise_on_error=False,
        asset_selection=[dg.AssetKey("upload_file"), dg.AssetKey("validated_rows")],
    )
    assert staged.success
    [upload] = _uploads(engine)
    assert upload.status == "processing" and _staged(engine) == EXPECTED["rows"]
    _age_heartbeat(engine, upload.id)
    return upload.id


# --- interrupted uploads ------------------------------------------------------


def test_the_sensor_resumes_a_killed_upload_once_and_it_loads_once(engine, dialer_env, bucket_dir, instance):
    apply_campaign(engine)
    upload_id = _staged_then_killed(engine, bucket_dir)

    tick = _tick(instance)
    assert [(r.partition_key, r.run_key) for r in tick.run_requests] == [
        ("acme/renewals/leads.csv", f"{KEY}@{_uploads(engine)[0].source_version}#resume-1")
    ]
    assert run_upload("acme/renewals/leads.csv").success
    _assert_loaded_once(engine, upload_id)
    assert _uploads(engine)[0].resumes == 1
    assert (bucket_dir / "processed/acme/renewals/leads.csv").exists() and not (bucket_dir / KEY).exists()
    assert _tick(instance, tick.cursor).run_requests == []


# Stalls `dialer list upload` inside the load's transaction (after the INSERT and the
# status update, before COMMIT) and says so, for the test to SIGKILL it right there.
KILLED_CLI = """
import sys, time
from campaigns.ingestion import load
def stall(conn, upload_id):
    print("inside the load", flush=True)
    time.sleep(120)
load.summary = stall
from dialer_cli.main import app
sys.argv = ["dialer", "list", "upload", "renewals", sys.argv[1]]
app()
"""


def _kill_cli_inside_the_load(local: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_CLI, str(local)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    watchdog = threading.Timer(90, child.kill)  # a child that never gets there must not hang the suite
    watchdog.start()
    try:
        line = child.stdout.readline()
        assert line == "inside the load\n", child.stderr.read()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        watchdog.cancel()
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL


def test_dialer_list_upload_again_resumes_an_upload_killed_inside_the_load(
    engine, dialer_env, bucket_dir, tmp_path, instance
):
    apply_campaign(engine)
    local = tmp_path / "leads.csv"
    local.write_text(HEADER + ROWS)
    _kill_cli_inside_the_load(local)
    [killed] = _uploads(engine)
    assert killed.status == "processing" and _phones(engine) == []  # the load rolled back whole
    assert _staged(engine) == EXPECTED["rows"]

    # Right after the kill nothing tells a dead run from a live, slow one: the sensor leaves it
    # alone and the CLI refuses with what to do, both touching nothing.
    assert _tick(instance, _tick(instance).cursor).run_requests == []
    early = cli.invoke(app, ["list", "upload", "renewals", str(local)])
    assert early.exit_code == 1
    sentence = " ".join(early.stderr.split())
    assert f"{KEY}: is being loaded by run" in sentence and "let it finish" in sentence
    assert "Traceback" not in early.stderr
    assert _uploads(engine) == [killed] and _staged(engine) == EXPECTED["rows"] and _phones(engine) == []
    assert sorted(p.name for p in (bucket_dir / "inbox/acme/renewals").iterdir()) == ["leads.csv"]

    _age_heartbeat(engine, killed.id)
    result = cli.invoke(app, ["list", "upload", "renewals", str(local), "--json"])
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["upload_id"] == killed.id
    assert {k: payload[k] for k in EXPECTED} == EXPECTED
    _assert_loaded_once(engine, killed.id)
    assert payload["source"].endswith("processed/acme/renewals/leads.csv")
    assert list((bucket_dir / "inbox/acme/renewals").iterdir()) == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the claim rules; the kill test covers both
def test_a_run_that_failed_hands_its_upload_back_to_dialer_list_upload_at_once(
    engine, dialer_env, bucket_dir, tmp_path, instance
):
    apply_campaign(engine)
    upload_id = _staged_then_killed(engine, bucket_dir)
    _age_heartbeat(engine, upload_id, by=timedelta(seconds=1))
    with pytest.raises(RuntimeError), upload_claims.holding(engine, upload_id, KEY, "run-that-fails", datetime.now(UTC)):
        raise RuntimeError("a stage fails")
    assert _uploads(engine)[0].claimed_by is None

    # The sensor still waits (a failure may be the database's, gone in a minute) ...
    assert _tick(instance, _tick(instance).cursor).run_requests == []
    # ... but an operator re-running the command takes the upload over at once.
    local = tmp_path / "leads.csv"
    local.write_text(HEADER + ROWS)
    result = cli.invoke(app, ["list", "upload", "renewals", str(local), "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["upload_id"] == upload_id
    _assert_loaded_once(engine, upload_id)


def test_the_sensor_gives_up_after_the_last_resume_and_abandons_a_vanished_file(engine, dialer_env, bucket_dir, instance):
    apply_campaign(engine)
    _staged_then_killed(engine, bucket_dir)
    with engine.begin() as conn:
        conn.execute(sa.update(t.prospect_lists).values(resumes=interrupted.MAX_RESUMES))
    # A second killed upload, whose file then left the inbox: nothing to resume it from.
    gone = parse_inbox_key(drop(bucket_dir, "inbox/acme/renewals/gone.csv", HEADER + "4155559999,Z\n"))
    bucket = Bucket.from_config(DialerConfig.from_env())
    with engine.begin() as conn:
        campaign = upload_record.campaign_info(conn, "acme", "renewals")
        gone_id = upload_record.register_upload(
            conn, campaign, gone, bucket.info(gone.key), UploadOptions(), datetime.now(UTC)
        ).id
        conn.execute(sa.insert(t.upload_rows).values(upload_id=gone_id, row_number=1, outcome="valid"))
    (bucket_dir / gone.key).unlink()
    _age_heartbeat(engine, gone_id)

    tick = _tick(instance)
    assert tick.run_requests == []
    refused, abandoned = _uploads(engine)
    assert (refused.status, abandoned.status) == ("rejected", "rejected")
    assert f"{KEY}: its load was interrupted {interrupted.MAX_RESUMES + 1} times" in refused.error
    assert "inbox/acme/renewals/gone.csv: its load was interrupted and that version" in abandoned.error
    assert _staged(engine) == 0 and _phones(engine) == []
    assert not (bucket_dir / KEY).exists()
    assert "interrupted" in (bucket_dir / "rejected/acme/renewals/leads.csv.error.txt").read_text()
    assert _tick(instance, tick.cursor).run_requests == []  # refused once, not every tick


# --- symbolic links in a folder bucket ----------------------------------------

OTHER = {**UPLOADS_CAMPAIGN, "workspace": "other"}


def _linked(bucket_dir: Path, kind: str) -> tuple[str, str]:
    """Workspace acme's file, reachable under other/renewals through a link; (partition, file name)."""
    drop(bucket_dir, "inbox/acme/renewals/a.csv", HEADER + "4155551234,A\n")
    if kind == "folder":
        (bucket_dir / "inbox/other").mkdir(parents=True)
        (bucket_dir / "inbox/other/renewals").symlink_to("../acme/renewals")
        return "other/renewals/a.csv", "a.csv"
    (bucket_dir / "inbox/other/renewals").mkdir(parents=True)
    (bucket_dir / "inbox/other/renewals/b.csv").symlink_to("../../acme/renewals/a.csv")
    return "other/renewals/b.csv", "b.csv"


def _sentence(kind: str, partition: str) -> str:
    if kind == "folder":
        return (f"inbox/{partition}: goes through inbox/other/renewals, a symbolic link to inbox/acme/renewals; "
                "files are only read and moved where they really are, so it was left untouched")
    return (f"inbox/{partition}: is a symbolic link to inbox/acme/renewals/a.csv; "
            "files are only read and moved where they really are, so it was left untouched")


def _untouched(engine, bucket_dir: Path) -> None:
    assert (bucket_dir / "inbox/acme/renewals/a.csv").read_text() == HEADER + "4155551234,A\n"
    assert sorted(p.name for p in (bucket_dir / "inbox/acme/renewals").iterdir()) == ["a.csv"]
    assert not (bucket_dir / "processed").exists() and not (bucket_dir / "rejected").exists()
    assert _uploads(engine) == [] and _phones(engine) == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the bucket's rule; no database difference
@pytest.mark.parametrize("kind", ["folder", "file"])
def test_a_linked_key_is_refused_by_a_requested_partition(engine, dialer_env, bucket_dir, kind):
    apply_campaign(engine, OTHER)
    partition, _ = _linked(bucket_dir, kind)
    result = run_upload(partition)
    assert not result.success
    assert _sentence(kind, partition) in failure(result)
    _untouched(engine, bucket_dir)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("kind", ["folder", "file"])
def test_a_linked_key_is_refused_by_dialer_list_upload(engine, dialer_env, bucket_dir, kind, tmp_path):
    apply_campaign(engine, OTHER)
    partition, name = _linked(bucket_dir, kind)
    local = tmp_path / name
    local.write_text(HEADER + "4155550000,Mine\n")
    result = cli.invoke(app, ["list", "upload", "other/renewals", str(local)])
    assert result.exit_code == 2
    assert _sentence(kind, partition) in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    _untouched(engine, bucket_dir)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("kind", ["folder", "file"])
def test_a_linked_key_is_refused_by_the_sensor_once(engine, dialer_env, bucket_dir, kind, instance, capfd):
    apply_campaign(engine, OTHER)
    link = "inbox/other/renewals" if kind == "folder" else "inbox/other/renewals/b.csv"
    _linked(bucket_dir, kind)
    first = _tick(instance)
    second = _tick(instance, first.cursor)
    # acme's own file is requested for acme; nothing is requested for workspace other.
    assert [r.partition_key for r in second.run_requests] == ["acme/renewals/a.csv"]
    refusals = [line for line in capfd.readouterr().err.splitlines() if "symbolic link" in line]
    assert len(refusals) == 1 and f"WARNING - {link}: is a symbolic link to inbox/acme/" in refusals[0]
    assert json.loads(second.cursor)["links"] == [link]
    assert (bucket_dir / "inbox/acme/renewals/a.csv").exists()
    assert (bucket_dir / link).is_symlink()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_linked_dnc_key_is_refused_by_a_requested_partition(engine, dialer_env, bucket_dir):
    from pipelines.definitions import defs, resources_for

    apply_campaign(engine, OTHER)
    drop(bucket_dir, "dnc/acme/internal/real.txt", "4155551234\n")
    (bucket_dir / "dnc/other/internal").mkdir(parents=True)
    (bucket_dir / "dnc/other/internal/link.txt").symlink_to("../../acme/internal/real.txt")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("dnc_files", ["other/internal/link.txt"])
    result = defs.resolve_job_def("import_dnc_file").execute_in_process(
        partition_key="other/internal/link.txt", instance=instance, raise_on_error=False,
        resources=resources_for(DialerConfig.from_env()),
    )
    assert not result.success
    assert "dnc/other/internal/link.txt: is a symbolic link to dnc/acme/internal/real.txt" in failure(result)
    assert (bucket_dir / "dnc/acme/internal/real.txt").read_text() == "4155551234\n"
    assert (bucket_dir / "dnc/other/internal/link.txt").is_symlink()
    assert not (bucket_dir / "processed").exists() and not (bucket_dir / "rejected").exists()
