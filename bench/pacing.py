"""Pacing benchmark (issue 16): the real daemon against the real simulator, on a stepped clock.

Every run is one campaign on a fresh database, the real `dialer_daemon.Daemon` ticking it
and filling its own hopper, placing calls over HTTP on loopback to the real simulator
(`dialer_daemon.simulator`). The simulator's clock steps one dialer interval (5 s) per
tick, so what is measured is the pacing, not how fast this machine ticks. All agent
sessions are idle at the start. The simulator draws each call's fate from (seed,
campaign, call index), so two pacers run with the same seed meet the same calls: rows
are paired by seed.

Rows, for each session count and answer rate:
- ratio mode at call ratios 1, 2 and 3, with and without the Waiting Stations damper (printed last);
- the best static ratio found by a sweep (`--sweep`, fewer seeds), chosen after the fact:
  the highest occupancy whose pooled abandon rate is within the predictive target (2%);
- predictive at targets 0.02 and 0.03;
- at answer rate 0.2, two drift scenarios half-way through the run (answer rate
  0.2 → 0.35; talk time 120 → 300 s), predictive at 0.02 against the best static ratio.

Columns: occupancy (median over seeds of the time-average share of sessions on a call,
exact from the simulator's call log; over the whole run, and after a 10-minute warm-up), the whole-run abandon rate (abandoned ÷ answered by a
person, pooled over the seeds), the worst 30-minute abandon rate (30-minute windows every
5 minutes, over every seed), connects per session-hour, calls placed per second of tick
time (wall clock), and the person answers behind the row.

    python bench/pacing.py [--sessions 10,50,200] [--answer-rates 0.2,0.35] [--seeds 5]
                           [--jobs 2] [--rows ratio,best,predictive,drift] [--minutes 10=120,50=90,200=60]
                           [--best-ratio R]   (the ratio a sweep found: skips the sweep)

All the runs of a session count and answer rate after the sweep share one pool of `--jobs`
workers, so no worker waits at the end of a row with an odd number of seeds.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

START = datetime(2026, 10, 21, 14, 0, tzinfo=UTC)  # 10:00 in New York, a Wednesday
INTERVAL_S = 5
TALK_S = 120.0
WRAP_UP_S = 3.0
DISPOSITIONS = [
    {"title": "Interested", "contacted": True, "qualified": True},
    {"title": "Not Interested", "contacted": True},
    {"title": "Do Not Call", "contacted": True, "dnc": True},
]
DEFAULT_MINUTES = {10: 120, 50: 90, 200: 60}
SWEEP_RATIOS = {0.2: [4.0, 5.0, 6.0, 7.0, 8.0, 9.0], 0.35: [2.0, 2.5, 3.0, 3.5, 4.0, 5.0]}
SWEEP_SEEDS = 2
WARM_UP = timedelta(minutes=10)  # the "after warm-up" occupancy leaves out the ramp from all sessions idle
BEST_WITHIN = 0.02  # the best static ratio: the highest occupancy at a pooled abandon rate within this


@dataclass(frozen=True)
class Spec:
    """One run."""

    sessions: int
    answer_rate: float
    minutes: float
    seed: int
    mode: str  # "ratio" | "predictive"
    ratio: float = 1.0
    damper: bool = False
    target: float = 0.02
    drift: str | None = None  # None | "answer" (0.2 → 0.35) | "talk" (120 → 300 s), half-way through


@dataclass
class Result:
    spec: Spec
    occupancy: float
    steady_occupancy: float  # after the warm-up
    answered: int  # by a person: connected + abandoned
    abandoned: int
    connected: int
    placed: int
    windows: list[tuple[int, int]] = field(default_factory=list)  # (abandoned, answered) per 30-min window
    tick_seconds: list[float] = field(default_factory=list)
    wall_s: float = 0.0


class Stepped:
    """A monotonic clock the benchmark moves."""

    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value


def prospects_needed(spec: Spec) -> int:
    """One dial per prospect is plenty: sessions × run ÷ talk ÷ answer rate, with room to spare."""
    rate = min(spec.answer_rate, 0.2) if spec.drift != "answer" else 0.2
    return max(2000, math.ceil(spec.sessions * spec.minutes * 60 / (TALK_S + WRAP_UP_S) / rate * 1.4))


def template(directory: Path, prospects: int) -> Path:
    """A SQLite database with the campaign and `prospects` READY prospects (made once, copied per run)."""
    import sqlalchemy as sa

    from campaigns.core import db
    from campaigns.core import schema as t
    from campaigns.setup import registry
    from campaigns.setup.settings import parse_settings

    path = directory / f"template-{prospects}.sqlite"
    if path.exists():
        return path
    building = directory / f"building-{prospects}-{os.getpid()}.sqlite"
    engine = db.make_engine(f"sqlite:///{building}")
    db.migrate(engine)
    settings = parse_settings({
        "name": "Bench", "slug": "bench", "workspace": "bench", "locale": "US", "agent": "a",
        "dnc": {"lists": ["internal"], "dnc_disposition": "Do Not Call"}, "dispositions": DISPOSITIONS,
        "dialing": {"dialer_interval_s": INTERVAL_S, "max_calls_per_prospect": 1, "wrap_up_s": int(WRAP_UP_S)},
    })
    loaded = START - timedelta(days=1)
    with engine.begin() as conn:
        cid = registry.apply_campaign(conn, settings, loaded).campaign_id
        list_id = conn.execute(sa.insert(t.prospect_lists).values(
            campaign_id=cid, source_key="seed", source_version="1", filename="seed.csv", status="loaded",
            priority=50, dupe_days=90, expire_days=90, warnings=[], created_at=loaded,
        ).returning(t.prospect_lists.c.id)).scalar_one()
        rows = [
            {"campaign_id": cid, "list_id": list_id, "source_row": i + 1,
             "phone_e164": f"+1{('212', '917', '718', '646')[i % 4]}{2000000 + i // 4:07d}",
             "candidate_zones": "America/New_York", "zone_group": "America/New_York|NY|NY",
             "address_state": "NY", "area_code_state": "NY", "priority": 50, "status": "ready", "attempts": 0,
             "next_dial_at": loaded, "expires_at": loaded + timedelta(days=60), "loaded_at": loaded,
             "updated_at": loaded, "custom_fields": {}}
            for i in range(prospects)
        ]
        for start in range(0, len(rows), 10_000):
            conn.execute(sa.insert(t.prospects), rows[start:start + 10_000])
    engine.dispose()
    os.replace(building, path)  # whole or not at all: another process may be about to copy it
    return path


def run(spec: Spec, workdir: str) -> Result:
    """One run on a copy of the template database; returns what the simulator's log shows."""
    import sqlalchemy as sa

    from campaigns.core import db
    from campaigns.core import schema as t
    from dialer_daemon.daemon import Daemon, PlatformClock
    from dialer_daemon.simulator import Profile, Simulator, serve
    from dialer_daemon.voice import VoiceClient

    began = time.perf_counter()
    directory = Path(workdir)
    source = template(directory, prospects_needed(spec))
    path = directory / f"run-{os.getpid()}.sqlite"
    shutil.copyfile(source, path)
    engine = db.make_engine(f"sqlite:///{path}")
    hopper_level = max(100, math.ceil(prospects_needed(spec) * 5 / spec.minutes))  # never the limit
    with engine.begin() as conn:
        conn.execute(sa.update(t.campaigns).values(
            pacing_mode=spec.mode, target_abandon_rate=spec.target, call_ratio=spec.ratio,
            damper_mode="waiting_stations" if spec.damper else "disabled", damper_threshold=0.5,
            hopper_min_level=min(100_000, hopper_level)))
    profile = Profile(sessions=spec.sessions, answer_rate=spec.answer_rate, machine_rate=0.10, busy_rate=0.05,
                      fail_rate=0.01, talk_s_mean=TALK_S, wrap_up_s=WRAP_UP_S)
    clock = Stepped()
    drift = _drift(spec, profile)
    sim = Simulator(seed=spec.seed, start=START, speed=1.0, default=profile, clock=clock,
                    **({"changes": drift} if drift else {}))
    server = serve(sim)
    client = VoiceClient(f"http://127.0.0.1:{server.server_port}", timeout=30)
    daemon = Daemon(engine, client, clock=PlatformClock(client), fill_hopper=True)
    cid = engine.connect().execute(sa.select(t.campaigns.c.id)).scalar_one()
    ticks = int(spec.minutes * 60 / INTERVAL_S)
    tick_seconds = []
    try:
        for _ in range(ticks):
            report = daemon.tick(cid)
            tick_seconds.append(report.seconds or 0.0)
            clock.value += INTERVAL_S
        end = START + timedelta(seconds=ticks * INTERVAL_S)
        sim.advance()
        result = _measure(spec, sim.calls("bench/bench"), end)
    finally:
        server.shutdown()
        client.close()
        engine.dispose()
        path.unlink(missing_ok=True)
    result.tick_seconds = tick_seconds
    result.wall_s = time.perf_counter() - began
    return result


def _drift(spec: Spec, profile):
    """The profile change of a drift run: half-way through, for every campaign."""
    if spec.drift is None:
        return None
    from dialer_daemon.simulator import ProfileChange

    at = START + timedelta(minutes=spec.minutes / 2)
    values = {"answer_rate": 0.35} if spec.drift == "answer" else {"talk_s_mean": 300.0}
    return [ProfileChange(at=at, values=values)]


def _measure(spec: Spec, calls: list[dict], end: datetime) -> Result:
    total_s = (end - START).total_seconds()
    warm = START + WARM_UP
    on_call = steady = 0.0
    connected = abandoned = 0
    windows = [[0, 0] for _ in range(max(1, int((total_s - 1800) // 300) + 1))]
    for call in calls:
        answered = _at(call["answered_at"])
        ended = _at(call["ended_at"])
        person_at = answered if answered is not None else (ended if call["outcome"] == "abandoned" else None)
        if answered is not None and answered < end:
            until = min(ended, end) if ended else end
            on_call += (until - answered).total_seconds()
            steady += max(0.0, (until - max(answered, warm)).total_seconds())
        if person_at is None or person_at >= end:
            continue
        lost = call["outcome"] == "abandoned" and answered is None
        if lost:
            abandoned += 1
        else:
            connected += 1
        offset = (person_at - START).total_seconds()
        for w, window in enumerate(windows):
            if w * 300 <= offset < w * 300 + 1800:
                window[0] += lost
                window[1] += 1
    steady_s = max(1.0, (end - warm).total_seconds())
    return Result(spec, occupancy=on_call / (spec.sessions * total_s),
                  steady_occupancy=steady / (spec.sessions * steady_s), answered=connected + abandoned,
                  abandoned=abandoned, connected=connected, placed=len(calls),
                  windows=[(a, n) for a, n in windows])


def _at(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


# -- rows ---------------------------------------------------------------------------------

@dataclass
class Row:
    label: str
    results: list[Result]

    @property
    def occupancy(self) -> float:
        return statistics.median(r.occupancy for r in self.results)

    @property
    def steady_occupancy(self) -> float:
        return statistics.median(r.steady_occupancy for r in self.results)

    @property
    def answered(self) -> int:
        return sum(r.answered for r in self.results)

    @property
    def abandon_rate(self) -> float:
        answered = self.answered
        return sum(r.abandoned for r in self.results) / answered if answered else 0.0

    @property
    def worst_30min(self) -> float:
        rates = [a / n for r in self.results for a, n in r.windows if n >= 20]
        return max(rates, default=0.0)

    @property
    def connects_per_session_hour(self) -> float:
        hours = sum(r.spec.sessions * r.spec.minutes / 60 for r in self.results)
        return sum(r.connected for r in self.results) / hours

    @property
    def calls_per_tick_second(self) -> float:
        seconds = sum(sum(r.tick_seconds) for r in self.results)
        return sum(r.placed for r in self.results) / seconds if seconds else 0.0

    @property
    def tick_p99_ms(self) -> float:
        ticks = sorted(s for r in self.results for s in r.tick_seconds)
        return 1000 * ticks[min(len(ticks) - 1, int(0.99 * len(ticks)))] if ticks else 0.0

    def line(self) -> str:
        return (f"| {self.label} | {self.occupancy:.1%} | {self.steady_occupancy:.1%} | {self.abandon_rate:.2%} | {self.worst_30min:.1%} "
                f"| {self.connects_per_session_hour:.1f} | {self.calls_per_tick_second:.0f} | {self.tick_p99_ms:.0f} "
                f"| {self.answered:,} |")


HEADER = ("| row | occupancy | after warm-up | abandon rate | worst 30 min | connects / session-hour "
          "| calls / tick-second | tick p99 (ms) | person answers |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")


def _pool(jobs: int, specs: list[Spec], workdir: str) -> list[Result]:
    [(_, results)] = _rows(jobs, [("", specs)], workdir)
    return results


def _run_one(args: tuple[Spec, str]) -> Result:
    return run(*args)


def _rows(jobs: int, rows: list[tuple[str, list[Spec]]], workdir: str, show: bool = False) -> list[tuple[str, list[Result]]]:
    """Every run of `rows` in one pool (no worker idles at the end of a row with an odd number
    of seeds), each row printed as soon as its runs are in (when `show`), in order."""
    specs = [spec for _, row_specs in rows for spec in row_specs]
    for prospects in sorted({prospects_needed(s) for s in specs}):
        template(Path(workdir), prospects)
    done: list[tuple[str, list[Result]]] = []
    pending: list[Result] = []
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        for result in pool.imap(_run_one, [(s, workdir) for s in specs]):
            pending.append(result)
            while len(done) < len(rows) and len(pending) >= len(rows[len(done)][1]):
                label, row_specs = rows[len(done)]
                taken, pending = pending[:len(row_specs)], pending[len(row_specs):]
                done.append((label, taken))
                if show:
                    print(Row(label, taken).line(), flush=True)
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", default="10,50,200")
    parser.add_argument("--answer-rates", default="0.2,0.35")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rows", default="ratio,best,predictive,drift")
    parser.add_argument("--targets", default="0.02,0.03", help="predictive targets to run")
    parser.add_argument("--ratios", default="1,2,3", help="the ratio rows' call ratios (each with and without the damper)")
    parser.add_argument("--sweep-ratios", default=None,
                        help="the ratios the sweep tries (default: 4–9 at answer rate 0.2, 2–5 at 0.35)")
    parser.add_argument("--best-ratio", type=float, default=None,
                        help="the best static ratio, from a sweep already run (skips the sweep)")
    parser.add_argument("--minutes", default=",".join(f"{k}={v}" for k, v in DEFAULT_MINUTES.items()),
                        help="simulated minutes per run by session count, e.g. 10=240,50=120,200=60")
    args = parser.parse_args()
    minutes = {int(k): float(v) for k, v in (p.split("=") for p in args.minutes.split(","))}
    rows = set(args.rows.split(","))
    seeds = list(range(1, args.seeds + 1))
    workdir = tempfile.mkdtemp(prefix="dialer-pacing-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    started = time.perf_counter()
    try:
        for sessions in (int(s) for s in args.sessions.split(",")):
            length = minutes.get(sessions, 60.0)
            for answer_rate in (float(a) for a in args.answer_rates.split(",")):
                base = {"sessions": sessions, "answer_rate": answer_rate, "minutes": length}
                print(f"\n**{sessions} sessions, answer rate {answer_rate:.0%}** — {len(seeds)} seeds × "
                      f"{length:g} simulated minutes, dialer interval {INTERVAL_S} s, talk {TALK_S:g} s, "
                      f"wrap-up {WRAP_UP_S:g} s\n\n{HEADER}", flush=True)
                best: float | None = args.best_ratio
                if ("best" in rows or "drift" in rows) and best is None:
                    ratios = ([float(r) for r in args.sweep_ratios.split(",")] if args.sweep_ratios
                              else SWEEP_RATIOS.get(answer_rate, SWEEP_RATIOS[0.2]))
                    sweep = [(ratio, Row(f"ratio {ratio:g}", results)) for ratio, (_, results) in zip(ratios, _rows(
                        args.jobs, [(f"ratio {r:g}", [Spec(**base, seed=s, mode="ratio", ratio=r)
                                                      for s in seeds[:SWEEP_SEEDS]]) for r in ratios], workdir))]
                    within = [(row.occupancy, ratio) for ratio, row in sweep if row.abandon_rate <= BEST_WITHIN]
                    best = max(within)[1] if within else min(ratio for ratio, _ in sweep)
                    print("| sweep (" + ", ".join(f"{ratio:g}: {row.occupancy:.1%} / {row.abandon_rate:.2%}"
                                                  for ratio, row in sweep) + ") | | | | | | | | |", flush=True)
                batch: list[tuple[str, list[Spec]]] = []
                if "predictive" in rows:
                    for target in (float(x) for x in args.targets.split(",")):
                        batch.append((f"predictive, target {target:.0%}",
                                      [Spec(**base, seed=s, mode="predictive", target=target) for s in seeds]))
                if "best" in rows and best is not None:
                    batch.append((f"best static ratio {best:g}",
                                  [Spec(**base, seed=s, mode="ratio", ratio=best) for s in seeds]))
                if "drift" in rows and answer_rate == 0.2 and best is not None:
                    for drift, what in (("answer", "answer rate 20% → 35%"), ("talk", "talk 120 → 300 s")):
                        for label, extra in ((f"drift ({what}): predictive 2%", {"mode": "predictive"}),
                                             (f"drift ({what}): static ratio {best:g}",
                                              {"mode": "ratio", "ratio": best})):
                            batch.append((label, [Spec(**base, seed=s, drift=drift, **extra) for s in seeds]))
                if "ratio" in rows:
                    for ratio in (float(r) for r in args.ratios.split(",")):
                        for damper in (False, True):
                            batch.append((f"ratio {ratio:g}{' + damper' if damper else ''}",
                                          [Spec(**base, seed=s, mode="ratio", ratio=ratio, damper=damper)
                                           for s in seeds]))
                if batch:
                    _rows(args.jobs, batch, workdir, show=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n({time.perf_counter() - started:.0f} s wall)")


if __name__ == "__main__":
    main()
