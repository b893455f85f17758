"""Importing the National DNC Registry: the formats accepted, the refusals, and what each import makes."""

from __future__ import annotations

import gzip
import io
import json
import random
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from campaigns.core import schema as t
from campaigns.core.errors import DialerError
from campaigns.ingestion import registry_files
from campaigns.ingestion.registry_files import (
    RegistryFile,
    RegistryKind,
    RegistryRefused,
)
from campaigns.ingestion.registry_import import import_registry
from campaigns.registry import store

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


def _file(tmp_path: Path, name: str, content: bytes | str) -> RegistryFile:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return RegistryFile(str(path), lambda: path.open("rb"))


def _import(engine, tmp_path, *contents, now=NOW, **kwargs):
    files = [_file(tmp_path, f"f{i}.txt", c) for i, c in enumerate(contents)]
    return import_registry(engine, files, now=now, **kwargs)


def _versions(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(t.dnc_registry_versions)).scalar_one()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_every_full_list_format_plain_gz_and_zip(engine, tmp_path):
    files = [
        _file(tmp_path, "212.txt", "2125550100\r\n  212,5550101 \r\n\r\n212 , 5550102\n2125550103"),
        _file(tmp_path, "646.txt.gz", gzip.compress(b"\xef\xbb\xbf6462000000\n646,9999999\n")),
        _file(tmp_path, "more.zip", _zip({"907.txt": b"9072345678\n", "dir/303.csv": b"303,5550100\n"})),
    ]
    result = import_registry(engine, files, now=NOW, obtained_on=date(2026, 11, 18))
    v = result.version
    assert (result.kind, v.kind, v.area_codes, v.numbers, v.added, v.deleted) == ("full", "full", 4, 8, 8, 0)
    assert result.area_codes == [212, 303, 646, 907]
    assert v.source == "212.txt, 646.txt.gz, more.zip" and result.records == 8 and result.lines == 9
    assert v.obtained_at == datetime(2026, 11, 18, tzinfo=UTC)
    registry = store.open_version(engine)
    listed = ["+12125550100", "+12125550101", "+12125550102", "+12125550103", "+16462000000", "+16469999999",
              "+19072345678", "+13035550100"]
    assert registry.listed(listed + ["+12125550104"]).tolist() == [True] * 8 + [False]


@pytest.mark.parametrize(("content", "sentence"), [
    ("2125550100\n212555010\n", "f0.txt, line 2: expected a full-list line (NNNNNNNNNN or NNN,NNNNNNN) because "
                                "the import is a full list from"),
    ("2125550100\n212 5550101\n", "f0.txt, line 2: expected"),
    ("2121550100\n", "f0.txt, line 1: expected an area code and an exchange of 200-999, got '2121550100'"),
    ("1125550100\n", "line 1: expected an area code and an exchange of 200-999"),
    ("212,5550100,X\n", "f0.txt, line 1: expected a full-list line (NNNNNNNNNN or NNN,NNNNNNN) or a change-list"),
    ("2125550100\n212,5550100,A\n", "f0.txt, line 2: expected a full-list line"),
    ("212;5550100\n", "line 1: expected a full-list line"),
    ("\n\n\n", "holds no numbers"),
    ("2" * 5000, "line 1: expected"),
])
def test_a_bad_line_refuses_the_whole_import_in_one_sentence(engine, tmp_path, content, sentence):
    with pytest.raises(RegistryRefused) as caught:
        _import(engine, tmp_path, content)
    message = str(caught.value)
    assert sentence in message and "\n" not in message
    assert message.endswith(".") and _versions(engine) == 0


@pytest.mark.parametrize(("name", "content", "options", "match"), [
    ("f.txt", b"2125550100\n", {"kind": RegistryKind.CHANGES},
     "line 1: expected a change-list line .* because --changes was given"),
    ("a.zip", _zip({"in.zip": b"x"}), {}, "a.zip:in.zip: is an archive inside an archive"),
    ("b.gz", gzip.compress(gzip.compress(b"2125550100\n", mtime=0), mtime=0), {}, "b.gz: is an archive inside an archive"),
    ("bomb.zip", _zip({"a.txt": b"2125550100\n" * 10_000}), {"max_bytes": 1000},
     "bomb.zip:a.txt: the import's files expand to more than 1,000 bytes"),
    ("c.gz", b"\x1f\x8b\x08\x00garbage", {}, "c.gz: cannot be read"),
    ("d.txt", b"212,5550100,A\n", {}, "a change list, but there is no registry version"),
    ("e.txt", b"2125550100\n", {"obtained_on": date(2026, 11, 21)}, "is in the future"),
    ("f.txt", b"2125550100\n", {"area_codes": [199]}, "area code 199 is not an area code"),
])
def test_refused_imports_make_no_version(engine, tmp_path, name, content, options, match):
    with pytest.raises(DialerError, match=match):
        import_registry(engine, [_file(tmp_path, name, content)], now=NOW, **options)
    assert _versions(engine) == 0


def test_mixing_kinds_across_files_is_refused(engine, tmp_path):
    with pytest.raises(RegistryRefused, match=r"f1.txt, line 1: expected a full-list line .* from .*f0.txt, line 1 on"):
        _import(engine, tmp_path, "2125550100\n", "212,5550100,D\n")
    assert _versions(engine) == 0


def test_a_full_import_replaces_only_the_area_codes_it_names(engine, tmp_path):
    first = _import(engine, tmp_path, "2125550100\n2125550101\n6465550100\n", obtained_on=date(2026, 11, 1))
    second = _import(engine, tmp_path, "2125550102\n", obtained_on=date(2026, 11, 15), area_codes=[907])
    assert second.version.based_on_id == first.version.id and second.area_codes == [212, 907]
    assert (second.version.added, second.version.deleted, second.version.numbers) == (1, 2, 2)
    registry = store.open_version(engine)
    assert registry.contains("+12125550102") and not registry.contains("+12125550100")
    assert registry.contains("+16465550100") and registry.covers(907) and len(registry.bitmap(907)) == 0
    assert registry.obtained_at(646) == datetime(2026, 11, 1, tzinfo=UTC)
    assert registry.obtained_at(212) == registry.obtained_at(907) == datetime(2026, 11, 15, tzinfo=UTC)
    # An empty file names nothing: with --full and --area-codes it covers an area code nobody is listed in.
    third = _import(engine, tmp_path, "\r\n", kind=RegistryKind.FULL, area_codes=[303])
    assert (third.area_codes, third.records, third.version.area_codes) == ([303], 0, 4)


def test_a_change_list_applies_adds_and_deletes_and_counts_only_real_changes(engine, tmp_path):
    _import(engine, tmp_path, "2125550100\n2125550101\n6465550100\n9075550100\n", obtained_on=date(2026, 11, 1))
    changes = _import(
        engine, tmp_path,
        "212,5550100,A\n"      # already listed: not counted
        "212,5550102,a\n"      # added
        "2125550101,D\n"       # deleted
        "212,5550103,D\n"      # not listed: not counted
        "212,5550104,A\n212,5550104,D\n"  # the last record of a number wins: nothing
        "646,5550100,d\n",
        obtained_on=date(2026, 11, 10), area_codes=[907],
    )
    v = changes.version
    assert (changes.kind, v.kind, v.added, v.deleted, v.numbers) == ("changes", "changes", 1, 2, 3)
    assert changes.area_codes == [212, 646, 907]
    registry = store.open_version(engine)
    assert registry.listed(["+12125550100", "+12125550101", "+12125550102", "+12125550104", "+16465550100",
                            "+19075550100"]).tolist() == [True, False, True, False, False, True]
    assert {a: registry.obtained_at(a).day for a in (212, 646, 907)} == {212: 10, 646: 10, 907: 10}

    with pytest.raises(RegistryRefused, match="changes area code 303, which registry version"):
        _import(engine, tmp_path, "303,5550100,A\n")
    with pytest.raises(RegistryRefused, match="is older than area code 212's data"):
        _import(engine, tmp_path, "212,5550100,D\n", obtained_on=date(2026, 11, 5))
    assert _versions(engine) == 2


def test_a_stale_import_is_warned_and_old_sets_are_pruned(engine, tmp_path):
    for day in range(1, 6):
        result = _import(engine, tmp_path, f"212555010{day}\n", obtained_on=date(2026, 10, day))
    assert any("31-day rule" in w for w in result.warnings)
    assert result.sets_pruned == 1
    with engine.connect() as conn:
        kept = [v.sets_kept for v in store.versions(conn)]
    assert kept == [True, True, True, False, False]


def test_exact_against_a_python_set_with_adds_and_deletes(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(registry_files, "CHUNK_BYTES", 4096)  # many chunks, and lines cut across them
    rng = random.Random(18)
    areas = (212, 646, 907, 303)
    numbers = {a * 10_000_000 + rng.randrange(2_000_000, 10_000_000) for a in areas for _ in range(1500)}
    lines = [f"{n // 10_000_000},{n % 10_000_000}" if i % 2 else str(n) for i, n in enumerate(sorted(numbers))]
    _import(engine, tmp_path, "\n".join(lines) + "\n")
    expected = set(numbers)
    records = []
    for _ in range(3000):
        n = rng.choice(sorted(numbers)) if rng.random() < 0.5 else (
            rng.choice(areas) * 10_000_000 + rng.randrange(2_000_000, 10_000_000))
        add = rng.random() < 0.5
        records.append(f"{n // 10_000_000},{n % 10_000_000},{'A' if add else 'D'}")
        (expected.add if add else expected.discard)(n)
    result = _import(engine, tmp_path, "\r\n".join(records))
    registry = store.open_version(engine)
    assert result.version.numbers == len(expected)
    probe = sorted(numbers | {int(r.split(",")[0]) * 10_000_000 + int(r.split(",")[1]) for r in records})
    got = registry.listed([f"+1{n}" for n in probe])
    assert [p for p, hit in zip(probe, got) if hit != (p in expected)] == []


def test_cli_import_and_status(engine, dialer_env, tmp_path):
    from typer.testing import CliRunner

    from dialer_cli.main import app

    runner = CliRunner()
    (tmp_path / "212.txt").write_text("2125550100\n2125550101\n")
    (tmp_path / "changes.csv").write_text("212,5550102,A\n212,5550100,D\n")
    today = datetime.now(UTC).date()
    result = runner.invoke(app, ["dnc", "registry", "import", str(tmp_path / "212.txt"), "--full",
                                 "--obtained-at", (today - timedelta(days=2)).isoformat(), "--area-codes", "646"])
    assert result.exit_code == 0, result.stderr
    assert "version 1" in result.stdout and "2 numbers" in result.stdout
    result = runner.invoke(app, ["dnc", "registry", "import", str(tmp_path / "changes.csv"), "--json"])
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert (payload["version_id"], payload["kind"], payload["added"], payload["deleted"]) == (2, "changes", 1, 1)

    result = runner.invoke(app, ["dnc", "registry", "status", "--json"])
    assert result.exit_code == 0, result.stderr
    status = json.loads(result.stdout)
    assert [v["id"] for v in status["versions"]] == [2, 1] and status["current"]["within_31_days"] is True
    assert status["versions"][1]["area_codes"] == 2
    result = runner.invoke(app, ["dnc", "registry", "status"])
    assert result.exit_code == 0 and "within the 31-day rule" in result.stdout

    for args, sentence in [
        ([str(tmp_path)], "is a directory"),
        ([str(tmp_path / "nope.txt")], "no such file"),
        ([str(tmp_path / "212.txt"), "--changes"], "because --changes was given"),
        ([str(tmp_path / "212.txt"), "--full", "--changes"], "--full or --changes, not both"),
        ([str(tmp_path / "212.txt"), "--obtained-at", "2026-13-01"], "--obtained-at '2026-13-01' is not a date"),
        ([str(tmp_path / "212.txt"), "--area-codes", "212,x"], "--area-codes"),
    ]:
        result = runner.invoke(app, ["dnc", "registry", "import", *args])
        assert result.exit_code == 2 and sentence in result.stderr, (args, result.stderr)
    (tmp_path / "link.txt").symlink_to(tmp_path / "212.txt")
    result = runner.invoke(app, ["dnc", "registry", "import", str(tmp_path / "link.txt")])
    assert result.exit_code == 2 and "is a symbolic link" in result.stderr
    assert _versions(engine) == 2


def test_the_bucket_folder_sensor_and_asset(engine, dialer_env, tmp_path):
    import dagster as dg

    from assets.dnc import dnc_registry
    from campaigns.core.config import DialerConfig
    from pipelines.definitions import defs, resources_for
    from pipelines.sensors import dnc_sensor, registry_sensor
    from tests.helpers import drop

    bucket = Path(dialer_env["DIALER_HOME"]) / "bucket"
    drop(bucket, "dnc/_registry/212.txt.gz", gzip.compress(b"2125550100\n2125550101\n"))
    drop(bucket, "dnc/_registry/212.txt.gz.yaml", "obtained_at: 2026-11-02\n")
    drop(bucket, "dnc/_registry/bad.txt", "2125550100\n212,5550101,A\n")
    (tmp_path / "dagster").mkdir()
    resources = resources_for(DialerConfig.from_env())
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        def tick(sensor, cursor=None):
            with dg.build_sensor_context(instance=instance, instance_ref=instance.get_ref(), cursor=cursor, definitions=defs,
                                         resources=resources) as context:
                return sensor.evaluate_tick(context)

        assert tick(dnc_sensor, tick(dnc_sensor).cursor).run_requests == []  # not the DNC lists' files
        second = tick(registry_sensor, tick(registry_sensor).cursor)
        assert [r.partition_key for r in second.run_requests] == ["212.txt.gz", "bad.txt"]
        instance.add_dynamic_partitions("registry_files", ["212.txt.gz", "bad.txt"])

        done = dg.materialize([dnc_registry], partition_key="212.txt.gz", instance=instance, resources=resources)
        metadata = done.asset_materializations_for_node("dnc_registry")[0].metadata
        assert (metadata["version_id"].value, metadata["kind"].value, metadata["numbers"].value) == (1, "full", 2)
        assert metadata["obtained_at"].value == "2026-11-02" and len(metadata["checksum"].value) == 64
        assert (bucket / "processed/dnc/_registry/212.txt.gz").exists()
        assert (bucket / "processed/dnc/_registry/212.txt.gz.yaml").exists()

        refused = dg.materialize([dnc_registry], partition_key="bad.txt", instance=instance, resources=resources,
                                 raise_on_error=False)
        assert not refused.success
        error = (bucket / "rejected/dnc/_registry/bad.txt.error.txt").read_text()
        assert "dnc/_registry/bad.txt, line 2: expected a full-list line" in error
        assert not (bucket / "dnc/_registry/bad.txt").exists()
    assert _versions(engine) == 1
    with engine.connect() as conn:
        assert store.current(conn).source == "212.txt.gz"
