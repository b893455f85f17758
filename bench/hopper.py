"""Hopper fill benchmark: 5,000 rows per fill from a campaign of millions of prospects.

Seeds a campaign with prospects spread over every US and Canadian zone (real
NPA-NXX prefixes, 85% living in their area code's state), then times
`campaigns.dialing.hopper.fill_campaign` — the code the `hopper` asset and `dialer
hopper fill` run — filling 5,000 rows at 20 instants across one day. It
measures at 1,000,000 prospects, grows the same campaign to 5,000,000 and
measures again, on PostgreSQL and SQLite, and prints p50/p95 per size.

Between fills the hopper is emptied (untimed), so every fill queues from
scratch. Usage:

    python bench/hopper.py [--sizes 1000000 5000000] [--backends postgres sqlite]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DAY = datetime(2026, 10, 21, tzinfo=UTC)  # a Wednesday with no holiday
INSTANTS = [DAY + timedelta(minutes=72 * i) for i in range(20)]
LEVEL = 5000
DNC_NUMBERS = 1_000_000


def profiles(rng: np.random.Generator, count: int) -> list[tuple[str, str | None, str, str]]:
    """(NPA-NXX, address state, candidate zones, zone group) for real US/CA prefixes."""
    from phonenumbers.tzdata import TIMEZONE_DATA

    from campaigns.core.regions import LOCALES
    from campaigns.ingestion import zones

    prefixes = sorted(k[1:7] for k in TIMEZONE_DATA if k.startswith("1") and len(k) == 7)
    regions = sorted(LOCALES["US"]["regions"])
    picked = rng.choice(prefixes, count)
    states = []
    for prefix in picked:
        own = zones.area_code_region(prefix[:3])
        if own is None or rng.random() < 0.15:
            states.append(str(rng.choice(regions)))
        else:
            states.append(own)
    e164 = np.array([f"+1{p}0000" for p in picked], dtype=object)
    located = zones.locate(e164, np.array(states, dtype=object), np.full(count, None, dtype=object), "US")
    return list(zip(picked, located["address_state"], located["candidate_zones"], located["zone_group"]))


def seed(engine, campaign_id: int, list_id: int, start: int, count: int, rng, pool) -> None:
    """Insert `count` prospects (COPY on PostgreSQL, executemany on SQLite)."""
    now = DAY - timedelta(days=3)
    chunk = 250_000
    for offset in range(0, count, chunk):
        n = min(chunk, count - offset)
        which = rng.integers(0, len(pool), n)
        suffix = rng.integers(0, 10_000, n)
        priority = rng.choice([30, 50, 70], n)
        attempts = np.where(rng.random(n) < 0.7, 0, rng.integers(1, 4, n))
        rows = []
        for i in range(n):
            prefix, state, cands, group = pool[which[i]]
            tries = int(attempts[i])
            last = now - timedelta(hours=int(suffix[i]) % 48) if tries else None
            rows.append((
                campaign_id, list_id, start + offset + i + 1, f"+1{prefix}{suffix[i]:04d}", state,
                cands, group, int(priority[i]), "ready", tries, last, now, now + timedelta(days=60),
                now, now, "{}",
            ))
        columns = ("campaign_id, list_id, source_row, phone_e164, address_state, candidate_zones, "
                   "zone_group, priority, status, attempts, last_attempt_at, next_dial_at, expires_at, "
                   "loaded_at, updated_at, custom_fields")
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                cursor = conn.connection.driver_connection.cursor()
                with cursor.copy(f"COPY prospects ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                naive = [
                    r[:10] + tuple(x.replace(tzinfo=None) if x is not None else None for x in r[10:15]) + r[15:]
                    for r in rows
                ]
                conn.exec_driver_sql(
                    f"INSERT INTO prospects ({columns}) VALUES ({', '.join('?' * 16)})", naive
                )
    # Steady state, as a production table is: vacuumed and analysed, so autovacuum does not
    # run in the middle of the measurement.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if conn.dialect.name == "postgresql" else "ANALYZE")


def empty_hopper(engine, campaign_id: int) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE prospects SET status = 'ready' WHERE campaign_id = %s AND status = 'queued'"
            if conn.dialect.name == "postgresql" else
            "UPDATE prospects SET status = 'ready' WHERE campaign_id = ? AND status = 'queued'",
            (campaign_id,),
        )
        conn.exec_driver_sql("DELETE FROM hopper")
        conn.exec_driver_sql("DELETE FROM hopper_fills")


def measure(engine, campaign_id: int) -> dict:
    from campaigns.dialing.hopper import fill_campaign

    times, queued, groups = [], [], []
    for instant in INSTANTS:
        empty_hopper(engine, campaign_id)
        started = time.perf_counter()
        result = fill_campaign(engine, campaign_id, instant)
        times.append((time.perf_counter() - started) * 1000)
        queued.append(result.queued)
        groups.append((result.open_groups, result.open_groups + result.closed_groups))
    times_sorted = sorted(times)
    return {
        "p50": statistics.median(times),
        "p95": times_sorted[int(round(0.95 * (len(times) - 1)))],
        "max": max(times),
        "queued_min": min(queued),
        "queued_median": statistics.median(queued),
        "full_fills": sum(q == LEVEL for q in queued),
        "groups": max(g[1] for g in groups),
        "open_median": statistics.median(g[0] for g in groups),
        "times": times,
    }


def setup(url: str):
    import sqlalchemy as sa

    from campaigns.core import db
    from campaigns.core import schema as t
    from campaigns.setup import registry
    from campaigns.setup.settings import parse_settings

    engine = db.make_engine(url)
    db.migrate(engine)
    settings = parse_settings({
        "name": "Bench", "slug": "bench", "workspace": "bench", "locale": "US", "agent": "a",
        "dialing": {"hopper_min_level": LEVEL},
        "dnc": {"lists": ["internal"]},
    })
    with engine.begin() as conn:
        campaign_id = registry.apply_campaign(conn, settings, DAY - timedelta(days=3)).campaign_id
        list_id = conn.execute(
            sa.insert(t.prospect_lists).values(
                campaign_id=campaign_id, source_key="seed", source_version="1", filename="seed.csv",
                status="loaded", priority=50, dupe_days=90, expire_days=90, warnings=[],
                created_at=DAY - timedelta(days=3),
            ).returning(t.prospect_lists.c.id)
        ).scalar_one()
    seed_dnc(engine, DNC_NUMBERS)
    return engine, campaign_id, list_id


def seed_dnc(engine, count: int) -> None:
    """A DNC list linked to the campaign: every candidate the fill reads is probed against it."""
    import sqlalchemy as sa

    from campaigns.core import schema as t

    rng = np.random.default_rng(11)
    numbers = np.unique(rng.integers(2_000_000_000, 9_999_999_999, count))
    added = (DAY - timedelta(days=30)).replace(tzinfo=None)
    with engine.begin() as conn:
        list_id = conn.execute(sa.select(t.dnc_lists.c.id)).scalar_one()
        if conn.dialect.name == "postgresql":
            cursor = conn.connection.driver_connection.cursor()
            with cursor.copy("COPY dnc_numbers (dnc_list_id, phone_e164, added_at) FROM STDIN") as copy:
                for n in numbers:
                    copy.write_row((list_id, f"+1{n}", DAY))
        else:
            conn.exec_driver_sql(
                "INSERT INTO dnc_numbers (dnc_list_id, phone_e164, added_at) VALUES (?, ?, ?)",
                [(list_id, f"+1{n}", added) for n in numbers],
            )


def postgres_url(base: str) -> str:
    import sqlalchemy as sa

    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("DROP DATABASE IF EXISTS dialer_bench_hopper WITH (FORCE)")
        conn.exec_driver_sql("CREATE DATABASE dialer_bench_hopper")
    admin.dispose()
    return sa.make_url(base).set(database="dialer_bench_hopper").render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--backends", nargs="+", default=["postgres", "sqlite"])
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    pool = profiles(rng, 20_000)
    print(f"{len({p[3] for p in pool}):,} distinct zone groups in the prospect pool", flush=True)
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends:
            url = postgres_url(args.postgres) if backend == "postgres" else f"sqlite:///{tmp}/bench.sqlite3"
            engine, campaign_id, list_id = setup(url)
            loaded = 0
            for size in sorted(args.sizes):
                started = time.perf_counter()
                seed(engine, campaign_id, list_id, loaded, size - loaded, np.random.default_rng(size), pool)
                loaded = size
                print(f"{backend}: seeded {size:,} prospects in {time.perf_counter() - started:.0f} s", flush=True)
                result = measure(engine, campaign_id)
                print(f"{backend} {size:,}: " + ", ".join(f"{t:.0f}" for t in result["times"]) + " ms", flush=True)
                table.append((backend, size, result))
            engine.dispose()
    print()
    print(f"Hopper fill of {LEVEL:,} rows at {len(INSTANTS)} instants across {DAY:%Y-%m-%d} (UTC, every 72 min)")
    print()
    print("| backend | prospects | zone groups | open groups (median) | p50 (ms) | p95 (ms) | max (ms) "
          "| fills that queued 5,000 | fewest queued |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for backend, size, r in table:
        print(f"| {backend} | {size:,} | {r['groups']:,} | {r['open_median']:.0f} | {r['p50']:.0f} "
              f"| {r['p95']:.0f} | {r['max']:.0f} | {r['full_fills']} of {len(INSTANTS)} | {r['queued_min']:,} |")


if __name__ == "__main__":
    main()
