"""Daemon benchmark: the simulator at 200 agent sessions, the daemon on PostgreSQL, 50,000 prospects.

Two parts, both with the real daemon (`dialer_daemon.Daemon`) placing calls over
HTTP on loopback to the real simulator:

1. **Throughput**: a dialing stretch at a speed factor (default ×30, so one
   simulated hour takes two wall-clock minutes), the daemon filling its own
   hopper on the simulator's clock, ticking as fast as the dialer interval
   allows. Prints tick latency p50/p99 (wall-clock, one tick = events + capacity
   + pacing + claims + calls) and calls placed per wall-clock second.
2. **Pacing**: for call ratios 1.0, 1.5, 2.0 and 3.0, with and without the
   Waiting Stations damper, at answer rates 15% and 35%: 15 simulated minutes
   each, the simulator's clock stepped one dialer interval per tick (so the
   numbers do not depend on this machine's speed). Prints sessions' occupancy
   (time-average share on a call) and the abandon rate (abandoned ÷ answered
   by a person).

    python bench/daemon.py [--prospects 50000] [--sessions 200] [--skip-throughput] [--skip-pacing]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

START = datetime(2026, 10, 21, 14, 0, tzinfo=UTC)  # 10:00 in New York, a Wednesday
DISPOSITIONS = [
    {"title": "Interested", "contacted": True, "qualified": True},
    {"title": "Not Interested", "contacted": True},
    {"title": "Call Back", "contacted": True, "callback": True},
    {"title": "Do Not Call", "contacted": True, "dnc": True},
]


def database(base: str, name: str) -> str:
    import sqlalchemy as sa

    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return sa.make_url(base).set(database=name).render_as_string(hide_password=False)


def setup(url: str, prospects: int, **dialing):
    import sqlalchemy as sa

    from campaigns.core import db
    from campaigns.core import schema as t
    from campaigns.setup import registry
    from campaigns.setup.settings import parse_settings

    engine = db.make_engine(url)
    db.migrate(engine)
    settings = parse_settings({
        "name": "Bench", "slug": "bench", "workspace": "bench", "locale": "US", "agent": "a",
        "dnc": {"lists": ["internal"], "dnc_disposition": "Do Not Call"}, "dispositions": DISPOSITIONS,
        "dialing": {"dialer_interval_s": 5, "max_calls_per_prospect": 3, "hopper_min_level": 500, **dialing},
    })
    loaded = START - timedelta(days=1)
    with engine.begin() as conn:
        cid = registry.apply_campaign(conn, settings, loaded).campaign_id
        list_id = conn.execute(sa.insert(t.prospect_lists).values(
            campaign_id=cid, source_key="seed", source_version="1", filename="seed.csv", status="loaded",
            priority=50, dupe_days=90, expire_days=90, warnings=[], created_at=loaded,
        ).returning(t.prospect_lists.c.id)).scalar_one()
        # Eastern and Central numbers: open all through the benchmark's stretch.
        npas = ["212", "312", "404", "617", "713", "215", "614", "917"]
        rows = [
            {"campaign_id": cid, "list_id": list_id, "source_row": i + 1,
             "phone_e164": f"+1{npas[i % len(npas)]}{2000000 + i:07d}",
             "candidate_zones": "America/New_York" if i % 2 == 0 else "America/Chicago",
             "zone_group": ("America/New_York|NY|NY" if i % 2 == 0 else "America/Chicago|IL|IL"),
             "address_state": "NY" if i % 2 == 0 else "IL", "area_code_state": "NY" if i % 2 == 0 else "IL",
             "priority": 50, "status": "ready", "attempts": 0, "next_dial_at": loaded,
             "expires_at": loaded + timedelta(days=60), "loaded_at": loaded, "updated_at": loaded,
             "custom_fields": {}}
            for i in range(prospects)
        ]
        for start in range(0, len(rows), 10_000):
            conn.execute(sa.insert(t.prospects), rows[start:start + 10_000])
        conn.exec_driver_sql("ANALYZE")
    return engine, cid


def reset(engine, cid: int, **settings) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM hopper")
        conn.exec_driver_sql("DELETE FROM hopper_fills")
        conn.exec_driver_sql("DELETE FROM call_attempts")
        conn.exec_driver_sql("DELETE FROM dnc_numbers")
        conn.exec_driver_sql("UPDATE campaign_runtime SET events_cursor = 0")
        conn.exec_driver_sql(
            "UPDATE prospects SET status = 'ready', attempts = 0, last_attempt_at = NULL, disposition = NULL, "
            "callback_at = NULL, next_dial_at = loaded_at"
        )
        if settings:
            import sqlalchemy as sa

            from campaigns.core import schema as t

            conn.execute(sa.update(t.campaigns).where(t.campaigns.c.id == cid).values(**settings))


def platform(sessions: int, answer_rate: float, speed: float, clock=None):
    from dialer_daemon.simulator import Profile, Simulator, serve
    from dialer_daemon.voice import VoiceClient

    profile = Profile(sessions=sessions, answer_rate=answer_rate, machine_rate=0.10, busy_rate=0.05,
                      fail_rate=0.01, talk_s_mean=90.0, wrap_up_s=3.0)
    kwargs = {"clock": clock} if clock else {}
    sim = Simulator(seed=11, start=START, speed=speed, default=profile, **kwargs)
    server = serve(sim)
    client = VoiceClient(f"http://127.0.0.1:{server.server_port}", timeout=10)
    return sim, server, client


def throughput(url: str, prospects: int, sessions: int, speed: float, minutes: float) -> dict:
    from dialer_daemon.daemon import Daemon, PlatformClock

    engine, cid = setup(url, prospects, call_ratio=2.0)
    sim, server, client = platform(sessions, 0.35, speed)
    daemon = Daemon(engine, client, clock=PlatformClock(client), fill_hopper=True)
    latencies, placed = [], 0
    wall_start = time.perf_counter()
    end = START + timedelta(minutes=minutes)
    while sim.now() < end:
        began = time.perf_counter()
        report = daemon.tick(cid)
        latencies.append((time.perf_counter() - began) * 1000)
        placed += report.placed
        time.sleep(max(0.0, 5 / speed - (time.perf_counter() - began)))
    wall = time.perf_counter() - wall_start
    server.shutdown()
    engine.dispose()
    latencies.sort()
    return {"ticks": len(latencies), "p50": statistics.median(latencies),
            "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
            "placed": placed, "wall_s": wall, "calls_per_s": placed / wall, "sim_minutes": minutes,
            "platform_calls": len(sim.calls())}


class Stepped:
    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value


def pacing(engine, cid: int, sessions: int, ratio: float, damper: bool, answer_rate: float,
           minutes: float) -> dict:
    from dialer_daemon.daemon import Daemon, PlatformClock

    reset(engine, cid, call_ratio=ratio, damper_mode="waiting_stations" if damper else "disabled",
          damper_threshold=0.5)
    clock = Stepped()
    sim, server, client = platform(sessions, answer_rate, 1.0, clock)
    daemon = Daemon(engine, client, clock=PlatformClock(client), fill_hopper=True)
    occupancy = []
    for _ in range(int(minutes * 60 / 5)):
        daemon.tick(cid)
        capacity = client.capacity("bench/bench")
        occupancy.append(capacity.on_call / capacity.total)
        clock.value += 5
    events = Counter()
    after = 0
    while True:
        page, after_next = client.events("bench/bench", after, 5000)
        events.update(e["type"] for e in page)
        if not page or after_next == after:
            break
        after = after_next
    server.shutdown()
    answered = events["answered"] + events["abandoned"]
    return {"ratio": ratio, "damper": damper, "answer_rate": answer_rate,
            "occupancy": statistics.fmean(occupancy), "placed": len(sim.calls()),
            "answered": answered, "abandoned": events["abandoned"],
            "abandon_rate": events["abandoned"] / answered if answered else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--prospects", type=int, default=50_000)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--speed", type=float, default=30.0)
    parser.add_argument("--minutes", type=float, default=60.0, help="simulated minutes of the throughput run")
    parser.add_argument("--pacing-minutes", type=float, default=15.0)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-pacing", action="store_true")
    args = parser.parse_args()
    if not args.skip_throughput:
        url = database(args.postgres, "dialer_bench_daemon")
        r = throughput(url, args.prospects, args.sessions, args.speed, args.minutes)
        print(f"Throughput: {args.prospects:,} prospects, {args.sessions} sessions, ratio 2.0, answer rate 35%, "
              f"×{args.speed:g} ({args.minutes:g} simulated minutes in {r['wall_s']:.0f} s)")
        print()
        print("| ticks | tick p50 (ms) | tick p99 (ms) | calls placed | platform's calls | calls/s (wall) |")
        print("|---:|---:|---:|---:|---:|---:|")
        print(f"| {r['ticks']:,} | {r['p50']:.0f} | {r['p99']:.0f} | {r['placed']:,} | {r['platform_calls']:,} "
              f"| {r['calls_per_s']:.1f} |")
        print(flush=True)
    if not args.skip_pacing:
        url = database(args.postgres, "dialer_bench_pacing")
        engine, cid = setup(url, args.prospects)
        print(f"Pacing: {args.sessions} sessions, {args.pacing_minutes:g} simulated minutes per row, "
              "dialer interval 5 s, talk time mean 90 s, wrap-up 3 s, damper threshold 0.5")
        print()
        print("| answer rate | call ratio | damper | calls placed | answered | occupancy | abandon rate |")
        print("|---:|---:|---|---:|---:|---:|---:|")
        for answer_rate in (0.15, 0.35):
            for ratio in (1.0, 1.5, 2.0, 3.0):
                for damper in (False, True):
                    r = pacing(engine, cid, args.sessions, ratio, damper, answer_rate, args.pacing_minutes)
                    print(f"| {answer_rate:.0%} | {ratio:.1f} | {'waiting stations' if damper else 'off'} "
                          f"| {r['placed']:,} | {r['answered']:,} | {r['occupancy']:.1%} "
                          f"| {r['abandon_rate']:.1%} |", flush=True)
        engine.dispose()


if __name__ == "__main__":
    main()
