"""Loading prospect lists through the Dagster job, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from campaigns.core import schema as t
from tests.helpers import (
    UPLOADS_CAMPAIGN,
    apply_campaign,
    check_results,
    drop,
    failure,
    materialized,
    run_upload,
)

HEADER = "Phone Number,First Name,Last Name,State,ZIP,Account\n"


@pytest.fixture
def bucket_dir(dialer_env) -> Path:
    return Path(dialer_env["DIALER_HOME"]) / "bucket"


@pytest.fixture
def campaign(engine, dialer_env):
    return apply_campaign(engine)


def _prospects(engine, **where) -> list:
    query = sa.select(t.prospects).order_by(t.prospects.c.id)
    for key, value in where.items():
        query = query.where(t.prospects.c[key] == value)
    with engine.connect() as conn:
        return conn.execute(query).all()


def test_a_list_loads_with_lineage_metadata_and_checks(engine, campaign, bucket_dir):
    drop(
        bucket_dir,
        "inbox/acme/renewals/march.csv",
        HEADER
        + "(415) 555-1234,Ann,Lee,CA,94103,A-1\n"
        + "928.555.1234,Bo,Ng,,86001,A-2\n"
        + "415555123,Cy,Oh,,,A-3\n"  # too short
        + "+1 415 555 1234,Ann,Again,,,A-4\n"  # duplicate of row 1
        + "1-800-FLOWERS,Di,Ro,,,A-5\n",  # letters
    )
    result = run_upload("acme/renewals/march.csv")
    assert result.success, failure(result)
    summary = materialized(result, "loaded_prospects")
    assert {k: summary[k] for k in ("rows", "loaded", "duplicates", "invalid", "dnc")} == {
        "rows": 5, "loaded": 2, "duplicates": 1, "invalid": 2, "dnc": 0
    }
    assert summary["balanced"] is True
    assert check_results(result) == {"staged_rows_conform": True, "upload_accounting": True}
    assert materialized(result, "upload_file")["columns"] == {
        "phone": "Phone Number", "first_name": "First Name", "last_name": "Last Name", "state": "State", "zip": "ZIP"
    }

    ann, bo = _prospects(engine)
    assert (ann.phone_e164, ann.address_state, ann.candidate_zones, ann.status) == (
        "+14155551234", "CA", "America/Los_Angeles", "ready"
    )
    assert ann.custom_fields == {"Account": "A-1"}
    assert (bo.address_state, bo.zip_code, bo.zone_group) == ("AZ", "86001", "America/Phoenix|AZ|AZ")
    assert ann.expires_at - ann.loaded_at == timedelta(days=90)

    assert not (bucket_dir / "inbox/acme/renewals/march.csv").exists()
    assert (bucket_dir / "processed/acme/renewals/march.csv").exists()
    rejects = (bucket_dir / "rejects/acme/renewals/march.csv.rejects.csv").read_text()
    lines = rejects.splitlines()
    assert lines[0] == "Phone Number,First Name,Last Name,State,ZIP,Account,row,reason"
    assert lines[1].startswith("415555123,Cy,Oh,,,A-3,3,phone '415555123': too few digits")
    assert "duplicate of row 1 in this file" in lines[2]
    assert "contains letters" in lines[3]


def test_rerunning_a_partition_never_loads_a_row_twice(engine, campaign, bucket_dir):
    drop(bucket_dir, "inbox/acme/renewals/a.csv", HEADER + "4155551234,A,,,,\n4155551235,B,,,,\n")
    first = run_upload("acme/renewals/a.csv")
    again = run_upload("acme/renewals/a.csv")
    assert first.success and again.success, failure(again)
    assert materialized(again, "upload_file")["already_loaded"] is True
    assert len(_prospects(engine)) == 2
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.prospect_lists)).scalar_one() == 1


def test_rerun_after_a_crash_mid_way_starts_clean(engine, campaign, bucket_dir):
    """A run that died after staging (file still in the inbox) is simply run again."""
    import dagster as dg

    from assets.ingestion import upload_file, validated_rows

    drop(bucket_dir, "inbox/acme/renewals/b.csv", HEADER + "4155551234,A,,,,\n4155551234,B,,,,\n")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("uploads", ["acme/renewals/b.csv"])
    from campaigns.core.config import DialerConfig
    from pipelines.definitions import resources_for

    partial = dg.materialize(
        [upload_file, validated_rows], partition_key="acme/renewals/b.csv", instance=instance,
        resources=resources_for(DialerConfig.from_env()),
    )
    assert partial.success
    result = run_upload("acme/renewals/b.csv", instance)
    assert result.success, failure(result)
    summary = materialized(result, "loaded_prospects")
    assert (summary["rows"], summary["loaded"], summary["duplicates"]) == (2, 1, 1)


@pytest.mark.parametrize(("dupe_days", "age_days", "duplicate"), [(90, 10, True), (90, 100, False), (-1, 1, False), (5, 4, True)])
def test_dupe_days_across_the_campaign(engine, bucket_dir, dialer_env, dupe_days, age_days, duplicate):
    apply_campaign(engine, {**UPLOADS_CAMPAIGN, "uploads": {"dupe_days": dupe_days}})
    drop(bucket_dir, "inbox/acme/renewals/first.csv", HEADER + "4155551234,A,,,,\n")
    assert run_upload("acme/renewals/first.csv").success
    with engine.begin() as conn:
        conn.execute(sa.update(t.prospects).values(loaded_at=datetime.now(UTC) - timedelta(days=age_days)))
    drop(bucket_dir, "inbox/acme/renewals/second.csv", HEADER + "(415) 555-1234,A,,,,\n")
    result = run_upload("acme/renewals/second.csv")
    summary = materialized(result, "loaded_prospects")
    assert (summary["duplicates"], summary["loaded"]) == ((1, 0) if duplicate else (0, 1))


def _dnc(engine, numbers: list[str]):
    with engine.begin() as conn:
        list_id = conn.execute(sa.select(t.dnc_lists.c.id).where(t.dnc_lists.c.name == "internal")).scalar_one()
        conn.execute(
            sa.insert(t.dnc_numbers),
            [{"dnc_list_id": list_id, "phone_e164": n, "added_at": datetime.now(UTC)} for n in numbers],
        )


def test_dnc_numbers_load_with_the_dnc_disposition(engine, campaign, bucket_dir):
    _dnc(engine, ["+14155551234"])
    drop(bucket_dir, "inbox/acme/renewals/d.csv", HEADER + "4155551234,A,,,,\n4155551235,B,,,,\n")
    result = run_upload("acme/renewals/d.csv")
    summary = materialized(result, "loaded_prospects")
    assert (summary["loaded"], summary["dnc"], summary["warnings"]) == (1, 1, [])
    flagged = _prospects(engine, phone_e164="+14155551234")[0]
    assert (flagged.status, flagged.disposition) == ("dnc", "Do Not Call")


def test_dnc_without_a_disposition_loads_as_normal_and_warns(engine, bucket_dir, dialer_env):
    apply_campaign(engine, {**UPLOADS_CAMPAIGN, "dnc": {"lists": ["internal"]}, "dispositions": []})
    _dnc(engine, ["+14155551234"])
    drop(bucket_dir, "inbox/acme/renewals/d.csv", HEADER + "4155551234,A,,,,\n4155551235,B,,,,\n")
    summary = materialized(run_upload("acme/renewals/d.csv"), "loaded_prospects")
    assert (summary["loaded"], summary["dnc"]) == (2, 0)
    assert len(summary["warnings"]) == 1 and summary["warnings"][0].startswith("1 number(s) are on the campaign's DNC lists")


def test_sidecar_overrides_upload_options(engine, campaign, bucket_dir):
    drop(bucket_dir, "inbox/acme/renewals/vip.csv", HEADER + "4155551234,A,,,,\n")
    drop(bucket_dir, "inbox/acme/renewals/vip.yaml", "priority: 90\nexpire_days: 7\n")
    result = run_upload("acme/renewals/vip.csv")
    assert result.success, failure(result)
    prospect = _prospects(engine)[0]
    assert prospect.priority == 90
    assert prospect.expires_at - prospect.loaded_at == timedelta(days=7)
    assert (bucket_dir / "processed/acme/renewals/vip.yaml").exists()


def test_bad_sidecar_rejects_the_file(engine, campaign, bucket_dir):
    drop(bucket_dir, "inbox/acme/renewals/vip.csv", HEADER + "4155551234,A,,,,\n")
    drop(bucket_dir, "inbox/acme/renewals/vip.csv.yaml", "priority: 500\n")
    result = run_upload("acme/renewals/vip.csv")
    assert not result.success
    assert "`priority` must be between 0 and 100 (got 500)" in failure(result)
    assert (bucket_dir / "rejected/acme/renewals/vip.csv").exists()
    assert "priority" in (bucket_dir / "rejected/acme/renewals/vip.csv.error.txt").read_text()


def test_whole_file_rejection_moves_it_aside_with_an_explanation(engine, campaign, bucket_dir):
    drop(bucket_dir, "inbox/acme/renewals/names.csv", "name,email\nAnn,a@example.com\n")
    result = run_upload("acme/renewals/names.csv")
    assert not result.success
    assert failure(result).startswith("inbox/acme/renewals/names.csv: has no phone column")
    assert not (bucket_dir / "inbox/acme/renewals/names.csv").exists()
    error = (bucket_dir / "rejected/acme/renewals/names.csv.error.txt").read_text()
    assert "has no phone column" in error
    with engine.connect() as conn:
        row = conn.execute(sa.select(t.prospect_lists)).one()
    assert row.status == "rejected" and "no phone column" in row.error


@pytest.mark.parametrize(
    ("key", "sentence"),
    [
        ("inbox/globex/renewals/x.csv", "There is no workspace `globex`"),
        ("inbox/acme/unknown/x.csv", "There is no campaign `unknown` in workspace `acme`"),
    ],
)
def test_unknown_workspace_or_campaign_is_rejected_never_loaded(engine, campaign, bucket_dir, key, sentence):
    drop(bucket_dir, key, HEADER + "4155551234,A,,,,\n")
    result = run_upload(key.removeprefix("inbox/"))
    assert not result.success and sentence in failure(result)
    assert (bucket_dir / key.replace("inbox/", "rejected/", 1)).exists()
    assert _prospects(engine) == []


def test_concurrent_uploads_do_not_both_load_a_number(engine, campaign, bucket_dir):
    """Two uploads of the same numbers, loaded at the same time: each number is loaded once."""
    import threading

    numbers = "".join(f"415555{i:04d},P{i},,,,\n" for i in range(200))
    for name in ("one.csv", "two.csv"):
        drop(bucket_dir, f"inbox/acme/renewals/{name}", HEADER + numbers)
    import dagster as dg

    results = {}
    instances = {n: dg.DagsterInstance.ephemeral() for n in ("one.csv", "two.csv")}

    def run(name):
        results[name] = run_upload(f"acme/renewals/{name}", instances[name])

    threads = [threading.Thread(target=run, args=(n,)) for n in ("one.csv", "two.csv")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.success for r in results.values()), [failure(r) for r in results.values()]
    with engine.connect() as conn:
        per_number = conn.execute(
            sa.select(t.prospects.c.phone_e164, sa.func.count()).group_by(t.prospects.c.phone_e164)
        ).all()
    assert len(per_number) == 200 and {c for _, c in per_number} == {1}
    loaded = sorted(materialized(r, "loaded_prospects")["loaded"] for r in results.values())
    assert loaded == [0, 200]


def _run_steps(partition_key: str, instance, *assets: str):
    import dagster as dg

    from campaigns.core.config import DialerConfig
    from pipelines.definitions import build_definitions

    defs = build_definitions(DialerConfig.from_env())
    return defs.resolve_job_def("load_prospect_list").execute_in_process(
        partition_key=partition_key, instance=instance, raise_on_error=False,
        asset_selection=[dg.AssetKey(a) for a in assets],
    )


def _load_counts(engine, campaign_id: int) -> tuple[int, list]:
    with engine.connect() as conn:
        loads = conn.execute(
            sa.select(t.campaigns.c.list_loads).where(t.campaigns.c.id == campaign_id)
        ).scalar_one()
        seen = conn.execute(
            sa.select(t.prospect_lists.c.filename, t.prospect_lists.c.deduped_at_loads)
            .order_by(t.prospect_lists.c.id)
        ).all()
    return loads, [tuple(r) for r in seen]


def test_a_load_between_an_uploads_dedupe_and_its_load_is_caught(engine, campaign, bucket_dir):
    """One is deduplicated, two loads the same numbers, then one loads: one's rows are duplicates."""
    import dagster as dg

    numbers = "".join(f"415555{i:04d},P{i},,,,\n" for i in range(50))
    for name in ("one.csv", "two.csv"):
        drop(bucket_dir, f"inbox/acme/renewals/{name}", HEADER + numbers)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("uploads", ["acme/renewals/one.csv"])
    first = _run_steps("acme/renewals/one.csv", instance,
                       "upload_file", "validated_rows", "deduplicated_rows", "dnc_scrubbed_rows")
    assert first.success, failure(first)
    assert materialized(first, "deduplicated_rows")["duplicates_across_campaign"] == 0
    two = run_upload("acme/renewals/two.csv")
    assert materialized(two, "loaded_prospects")["loaded"] == 50
    one = _run_steps("acme/renewals/one.csv", instance, "loaded_prospects")
    assert one.success, failure(one)
    summary = materialized(one, "loaded_prospects")
    assert (summary["loaded"], summary["duplicates"]) == (0, 50)
    assert check_results(one) == {"upload_accounting": True}
    assert len(_prospects(engine)) == 50
    # one's dedupe ran again under the lock, after two's load.
    assert _load_counts(engine, campaign.campaign_id) == (2, [("one.csv", 1), ("two.csv", 0)])


def test_a_load_with_no_load_since_its_dedupe_counts_itself(engine, campaign, bucket_dir):
    """Uploads one after another: each dedupe saw every earlier load; the campaign counts the loads."""
    for name, start in (("a.csv", 0), ("b.csv", 100)):
        rows = "".join(f"415555{i:04d},P{i},,,,\n" for i in range(start, start + 20))
        drop(bucket_dir, f"inbox/acme/renewals/{name}", HEADER + rows + "4155550000,again,,,,\n")
        assert run_upload(f"acme/renewals/{name}").success
    assert _load_counts(engine, campaign.campaign_id) == (2, [("a.csv", 0), ("b.csv", 1)])
    b = _prospects(engine)[-1]
    assert len(_prospects(engine)) == 40 and b.phone_e164 == "+14155550119"


def test_numbers_without_zone_data_and_long_extensions_load(engine, campaign, bucket_dir):
    """A toll-free number falls back to every zone of the locale (long zone strings) on both backends."""
    drop(bucket_dir, "inbox/acme/renewals/tf.csv", HEADER + "800-225-5288,A,,,,\n212-555-1234 ext 123456789012345,B,,,,\n")
    result = run_upload("acme/renewals/tf.csv")
    assert result.success, failure(result)
    [toll_free] = _prospects(engine, phone_e164="+18002255288")
    [extended] = _prospects(engine, phone_e164="+12125551234")
    assert len(toll_free.candidate_zones.split(",")) > 20
    assert extended.phone_ext == "123456789012345"


def test_a_canada_campaign_refuses_us_zip_codes(engine, bucket_dir, dialer_env):
    apply_campaign(engine, {**UPLOADS_CAMPAIGN, "slug": "ca", "locale": "CA"})
    drop(bucket_dir, "inbox/acme/ca/l.csv", HEADER + "(416) 555-1234,A,,,10001,\n(416) 555-1235,B,,,M5V 3L9,\n")
    summary = materialized(run_upload("acme/ca/l.csv"), "loaded_prospects")
    assert (summary["loaded"], summary["invalid"]) == (1, 1)


def test_a_yml_sidecar_is_read(engine, campaign, bucket_dir):
    drop(bucket_dir, "inbox/acme/renewals/vip.csv", HEADER + "4155551234,A,,,,\n")
    drop(bucket_dir, "inbox/acme/renewals/vip.yml", "priority: 95\n")
    assert run_upload("acme/renewals/vip.csv").success
    assert _prospects(engine)[0].priority == 95


def test_a_file_broken_half_way_is_refused_and_moved_aside(engine, campaign, bucket_dir):
    rows = "".join(f"415555{i:04d},P,,,,\n" for i in range(3000))
    drop(bucket_dir, "inbox/acme/renewals/broken.csv", HEADER + rows + '4155559999,"never closed,,,,\n')
    result = run_upload("acme/renewals/broken.csv")
    assert not result.success
    assert "has an unbalanced double quote" in failure(result)
    assert (bucket_dir / "rejected/acme/renewals/broken.csv.error.txt").exists()
    assert _prospects(engine) == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(t.prospect_lists.c.status)).scalar_one() == "rejected"


def test_the_load_refuses_a_partial_staging_copy(engine, campaign, bucket_dir):
    """After a crash empties the (UNLOGGED) staging table, re-running only the load must not load nothing."""
    import dagster as dg

    from assets.ingestion import (
        deduplicated_rows,
        dnc_scrubbed_rows,
        loaded_prospects,
        upload_file,
        validated_rows,
    )
    from campaigns.core.config import DialerConfig
    from pipelines.definitions import resources_for

    resources = resources_for(DialerConfig.from_env())
    drop(bucket_dir, "inbox/acme/renewals/c.csv", HEADER + "4155551234,A,,,,\n4155551235,B,,,,\n")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("uploads", ["acme/renewals/c.csv"])
    staged = dg.materialize([upload_file, validated_rows], partition_key="acme/renewals/c.csv", instance=instance, resources=resources)
    assert staged.success
    with engine.begin() as conn:
        conn.execute(sa.delete(t.upload_rows))
    rest = dg.materialize(
        [deduplicated_rows, dnc_scrubbed_rows, loaded_prospects], partition_key="acme/renewals/c.csv",
        instance=instance, resources=resources, raise_on_error=False,
    )
    assert not rest.success
    assert "0 of 2 rows are staged; re-run the whole upload" in failure(rest)
    assert _prospects(engine) == []


def test_awkward_text_reaches_the_prospect_unchanged(engine, campaign, bucket_dir):
    """Quotes, commas, newlines, backslashes, non-ASCII and empty cells survive staging (COPY as CSV) and load."""
    first = 'Ann "Jo", Jr.\nsecond line \\N \\ é 日本'
    account = '"quoted", \\t tab\tand ;|'
    content = (
        "Phone Number,First Name,Last Name,State,ZIP,Account,Note\n"
        + "4155551234," + '"' + first.replace('"', '""') + '"' + ",,,," + '"' + account.replace('"', '""') + '"' + ",\n"
        + '4155551235,"",Smith,,,"",x\n'
    )
    drop(bucket_dir, "inbox/acme/renewals/awkward.csv", content)
    result = run_upload("acme/renewals/awkward.csv")
    assert result.success, failure(result)
    one, two = _prospects(engine)
    assert (one.first_name, one.last_name, one.custom_fields) == (first, None, {"Account": account})
    assert (two.first_name, two.last_name, two.custom_fields) == (None, "Smith", {"Note": "x"})


def test_staging_again_drops_the_dedupe_the_load_may_skip(engine, campaign, bucket_dir):
    """Dedupe, then stage again with no load in between: the load dedupes the new staging rows itself."""
    import dagster as dg

    numbers = "".join(f"415555{i:04d},P{i},,,,\n" for i in range(30))
    drop(bucket_dir, "inbox/acme/renewals/first.csv", HEADER + numbers)
    assert run_upload("acme/renewals/first.csv").success
    drop(bucket_dir, "inbox/acme/renewals/again.csv", HEADER + numbers)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("uploads", ["acme/renewals/again.csv"])
    staged = _run_steps("acme/renewals/again.csv", instance,
                        "upload_file", "validated_rows", "deduplicated_rows", "dnc_scrubbed_rows")
    assert materialized(staged, "deduplicated_rows")["duplicates_across_campaign"] == 30
    assert _run_steps("acme/renewals/again.csv", instance, "validated_rows").success
    loaded = _run_steps("acme/renewals/again.csv", instance, "loaded_prospects")
    summary = materialized(loaded, "loaded_prospects")
    assert (summary["loaded"], summary["duplicates"]) == (0, 30)
    assert len(_prospects(engine)) == 30


def test_two_runners_of_one_upload_load_it_once(engine, campaign, bucket_dir):
    """CLI and sensor loading the same upload at once: the second waits for the lock, then finds it loaded."""
    import threading

    import dagster as dg

    from campaigns.ingestion import upload_record
    from campaigns.ingestion.load import load_prospects

    drop(bucket_dir, "inbox/acme/renewals/twice.csv", HEADER + "".join(f"415555{i:04d},P{i},,,,\n" for i in range(40)))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("uploads", ["acme/renewals/twice.csv"])
    assert _run_steps("acme/renewals/twice.csv", instance,
                      "upload_file", "validated_rows", "deduplicated_rows", "dnc_scrubbed_rows").success
    with engine.connect() as conn:
        info = upload_record.campaign_info(conn, "acme", "renewals")
        upload = upload_record.latest_upload(conn, info.id, "inbox/acme/renewals/twice.csv")
    outcomes, errors = [], []

    def load():
        try:
            outcomes.append(load_prospects(engine, upload, info, datetime.now(UTC)))
        except Exception as exc:  # noqa: BLE001 - the test reports any failure
            errors.append(exc)

    # Hold the campaign's load lock while both runners start, so both queue behind it.
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(t.campaigns.c.id).where(t.campaigns.c.id == info.id).with_for_update())
        runners = [threading.Thread(target=load) for _ in range(2)]
        for runner in runners:
            runner.start()
        runners[0].join(0.5)
    for runner in runners:
        runner.join(30)
    assert errors == []
    assert sorted((o.status, o.loaded) for o in outcomes) == [("loaded", 40), ("loaded", 40)]
    assert len(_prospects(engine)) == 40
    assert _load_counts(engine, info.id)[0] == 1


def test_scrubbing_again_clears_a_number_no_longer_on_the_list(engine, campaign, bucket_dir):
    """A re-run of the DNC scrub after a number left the list loads it as a normal prospect."""
    import dagster as dg

    _dnc(engine, ["+14155551234"])
    drop(bucket_dir, "inbox/acme/renewals/d.csv", HEADER + "4155551234,A,,,,\n4155551235,B,,,,\n")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("uploads", ["acme/renewals/d.csv"])
    first = _run_steps("acme/renewals/d.csv", instance,
                       "upload_file", "validated_rows", "deduplicated_rows", "dnc_scrubbed_rows")
    assert materialized(first, "dnc_scrubbed_rows")["dnc_flagged"] == 1
    with engine.begin() as conn:
        conn.execute(sa.delete(t.dnc_numbers))
    again = _run_steps("acme/renewals/d.csv", instance, "dnc_scrubbed_rows", "loaded_prospects")
    assert materialized(again, "dnc_scrubbed_rows")["dnc_flagged"] == 0
    summary = materialized(again, "loaded_prospects")
    assert (summary["loaded"], summary["dnc"]) == (2, 0)
    assert {p.status for p in _prospects(engine)} == {"ready"}
