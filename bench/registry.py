"""National DNC Registry benchmark (issue 18): a full-size synthetic registry, imported and queried.

Writes a synthetic registry of `--numbers` valid NANP numbers (250,000,000 by default) over the
US area codes as per-area-code full-list files (`NNNNNNNNNN` lines) under a temp folder, and a
change list of `--changes` adds and as many deletes. Each area code gets the same density: every
number NXX-XXXX with an exchange 200-999 is listed with probability numbers / (area codes × 8M),
about 9.5% at full size (the real registry's ~250M over ~330 area codes is about that).
The US area codes are those libphonenumber's metadata calls valid for the US.

Then, each step in a child process (its peak RSS is the child's own VmHWM, not the parent's):

1. the full import (`campaigns.ingestion.registry_import.import_registry`): wall time, peak RSS;
2. stored size (bytes of the version's serialised sets), time to load the version as a daemon does
   (`open_version` + `load_all`), a 1M-row upload's scrub (`RegistrySet.listed` on 1M E.164
   strings), single membership checks (`contains`, in-process: p50/p99);
3. the change list's import: wall time, peak RSS;
4. exactness: a 10M-number sample (listed, added, deleted and random numbers) checked against a
   Python `set` of what must be listed after the changes: mismatches must be 0.

SQLite (a temp file) by default; `--database-url` names a migrated PostgreSQL database with no
registry version yet (a throwaway one: the benchmark leaves its versions there).

    python bench/registry.py                                  # 250M numbers, 1M + 1M changes, SQLite
    python bench/registry.py --numbers 10000000 --changes 100000    # a quick check
    python bench/registry.py --database-url postgresql://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SPAN = 8_000_000  # numbers NXX-XXXX with an exchange 200-999
TARGETS = {"import_s": 600, "import_rss_mb": 4096, "stored_mb": 1024, "scrub_s": 1.0, "p99_us": 50,
           "changes_s": 60, "mismatches": 0}


def us_area_codes() -> list[int]:
    import phonenumbers

    found = []
    for npa in range(200, 1000):
        for line in ("2345678", "5550123", "8675309"):
            number = phonenumbers.parse(f"+1{npa}{line}")
            if phonenumbers.is_valid_number(number) and phonenumbers.region_code_for_number(number) == "US":
                found.append(npa)
                break
    return found


def listed_mask(seed: int, area: int, density: float) -> np.ndarray:
    """Which of an area code's 8M numbers (2,000,000 + index) the synthetic full list holds."""
    return np.random.default_rng([seed, area]).random(SPAN, dtype=np.float32) < density


def lines(whole: np.ndarray, suffix: bytes = b"") -> bytes:
    """10-digit numbers as `NNNNNNNNNN<suffix>\n` lines, built as a byte matrix (no Python loop)."""
    width = 10 + len(suffix) + 1
    matrix = np.empty((len(whole), width), dtype=np.uint8)
    rest = whole.astype(np.int64)
    for position in range(9, -1, -1):
        rest, digit = np.divmod(rest, 10)
        matrix[:, position] = digit + 48
    matrix[:, 10:-1] = np.frombuffer(suffix, dtype=np.uint8)
    matrix[:, -1] = 10
    return matrix.tobytes()


def generate(work: Path, numbers: int, changes: int, seed: int) -> dict:
    areas = us_area_codes()
    density = numbers / (len(areas) * SPAN)
    folder = work / "full"
    folder.mkdir()
    rng = np.random.default_rng(seed)
    total = 0
    add_parts, delete_parts = [], []
    share = changes / len(areas)
    for area in areas:
        mask = listed_mask(seed, area, density)
        listed = np.flatnonzero(mask) + 2_000_000
        total += len(listed)
        (folder / f"{area}.txt").write_bytes(lines(area * 10_000_000 + listed))
        count = int(rng.poisson(share))
        delete_parts.append(area * 10_000_000 + rng.choice(listed, min(count, len(listed)), replace=False))
        candidates = np.unique(rng.integers(0, SPAN, 4 * count + 8))
        candidates = candidates[~mask[candidates]]
        add_parts.append(area * 10_000_000 + 2_000_000 + rng.permutation(candidates)[:count])
    adds, deletes = np.concatenate(add_parts), np.concatenate(delete_parts)
    change_lines = np.concatenate([np.frombuffer(lines(adds, b",A"), np.uint8).reshape(-1, 13),
                                   np.frombuffer(lines(deletes, b",D"), np.uint8).reshape(-1, 13)])
    change_lines = change_lines[rng.permutation(len(change_lines))]
    (work / "changes.txt").write_bytes(change_lines.tobytes())
    np.save(work / "adds.npy", adds)
    np.save(work / "deletes.npy", deletes)
    meta = {"areas": areas, "density": density, "seed": seed, "numbers": total, "adds": len(adds),
            "deletes": len(deletes)}
    (work / "meta.json").write_text(json.dumps(meta))
    return meta


def _peak_mb() -> float:
    hwm = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:"))
    return int(hwm.split()[1]) / 1024


def child_import(url: str, paths: list[Path]) -> dict:
    from campaigns.core import db
    from campaigns.ingestion.registry_files import RegistryFile
    from campaigns.ingestion.registry_import import import_registry

    engine = db.make_engine(url)
    files = [RegistryFile(str(p), lambda p=p: p.open("rb")) for p in paths]
    started = time.perf_counter()
    result = import_registry(engine, files, now=datetime.now(UTC))
    wall = time.perf_counter() - started
    return {"wall_s": wall, "peak_rss_mb": _peak_mb(), **{k: result.as_dict()[k] for k in
            ("version_id", "numbers", "added", "deleted", "records", "area_codes")}}


def child_measure(url: str, work: Path, repeat: int) -> dict:
    import sqlalchemy as sa

    from campaigns.core import db
    from campaigns.core import schema as t
    from campaigns.registry import store

    meta = json.loads((work / "meta.json").read_text())
    engine = db.make_engine(url)
    with engine.connect() as conn:
        version_id = store.current_id(conn)
        a, s = t.dnc_registry_areas, t.dnc_registry_sets
        stored = conn.execute(sa.select(sa.func.sum(sa.func.length(s.c.data))).where(
            s.c.sha256.in_(sa.select(a.c.set_sha256).where(a.c.version_id == version_id)))).scalar_one()
    loads = []
    for _ in range(repeat):
        started = time.perf_counter()
        registry = store.open_version(engine)
        assert registry is not None
        registry.load_all()
        loads.append(time.perf_counter() - started)
    rng = np.random.default_rng(7)
    areas = np.array(meta["areas"])
    upload = areas[rng.integers(0, len(areas), 1_000_000)] * 10_000_000 + rng.integers(2_000_000, 10_000_000, 1_000_000)
    phones = [f"+1{n}" for n in upload.tolist()]
    scrubs, hits = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        hits = int(registry.listed(phones).sum())
        scrubs.append(time.perf_counter() - started)
    probes = phones[:100_000]
    timings = np.empty(len(probes), dtype=np.int64)
    clock = time.perf_counter_ns
    for i, phone in enumerate(probes):
        started = clock()
        registry.contains(phone)
        timings[i] = clock() - started
    return {"stored_mb": stored / 2**20, "load_s": statistics.median(loads), "loaded_mb": registry.loaded_bytes / 2**20,
            "scrub_s": statistics.median(scrubs), "scrub_hits": hits,
            "p50_us": float(np.percentile(timings, 50)) / 1000, "p99_us": float(np.percentile(timings, 99)) / 1000,
            "peak_rss_mb": _peak_mb()}


def child_exactness(url: str, work: Path, sample: int) -> dict:
    """A sample of listed, added, deleted and random numbers against a Python set of what must be listed."""
    from pyroaring import BitMap

    from campaigns.core import db
    from campaigns.registry import store

    meta = json.loads((work / "meta.json").read_text())
    adds, deletes = np.load(work / "adds.npy"), np.load(work / "deletes.npy")
    rng = np.random.default_rng(11)
    areas = np.array(meta["areas"])
    size = max(sample - len(adds) - len(deletes), 0)
    random_part = areas[rng.integers(0, len(areas), size)] * 10_000_000 + rng.integers(2_000_000, 10_000_000, size)
    probe = np.unique(np.concatenate([adds, deletes, random_part]))
    in_full = np.zeros(len(probe), dtype=bool)
    for area in meta["areas"]:
        rows = np.flatnonzero(probe // 10_000_000 == area)
        mask = listed_mask(meta["seed"], area, meta["density"])
        in_full[rows] = mask[probe[rows] % 10_000_000 - 2_000_000]
    full_set = set(probe[in_full].tolist())
    expected = (full_set - set(deletes.tolist())) | set(adds.tolist())
    registry = store.open_version(db.make_engine(url))
    assert registry is not None
    got = np.zeros(len(probe), dtype=bool)
    for area in meta["areas"]:
        rows = np.flatnonzero(probe // 10_000_000 == area)
        local = (probe[rows] % 10_000_000).astype(np.uint32)
        found = BitMap(np.sort(local)) & registry.bitmap(area)
        got[rows] = np.isin(local, np.array(found.to_array(), dtype=np.uint32))
    want = np.fromiter((int(n) in expected for n in probe.tolist()), dtype=bool, count=len(probe))
    return {"sample": len(probe), "listed": int(want.sum()), "mismatches": int((got != want).sum())}


def _run_child(step: str, url: str, work: Path, extra: list[str] = ()) -> dict:
    command = [sys.executable, __file__, "--child", step, "--url", url, "--work", str(work), *extra]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{step} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--numbers", type=int, default=250_000_000)
    parser.add_argument("--changes", type=int, default=1_000_000, help="adds, and as many deletes")
    parser.add_argument("--sample", type=int, default=10_000_000, help="numbers checked for exactness")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each in-process measurement (medians)")
    parser.add_argument("--database-url", help="a migrated PostgreSQL database with no registry version")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        work = Path(args.work)
        if args.child == "full":
            outcome = child_import(args.url, sorted((work / "full").iterdir()))
        elif args.child == "changes":
            outcome = child_import(args.url, [work / "changes.txt"])
        elif args.child == "measure":
            outcome = child_measure(args.url, work, args.repeat)
        else:
            outcome = child_exactness(args.url, work, args.sample)
        print(json.dumps(outcome))
        return

    from campaigns.core import db
    from campaigns.registry import store

    work = Path(tempfile.mkdtemp(prefix="dialer-registry-bench-"))
    try:
        url = args.database_url or f"sqlite:///{work / 'registry.sqlite3'}"
        engine = db.make_engine(url)
        db.migrate(engine)
        with engine.connect() as conn:
            if store.current_id(conn) is not None:
                raise SystemExit(f"{db.describe(engine)} already holds a registry version; use a throwaway database.")
        engine.dispose()
        print(f"work dir {work}; generating {args.numbers:,} numbers …", flush=True)
        started = time.perf_counter()
        meta = generate(work, args.numbers, args.changes, args.seed)
        text_gb = sum(p.stat().st_size for p in (work / "full").iterdir()) / 1e9
        print(f"  {meta['numbers']:,} numbers in {len(meta['areas'])} area-code files ({text_gb:.2f} GB), "
              f"{meta['adds']:,} adds + {meta['deletes']:,} deletes, in {time.perf_counter() - started:.0f}s",
              flush=True)
        full = _run_child("full", url, work)
        print(f"  full import: {json.dumps(full)}", flush=True)
        measured = _run_child("measure", url, work, ["--repeat", str(args.repeat)])
        print(f"  measured: {json.dumps(measured)}", flush=True)
        changes = _run_child("changes", url, work)
        print(f"  change list: {json.dumps(changes)}", flush=True)
        exact = _run_child("exactness", url, work, ["--sample", str(args.sample)])
        print(f"  exactness: {json.dumps(exact)}", flush=True)
        if url.startswith("sqlite"):
            print(f"  SQLite file: {(work / 'registry.sqlite3').stat().st_size / 2**20:,.0f} MiB (both versions)")
        backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
        rows = [
            ("full import, wall", f"{full['wall_s']:.0f} s", "≤ 600 s", full["wall_s"] <= TARGETS["import_s"]),
            ("full import, peak RSS", f"{full['peak_rss_mb']:,.0f} MB", "≤ 4,096 MB",
             full["peak_rss_mb"] <= TARGETS["import_rss_mb"]),
            ("stored version (its sets)", f"{measured['stored_mb']:,.0f} MB", "≤ 1,024 MB",
             measured["stored_mb"] <= TARGETS["stored_mb"]),
            ("load into a daemon (open_version + load_all)", f"{measured['load_s']:.1f} s "
             f"({measured['loaded_mb']:,.0f} MB in memory)", "", True),
            ("scrub of a 1M-row upload (listed)", f"{measured['scrub_s']:.2f} s", "≤ 1 s",
             measured["scrub_s"] <= TARGETS["scrub_s"]),
            ("membership check (contains) p50 / p99", f"{measured['p50_us']:.1f} / {measured['p99_us']:.1f} µs",
             "p99 ≤ 50 µs", measured["p99_us"] <= TARGETS["p99_us"]),
            (f"change list ({changes['records']:,} records: {changes['added']:,} added, "
             f"{changes['deleted']:,} deleted), wall", f"{changes['wall_s']:.1f} s", "≤ 60 s",
             changes["wall_s"] <= TARGETS["changes_s"]),
            ("change list, peak RSS", f"{changes['peak_rss_mb']:,.0f} MB", "", True),
            (f"exactness ({exact['sample']:,}-number sample vs a Python set)", f"{exact['mismatches']} mismatches",
             "0", exact["mismatches"] == 0),
        ]
        print()
        print(f"National DNC Registry: {meta['numbers']:,} numbers over {len(meta['areas'])} US area codes "
              f"({backend}, medians of {args.repeat} for the in-process measurements)")
        print()
        print("| measure | result | target | met |")
        print("|---|---:|---:|:-:|")
        for name, value, target, met in rows:
            print(f"| {name} | {value} | {target} | {'yes' if met else 'NO'} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
