"""Ingestion benchmark: one large prospect list into a campaign that already holds many prospects.

Generates a CSV (mixed phone formats, ~3% invalid rows, ~5% duplicates), seeds
the campaign with existing prospects and a large DNC list, then runs the
`load_prospect_list` Dagster job in process — exactly what the inbox sensor
launches — in a child process per backend, and prints a table: rows/s end to
end, peak RSS and the split per stage. The same run measures a plain
per-row `phonenumbers.parse` + `format_number` loop over the file's phone
column as the baseline for the vectorised normaliser, and checks both give
identical results.

    python bench/ingest.py                       # 1M rows, 1M existing, 10M DNC, both backends
    python bench/ingest.py --rows 100000 --existing 100000 --dnc 1000000 --backend sqlite
    python bench/ingest.py --backend postgres --explain-insert   # also: where the load's INSERT spends its time
    python bench/ingest.py --repeat 3            # medians of three freshly seeded runs per backend
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AREA_CODES = [
    "201", "212", "213", "214", "215", "303", "305", "312", "404", "405", "410", "415", "503", "504",
    "602", "603", "615", "617", "702", "704", "713", "801", "808", "907", "916", "928", "206", "416",
    "604", "306", "709", "787", "671",
]
STEPS = ["upload_file", "validated_rows", "deduplicated_rows", "dnc_scrubbed_rows", "loaded_prospects"]


def numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct-ish valid NANP national numbers (10 digits) as strings."""
    npa = rng.choice(AREA_CODES, n)
    nxx = rng.integers(200, 1000, n).astype(str)
    line = np.char.zfill(rng.integers(0, 10000, n).astype(str), 4)
    return np.char.add(np.char.add(npa.astype(str), nxx), line)


def formatted(rng: np.random.Generator, national: np.ndarray) -> list[str]:
    shapes = rng.integers(0, 6, len(national))
    out = []
    for s, n in zip(shapes, national):
        a, x, l = n[:3], n[3:6], n[6:]
        out.append(
            (f"({a}) {x}-{l}", f"{a}.{x}.{l}", f"1-{a}-{x}-{l}", f"+1{n}", f"{a} {x} {l}", f"{a}-{x}-{l} ext 12")[s]
        )
    return out


INVALID = ["1-800-FLOWERS", "4.15555E+09", "415 555 12", "(876) 523-0123", "(212) 055-1234", "", "n/a", "+44 20 7946 0958"]


def generate(path: Path, rows: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    base = numbers(rng, rows)
    duplicates = rng.random(rows) < 0.05
    # Duplicates repeat an earlier row's number in another shape.
    donors = np.maximum(0, (np.arange(rows) * rng.random(rows)).astype(int))
    base = np.where(duplicates, base[donors], base)
    phones = formatted(rng, base)
    invalid = rng.random(rows) < 0.03
    bad = rng.choice(INVALID, rows)
    states = rng.choice(["", "CA", "NY", "TX", "FL", "ON", "Texas"], rows)
    zips = rng.choice(["", "94103", "10001", "73301", "33101", "86001"], rows)
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("Phone Number,First Name,Last Name,State,ZIP,Account\r\n")
        for i in range(rows):
            phone = bad[i] if invalid[i] else phones[i]
            handle.write(f'"{phone}",First{i % 997},Last{i % 991},{states[i]},{zips[i]},ACC-{i}\r\n')
    return {"phones": [bad[i] if invalid[i] else phones[i] for i in range(rows)], "national": base}


def seed_database(url: str, existing: int, dnc: int, file_national: np.ndarray, seed: int) -> None:
    import sqlalchemy as sa

    from campaigns.core import db
    from campaigns.core import schema as t
    from campaigns.setup import registry
    from campaigns.setup.settings import parse_settings

    engine = db.make_engine(url)
    db.migrate(engine)
    now = datetime.now(UTC)
    settings = parse_settings(
        {
            "name": "Bench", "slug": "bench", "workspace": "bench", "locale": "US", "agent": "a",
            "dnc": {"lists": ["registry"], "dnc_disposition": "DNC"},
            "dispositions": [{"title": "DNC", "contacted": True, "dnc": True}],
        }
    )
    with engine.begin() as conn:
        campaign_id = registry.apply_campaign(conn, settings, now).campaign_id
        list_id = conn.execute(sa.select(t.dnc_lists.c.id)).scalar_one()
        seed_upload = conn.execute(
            sa.insert(t.prospect_lists).values(
                campaign_id=campaign_id, source_key="seed", source_version="1", filename="seed.csv",
                status="loaded", priority=50, dupe_days=90, expire_days=90, warnings=[], created_at=now,
            ).returning(t.prospect_lists.c.id)
        ).scalar_one()
    rng = np.random.default_rng(seed + 1)
    # 2% of the new file was loaded before (dupe within 90 days); 1% is on the DNC list.
    overlap = rng.choice(file_national, max(1, len(file_national) // 50), replace=False)
    on_dnc = rng.choice(file_national, max(1, len(file_national) // 100), replace=False)
    prospect_numbers = np.concatenate([overlap, numbers(rng, existing - len(overlap))])
    dnc_numbers = np.concatenate([on_dnc, numbers(rng, dnc - len(on_dnc))])
    loaded = (now - timedelta(days=10)).replace(tzinfo=None)
    expires = (now + timedelta(days=80)).replace(tzinfo=None)
    chunk = 500_000
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            cursor = conn.connection.driver_connection.cursor()
            with cursor.copy(
                "COPY prospects (campaign_id, list_id, source_row, phone_e164, candidate_zones, zone_group, "
                "priority, status, attempts, next_dial_at, expires_at, loaded_at, updated_at, custom_fields) FROM STDIN"
            ) as copy:
                for i, n in enumerate(prospect_numbers):
                    copy.write_row((campaign_id, seed_upload, i + 1, "+1" + n, "America/New_York",
                                    "America/New_York|NY|NY", 50, "ready", 0, now, now + timedelta(days=80),
                                    now - timedelta(days=10), now, "{}"))
            with cursor.copy("COPY dnc_numbers (dnc_list_id, phone_e164, added_at) FROM STDIN") as copy:
                for n in np.unique(dnc_numbers):
                    copy.write_row((list_id, "+1" + n, now))
            cursor.execute("ANALYZE")
        else:
            for start in range(0, len(prospect_numbers), chunk):
                conn.exec_driver_sql(
                    "INSERT INTO prospects (campaign_id, list_id, source_row, phone_e164, candidate_zones, zone_group, "
                    "priority, status, attempts, next_dial_at, expires_at, loaded_at, updated_at, custom_fields) "
                    "VALUES (?, ?, ?, ?, 'America/New_York', 'America/New_York|NY|NY', 50, 'ready', 0, ?, ?, ?, ?, '{}')",
                    [(campaign_id, seed_upload, start + i + 1, "+1" + n, loaded, expires, loaded, loaded)
                     for i, n in enumerate(prospect_numbers[start:start + chunk])],
                )
            unique_dnc = np.unique(dnc_numbers)
            for start in range(0, len(unique_dnc), chunk):
                conn.exec_driver_sql(
                    "INSERT INTO dnc_numbers (dnc_list_id, phone_e164, added_at) VALUES (?, ?, ?)",
                    [(list_id, "+1" + n, loaded) for n in unique_dnc[start:start + chunk]],
                )
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()


def child(args) -> None:
    """Run the Dagster job once; print stage timings as JSON (peak RSS is read by the parent)."""
    import dagster as dg

    from pipelines.definitions import defs
    from resources.bucket import BucketResource
    from resources.database import DatabaseResource

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("uploads", [args.partition])
    started = time.perf_counter()
    result = defs.resolve_job_def("load_prospect_list").execute_in_process(
        partition_key=args.partition, instance=instance, raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        resources={"database": DatabaseResource(url=args.url), "bucket": BucketResource(url=args.bucket)},
    )
    total = time.perf_counter() - started
    starts, ends, summary = {}, {}, {}
    errors = [
        f"{event.step_key}: {event.event_specific_data.error.message.strip()}"
        for event in result.all_events
        if event.event_type_value == "STEP_FAILURE" and event.event_specific_data.error
    ]
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            ends[event.step_key] = entry.timestamp
        elif event.event_type_value == "ASSET_MATERIALIZATION" and event.asset_key.path[-1] == "loaded_prospects":
            summary = {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}
    # VmHWM is this process image's own high-water mark; ru_maxrss would include the
    # parent's pages inherited across fork/exec.
    hwm_kb = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:"))
    print(json.dumps({
        "success": result.success, "errors": errors, "total_s": total, "peak_rss_mb": hwm_kb / 1024,
        "stages": {s: ends.get(s, 0) - starts.get(s, 0) for s in STEPS},
        "summary": {k: summary.get(k) for k in ("rows", "loaded", "duplicates", "invalid", "dnc")},
    }))


def baseline(phones: list[str], sample: int, repeat: int = 3) -> dict:
    """Median of `repeat` timings of each normaliser (the per-row loop on a sample, the vectorised one on all)."""
    import statistics

    import phonenumbers

    from campaigns.ingestion.phones import normalize_columns, normalize_one

    subset = phones[:sample]
    per_row_runs, vectorised_runs = [], []
    column = np.array(phones, dtype=object)
    normalize_columns(column[:1000], "US")  # warm the regex caches
    for _ in range(repeat):
        started = time.perf_counter()
        for value in subset:
            try:
                number = phonenumbers.parse(value, "US")
                phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            except phonenumbers.NumberParseException:
                pass
        per_row_runs.append(len(subset) / (time.perf_counter() - started))
        started = time.perf_counter()
        fast = normalize_columns(column, "US")
        vectorised_runs.append(len(phones) / (time.perf_counter() - started))
    per_row = statistics.median(per_row_runs)
    vectorised = statistics.median(vectorised_runs)
    check = min(len(phones), 50_000)
    mismatches = 0
    for i in range(check):
        one = normalize_one(phones[i], "US")
        if (one.e164, one.reason) != (fast["e164"][i], fast["reason"][i]):
            mismatches += 1
    return {"per_row_rows_s": per_row, "vectorised_rows_s": vectorised, "speedup": vectorised / per_row,
            "checked": check, "mismatches": mismatches}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--existing", type=int, default=1_000_000)
    parser.add_argument("--dnc", type=int, default=10_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--pg-url", default=os.environ.get("DIALER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--baseline-sample", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per backend, each on a freshly seeded database; the table shows medians")
    parser.add_argument("--explain-insert", action="store_true",
                        help="PostgreSQL: after the run, EXPLAIN ANALYZE the upload's INSERT into prospects again (rolled back)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--bucket", help=argparse.SUPPRESS)
    parser.add_argument("--partition", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    work = Path(tempfile.mkdtemp(prefix="dialer-bench-"))
    print(f"work dir {work}; generating {args.rows:,} rows …", flush=True)
    csv_path = work / "big.csv"
    started = time.perf_counter()
    generated = generate(csv_path, args.rows, args.seed)
    print(f"  generated in {time.perf_counter() - started:.1f}s ({csv_path.stat().st_size / 1e6:.0f} MB)", flush=True)
    base = baseline(generated["phones"], args.baseline_sample)

    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = {}
    for backend in backends:
        runs = []
        for run in range(args.repeat):
            outcome, url = one_run(args, backend, work, run, csv_path, generated)
            runs.append(outcome)
            print(f"  {backend} run {run + 1}/{args.repeat}: {json.dumps(outcome)}", flush=True)
        if len({json.dumps(r["summary"], sort_keys=True) for r in runs}) != 1:
            raise SystemExit(f"{backend}: runs disagree on the upload's accounting")
        results[backend] = median_run(runs)
        if backend == "postgres" and args.explain_insert:
            explained = explain_insert(url)

    print()
    print(f"Ingestion of {args.rows:,} rows into a campaign with {args.existing:,} prospects and a {args.dnc:,}-number DNC list"
          + (f" (median of {args.repeat} runs per backend; peak RSS is the largest)" if args.repeat > 1 else ""))
    print()
    print("| backend | end to end (s) | rows/s | peak RSS (MB) | " + " | ".join(STEPS) + " | loaded | duplicates | invalid | dnc |")
    print("|---|---:|---:|---:|" + "---:|" * len(STEPS) + "---:|---:|---:|---:|")
    for backend, r in results.items():
        s = r["summary"]
        print(
            f"| {backend} | {r['total_s']:.1f} | {args.rows / r['total_s']:,.0f} | {r['peak_rss_mb']:.0f} | "
            + " | ".join(f"{r['stages'][st]:.1f}" for st in STEPS)
            + f" | {s['loaded']:,} | {s['duplicates']:,} | {s['invalid']:,} | {s['dnc']:,} |"
        )
    print()
    print("| phone normalisation | rows/s |")
    print("|---|---:|")
    print(f"| per-row phonenumbers.parse + format_number ({args.baseline_sample:,}-row sample, median of 3) | {base['per_row_rows_s']:,.0f} |")
    print(f"| campaigns.ingestion.phones.normalize_columns (whole column, median of 3) | {base['vectorised_rows_s']:,.0f} |")
    print(f"| speed-up | {base['speedup']:.1f}× |")
    print(f"| mismatches vs per-row reference ({base['checked']:,} rows checked) | {base['mismatches']} |")
    if args.explain_insert and "postgres" in results:
        print()
        print(f"| the load's INSERT into prospects ({explained['rows']:,} rows, EXPLAIN ANALYZE, rolled back) | ms |")
        print("|---|---:|")
        print(f"| rows and their indexes ({', '.join(explained['indexes'])}) | {explained['insert_ms']:,.0f} |")
        for name, ms in explained["triggers"].items():
            print(f"| {name} | {ms:,.0f} |")
        print(f"| total | {explained['total_ms']:,.0f} |")
        print(f"| rows/s for the insert alone | {explained['rows'] / explained['total_ms'] * 1000:,.0f} |")


def one_run(args, backend: str, work: Path, run: int, csv_path: Path, generated: dict) -> tuple[dict, str]:
    """Fresh database and bucket, seeded; then the Dagster job in a child process. Returns its figures."""
    import sqlalchemy as sa

    if backend == "sqlite":
        path = work / "bench.sqlite3"
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        admin = sa.create_engine(sa.make_url(args.pg_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql('DROP DATABASE IF EXISTS "dialer_bench" WITH (FORCE)')
            conn.exec_driver_sql('CREATE DATABASE "dialer_bench"')
        admin.dispose()
        url = sa.make_url(args.pg_url).set(database="dialer_bench").render_as_string(hide_password=False)
    print(f"{backend}: seeding {args.existing:,} prospects and {args.dnc:,} DNC numbers …", flush=True)
    started = time.perf_counter()
    seed_database(url, args.existing, args.dnc, generated["national"], args.seed)
    print(f"  seeded in {time.perf_counter() - started:.0f}s", flush=True)
    bucket = work / f"bucket-{backend}-{run + 1}"
    inbox = bucket / "inbox/bench/bench"
    inbox.mkdir(parents=True)
    (inbox / "big.csv").write_bytes(csv_path.read_bytes())
    proc = subprocess.run(
        [sys.executable, __file__, "--child", "--url", url, "--bucket", str(bucket), "--partition", "bench/bench/big.csv"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        print(proc.stderr[-3000:])
        raise SystemExit(f"{backend}: the child run failed")
    outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    if not outcome["success"]:
        print("\n".join(outcome["errors"]) or proc.stderr[-3000:])
        raise SystemExit(f"{backend}: the load_prospect_list run failed")
    return outcome, url


def median_run(runs: list[dict]) -> dict:
    """Median time and stage times over the runs; the largest peak RSS (the target is a ceiling)."""
    import statistics

    return {
        "total_s": statistics.median(r["total_s"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "stages": {s: statistics.median(r["stages"][s] for r in runs) for s in STEPS},
        "summary": runs[0]["summary"],
        "runs": len(runs),
    }


def explain_insert(url: str) -> dict:
    """Insert the benchmark upload's prospects again under EXPLAIN ANALYZE, then roll back."""
    import re

    from campaigns.core import db

    columns = ("campaign_id, list_id, source_row, phone_e164, phone_ext, first_name, last_name, address_state, "
               "zip_code, area_code_state, candidate_zones, zone_group, priority, status, disposition, attempts, "
               "next_dial_at, expires_at, loaded_at, updated_at, custom_fields")
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            transaction = conn.begin()
            upload = conn.exec_driver_sql("SELECT max(id) FROM prospect_lists").scalar_one()
            conn.exec_driver_sql(f"CREATE TEMP TABLE again AS SELECT * FROM prospects WHERE list_id = {int(upload)}")
            rows = conn.exec_driver_sql("SELECT count(*) FROM again").scalar_one()
            conn.exec_driver_sql(f"DELETE FROM prospects WHERE list_id = {int(upload)}")
            plan = [r[0] for r in conn.exec_driver_sql(
                f"EXPLAIN (ANALYZE, BUFFERS) INSERT INTO prospects ({columns}) SELECT {columns} FROM again")]
            indexes = list(conn.exec_driver_sql(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'prospects' ORDER BY indexname").scalars())
            transaction.rollback()
    finally:
        engine.dispose()
    text = "\n".join(plan)
    insert_ms = float(re.search(r"^Insert on prospects .*actual time=[\d.]+\.\.([\d.]+)", text, re.MULTILINE).group(1))
    triggers = {f"foreign-key check {m.group(1)}": float(m.group(2))
                for m in re.finditer(r"^Trigger for constraint (\S+): time=([\d.]+)", text, re.MULTILINE)}
    total_ms = float(re.search(r"^Execution Time: ([\d.]+) ms", text, re.MULTILINE).group(1))
    return {"rows": rows, "insert_ms": insert_ms, "triggers": triggers, "total_ms": total_ms, "indexes": indexes}


if __name__ == "__main__":
    main()
