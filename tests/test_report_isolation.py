"""The report job's two assets in two fresh processes, as a run launcher starts them in production.

Each process gets its own empty `DIALER_HOME`; they share only what a deployment shares: the
database, the bucket (a folder outside both homes, or S3 on loopback) and Dagster's instance.
`report_detail` runs in the first; that home is then deleted, and `report_summary` runs alone in
a second process with another empty home. It must deliver the export `report_detail` left in the
bucket, byte for byte, with that file's figures: no asset may read a file another run wrote to
its own disk. Were the export kept under `DIALER_HOME` again, the second process would not find
it; were it rebuilt there instead of read back, the gzip bytes (stamped with the time they were
made) would differ from the first process's.
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.config import DialerConfig
from campaigns.ingestion.bucket import Bucket
from campaigns.reporting import reports
from dialer_cli.dev import seed_dagster_home
from tests.test_reports import DAY, day_of_calls, smtp_server  # noqa: F401  (fixtures)
from tests.test_s3_bucket import s3, s3_endpoint  # noqa: F401  (fixtures: moto's server on loopback)

DAGSTER = Path(sys.executable).parent / "dagster"
PARTITION = f"acme/renewals|{DAY.isoformat()}"
KEY = f"reports/acme/renewals/{DAY.isoformat()}/renewals-{DAY.isoformat()}-calls.csv.gz"


@pytest.fixture
def shared_bucket(request, tmp_path, monkeypatch) -> str:
    """The bucket both runs see, outside either home: its URL (also set as DIALER_BUCKET_URL)."""
    if request.param == "s3":
        request.getfixturevalue("s3")
        return os.environ["DIALER_BUCKET_URL"]
    url = str(tmp_path / "shared-bucket")
    monkeypatch.setenv("DIALER_BUCKET_URL", url)
    return url


def _materialize(asset: str, env: dict[str, str], home: Path) -> None:
    """`dagster asset materialize` of one asset of the day's partition, in a process of its own."""
    home.mkdir()
    result = subprocess.run(
        [str(DAGSTER), "asset", "materialize", "-m", "pipelines.definitions", "--select", asset,
         "--partition", PARTITION],
        env={**env, "DIALER_HOME": str(home)}, cwd=home, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-6000:]


def _local_exports(home: Path) -> list[Path]:
    return [p for p in home.rglob("*") if "calls.csv" in p.name]


# Two cases, not four: each process pair costs ~15 s, and the backend and the bucket are independent.
@pytest.mark.parametrize(("backend", "shared_bucket"), [
    pytest.param("sqlite", "folder", id="sqlite-folder"),
    pytest.param("postgres", "s3", id="postgres-s3", marks=pytest.mark.postgres),
], indirect=True)
def test_report_summary_in_a_fresh_process_with_an_empty_home_delivers_the_export_from_the_bucket(
        engine, db_url, day_of_calls, smtp_server, shared_bucket, tmp_path):  # noqa: F811
    with engine.begin() as conn:
        conn.execute(sa.update(t.campaigns).where(t.campaigns.c.id == day_of_calls)
                     .values(report_recipients=["ops@example.com"], report_compression="gz"))
    dagster_home = seed_dagster_home(tmp_path / "dagster")
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.add_dynamic_partitions("report_campaigns", ["acme/renewals"])  # what report_sensor does
    env = {k: v for k, v in os.environ.items() if k != "DIALER_HOME"}
    env.update(DIALER_DATABASE_URL=db_url, DAGSTER_HOME=str(dagster_home),
               DAGSTER_TELEMETRY_URL="http://127.0.0.1:9/actions")  # any telemetry would be aimed at loopback
    bucket = Bucket.from_config(DialerConfig.from_env())

    first = tmp_path / "run-1"
    _materialize("report_detail", env, first)
    written = bucket.read_bytes(KEY)
    assert _local_exports(first) == []
    shutil.rmtree(first)  # that run's container is gone

    second = tmp_path / "run-2"
    _materialize("report_summary", env, second)
    assert _local_exports(second) == []

    [envelope] = smtp_server.messages
    message = email.message_from_bytes(envelope.content, policy=policy.default)
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == KEY.rsplit("/", 1)[-1]
    assert attachment.get_content() == written == bucket.read_bytes(KEY)  # read back, never rebuilt
    with engine.connect() as conn:
        rows = reports.read_export(KEY, written)
        expected = reports.summary(conn, day_of_calls, DAY, rows, datetime.now(UTC))
        [sent] = conn.execute(sa.select(t.reports_sent)).all()
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == reports.summary_text(expected)
    assert "6 dials, 3 contacted" in message["Subject"] and len(rows) == 7
    assert sent.attachment == f"{shared_bucket}/{KEY}"
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        [record] = instance.fetch_materializations(dg.AssetKey("report_summary"), limit=1).records
    metadata = record.asset_materialization.metadata
    assert metadata["file"] == dg.MetadataValue.url(f"{shared_bucket}/{KEY}")
    assert (metadata["dials"].value, metadata["abandoned"].value) == (6, 1)
    assert metadata["delivery"].value.startswith("sent via")
