"""The bucket on S3: a real S3-compatible HTTP endpoint on loopback (moto's server mode), not a mocked client."""

from __future__ import annotations

import boto3
import dagster as dg
import pytest
from moto.server import ThreadedMotoServer

from campaigns.core.config import DialerConfig
from campaigns.ingestion.bucket import Bucket, UnsafeKey
from pipelines.sensors import inbox_sensor
from resources.bucket import BucketResource
from resources.database import DatabaseResource
from tests.helpers import apply_campaign, failure, materialized, run_upload

BUCKET = "dialer-test"


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint, monkeypatch, request):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("DIALER_S3_ENDPOINT_URL", s3_endpoint)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    name = f"{BUCKET}-{abs(hash(request.node.nodeid)) % 10**8}"
    client.create_bucket(Bucket=name)
    monkeypatch.setenv("DIALER_BUCKET_URL", f"s3://{name}/dialer")
    return client, name


def _keys(client, name) -> list[str]:
    listed = client.list_objects_v2(Bucket=name).get("Contents", [])
    return sorted(o["Key"] for o in listed)


def test_bucket_operations_and_prefix_safety(s3):
    client, name = s3
    bucket = Bucket.from_config(DialerConfig.from_env())
    bucket.write_text("inbox/acme/renewals/a.csv", "phone\n4155551234\n")
    [info] = bucket.list("inbox")
    assert info.key == "inbox/acme/renewals/a.csv" and info.size == 17 and info.version
    moved = bucket.move("inbox/acme/renewals/a.csv", "processed/acme/renewals/a.csv")
    assert moved == "processed/acme/renewals/a.csv"
    assert _keys(client, name) == ["dialer/processed/acme/renewals/a.csv"]
    for bad in ("../other/x.csv", "/etc/passwd", "inbox/../../x.csv", "inbox\\x.csv"):
        with pytest.raises(UnsafeKey):
            bucket.open(bad)


def test_a_list_loads_from_s3_end_to_end(engine, dialer_env, s3, tmp_path):
    client, name = s3
    cfg = DialerConfig.from_env()
    apply_campaign(engine)
    client.put_object(
        Bucket=name,
        Key="dialer/inbox/acme/renewals/s3.csv",
        Body=b"phone,first_name\n(415) 555-1234,Ann\nnot a phone,Bob\n",
    )
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        from pipelines.definitions import defs

        def tick(cursor=None):
            with dg.build_sensor_context(
                instance=instance, instance_ref=instance.get_ref(), cursor=cursor, definitions=defs,
                resources={"bucket": BucketResource.from_config(cfg), "database": DatabaseResource.from_config(cfg)},
            ) as context:
                return inbox_sensor.evaluate_tick(context)

        requested = tick(tick().cursor).run_requests
        assert [r.partition_key for r in requested] == ["acme/renewals/s3.csv"]
        etag = client.head_object(Bucket=name, Key="dialer/inbox/acme/renewals/s3.csv")["ETag"].strip('"')
        assert requested[0].run_key == f"inbox/acme/renewals/s3.csv@{etag}"
        result = run_upload("acme/renewals/s3.csv", instance)
    assert result.success, failure(result)
    summary = materialized(result, "loaded_prospects")
    assert (summary["rows"], summary["loaded"], summary["invalid"]) == (2, 1, 1)
    assert _keys(client, name) == [
        "dialer/processed/acme/renewals/s3.csv",
        "dialer/rejects/acme/renewals/s3.csv.rejects.csv",
    ]
    rejects = client.get_object(Bucket=name, Key="dialer/rejects/acme/renewals/s3.csv.rejects.csv")["Body"].read()
    assert b"not a phone,Bob,2,phone 'not a phone': contains letters" in rejects


def test_an_escaping_key_on_s3_is_moved_aside_not_loaded(engine, dialer_env, s3, tmp_path):
    client, name = s3
    cfg = DialerConfig.from_env()
    apply_campaign(engine)
    client.put_object(Bucket=name, Key="dialer/inbox/acme/../renewals/x.csv", Body=b"phone\n4155551234\n")
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        from pipelines.definitions import defs

        with dg.build_sensor_context(
            instance=instance, instance_ref=instance.get_ref(), definitions=defs,
            resources={"bucket": BucketResource.from_config(cfg), "database": DatabaseResource.from_config(cfg)},
        ) as context:
            result = inbox_sensor.evaluate_tick(context)
    assert result.run_requests == []
    keys = _keys(client, name)
    assert all(k.startswith("dialer/rejected/_unsorted/") for k in keys) and len(keys) == 2


def test_a_folder_bucket_ignores_links_out_of_it(tmp_path):
    root = tmp_path / "bucket"
    outside = tmp_path / "outside"
    (root / "inbox/acme/renewals").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.csv").write_text("phone\n4155551234\n")
    (root / "inbox/acme/renewals/x.csv").symlink_to(outside / "secret.csv")
    bucket = Bucket(str(root))
    assert bucket.list("inbox") == []
    with pytest.raises(UnsafeKey, match="leads outside the bucket"):
        bucket.open("inbox/acme/renewals/x.csv")
