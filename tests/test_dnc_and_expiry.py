"""DNC list imports (CLI and bucket) and daily expiry, on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import sqlalchemy as sa
from typer.testing import CliRunner

from campaigns.core import schema as t
from campaigns.ingestion.expiry import expire_prospects
from dialer_cli.main import app
from tests.helpers import apply_campaign, drop, failure, run_upload

runner = CliRunner()


def _numbers(engine, list_name="internal") -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(
                sa.select(t.dnc_numbers.c.phone_e164)
                .join(t.dnc_lists, t.dnc_lists.c.id == t.dnc_numbers.c.dnc_list_id)
                .where(t.dnc_lists.c.name == list_name)
            ).scalars()
        )


def test_dnc_import_accepts_lines_registry_pairs_and_csv(engine, dialer_env, tmp_path):
    apply_campaign(engine)
    plain = tmp_path / "registry.txt"
    plain.write_text("4155551234\n212,5550199\n(305) 555-0100\nnot a number\n\n4155551234\n")
    result = runner.invoke(app, ["dnc", "import", "acme/internal", str(plain), "--json"])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["rows"], summary["added"], summary["invalid"], summary["already_listed"]) == (5, 3, 1, 1)
    assert _numbers(engine) == {"+14155551234", "+12125550199", "+13055550100"}

    with_header = tmp_path / "opt-outs.csv.gz"
    with_header.write_bytes(gzip.compress(b"Name,Phone Number\nAnn,415-555-1234\nBo,+1 928 555 1234\n"))
    again = json.loads(runner.invoke(app, ["dnc", "import", "internal", str(with_header), "--json"]).stdout)
    assert (again["added"], again["already_listed"]) == (1, 1)
    assert "+19285551234" in _numbers(engine)
    listed = json.loads(runner.invoke(app, ["dnc", "lists", "--json"]).stdout)
    assert listed == [{"workspace": "acme", "list": "internal", "numbers": 4}]


def test_dnc_import_refuses_unknown_workspace(engine, dialer_env, tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("4155551234\n")
    result = runner.invoke(app, ["dnc", "import", "nowhere/internal", str(path)])
    assert result.exit_code == 2 and "There is no workspace `nowhere`" in result.stderr


def test_a_dnc_file_dropped_in_the_bucket_is_imported_then_scrubs_uploads(engine, dialer_env):
    apply_campaign(engine)
    bucket_dir = Path(dialer_env["DIALER_HOME"]) / "bucket"
    drop(bucket_dir, "dnc/acme/internal/2026-11.txt", "4155551234\n")
    from campaigns.core.config import DialerConfig
    from pipelines.definitions import defs, resources_for

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("dnc_files", ["acme/internal/2026-11.txt"])
    result = defs.resolve_job_def("import_dnc_file").execute_in_process(
        partition_key="acme/internal/2026-11.txt", instance=instance, raise_on_error=False,
        resources=resources_for(DialerConfig.from_env()),
    )
    assert result.success, failure(result)
    assert _numbers(engine) == {"+14155551234"}
    assert (bucket_dir / "processed/dnc/acme/internal/2026-11.txt").exists()

    drop(bucket_dir, "inbox/acme/renewals/l.csv", "phone\n(415) 555-1234\n(415) 555-9999\n")
    upload = run_upload("acme/renewals/l.csv")
    with engine.connect() as conn:
        statuses = dict(conn.execute(sa.select(t.prospects.c.phone_e164, t.prospects.c.status)).all())
    assert upload.success and statuses == {"+14155551234": "dnc", "+14155559999": "ready"}


def test_expiry_marks_ready_and_callback_prospects_past_their_date(engine, dialer_env):
    apply_campaign(engine)
    bucket_dir = Path(dialer_env["DIALER_HOME"]) / "bucket"
    drop(bucket_dir, "inbox/acme/renewals/e.csv", "phone\n4155550001\n4155550002\n4155550003\n4155550004\n")
    assert run_upload("acme/renewals/e.csv").success
    now = datetime.now(UTC)
    with engine.begin() as conn:
        ids = conn.execute(sa.select(t.prospects.c.id).order_by(t.prospects.c.id)).scalars().all()
        conn.execute(sa.update(t.prospects).where(t.prospects.c.id == ids[1]).values(status="callback"))
        conn.execute(sa.update(t.prospects).where(t.prospects.c.id == ids[2]).values(status="done"))
        conn.execute(
            sa.update(t.prospects).where(t.prospects.c.id.in_(ids[:3])).values(expires_at=now - timedelta(minutes=1))
        )
    with engine.begin() as conn:
        counts = expire_prospects(conn, now)
    with engine.connect() as conn:
        statuses = conn.execute(sa.select(t.prospects.c.status).order_by(t.prospects.c.id)).scalars().all()
    assert list(counts.values()) == [2]
    assert statuses == ["expired", "expired", "done", "ready"]


def test_dnc_registry_export_with_area_code_column_and_broken_files(engine, dialer_env, tmp_path):
    apply_campaign(engine)
    export = tmp_path / "registry.csv"
    export.write_text("AreaCode,PhoneNumber\n212,5551234\n415,5550000\n")
    summary = json.loads(runner.invoke(app, ["dnc", "import", "acme/internal", str(export), "--json"]).stdout)
    assert (summary["added"], summary["invalid"]) == (2, 0)
    assert _numbers(engine) == {"+12125551234", "+14155550000"}
    broken = tmp_path / "broken.txt.gz"
    broken.write_bytes(b"not gzip")
    result = runner.invoke(app, ["dnc", "import", "acme/internal", str(broken)])
    assert result.exit_code == 2 and "broken.txt.gz: cannot be read" in result.stderr
