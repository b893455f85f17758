"""The inbox and DNC sensors, evaluated with build_sensor_context."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from campaigns.core.config import DialerConfig
from pipelines.sensors import dnc_sensor, inbox_sensor, registry_sensor
from resources.bucket import BucketResource
from resources.database import DatabaseResource
from tests.helpers import apply_campaign, drop, run_upload

HEADER = "phone,first_name\n"


@pytest.fixture
def instance(tmp_path):
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as test_instance:
        yield test_instance


@pytest.fixture
def bucket_dir(dialer_env) -> Path:
    return Path(dialer_env["DIALER_HOME"]) / "bucket"


def _tick(instance, cursor=None, sensor=inbox_sensor):
    from pipelines.definitions import defs

    with dg.build_sensor_context(
        instance=instance,
        instance_ref=instance.get_ref(),
        cursor=cursor,
        definitions=defs,
        resources={"bucket": BucketResource.from_config(DialerConfig.from_env()),
                   "database": DatabaseResource.from_config(DialerConfig.from_env())},
    ) as context:
        return sensor.evaluate_tick(context)


def test_a_new_file_is_requested_once_its_size_settles(engine, dialer_env, bucket_dir, instance):
    apply_campaign(engine)
    drop(bucket_dir, "inbox/acme/renewals/a.csv", HEADER + "4155551234,A\n")
    drop(bucket_dir, "inbox/acme/renewals/a.yaml", "priority: 70\n")  # sidecar: never a run of its own

    first = _tick(instance)
    assert first.run_requests == []
    assert list(json.loads(first.cursor)["pending"]) == ["inbox/acme/renewals/a.csv"]

    second = _tick(instance, first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["acme/renewals/a.csv"]
    assert second.run_requests[0].run_key.startswith("inbox/acme/renewals/a.csv@")
    assert second.dynamic_partitions_requests[0].partition_keys == ["acme/renewals/a.csv"]
    state = json.loads(second.cursor)
    assert state == {"last_key": "inbox/acme/renewals/a.csv", "pending": {}}


def test_report_exports_in_the_bucket_are_never_taken_for_uploads(engine, dialer_env, bucket_dir, instance):
    apply_campaign(engine)
    key = "reports/acme/renewals/2026-10-21/renewals-2026-10-21-calls.csv"
    drop(bucket_dir, key, "attempt_id,phone\n1,+14155551234\n")
    for sensor in (inbox_sensor, dnc_sensor, registry_sensor):
        first = _tick(instance, sensor=sensor)
        second = _tick(instance, first.cursor, sensor=sensor)  # past the size-settling tick
        assert first.run_requests == second.run_requests == [], sensor.name
    # Neither requested nor moved aside: the export is where the report put it, alone.
    assert [p.relative_to(bucket_dir).as_posix() for p in bucket_dir.rglob("*") if p.is_file()] == [key]


def test_a_file_still_being_written_waits(engine, dialer_env, bucket_dir, instance):
    apply_campaign(engine)
    path = bucket_dir / "inbox/acme/renewals/big.csv"
    drop(bucket_dir, "inbox/acme/renewals/big.csv", HEADER + "4155551234,A\n")
    cursor = _tick(instance).cursor
    with path.open("a") as handle:  # the upload tool is still appending
        handle.write("4155551235,B\n")
    second = _tick(instance, cursor)
    assert second.run_requests == []
    third = _tick(instance, second.cursor)
    assert [r.partition_key for r in third.run_requests] == ["acme/renewals/big.csv"]


def test_a_new_version_of_the_same_name_gets_a_new_run_key(engine, dialer_env, bucket_dir, instance):
    apply_campaign(engine)
    drop(bucket_dir, "inbox/acme/renewals/a.csv", HEADER + "4155551234,A\n")
    first_key = _tick(instance, _tick(instance).cursor).run_requests[0].run_key
    assert run_upload("acme/renewals/a.csv").success
    drop(bucket_dir, "inbox/acme/renewals/a.csv", HEADER + "4155551299,B\n4155551298,C\n")
    second_key = _tick(instance, _tick(instance).cursor).run_requests[0].run_key
    assert first_key != second_key


def test_registered_versions_and_hidden_files_are_not_requested(engine, dialer_env, bucket_dir, instance):
    apply_campaign(engine)
    drop(bucket_dir, "inbox/acme/renewals/.upload-in-progress.csv", HEADER)
    drop(bucket_dir, "inbox/acme/renewals/partial.csv.part", HEADER)
    drop(bucket_dir, "inbox/acme/renewals/done.csv", HEADER + "4155551234,A\n")
    from campaigns.ingestion import upload_record
    from campaigns.ingestion.bucket import Bucket
    from campaigns.ingestion.inbox import UploadOptions, parse_inbox_key

    bucket = Bucket.from_config(DialerConfig.from_env())
    target = parse_inbox_key("inbox/acme/renewals/done.csv")
    with engine.begin() as conn:
        info = upload_record.campaign_info(conn, "acme", "renewals")
        from datetime import UTC, datetime

        upload_record.register_upload(conn, info, target, bucket.info(target.key), UploadOptions(), datetime.now(UTC))
    result = _tick(instance, _tick(instance).cursor)
    assert result.run_requests == []


@pytest.mark.parametrize(
    "key",
    ["inbox/acme/renewals/deeper/x.csv", "inbox/acme/x.csv", "inbox/acme/renewals/list.xlsx", "inbox/Acme Corp/renewals/x.csv"],
)
def test_keys_outside_the_layout_are_moved_aside(engine, dialer_env, bucket_dir, key, instance):
    apply_campaign(engine)
    drop(bucket_dir, key, HEADER + "4155551234,A\n")
    result = _tick(instance)
    assert result.run_requests == []
    assert not (bucket_dir / key).exists()
    moved = list((bucket_dir / "rejected/_unsorted").iterdir())
    errors = [p for p in moved if p.name.endswith(".error.txt")]
    assert len(errors) == 1 and key in errors[0].read_text()


def test_dnc_sensor_requests_dropped_dnc_files(engine, dialer_env, bucket_dir, instance):
    drop(bucket_dir, "dnc/acme/internal/2026-11.txt", "4155551234\n")
    first = _tick(instance, sensor=dnc_sensor)
    second = _tick(instance, first.cursor, sensor=dnc_sensor)
    assert [r.partition_key for r in second.run_requests] == ["acme/internal/2026-11.txt"]


def test_definitions_start_the_sensors_running():
    assert inbox_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert dnc_sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_a_loaded_file_left_in_the_inbox_is_filed_away_by_one_more_run(engine, dialer_env, bucket_dir, instance):
    import sqlalchemy as sa

    from campaigns.core import schema as t

    apply_campaign(engine)
    drop(bucket_dir, "inbox/acme/renewals/a.csv", HEADER + "4155551234,A\n")
    assert run_upload("acme/renewals/a.csv").success
    # Simulate a run that died after the load committed: the file is back where it was.
    (bucket_dir / "processed/acme/renewals/a.csv").rename(bucket_dir / "inbox/acme/renewals/a.csv")
    with engine.begin() as conn:
        conn.execute(sa.update(t.prospect_lists).values(archived_key=None))
    result = _tick(instance)
    assert [r.run_key.endswith("#file-away") for r in result.run_requests] == [True]
    again = run_upload("acme/renewals/a.csv")
    assert again.success
    assert (bucket_dir / "processed/acme/renewals/a.csv").exists()
    assert not (bucket_dir / "inbox/acme/renewals/a.csv").exists()
