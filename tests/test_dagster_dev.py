"""`dagster dev` with the README's environment: the code location loads, and a list dropped into
the local inbox is loaded by the inbox sensor without any other action."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from dialer_cli.dev import seed_dagster_home, stop_process_group
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
QUERY = (
    "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
    "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
)


def dagster_env(tmp_path) -> dict[str, str]:
    """A fresh DAGSTER_HOME (telemetry off, the project's template) and DIALER_HOME under tmp_path."""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster"), "DIALER_HOME": str(tmp_path / "dialer"),
           "DIALER_DATABASE_URL": "", "DIALER_BUCKET_URL": "",
           # any telemetry upload would be aimed at loopback
           "DAGSTER_TELEMETRY_URL": "http://127.0.0.1:9/actions"}
    seed_dagster_home(tmp_path / "dagster")
    return env


def start_dagster_dev(env: dict[str, str], port: int) -> subprocess.Popen:
    """`dagster dev` on 127.0.0.1:port in its own process group; waits until the location is loaded."""
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port),
         "-w", "workspace.yaml"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            entries = _locations(port)
            if entries and entries[0]["loadStatus"] == "LOADED":
                break
            time.sleep(1)
    except BaseException:
        stop_dagster_dev(process)
        raise
    return process


def stop_dagster_dev(process: subprocess.Popen) -> None:
    """SIGTERM to the whole process group (webserver, daemon, code server), SIGKILL if it lingers."""
    stop_process_group(process)


LOADED_ASSET = """{ assetNodeOrError(assetKey: {path: ["loaded_prospects"]}) { ... on AssetNode {
  partitionKeys dependencyKeys { path }
  assetChecksOrError { ... on AssetChecks { checks { name executionForLatestMaterialization { status } } } }
  assetMaterializations(limit: 1) { partition metadataEntries { label } } } } }"""


def _graphql(port: int, query: str) -> dict | None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)["data"]
    except (OSError, KeyError, ValueError):
        return None


def _locations(port: int) -> list[dict] | None:
    data = _graphql(port, QUERY)
    return data["workspaceOrError"]["locationEntries"] if data else None


def _dialer(env, *args):
    dialer = Path(sys.executable).parent / "dialer"
    done = subprocess.run([str(dialer), *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


HOPPER_ASSET = """{ assetNodeOrError(assetKey: {path: ["hopper"]}) { ... on AssetNode {
  groupName dependencyKeys { path }
  assetMaterializations(limit: 1) { runId metadataEntries { label } } } } }"""


def _hopper_fills(env) -> int:
    import sqlalchemy as sa

    from campaigns.core import db
    from campaigns.core import schema as t

    engine = db.make_engine(f"sqlite:///{env['DIALER_HOME']}/dialer.sqlite3")
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(t.hopper_fills)).scalar_one()
    finally:
        engine.dispose()


def _upload_status(env) -> str | None:
    import sqlalchemy as sa

    from campaigns.core import db
    from campaigns.core import schema as t

    engine = db.make_engine(f"sqlite:///{env['DIALER_HOME']}/dialer.sqlite3")
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(t.prospect_lists.c.status)).scalar_one_or_none()
    finally:
        engine.dispose()


REPORT_ASSET = """{ assetNodeOrError(assetKey: {path: ["report_summary"]}) { ... on AssetNode {
  groupName assetMaterializations(limit: 5) { partition metadataEntries { label } } } } }"""


def _backdate_campaign(env, days: int) -> str:
    """Make the example campaign `days` old; returns its first dialing day in its report zone."""
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    import sqlalchemy as sa

    from campaigns.core import db
    from campaigns.core import schema as t

    created = datetime.now(UTC) - timedelta(days=days)
    engine = db.make_engine(f"sqlite:///{env['DIALER_HOME']}/dialer.sqlite3")
    try:
        with engine.begin() as conn:
            conn.execute(sa.update(t.campaigns).values(created_at=created))
            zone = conn.execute(sa.select(t.campaigns.c.report_timezone)).scalar_one()
    finally:
        engine.dispose()
    return created.astimezone(ZoneInfo(zone)).date().isoformat()


def test_dagster_dev_loads_the_location_and_a_dropped_list(tmp_path):
    port = free_port()
    env = dagster_env(tmp_path)
    _dialer(env, "init")
    _dialer(env, "campaign", "apply", str(ROOT / "examples/campaign.yaml"))
    # Two days old: its first dialing day's report (end of dialing) is due, so report_sensor requests it.
    first_day = _backdate_campaign(env, days=2)
    process = start_dagster_dev(env, port)
    try:
        entries = _locations(port)
        assert entries, "dagster dev did not answer on its GraphQL endpoint"
        assert entries[0]["name"] == "campaign_dialer"
        assert entries[0]["loadStatus"] == "LOADED"
        assert entries[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation"

        inbox = tmp_path / "dialer/bucket/inbox/acme/feb-reminders"
        inbox.mkdir(parents=True)
        (inbox / "prospects.csv").write_bytes((ROOT / "examples/prospects.csv").read_bytes())
        status = None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and status != "loaded":
            time.sleep(3)
            status = _upload_status(env)
        assert status == "loaded", "the inbox sensor did not load the dropped list"
        assert (tmp_path / "dialer/bucket/processed/acme/feb-reminders/prospects.csv").exists()

        # What the UI shows: the file's partition, the lineage, the summary metadata and the check.
        # The run records its check after the rows are loaded: wait for the run to finish it.
        deadline = time.monotonic() + 60
        while True:
            node = _graphql(port, LOADED_ASSET)["assetNodeOrError"]
            execution = (node["assetChecksOrError"]["checks"] or [{}])[0].get("executionForLatestMaterialization") or {}
            if execution.get("status") not in (None, "IN_PROGRESS") or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert node["partitionKeys"] == ["acme/feb-reminders/prospects.csv"]
        assert node["dependencyKeys"] == [{"path": ["dnc_scrubbed_rows"]}]
        [check] = node["assetChecksOrError"]["checks"]
        assert (check["name"], check["executionForLatestMaterialization"]["status"]) == ("upload_accounting", "SUCCEEDED")
        [materialization] = node["assetMaterializations"]
        assert materialization["partition"] == "acme/feb-reminders/prospects.csv"
        labels = {e["label"] for e in materialization["metadataEntries"]}
        assert {"rows", "loaded", "duplicates", "invalid", "dnc", "warnings", "rejects_file"} <= labels

        # A fill, as the daemon holding the campaign runs one on its tick (no daemon here: the
        # CLI runs the same use case); hopper_fills_sensor (running by default) reports it as a
        # materialization of `hopper` without launching a run.
        _dialer(env, "hopper", "fill", "feb-reminders")
        deadline = time.monotonic() + 150
        hopper = None
        while time.monotonic() < deadline:
            hopper = (_graphql(port, HOPPER_ASSET) or {}).get("assetNodeOrError")
            if hopper and hopper["assetMaterializations"]:
                break
            time.sleep(3)
        assert hopper and hopper["assetMaterializations"], "hopper_fills_sensor reported no fill within 150 s"
        assert hopper["groupName"] == "dialing"
        assert {"path": ["loaded_prospects"]} in hopper["dependencyKeys"]
        [fill] = hopper["assetMaterializations"]
        assert fill["runId"] == ""  # reported by the sensor: no run was launched for the fill
        assert {"campaigns_filled", "queued", "fills", "filled_by"} <= {e["label"] for e in fill["metadataEntries"]}
        assert _hopper_fills(env) >= 1

        # report_sensor (running by default) requests the campaign's due report; it is mailed
        # to the mail folder and shows in the UI under its campaign × day partition.
        deadline = time.monotonic() + 150
        partitions: list[str] = []
        while time.monotonic() < deadline:
            report = (_graphql(port, REPORT_ASSET) or {}).get("assetNodeOrError") or {}
            partitions = [m["partition"] for m in report.get("assetMaterializations") or []]
            if f"acme/feb-reminders|{first_day}" in partitions:
                break
            time.sleep(3)
        assert f"acme/feb-reminders|{first_day}" in partitions, f"no report for {first_day} within 150 s: {partitions}"
        assert report["groupName"] == "reports"
        mails = list((tmp_path / "dialer/mail").glob("*.eml"))
        assert mails and b"ops@example.com" in mails[0].read_bytes()
    finally:
        stop_dagster_dev(process)
