"""`dialer demo`: the whole product on the embedded defaults, in about a minute.

In a folder of its own (`<DIALER_HOME>/demo`, emptied at each run) the demo
creates a SQLite database, a bucket folder, a mail folder and a Dagster
instance, then does what ops and the daemon do on a real day:

1. applies the demo campaign (`demo_campaign.yaml`: predictive pacing, dispositions, a DNC list);
2. imports the DNC list from a file in the national registry's format;
3. generates a few thousand synthetic prospects over every state, territory and
   province of the US locale — with invalid rows, duplicates and DNC hits —
   drops the CSV into the bucket's inbox and runs the ingestion job on it,
   in this process, exactly as the inbox sensor would;
4. picks the next ordinary weekday as the dialing day, from 09:00 in its
   first zone to 21:00 in its last, and fills the hopper at its first instant;
5. starts the voice simulator on a thread of this process and ticks the
   daemon through the day on the simulator's clock, which moves on after each
   tick (`DayPlan`, `DayRunner`): one dialer interval at a time in the hour(s)
   with the most prospects open, so that how busy the agents are there is the
   pacing's doing and not the demo's; elsewhere by longer steps, sized from
   the prospects open and the wall time left, so the day takes about
   `--seconds`. The daemon fills its own hopper on that clock;
6. when the window has closed in every zone, pauses the campaign while the
   last calls end, drains the daemon, resumes the campaign, then builds the
   day's report into the bucket's `reports/`, mails it to the mail folder (an
   `.eml` of the HTML report with its charts, any mail client opens it) and
   prints its figures, with the abandon rate and the agents' occupancy in the
   busiest hour.

Every figure printed at the end is the report's, computed from the export the
report wrote; `tests/test_demo.py` checks them against the database.
"""

from __future__ import annotations

import logging
import math
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.live import Live
from rich.text import Text

from campaigns.core import db
from campaigns.core.config import DialerConfig
from campaigns.core.errors import DialerError
from campaigns.core.lifecycle import CallOutcome, CampaignState, FillOrigin, PacingMode
from campaigns.dialing import calls, hopper
from campaigns.dialing.staterules import banned_holiday, holiday_bans
from campaigns.ingestion import dnc
from campaigns.ingestion.bucket import Bucket
from campaigns.ingestion.inbox import parse_inbox_key
from campaigns.reporting import progress, reports
from campaigns.reporting.delivery import deliver
from campaigns.setup import registry
from campaigns.setup.settings import parse_settings
from dialer_cli.common import (
    JsonFlag,
    config_of,
    err,
    literal,
    out,
    print_json,
    user_errors,
)
from dialer_cli.dev import seed_dagster_home

commands = typer.Typer()
log = logging.getLogger("dialer.daemon")

MARKER = ".dialer-demo"
SLOT = timedelta(minutes=15)
SLOT_S = SLOT.total_seconds()
# Wall seconds of one tick of the busiest hour, with its calls (10 sessions, SQLite, this machine
# unloaded): what sizes the hours stepped exactly and the wall time kept for them.
TICK_S = 0.03
EQUAL_SHARES = 0.05  # runs of hours whose shares of prospects differ by less count as equals
EXACT_SHARE = 0.5  # of `--seconds`, at most, for the hours stepped one dialer interval per tick
LAST_CALLS_STEP_S = 60.0  # after the day: the campaign is paused, no pacing to watch
LAST_CALLS_LIMIT_S = 2 * 3600.0
LAST_CALLS_WALL_S = 30.0  # once interrupted: wall seconds the calls on may take to end
FAILED_TICKS_LIMIT = 20
SESSIONS = 10
DISPOSITION_MIX = {"Interested": 0.16, "Not Interested": 0.46, "Call Back": 0.2, "Do Not Call": 0.06,
                   "Wrong Person": 0.12}


def campaign_file() -> str:
    return resources.files("dialer_cli").joinpath("demo_campaign.yaml").read_text(encoding="utf-8")


# -- the day ---------------------------------------------------------------------------

def dialing_day(now: datetime, opens_at) -> date:
    """The first weekday after today whose window opens after `now` and on which no state bans
    calls for a holiday: an ordinary day, so the demo shows the rules' everyday effect."""
    day = now.astimezone(UTC).date() + timedelta(days=1)
    states = sorted(holiday_bans())
    while True:
        if day.weekday() < 5 and opens_at(day) > now and not any(banned_holiday(s, day) for s in states):
            return day
        day += timedelta(days=1)


class Stepped:
    """The simulator's injectable clock: simulated seconds since the day's start, moved by the demo."""

    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value


@dataclass(frozen=True)
class DayPlan:
    """The demo's simulated day in 15-minute slots, and the slots stepped one dialer interval per tick.

    After each of the daemon's ticks the simulated clock moves on. In the exact slots it moves one
    dialer interval: the daemon sees the platform every dialer interval, as it would live, so what
    happens there is the pacing's doing. Elsewhere it moves by whole dialer intervals as fast as the
    slot's share of the wall time asks (`slot_wall`): fewer prospects, fewer and longer steps; a slot
    with nothing to dial passes in one. A step never crosses into the next slot, so every slot
    starts on a tick.
    """

    start: datetime
    end: datetime
    interval_s: float  # the campaign's dialer interval
    shares: tuple[float, ...]  # per slot: the share of the prospects whose window is open at its middle
    exact: frozenset[int]  # the slots stepped one dialer interval per tick: whole clock hours, in a row

    @property
    def span_s(self) -> float:
        return (self.end - self.start).total_seconds()

    @property
    def per_slot(self) -> int:
        """Ticks in a slot stepped exactly."""
        return math.ceil(SLOT_S / self.interval_s)

    def slot_of(self, t: float) -> int:
        return min(int(t // SLOT_S), len(self.shares) - 1)

    def exact_span(self) -> tuple[datetime, datetime] | None:
        if not self.exact:
            return None
        return self.start + min(self.exact) * SLOT, min(self.end, self.start + (max(self.exact) + 1) * SLOT)

    def slot_wall(self, slot: int, wall_left: float) -> float:
        """Wall seconds for a slot not stepped exactly: its share of the wall time left once the exact
        slots still to come have theirs (at `TICK_S` a tick)."""
        later = range(slot, len(self.shares))
        reserved = TICK_S * self.per_slot * sum(1 for i in later if i in self.exact)
        total = sum(self.shares[i] for i in later if i not in self.exact)
        return max(0.0, wall_left - reserved) * self.shares[slot] / total if total > 0 else 0.0

    def step(self, t: float, intervals: int) -> float:
        """From a tick at `t` (seconds since the start) to the next: whole dialer intervals, never past
        the slot's end."""
        boundary = min((self.slot_of(t) + 1) * SLOT_S, self.span_s)
        return min(max(1, intervals) * self.interval_s, boundary - t)


def plan_day(start: datetime, end: datetime, shares: list[float], interval_s: float, seconds: float) -> DayPlan:
    """The day's plan: the run of whole clock hours (UTC, the hours the busiest-hour figure counts)
    with the most prospects open is stepped exactly, as many hours as `EXACT_SHARE` of `seconds`
    pays for at `TICK_S` a tick, and at least one."""
    per_slot = math.ceil(SLOT_S / interval_s)
    hours: list[list[int]] = []  # slot indices by clock hour, in order
    for i in range(len(shares)):
        hour = (start + i * SLOT).replace(minute=0, second=0, microsecond=0)
        if not hours or (start + hours[-1][0] * SLOT).replace(minute=0, second=0, microsecond=0) != hour:
            hours.append([])
        hours[-1].append(i)
    exact: list[int] = []
    for length in range(1, len(hours) + 1):
        runs = [[i for hour in hours[h:h + length] for i in hour] for h in range(len(hours) - length + 1)]
        most = max(sum(shares[i] for i in slots) for slots in runs)
        # The earliest of (nearly) equals: the fewer busy slots stepped long before it, the less
        # they move the pacer's feedback away from where exact steps keep it.
        run = next(slots for slots in runs if sum(shares[i] for i in slots) >= (1 - EQUAL_SHARES) * most)
        if exact and len(run) * per_slot * TICK_S > EXACT_SHARE * seconds:
            break
        exact = run
    return DayPlan(start, end, interval_s, tuple(shares), frozenset(exact))


class DayRunner:
    """Ticks through the planned day on the simulator's clock, then the last calls.

    Each step ticks the campaign, then moves the clock to the next instant: one dialer interval
    in the exact slots; elsewhere, the simulated time the slot's wall share pays for the wall time
    the tick took, in whole dialer intervals. A tick's cost grows with the calls it places and the
    machine's load, so the steps follow it, and each slot's share is dealt again from the wall time
    left when it begins: the day takes about `seconds` on any machine, and the exact slots stay exact.

    At the day's end, or once asked to `finish` (Ctrl-C), the campaign is paused between two ticks,
    so the next tick starts no call and applies the events of the calls on; the ticks go on a minute
    apart until no call is in flight. `stop` (the daemon's drain) ends it at once.
    """

    def __init__(self, plan: DayPlan, clock: Stepped, *, tick: Callable[[], None], in_flight: Callable[[], int],
                 pause: Callable[[], None], stop: threading.Event, seconds: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.plan, self.clock, self.seconds = plan, clock, seconds
        self.tick, self.in_flight, self.pause, self.stop, self.monotonic = tick, in_flight, pause, stop, monotonic
        self.finish = threading.Event()
        self.paused = False
        self.failure: str | None = None
        self.instants: list[float] = []  # of the day's ticks, in seconds since the start
        self.step_s = plan.interval_s  # the step after the last tick (the live line shows it)

    def run(self) -> None:
        try:
            self.day()
            if not self.stop.is_set():
                self.last_calls()
        except Exception as exc:  # reported by the main thread
            log.exception("the demo's day stopped")
            self.failure = str(exc)

    def day(self) -> None:
        plan = self.plan
        deadline = self.monotonic() + self.seconds
        t, slot, speed = self.clock.value, -1, 1.0  # speed: simulated seconds per wall second in the slot
        while t < plan.span_s and not self.finish.is_set() and not self.stop.is_set():
            if plan.slot_of(t) != slot:
                slot = plan.slot_of(t)
                wall = plan.slot_wall(slot, deadline - self.monotonic()) if slot not in plan.exact else 0.0
                speed = SLOT_S / wall if wall > 0 else math.inf
            began = self.monotonic()
            self.instants.append(t)
            self.tick()
            if slot in plan.exact:
                intervals = 1
            elif math.isinf(speed):
                intervals = plan.per_slot
            else:
                intervals = math.ceil((self.monotonic() - began) * speed / plan.interval_s - 1e-9)
            self.step_s = plan.step(t, intervals)
            t += self.step_s
            self.clock.value = t

    def last_calls(self) -> None:
        self.pause()
        self.paused = True
        self.step_s = LAST_CALLS_STEP_S
        until = self.clock.value + LAST_CALLS_LIMIT_S
        while not self.stop.is_set():
            self.tick()
            in_flight = self.in_flight()
            if not in_flight:
                return
            if self.clock.value >= until:
                raise DialerError(f"{in_flight} call(s) did not end within {LAST_CALLS_LIMIT_S / 3600:g} simulated "
                                  "hours of the campaign being paused")
            self.clock.value += LAST_CALLS_STEP_S


class CampaignTicks:
    """The demo campaign's ticks, logged as `Daemon.run` logs them; a failed tick is logged and the
    next one retries, up to `FAILED_TICKS_LIMIT` in a row. The demo ticks its one campaign itself, on
    a database of its own, as the pacing benchmark does: no lease is taken."""

    def __init__(self, engine, daemon, campaign_id: int) -> None:
        self.engine, self.daemon, self.campaign_id = engine, daemon, campaign_id
        self._failed_in_a_row = 0

    def __call__(self) -> None:
        from dialer_daemon.voice import VoiceApiError

        try:
            report = self.daemon.tick(self.campaign_id)
        except Exception as exc:
            if isinstance(exc, VoiceApiError):
                log.warning("campaign %s: %s", self.campaign_id, exc,
                            extra={"event": "platform_error", "campaign_id": self.campaign_id})
            else:
                log.exception("campaign %s: the tick failed; the next one retries", self.campaign_id)
            self._failed_in_a_row += 1
            if self._failed_in_a_row >= FAILED_TICKS_LIMIT:
                raise DialerError(f"{self._failed_in_a_row} ticks in a row failed, the last with: {exc}") from exc
            return
        self._failed_in_a_row = 0
        log.info("tick %s", report.campaign, extra={"event": "tick", **report.as_dict()})

    def in_flight(self) -> int:
        with self.engine.connect() as conn:
            return calls.live_counts(conn, self.campaign_id).in_flight


def drain(daemon) -> None:
    """The daemon's drain, after ticks the demo drove itself: no new call, requests answered, claims
    handed back (a tick returns once its requests are answered, so there is little left to wait for)."""
    daemon.stop.set()
    daemon.placer.shutdown()
    daemon.lease_keeper.hand_back()


def slot_shares(conn, campaign_id: int, start: datetime, end: datetime) -> list[float]:
    """Per slot of the day: the share of READY prospects whose window is open at its middle."""
    middles = []
    moment = start
    while moment < end:
        middles.append(moment + SLOT / 2)
        moment += SLOT
    ready, open_now = progress.ready_open_at(conn, campaign_id, middles)
    return [n / (ready or 1) for n in open_now]


# -- figures -------------------------------------------------------------------------------

def _talks(rows: list[dict]) -> list[tuple[datetime, datetime | None]]:
    return [(datetime.fromisoformat(r["answered_at_utc"]),
             datetime.fromisoformat(r["ended_at_utc"]) if r["ended_at_utc"] else None)
            for r in rows if r["answered_at_utc"]]


def occupancy(rows: list[dict], sessions: int, since: datetime, until: datetime) -> float:
    """The share of the agent sessions' time in [since, until) spent on calls, from report rows."""
    seconds = (until - since).total_seconds()
    return progress.on_call_seconds(_talks(rows), since, until) / (sessions * seconds) if seconds > 0 else 0.0


def abandon_rate(rows: list[dict], since: datetime, until: datetime) -> float:
    """Abandoned ÷ answered by a person, of the calls placed in [since, until), from report rows."""
    placed = [r for r in rows if since <= datetime.fromisoformat(r["called_at_utc"]) < until]
    abandoned = sum(1 for r in placed if r["outcome"] == CallOutcome.ABANDONED)
    people = abandoned + sum(1 for r in placed if r["answered_at_utc"])
    return abandoned / people if people else 0.0


def busiest_hour(rows: list[dict], sessions: int, within: tuple[datetime, datetime] | None = None,
                 ) -> tuple[datetime | None, float]:
    """The clock hour (UTC) whose agent sessions spent the largest share on calls, from report rows;
    with `within`, only the hours inside that span."""
    spans = _talks(rows)
    hours = {answered.replace(minute=0, second=0, microsecond=0) for answered, _ in spans}
    if within is not None:
        hours = {hour for hour in hours if within[0] <= hour and hour + timedelta(hours=1) <= within[1]}
    best: tuple[datetime | None, float] = (None, 0.0)
    for hour in sorted(hours):
        share = progress.on_call_seconds(spans, hour, hour + timedelta(hours=1)) / (sessions * 3600)
        if share > best[1]:
            best = (hour, share)
    return best


# -- running -------------------------------------------------------------------------------

def demo_config(home: Path) -> DialerConfig:
    """The embedded defaults under the demo's folder, with the demo's own Dagster instance, whatever the
    environment says: every step is handed this configuration; the process environment is left alone."""
    return replace(DialerConfig.embedded(home), dagster_home=home / "dagster")


def prepare_home(home: Path) -> None:
    """Empty the demo folder — only one the demo made (it holds the marker) or an empty one."""
    if home.exists():
        if not home.is_dir():
            raise DialerError(f"{home} is a file; name a folder for the demo with --home.")
        if any(home.iterdir()) and not (home / MARKER).exists():
            raise DialerError(f"{home} holds files `dialer demo` did not make; name another folder with --home.")
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (home / MARKER).write_text("Made by `dialer demo`, which empties this folder at each run.\n", encoding="utf-8")
    seed_dagster_home(home / "dagster")


def _zone_name(zone: str) -> str:
    return zone.rsplit("/", 1)[-1].replace("_", " ")


class Demo:
    def __init__(self, config: DialerConfig, prospects: int, seconds: float, seed: int, quiet: bool) -> None:
        self.config, self.home = config, config.home
        self.prospects, self.seconds, self.seed, self.quiet = prospects, seconds, seed, quiet
        self.stopped_at_once = False  # a second Ctrl-C while the calls on were ending
        self.result: dict = {"home": str(self.home)}
        self.began = time.monotonic()

    def say(self, *parts, **kwargs) -> None:
        if not self.quiet:
            out.print(*parts, soft_wrap=True, **kwargs)

    def step(self, number: int, title: str, text: str) -> None:
        self.say(Text.assemble((f"{number}. {title:<9} ", "bold cyan"), literal(text)))

    # 1–3: campaign, DNC list, upload -----------------------------------------------------
    def setup(self, engine, now: datetime) -> None:
        from dialer_cli import demo_data
        from dialer_cli.lists import (
            failure_message,
            load_inbox_file,
            print_upload_summary,
            upload_payload,
        )

        db.migrate(engine)
        text = campaign_file()
        (self.home / "campaign.yaml").write_text(text, encoding="utf-8")
        import yaml

        settings = parse_settings(yaml.safe_load(text))
        with engine.begin() as conn:
            applied = registry.apply_campaign(conn, settings, now)
        self.campaign_id, self.name = applied.campaign_id, f"{applied.workspace}/{applied.slug}"
        dialing = settings.dialing
        self.pacing, self.target_abandon_rate = dialing.pacing, dialing.target_abandon_rate
        self.interval_s = float(dialing.dialer_interval_s)
        pacing = (f"predictive pacing (abandon-rate target {dialing.target_abandon_rate:.0%})"
                  if dialing.pacing == PacingMode.PREDICTIVE else f"call ratio {dialing.call_ratio:g}")
        self.step(1, "Campaign", f"{self.name} from {self.home / 'campaign.yaml'}: "
                  f"{len(settings.dispositions)} dispositions, {pacing} every {dialing.dialer_interval_s} s, "
                  f"DNC list {settings.workspace}/{settings.dnc.lists[0]}")

        data = demo_data.generate(self.prospects, self.seed, today=now.date())
        dnc_path = self.home / "dnc-registry.txt"
        dnc_path.write_text(data.dnc_text, encoding="utf-8")
        imported = dnc.import_numbers(engine, settings.workspace, settings.dnc.lists[0],
                                      lambda: dnc_path.open("rb"), str(dnc_path), now)
        self.result["dnc"] = imported.as_dict()
        self.step(2, "DNC list", f"{settings.workspace}/{settings.dnc.lists[0]}: {imported.added:,} numbers added "
                  f"from {dnc_path.name} (the national registry's 10-digit format)")

        bucket = Bucket.from_config(self.config)
        inbox = parse_inbox_key(f"inbox/{settings.workspace}/{settings.slug}/prospects-{now:%Y%m%d}.csv")
        bucket.write_text(inbox.key, data.csv_text)
        zones = demo_data.zones_covered(data.regions)
        self.step(3, "Upload", f"{data.rows:,} synthetic prospects over {len(data.regions)} states, territories and "
                  f"provinces ({len(zones)} time zones) dropped into {bucket.url_of(inbox.key)}; "
                  "running load_prospect_list on it, as the inbox sensor would")
        result, summary = load_inbox_file(self.config, inbox)
        if not result.success or summary is None:
            raise DialerError(f"the demo list did not load: {failure_message(result)}")
        payload = upload_payload(summary, bucket, self.name)
        payload["expected"] = dict(data.expected)
        payload["zones"] = sorted(zones)
        self.result["upload"] = payload
        if not self.quiet:
            print_upload_summary(payload, f"{inbox.filename} → {self.name} (upload {summary.upload_id})",
                                 summary.warnings)

    # 4: the day and the hopper -----------------------------------------------------------
    def plan(self, engine, now: datetime) -> None:
        with engine.connect() as conn:
            self.day = dialing_day(now, lambda d: reports.dialing_span(conn, self.campaign_id, d)[0])
            windows = reports.zone_windows(conn, self.campaign_id, self.day)
            # Guam's day starts while Hawaii's and Samoa's evening before is still open: the clock
            # starts once every zone's previous day has closed, so no call belongs to the day before.
            self.start = max(min(opens for opens, _ in windows.values()),
                             reports.dialing_span(conn, self.campaign_id, self.day - timedelta(days=1))[1])
            last = max(windows, key=lambda zone: (windows[zone][1], zone))  # where the window closes last
            self.end = windows[last][1]
            shares = slot_shares(conn, self.campaign_id, self.start, self.end)
        self.plan_ = plan_day(self.start, self.end, shares, self.interval_s, self.seconds)
        filled = hopper.fill_campaign(engine, self.campaign_id, self.start, filled_by=FillOrigin.DEMO)
        hours = (self.end - self.start).total_seconds() / 3600
        self.result["day"] = {"date": self.day.isoformat(), "start": self.start.isoformat(),
                              "end": self.end.isoformat(), "last_zone": last, "queued_at_start": filled.queued}
        self.step(4, "Hopper", f"dialing day {self.day:%A %Y-%m-%d}, simulated from {self.start:%a %H:%M} UTC, when "
                  f"the last zone's day before has closed, to {self.end:%a %H:%M} UTC, when the window closes in "
                  f"{_zone_name(last)} ({hours:.1f} hours); the hopper fill at the first instant queued "
                  f"{filled.queued} prospect(s) from {filled.open_groups} open zone group(s)")

    # 5: dialing --------------------------------------------------------------------------
    def dial(self, engine) -> None:
        from dialer_daemon import logs
        from dialer_daemon.daemon import Daemon, PlatformClock
        from dialer_daemon.simulator import Profile, Simulator, serve
        from dialer_daemon.voice import VoiceClient

        clock = Stepped()
        profile = Profile(sessions=SESSIONS, answer_rate=0.30, machine_rate=0.12, busy_rate=0.06, fail_rate=0.01,
                          talk_s_mean=150.0, wrap_up_s=15.0, dispositions=DISPOSITION_MIX)
        sim = Simulator(seed=self.seed, start=self.start, speed=1.0, clock=clock, default=profile)
        server = serve(sim)
        client = VoiceClient(f"http://127.0.0.1:{server.server_port}", timeout=10)
        daemon = Daemon(engine, client, clock=PlatformClock(client), daemon_id="demo", fill_hopper=True,
                        campaigns=[self.campaign_id])
        log_path = self.home / "daemon.log"
        logging_to_file = ExitStack()
        logging_to_file.enter_context(logs.to_file(log_path))
        exact = self.plan_.exact_span()
        self.step(5, "Dialing", f"voice simulator on {client.base_url} with {SESSIONS} agent sessions; daemon "
                  f"`demo` pacing the campaign and filling its hopper. After each tick the simulated clock moves "
                  f"on one dialer interval ({self.plan_.interval_s:g} s)"
                  + (f" from {exact[0]:%H:%M} to {exact[1]:%H:%M} UTC, where most prospects may be dialed," if exact
                     else "") + f" and further elsewhere, so the day takes ~{self.seconds:g} s "
                  f"(daemon log: {log_path})")
        ticks = CampaignTicks(engine, daemon, self.campaign_id)
        runner = DayRunner(self.plan_, clock, tick=ticks, in_flight=ticks.in_flight, stop=daemon.stop,
                           pause=lambda: self._set_state(engine, CampaignState.PAUSED), seconds=self.seconds)
        thread = threading.Thread(target=runner.run, name="demo-daemon", daemon=True)
        # The live line's reads: plain deferred transactions, never the write lock the project's
        # engine takes on SQLite (BEGIN IMMEDIATE), so they never hold the daemon up.
        reader = db.make_reader_engine(self.config.database_url)
        finish_by: float | None = None  # wall deadline for the calls on to end, once interrupted
        interrupted = threading.Event()

        def on_signal(signum, frame) -> None:
            # The first Ctrl-C (or SIGTERM) is an event, not an exception: wherever the main thread
            # is, the day ends between two ticks and the calls on end (as at the day's end). A
            # second one stops at once.
            if interrupted.is_set():
                self.stopped_at_once = True
                raise KeyboardInterrupt
            interrupted.set()
            runner.finish.set()

        previous = {n: signal.signal(n, on_signal) for n in (signal.SIGINT, signal.SIGTERM)}
        try:
            thread.start()
            with self._display() as show:
                while thread.is_alive():
                    now = sim.now()
                    with reader.connect() as conn:
                        figures = progress.call_figures(conn, self.campaign_id, now, SESSIONS)
                    show(self._line(now, figures, runner), now)
                    if interrupted.is_set() and finish_by is None:
                        finish_by = time.monotonic() + LAST_CALLS_WALL_S
                    if finish_by is not None and time.monotonic() > finish_by:
                        raise DialerError(f"{figures.in_flight} call(s) did not end within {LAST_CALLS_WALL_S:g} s "
                                          f"of the interruption; see {log_path}")
                    thread.join(timeout=0.25)
        finally:
            for number in previous:
                signal.signal(number, signal.SIG_IGN)
            try:
                daemon.stop.set()  # the drain: a tick under way starts no new call
                thread.join(timeout=60)
                drain(daemon)
                server.shutdown()
                client.close()
                logging_to_file.close()
                with reader.connect() as conn:
                    figures = progress.call_figures(conn, self.campaign_id, sim.now(), SESSIONS)
                reader.dispose()
                if runner.paused:
                    self._set_state(engine, CampaignState.ACTIVE)
            finally:
                for number, handler in previous.items():
                    signal.signal(number, handler)
        if thread.is_alive():
            raise DialerError(f"the daemon did not stop within 60 s of being asked to; see {log_path}")
        if runner.failure is not None:
            raise DialerError(f"the daemon stopped: {runner.failure}; see {log_path}")
        if interrupted.is_set():
            raise KeyboardInterrupt
        if figures.in_flight:
            raise DialerError(f"{figures.in_flight} call(s) were still in flight when the daemon stopped")
        self.finished_at = sim.now()
        self.result["dialing"] = {
            "pacing": str(self.pacing), "target_abandon_rate": self.target_abandon_rate,
            "calls": figures.calls, "not_placed": figures.not_placed, "answered": figures.answered,
            "abandoned": figures.abandoned, "platform_calls": len(sim.calls()),
            "simulated_until": self.finished_at.isoformat(), "daemon_ticks": daemon.metrics.total("ticks"),
            "tick_ms_p50": _median_tick_ms(log_path), "dialer_interval_s": self.plan_.interval_s,
            "day_ticks": len(runner.instants),
            "stepped_exactly": {"from": exact[0].isoformat(), "until": exact[1].isoformat()} if exact else None,
        }
        self.say(f"   the window has closed in every zone; the campaign was paused while the last calls ended, "
                 f"then resumed. The platform placed {len(sim.calls()):,} calls.")

    def _set_state(self, engine, state: CampaignState) -> None:
        with engine.begin() as conn:
            registry.set_state(conn, registry.resolve_campaign(conn, self.name), state, datetime.now(UTC))

    @contextmanager
    def _display(self):
        if self.quiet:
            yield lambda line, now: None
            return
        if out.is_terminal:
            with Live(Text(""), console=out, refresh_per_second=8, transient=False) as live:
                yield lambda line, now: live.update(line)
            return
        printed = {"hour": None}

        def show(line: Text, now: datetime) -> None:  # a log, not a terminal: a line every 3 simulated hours
            block = int((now - self.start).total_seconds() // (3 * 3600))
            if block != printed["hour"]:
                printed["hour"] = block
                out.print(line, soft_wrap=True)

        yield show

    def _line(self, now: datetime, f: progress.Figures, runner: DayRunner) -> Text:
        paused = runner.paused
        span = (self.end - self.start).total_seconds()
        done = min(1.0, max(0.0, (now - self.start).total_seconds() / span))
        width = 20
        filled = int(done * width)
        bar = "━" * width if filled >= width else "━" * filled + "╺" + "─" * (width - filled - 1)
        eastern = now.astimezone(ZoneInfo("America/New_York"))
        return Text.assemble(
            ("   ", ""), (f"{now:%a %H:%M} UTC ({eastern:%H:%M} ET) ", "bold"), (bar, "magenta"),
            (" finishing" if paused else f" {done:4.0%}", "yellow" if paused else ""),
            f"  calls {f.calls:,}  answered {f.answered:,}  abandoned {f.abandoned:,} ({f.abandon_rate:.1%})"
            f"  occupancy {f.occupancy:.0%}  hopper {f.hopper:,}  step {_duration(runner.step_s)}",
        )

    # 6: the report -----------------------------------------------------------------------
    def report(self, engine) -> None:
        from campaigns.reporting.mailer import Mailer
        from dialer_cli.reporting import summary_table

        with engine.connect() as conn:
            built = reports.build(conn, self.campaign_id, self.day, self.finished_at,
                                  bucket=Bucket.from_config(self.config))
            attempts = progress.attempt_count(conn, self.campaign_id)
        delivery = deliver(engine, self.campaign_id, built, lambda: Mailer.from_config(self.config.mail),
                           lambda: datetime.now(UTC))
        recipients, sent = list(delivery.recipients), delivery.sent_via
        rows = reports.read_export(built.key, built.content)
        # The hours stepped one dialer interval per tick are where the pacing, not the demo's
        # clock, decides how busy the sessions are: the busiest hour is looked for there.
        exact = self.plan_.exact_span()
        hour, share = busiest_hour(rows, SESSIONS, within=exact)
        hour_abandons = abandon_rate(rows, hour, hour + timedelta(hours=1)) if hour else None
        talk_hours = sum(float(r["duration_s"] or 0) for r in rows if r["answered_at_utc"]) / 3600
        other_days = attempts - built.rows
        self.result["report"] = {**built.summary.as_dict(), "rows": built.rows, "file": built.url,
                                 "emailed_to": recipients, "email": sent, "attempts_in_database": attempts,
                                 "attempts_other_days": other_days,
                                 "busiest_hour": hour.isoformat() if hour else None,
                                 "busiest_hour_occupancy": round(share, 4), "talk_hours": round(talk_hours, 2)}
        s = built.summary
        self.result["dialing"].update({
            "abandon_rate": round(s.abandon_rate, 4),
            "occupancy": None if exact is None else round(occupancy(rows, SESSIONS, *exact), 4),
            "busiest_hour": hour.isoformat() if hour else None, "busiest_hour_occupancy": round(share, 4),
            "busiest_hour_abandon_rate": None if hour_abandons is None else round(hour_abandons, 4),
            "occupancy_whole_day": round(occupancy(rows, SESSIONS, self.start, self.end), 4),
        })
        self.result["seconds"] = round(time.monotonic() - self.began, 1)
        if self.quiet:
            return
        self.step(6, "Report", f"the day's report, built from the calls export and mailed to {', '.join(recipients)} "
                  "(HTML with charts by hour and by state; open the .eml below in a mail client)")
        extra = [("pacing", f"{self.pacing}, abandon-rate target {self.target_abandon_rate:.1%}"),
                 ("abandon rate", f"{s.abandon_rate:.1%} of the calls a person answered"),
                 ("agent occupancy, busiest hour",
                  f"{share:.0%} ({hour:%a %H:00} UTC, stepped every {self.plan_.interval_s:g} s)" if hour else "—"),
                 ("agent hours on calls", f"{talk_hours:.1f}")]
        out.print(summary_table(s, extra))
        states = ", ".join(f"{k} {v:,}" for k, v in sorted(s.prospects.items()) if v)
        self.say(f"   prospects now: {states}")
        if other_days:
            self.say(f"   {other_days} more call(s) reached prospects whose local date was already "
                     f"{self.day + timedelta(days=1)} (Guam and Saipan are a day ahead): they belong to that day's report.")
        self.say(f"   report: {built.url}")
        self.say(f"   email:  {sent}")
        self.say(Text.assemble(("Done in ", "bold green"), (f"{self.result['seconds']:.0f} s", "bold green"),
                               ". Run it again any time: it starts afresh. To look around in Dagster's UI: ",
                               literal(f"make dev DIALER_HOME={_shown(self.home)}")))


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _median_tick_ms(log_path: Path) -> float | None:
    """The daemon's median tick, in wall-clock ms, from its JSON log lines."""
    import json
    import statistics

    seconds = [entry["seconds"] for entry in map(json.loads, log_path.read_text(encoding="utf-8").splitlines())
               if entry.get("event") == "tick"]
    return round(statistics.median(seconds) * 1000, 1) if seconds else None


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@commands.command("demo")
@user_errors
def demo_cmd(
    ctx: typer.Context,
    home: Annotated[Path | None, typer.Option("--home", help="The demo's own folder, emptied at each run (default: <DIALER_HOME>/demo).")] = None,
    prospects: Annotated[int, typer.Option("--prospects", help="Rows in the synthetic list.", min=200, max=200_000)] = 3000,
    seconds: Annotated[float, typer.Option("--seconds", help="Wall-clock seconds the dialing day takes, about (the busiest hour, stepped one dialer interval per tick, takes what it takes).", min=5, max=3600)] = 60.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the list and the simulator.")] = 7,
    json_out: JsonFlag = False,
) -> None:
    """Run the whole product on embedded defaults: campaign, DNC list, upload, a simulated dialing day, report.

    Everything lives in its own folder (SQLite database, bucket, mail folder, Dagster
    instance), emptied at each run; nothing else is touched and no process is left behind.
    """
    # Ctrl-C and SIGTERM both stop the demo the same way: the daemon drains, the simulator
    # closes, exit 130 (SIGINT is set explicitly: a shell may start a background job ignoring it).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    home = (home or config_of(ctx).home / "demo").expanduser().absolute()
    config = demo_config(home)
    demo = Demo(config, prospects, seconds, seed, quiet=json_out)
    prepare_home(home)
    demo.say(Text.assemble(("Campaign dialer demo", "bold"),
                           literal(f" — on embedded defaults in {_shown(home)}: a SQLite database, a bucket folder, "
                                   "a mail folder and a Dagster instance.")))
    engine = db.make_engine(config.database_url)
    stage = "setup"
    try:
        now = datetime.now(UTC)
        for stage, run in (("setup", lambda: demo.setup(engine, now)), ("plan", lambda: demo.plan(engine, now)),
                           ("dialing", lambda: demo.dial(engine)), ("report", lambda: demo.report(engine))):
            began = time.monotonic()
            run()
            demo.result.setdefault("timings_s", {})[stage] = round(time.monotonic() - began, 2)
    except KeyboardInterrupt:
        if stage != "dialing":
            done = f"stopped during the {stage} step"
        elif demo.stopped_at_once:
            done = "stopped at once: no new call was started and the daemon drained, but calls still on were left"
        else:
            done = "no new call was started, the calls on ended and the daemon drained"
        err.print(f"interrupted: {done}; {_shown(home)} keeps what was done.", style="yellow", soft_wrap=True)
        raise typer.Exit(130) from None
    finally:
        engine.dispose()
    if json_out:
        print_json(demo.result)
    sys.stdout.flush()
