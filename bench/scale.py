"""Scale benchmark: 4 daemon processes, one PostgreSQL, a simulated dialing day with provider faults.

The simulator (in this process, on loopback) plays 200 agent sessions over 8
campaigns with fault injection on; 4 `dialer daemon` processes share the
campaigns through leases and fill their own hoppers on the simulator's clock.
A dialing day — 08:50 in New York to 21:10 in Chicago — passes at a speed
factor (default ×120, about 6½ minutes). Two runs on a fresh database each:

- **steady**: the 4 daemons run the whole day;
- **kills**: every `--kill-every` simulated minutes one daemon (in turn) is
  killed with SIGKILL and a new one started in its place.

After the day, the daemons run on for 30 simulated minutes (the window is shut:
the calls out end and every attempt is settled), are stopped with SIGTERM
(each must drain and exit 0), and the run is checked against the simulator's
own log:

- calls placed, and the platform's calls without an attempt (must be 0);
- double-dials (must be 0): two platform calls for one attempt, or two calls
  to one prospect that overlap in time;
- prospects called more than max calls per prospect (must be 0);
- prospects left in a non-final, non-dialable state (DIALING), attempts not
  ended and hopper rows still claimed (must all be 0);
- tick latency p50/p99 per daemon, from the daemons' JSON tick logs;
- hopper churn: per hour of the day (New York time), the fills, the rows they
  queued and the rows returned unclaimed at hopper expiry (`hopper_fills`);
- ticks that found the hopper empty (pacing limited by the hopper, 0 rows to
  claim), and among them those when open prospects remained: a prospect in an
  open window, under max calls, past its min time between calls (or at a due
  callback) and not being dialed, rebuilt from the attempts at the tick's instant;
- dead tuples of the churned tables, sampled every 2 s: peak and last;
- with kills: how long each killed daemon's campaigns went without a holder.

    python bench/scale.py [--speed 120] [--kill-every 30] [--runs steady,kills] [--database NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon import (
    database,  # bench/daemon.py, beside this script: a fresh benchmark database
)

DAY_START = datetime(2026, 10, 21, 12, 50, tzinfo=UTC)  # 08:50 in New York, a Wednesday
DAY_END = datetime(2026, 10, 22, 2, 10, tzinfo=UTC)  # 21:10 in Chicago
SETTLE = timedelta(minutes=30)
DISPOSITIONS = [
    {"title": "Interested", "contacted": True, "qualified": True},
    {"title": "Not Interested", "contacted": True},
    {"title": "Call Back", "contacted": True, "callback": True},
    {"title": "Do Not Call", "contacted": True, "dnc": True},
]
FAULTS = "error=0.01,error_after_accept=0.005,timeout=0.003,timeout_s=6,drop=0.005,slow=0.02,slow_s=0.3," \
         "outage_every_s=90,outage_s=2"
TABLES = ("hopper", "call_attempts", "prospects", "campaign_runtime", "campaign_leases", "daemons")
MAX_CALLS = 3
MIN_BETWEEN = timedelta(minutes=60)
NEW_YORK = ZoneInfo("America/New_York")  # the hours of the churn table


def setup(url: str, campaigns: int, per_campaign: int):
    import sqlalchemy as sa

    from campaigns.core import db
    from campaigns.core import schema as t
    from campaigns.setup import registry
    from campaigns.setup.settings import parse_settings

    engine = db.make_engine(url)
    db.migrate(engine)
    loaded = DAY_START - timedelta(days=1)
    npas = ["212", "312", "404", "617", "713", "215", "614", "917"]
    ids = []
    with engine.begin() as conn:
        for c in range(campaigns):
            settings = parse_settings({
                "name": f"Scale {c}", "slug": f"scale-{c}", "workspace": "bench", "locale": "US", "agent": "a",
                "dnc": {"lists": ["internal"], "dnc_disposition": "Do Not Call"}, "dispositions": DISPOSITIONS,
                "dialing": {"dialer_interval_s": 5, "call_ratio": 2.0, "max_calls_per_prospect": MAX_CALLS,
                            "min_minutes_between_calls": int(MIN_BETWEEN.total_seconds() // 60),
                            "hopper_min_level": 200,
                            "damper": {"mode": "waiting_stations", "threshold": 0.5}},
            })
            cid = registry.apply_campaign(conn, settings, loaded).campaign_id
            ids.append(cid)
            list_id = conn.execute(sa.insert(t.prospect_lists).values(
                campaign_id=cid, source_key=f"seed-{c}", source_version="1", filename="seed.csv", status="loaded",
                priority=50, dupe_days=90, expire_days=90, warnings=[], created_at=loaded,
            ).returning(t.prospect_lists.c.id)).scalar_one()
            rows = []
            for i in range(per_campaign):
                east = i % 2 == 0
                rows.append({
                    "campaign_id": cid, "list_id": list_id, "source_row": i + 1,
                    "phone_e164": f"+1{npas[i % len(npas)]}{2000000 + c * per_campaign + i:07d}",
                    "candidate_zones": "America/New_York" if east else "America/Chicago",
                    "zone_group": "America/New_York|NY|NY" if east else "America/Chicago|IL|IL",
                    "address_state": "NY" if east else "IL", "area_code_state": "NY" if east else "IL",
                    "priority": 50, "status": "ready", "attempts": 0, "next_dial_at": loaded,
                    "expires_at": loaded + timedelta(days=60), "loaded_at": loaded, "updated_at": loaded,
                    "custom_fields": {},
                })
            for start in range(0, len(rows), 10_000):
                conn.execute(sa.insert(t.prospects), rows[start:start + 10_000])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    return engine, ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Fleet:
    """The daemon processes: started, killed, replaced, drained."""

    def __init__(self, env: dict, logdir: Path, lease_s: float) -> None:
        self.env, self.logdir, self.lease_s = env, logdir, lease_s
        self.processes: dict[str, subprocess.Popen] = {}
        self.ports: dict[str, int] = {}
        self.count = 0

    def start(self) -> str:
        self.count += 1
        name = f"d{self.count}"
        port = free_port()
        log = open(self.logdir / f"{name}.log", "w")  # noqa: SIM115 - the process owns it until it ends
        self.processes[name] = subprocess.Popen(
            [str(Path(sys.executable).parent / "dialer"), "daemon", "--id", name, "--fill-hopper",
             "--lease-seconds", str(self.lease_s), "--log-format", "json", "--metrics-port", str(port)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
        )
        self.ports[name] = port
        return name

    def alive(self) -> list[str]:
        return [name for name, p in self.processes.items() if p.poll() is None]

    def kill(self, name: str) -> None:
        os.killpg(self.processes[name].pid, signal.SIGKILL)
        self.processes[name].wait(timeout=30)

    def scrape(self, name: str) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[name]}/metrics", timeout=5) as response:
            return response.read().decode()

    def drain(self) -> dict[str, tuple[int, float]]:
        """SIGTERM every live daemon; name → (exit code, seconds to exit)."""
        began = time.monotonic()
        live = self.alive()
        for name in live:
            self.processes[name].send_signal(signal.SIGTERM)
        results = {}
        for name in live:
            code = self.processes[name].wait(timeout=120)
            results[name] = (code, time.monotonic() - began)
        return results


def log_events(logdir: Path, event: str) -> int:
    return sum(path.read_text().count(f'"event": "{event}"') for path in logdir.glob("d*.log"))


def tick_latencies(logdir: Path) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for path in sorted(logdir.glob("d*.log")):
        values = []
        for line in path.read_text().splitlines():
            if '"event": "tick"' in line:
                entry = json.loads(line)
                if entry.get("seconds") is not None:
                    values.append(entry["seconds"] * 1000)
        out[path.stem] = values
    return out


def all_ticks(latencies: dict[str, list[float]]) -> tuple[int, float, float, float]:
    """(ticks, p50, p90, p99) over every daemon's ticks."""
    values = [v for series in latencies.values() for v in series]
    return (len(values), statistics.median(values) if values else float("nan"), percentile(values, 0.9),
            percentile(values, 0.99))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def dead_tuples(conn) -> dict[str, int]:
    rows = conn.exec_driver_sql(
        "SELECT relname, n_dead_tup FROM pg_stat_user_tables WHERE relname = ANY(%(names)s)",
        {"names": list(TABLES)},
    ).all()
    return {name: int(dead) for name, dead in rows}


def holders(conn) -> dict[int, str]:
    return dict(conn.exec_driver_sql(
        "SELECT campaign_id, holder FROM campaign_leases WHERE expires_at > clock_timestamp()").all())


def run(base: str, mode: str, args) -> dict:
    from dialer_daemon.simulator import Faults, Profile, Simulator, serve

    url = database(base, args.database)
    engine, ids = setup(url, args.campaigns, args.prospects // args.campaigns)
    profile = Profile(sessions=args.sessions // args.campaigns, talk_s_mean=180.0, wrap_up_s=5.0)
    sim = Simulator(seed=17, start=DAY_START, speed=args.speed, default=profile, faults=Faults.parse(args.faults))
    server = serve(sim)
    logdir = Path(tempfile.mkdtemp(prefix=f"dialer-scale-{mode}-"))
    env = {**os.environ, "DIALER_DATABASE_URL": url, "DIALER_HOME": str(logdir / "home"),
           "DIALER_VOICE_API_URL": f"http://127.0.0.1:{server.server_port}"}
    fleet = Fleet(env, logdir, args.lease_seconds)
    for _ in range(args.daemons):
        fleet.start()
    dead_peak: Counter = Counter()
    dead_series: list[dict[str, int]] = []
    orphaned: list[float] = []  # per kill: wall seconds until all its campaigns had a live holder again
    kills = 0
    next_kill = DAY_START + timedelta(minutes=args.kill_every)
    wall_start = time.monotonic()
    last_sample = 0.0
    retries: Counter = Counter()
    try:
        while sim.now() < DAY_END + SETTLE:
            time.sleep(0.1)
            now_wall = time.monotonic()
            if now_wall - last_sample >= 2.0:
                last_sample = now_wall
                with engine.connect() as conn:
                    sample = dead_tuples(conn)
                dead_series.append(sample)
                for table, n in sample.items():
                    dead_peak[table] = max(dead_peak[table], n)
            if mode == "kills" and next_kill <= sim.now() < DAY_END - timedelta(minutes=args.kill_every):
                next_kill += timedelta(minutes=args.kill_every)
                live = fleet.alive()
                with engine.connect() as conn:
                    victim = live[kills % len(live)]
                    held = [cid for cid, holder in holders(conn).items() if holder == victim]
                for cause, n in scrape_retries(fleet, victim).items():
                    retries[cause] += n
                fleet.kill(victim)
                killed_at = time.monotonic()
                kills += 1
                fleet.start()  # its replacement
                if held:
                    while time.monotonic() - killed_at < 60:
                        with engine.connect() as conn:
                            now_held = holders(conn)
                        if all(now_held.get(cid, victim) != victim for cid in held):
                            break
                        time.sleep(0.05)
                    orphaned.append(time.monotonic() - killed_at)
        # The day is over: wait (at most 2 minutes) until every attempt is settled, as an operator
        # would before stopping the daemons; killed daemons' attempts need a lease period or two.
        settle_began = time.monotonic()
        while time.monotonic() - settle_began < 120 and unsettled(engine):
            time.sleep(0.5)
        settled_in = time.monotonic() - settle_began
        for name in fleet.alive():
            for cause, n in scrape_retries(fleet, name).items():
                retries[cause] += n
        drained = fleet.drain()
    finally:
        for name in fleet.alive():
            fleet.kill(name)
    wall = time.monotonic() - wall_start
    platform_log = sim.calls()
    server.shutdown()
    result = check(engine, platform_log)
    result.update(fills_by_hour=fills_by_hour(engine), empty=empty_hopper_ticks(engine, logdir))
    engine.dispose()
    latencies = tick_latencies(logdir)
    result.update(mode=mode, wall_s=wall, kills=kills, settled_in=settled_in, orphaned=orphaned, drained=drained, dead_peak=dict(dead_peak),
                  dead_last=dead_series[-1] if dead_series else {}, dead_series=dead_series,
                  latencies={k: (len(v), statistics.median(v) if v else float("nan"), percentile(v, 0.99))
                             for k, v in latencies.items()},
                  all_ticks=all_ticks(latencies),
                  injected=dict(sim.injected), retries=dict(retries), logdir=str(logdir),
                  leases_lost=log_events(logdir, "lease_lost"), vacuums=log_events(logdir, "vacuum"))
    return result


def unsettled(engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql(
            "SELECT (SELECT count(*) FROM call_attempts WHERE status <> 'ended')"
            " + (SELECT count(*) FROM prospects WHERE status = 'dialing')").scalar_one()


def scrape_retries(fleet: Fleet, name: str) -> Counter:
    from prometheus_client.parser import text_string_to_metric_families

    counts: Counter = Counter()
    try:
        text = fleet.scrape(name)
    except OSError:
        return counts
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "dialer_voice_api_retries_total":
                counts[sample.labels["cause"]] += int(sample.value)
    return counts


def check(engine, platform_log: list[dict]) -> dict:
    import sqlalchemy as sa

    from campaigns.core import schema as t

    with engine.connect() as conn:
        attempts = conn.execute(sa.select(t.call_attempts)).all()
        statuses = Counter(conn.execute(sa.select(t.prospects.c.status)).scalars())
        claimed = conn.execute(sa.select(sa.func.count()).select_from(t.hopper)
                               .where(t.hopper.c.status == "claimed")).scalar_one()
        over_max = conn.execute(sa.select(sa.func.count()).select_from(t.prospects)
                                .where(t.prospects.c.attempts > MAX_CALLS)).scalar_one()
        answered = sum(1 for a in attempts if a.answered_at is not None)
        queued, returned_expired = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(t.hopper_fills.c.queued), 0),
                      sa.func.coalesce(sa.func.sum(t.hopper_fills.c.returned_expired), 0))).one()
    by_key = {a.idempotency_key: a for a in attempts}
    calls_per_key = Counter(c["idempotency_key"] for c in platform_log)
    orphan_calls = sum(1 for c in platform_log if c["idempotency_key"] not in by_key)
    mismatched = sum(1 for c in platform_log if c["idempotency_key"] in by_key
                     and by_key[c["idempotency_key"]].platform_call_id != c["call_id"])
    dialed_per_prospect = Counter(a.prospect_id for a in attempts if a.outcome != "not_placed")
    overlapping = 0
    by_prospect: dict[int, list[dict]] = defaultdict(list)
    for call in platform_log:
        by_prospect[call["prospect_id"]].append(call)
    for mine in by_prospect.values():
        mine.sort(key=lambda c: c["created_at"])
        overlapping += sum(1 for a, b in zip(mine, mine[1:]) if a["ended_at"] is None or b["created_at"] < a["ended_at"])
    abandoned = sum(1 for a in attempts if a.outcome == "abandoned")
    return {
        "platform_calls": len(platform_log), "attempts": len(attempts),
        "not_placed": sum(1 for a in attempts if a.outcome == "not_placed"),
        "double_dials": sum(n - 1 for n in calls_per_key.values() if n > 1) + overlapping,
        "orphan_calls": orphan_calls + mismatched,
        "beyond_max": over_max + sum(1 for n in dialed_per_prospect.values() if n > MAX_CALLS),
        "stuck": statuses.get("dialing", 0) + claimed + sum(1 for a in attempts if a.status != "ended"),
        "statuses": dict(statuses), "answered": answered, "abandoned": abandoned,
        "hopper_queued": int(queued), "hopper_returned_expired": int(returned_expired),
        "abandon_rate": abandoned / (answered + abandoned) if answered + abandoned else 0.0,
    }


def fills_by_hour(engine) -> dict[str, dict]:
    """Hour of the day (New York time) → fills, rows queued, returned unclaimed at expiry, levels."""
    import sqlalchemy as sa

    from campaigns.core import schema as t

    f = t.hopper_fills
    with engine.connect() as conn:
        rows = conn.execute(sa.select(f.c.filled_at, f.c.level, f.c.queued, f.c.returned_expired)
                            .order_by(f.c.filled_at)).all()
    hours: dict[str, dict] = {}
    for row in rows:
        local = row.filled_at.astimezone(NEW_YORK)
        key = f"{local:%H}:00" if row.filled_at <= DAY_END else "after the day"
        h = hours.setdefault(key, {"fills": 0, "queued": 0, "expired": 0, "levels": []})
        h["fills"] += 1
        h["queued"] += row.queued
        h["expired"] += row.returned_expired
        h["levels"].append(row.level)
    return hours


def tick_entries(logdir: Path):
    for path in sorted(logdir.glob("d*.log")):
        for line in path.read_text().splitlines():
            if '"event": "tick"' in line:
                yield json.loads(line)


def empty_hopper_ticks(engine, logdir: Path) -> dict:
    """Ticks whose pacing wanted calls and found no queued row, and those of them when open prospects remained.

    A prospect is open at an instant when its zone group's window is open, it is not being dialed,
    and its calls so far leave it dialable: none yet; or fewer than max calls, the last ended
    without a final disposition at least the min time between calls before; or a callback now
    due. That is the fill's rule, rebuilt from the attempts (so a tick that skipped its fill is
    judged as strictly as one whose fill found nothing).
    """
    import sqlalchemy as sa

    from campaigns.core import schema as t
    from campaigns.core.model import Campaign
    from campaigns.dialing.dialability import DialRules, Place, window_open

    limited = [e for e in tick_entries(logdir) if (e.get("pacing") or {}).get("limited_by") == "hopper"]
    empty = [(e["campaign"], datetime.fromisoformat(e["at"]), e.get("filled")) for e in limited
             if e["pacing"]["hopper"] == 0]
    out = {"ticks": len(empty), "filled_nothing": sum(1 for _, _, filled in empty if filled is not None),
           "short": len(limited) - len(empty), "open_remained": 0, "examples": []}
    if not empty:
        return out
    final = {d["title"] for d in DISPOSITIONS if not d.get("callback")}
    callbacks = {d["title"] for d in DISPOSITIONS if d.get("callback")}
    c, w, p, a = t.campaigns, t.workspaces, t.prospects, t.call_attempts
    with engine.connect() as conn:
        campaigns = {row.qualified: Campaign.from_row(row) for row in conn.execute(
            sa.select(c, (w.c.name + "/" + c.c.slug).label("qualified")).join(w, w.c.id == c.c.workspace_id))}
        wanted = {campaigns[name].id for name, _, _ in empty}
        groups = dict(conn.execute(sa.select(p.c.id, p.c.zone_group).where(p.c.campaign_id.in_(wanted))).all())
        calls: dict[int, list] = defaultdict(list)
        for row in conn.execute(
            sa.select(a.c.prospect_id, a.c.created_at, a.c.ended_at, a.c.outcome, a.c.disposition, a.c.callback_at)
            .where(a.c.campaign_id.in_(wanted)).order_by(a.c.created_at)
        ):
            calls[row.prospect_id].append(row)
    by_campaign: dict[int, list[int]] = defaultdict(list)
    with engine.connect() as conn:
        for pid, cid in conn.execute(sa.select(p.c.id, p.c.campaign_id).where(p.c.campaign_id.in_(wanted))):
            by_campaign[cid].append(pid)

    def is_open(campaign: Campaign, pid: int, at: datetime) -> bool:
        before = [x for x in calls.get(pid, ()) if x.created_at <= at]
        if not before:
            return True
        if any(x.ended_at is None or x.ended_at > at for x in before):
            return False  # being dialed
        last = before[-1]
        if sum(1 for x in before if x.outcome != "not_placed") >= MAX_CALLS:
            return False
        if last.outcome == "completed" and last.disposition in final:
            return False
        if last.outcome == "completed" and last.disposition in callbacks:
            due = last.callback_at or last.ended_at + timedelta(minutes=campaign.callback_delay_min)
            return due <= at
        return last.ended_at + MIN_BETWEEN <= at

    for name, at, filled in empty:
        campaign = campaigns[name]
        rules = DialRules.from_campaign(campaign)
        open_groups = {g for g in set(groups.values()) if window_open(Place.from_group(g), rules, at)}
        if any(groups[pid] in open_groups and is_open(campaign, pid, at) for pid in by_campaign[campaign.id]):
            out["open_remained"] += 1
            if len(out["examples"]) < 5:
                out["examples"].append(f"{name} at {at:%H:%M:%S} UTC ({'filled nothing' if filled is not None else 'no fill'})")
    return out


def report(r: dict, args) -> None:
    print(f"\n### {r['mode']}: {r['wall_s']:.0f} s wall, {r['kills']} kills")
    print()
    print("| calls placed | attempts | not placed | double-dials | calls without attempt | beyond max calls "
          "| left stuck | answered | abandon rate |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {r['platform_calls']:,} | {r['attempts']:,} | {r['not_placed']:,} | {r['double_dials']} "
          f"| {r['orphan_calls']} | {r['beyond_max']} | {r['stuck']} | {r['answered']:,} | {r['abandon_rate']:.1%} |")
    print()
    print("| daemon | ticks | tick p50 (ms) | tick p99 (ms) |")
    print("|---|---:|---:|---:|")
    for name, (n, p50, p99) in r["latencies"].items():
        print(f"| {name} | {n:,} | {p50:.0f} | {p99:.0f} |")
    n, p50, p90, p99 = r["all_ticks"]
    print(f"| all daemons | {n:,} | {p50:.0f} | {p99:.0f} |  (p90 {p90:.0f} ms)")
    print()
    print(f"Hopper churn: the fills queued {r['hopper_queued']:,} rows; {r['hopper_returned_expired']:,} of them "
          "were returned unclaimed at hopper expiry.")
    print()
    print("| hour (New York) | fills | queued | queued per fill | returned expired | expired per fill "
          "| expired ÷ queued | level, median |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    hours = r["fills_by_hour"]
    for hour, h in sorted(hours.items(), key=lambda kv: (kv[0] == "after the day", kv[0])):
        print(f"| {hour} | {h['fills']:,} | {h['queued']:,} | {h['queued'] / h['fills']:.0f} | {h['expired']:,} "
              f"| {h['expired'] / h['fills']:.0f} | {h['expired'] / h['queued'] if h['queued'] else 0:.1%} "
              f"| {statistics.median(h['levels']):.0f} |")
    fills = sum(h["fills"] for h in hours.values())
    queued = sum(h["queued"] for h in hours.values())
    expired = sum(h["expired"] for h in hours.values())
    levels = [v for h in hours.values() for v in h["levels"]]
    if fills:
        print(f"| **all** | {fills:,} | {queued:,} | {queued / fills:.0f} | {expired:,} | {expired / fills:.0f} "
              f"| {expired / queued if queued else 0:.1%} | {statistics.median(levels):.0f} |")
    print()
    e = r["empty"]
    print(f"Ticks that found the hopper empty (pacing limited by the hopper, 0 rows): {e['ticks']:,} of "
          f"{r['all_ticks'][0]:,}; {e['filled_nothing']:,} of them after a fill in the same tick that found "
          f"nothing to queue; with open prospects remaining: {e['open_remained']:,}"
          + (f" (e.g. {'; '.join(e['examples'])})." if e["examples"] else ".")
          + f" Ticks that found fewer rows than pacing asked for, but some: {e['short']:,}.")
    print()
    print("| table | dead tuples, peak | dead tuples, last sample |")
    print("|---|---:|---:|")
    for table in TABLES:
        print(f"| {table} | {r['dead_peak'].get(table, 0):,} | {r['dead_last'].get(table, 0):,} |")
    print()
    codes = Counter(code for code, _ in r["drained"].values())
    slowest = max((s for _, s in r["drained"].values()), default=0.0)
    print(f"After the day (and {SETTLE.total_seconds() / 60:.0f} simulated minutes), every attempt was settled "
          f"within {r['settled_in']:.1f} s more.")
    print(f"SIGTERM at the end: exit codes {dict(codes)}, all exited within {slowest:.1f} s.")
    if r["orphaned"]:
        print(f"Campaigns of a killed daemon without a holder: median {statistics.median(r['orphaned']):.1f} s, "
              f"max {max(r['orphaned']):.1f} s (lease {args.lease_seconds:g} s).")
    print(f"Leases lost by a live daemon (renewal refused): {r['leases_lost']}; maintenance rounds that "
          f"vacuumed: {r['vacuums']}.")
    print(f"Faults injected by the simulator: {r['injected']}; retried by the daemons (scraped): {r['retries']}.")
    print(f"Prospects after the day: {r['statuses']}. Logs: {r['logdir']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--daemons", type=int, default=4)
    parser.add_argument("--campaigns", type=int, default=8)
    parser.add_argument("--sessions", type=int, default=200, help="agent sessions over all campaigns")
    parser.add_argument("--prospects", type=int, default=48_000, help="over all campaigns")
    parser.add_argument("--speed", type=float, default=120.0)
    parser.add_argument("--kill-every", type=float, default=30.0, help="simulated minutes between kills")
    parser.add_argument("--lease-seconds", type=float, default=5.0)
    parser.add_argument("--faults", default=FAULTS)
    parser.add_argument("--runs", default="steady,kills")
    parser.add_argument("--database", default="dialer_bench_scale",
                        help="the benchmark's database on the server (dropped and created afresh)")
    args = parser.parse_args()
    print(f"{args.daemons} daemons, {args.campaigns} campaigns, {args.sessions} sessions, {args.prospects:,} "
          f"prospects, ×{args.speed:g}, lease {args.lease_seconds:g} s, faults {args.faults}", flush=True)
    for mode in args.runs.split(","):
        report(run(args.postgres, mode, args), args)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
