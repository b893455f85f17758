"""The National DNC Registry from file to call decision, through the commands an operator runs:
`dialer dnc registry import` (a full list, then a change list), an upload, `dialer explain`, the
hopper fill. The parts are tested one by one in test_registry_import.py and
test_registry_dialing.py; this is the seam between them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from typer.testing import CliRunner

from campaigns.core import schema as t
from campaigns.dialing import hopper
from dialer_cli.main import app
from tests.helpers import UPLOADS_CAMPAIGN, apply_campaign, drop, failure, run_upload

OPTED_IN = {**UPLOADS_CAMPAIGN, "dnc": {**UPLOADS_CAMPAIGN["dnc"], "national_registry": True}}
runner = CliRunner()


def _cli(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def _explain(phone: str, at: datetime) -> dict:
    return _cli("explain", "acme/renewals", "--phone", phone, "--at", at.isoformat())


def _queued(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(t.prospects.c.phone_e164)
                                .join(t.hopper, t.hopper.c.prospect_id == t.prospects.c.id)).scalars())


def test_an_imported_registry_holds_a_number_until_a_change_list_deletes_it(engine, dialer_env, tmp_path):
    # A weekday morning in New York, a few days from now (--obtained-at may not be in the future).
    now = datetime.now(UTC).replace(hour=15, minute=0, second=0, microsecond=0) + timedelta(days=3)
    while now.weekday() >= 5:
        now += timedelta(days=1)
    cid = apply_campaign(engine, OPTED_IN, now=now - timedelta(days=10)).campaign_id
    obtained = (datetime.now(UTC) - timedelta(days=1)).date()
    (tmp_path / "212.txt").write_text("2125550100\n2125550101\n2125559999\n")
    first = _cli("dnc", "registry", "import", str(tmp_path / "212.txt"), "--full", "--obtained-at", obtained.isoformat())

    drop(dialer_env["DIALER_HOME"] + "/bucket", "inbox/acme/renewals/r.csv",
         "Phone Number\n2125550100\n2125550101\n2125550102\n3125550103\n")
    result = run_upload("acme/renewals/r.csv")
    assert result.success, failure(result)
    with engine.connect() as conn:
        held = dict(conn.execute(sa.select(t.prospects.c.phone_e164, t.prospects.c.registry_version_id)).all())
    assert held == {"+12125550100": first["version_id"], "+12125550101": first["version_id"],
                    "+12125550102": None, "+13125550103": None}

    reasons = {r["code"] for r in _explain("212-555-0100", now)["reasons"]}
    assert "on_national_registry" in reasons
    assert {r["code"] for r in _explain("312-555-0103", now)["reasons"]} >= {"area_code_not_covered"}
    hopper.fill_campaign(engine, cid, now)
    assert _queued(engine) == {"+12125550102"}

    # The registry deletes 0100: the next fill re-checks the campaign against the new version.
    (tmp_path / "changes.csv").write_text("212,5550100,D\n")
    second = _cli("dnc", "registry", "import", str(tmp_path / "changes.csv"), "--changes",
                  "--obtained-at", obtained.isoformat())
    assert (second["added"], second["deleted"]) == (0, 1)
    hopper.fill_campaign(engine, cid, now + timedelta(minutes=5))
    assert _queued(engine) == {"+12125550100", "+12125550102"}
    assert not {r["code"] for r in _explain("212-555-0100", now + timedelta(minutes=5))["reasons"]}
    assert "on_national_registry" in {r["code"] for r in _explain("212-555-0101", now)["reasons"]}

    # Day 32 of the data: nothing in 212 may be dialed, and explain says why.
    late = datetime.combine(obtained, datetime.min.time(), UTC) + timedelta(days=32, hours=15)
    while late.weekday() >= 5:
        late += timedelta(days=1)
    assert "dnc_registry_stale" in {r["code"] for r in _explain("212-555-0102", late)["reasons"]}


def test_without_obtained_at_the_files_own_day_counts_not_today(engine, dialer_env, tmp_path):
    import os

    path = tmp_path / "212.txt"
    path.write_text("2125550100\n")
    downloaded = datetime.now(UTC) - timedelta(days=6)
    os.utime(path, (downloaded.timestamp(), downloaded.timestamp()))
    version = _cli("dnc", "registry", "import", str(path))
    assert version["obtained_at"] == downloaded.date().isoformat()
