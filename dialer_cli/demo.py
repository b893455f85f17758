"""`dialer demo`: the whole product on the embedded defaults, in about a minute.

In a folder of its own (`<DIALER_HOME>/demo`, emptied at each run) the demo
creates a SQLite database, a bucket folder, a mail folder and a Dagster
instance, then does what ops and the daemon do on a real day:

1. applies the demo campaign (`demo_campaign.yaml`: dispositions, a DNC list);
2. imports the DNC list from a file in the national registry's format;
3. generates a few thousand synthetic prospects over every state, territory and
   province of the US locale — with invalid rows, duplicates and DNC hits —
   drops the CSV into the bucket's inbox and runs the ingestion job on it,
   in this process, exactly as the inbox sensor would;
4. picks the next ordinary weekday as the dialing day, from 09:00 in its
   first zone to 21:00 in its last, and fills the hopper at its first instant;
5. starts the voice simulator and the dialer daemon on threads of this
   process, on a simulated clock that runs through the day in about a minute:
   fastest where few prospects may be dialed (Guam's early morning), slowest
   where most may; the daemon fills its own hopper on that clock;
6. when the window has closed in every zone, pauses the campaign while the
   last calls end, stops the daemon (a drain), resumes the campaign, then
   builds the day's report and mails it to the mail folder.

Every figure printed at the end is the report's, computed from the file the
report wrote; `tests/test_demo.py` checks them against the database.
"""

from __future__ import annotations

import bisect
import shutil
import signal
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import replace
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
from campaigns.core.lifecycle import CampaignState
from campaigns.dialing import hopper
from campaigns.dialing.staterules import banned_holiday, holiday_bans
from campaigns.ingestion import dnc
from campaigns.ingestion.bucket import Bucket
from campaigns.ingestion.inbox import parse_inbox_key
from campaigns.reporting import progress, reports
from campaigns.reporting.delivery import deliver
from campaigns.setup import registry
from campaigns.setup.settings import parse_settings
from dialer_cli.common import JsonFlag, config_of, err, out, print_json, user_errors
from dialer_cli.dev import seed_dagster_home

commands = typer.Typer()

MARKER = ".dialer-demo"
SLOT = timedelta(minutes=15)
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


class DayClock:
    """Simulated seconds since the day's start, for the simulator's injectable clock.

    The day is cut into 15-minute slots; each gets wall time in proportion to the
    prospects that may be dialed in it, plus a floor, so `seconds` of wall time cover
    the whole day: Guam's lonely morning passes in a blink, the evening rush on the
    mainland gets most of it. After the last slot (the last calls ending) it runs at the
    busiest slot's pace.
    """

    def __init__(self, weights: list[float], seconds: float, monotonic=time.monotonic) -> None:
        self._monotonic = monotonic
        total = sum(weights)
        self.walls = [seconds * w / total for w in weights]
        self.speeds = [SLOT.total_seconds() / w for w in self.walls]
        self.tail_speed = min(self.speeds)
        self.bounds = []  # wall seconds at each slot's end
        elapsed = 0.0
        for wall in self.walls:
            elapsed += wall
            self.bounds.append(elapsed)
        self._t0: float | None = None

    def start(self) -> None:
        self._t0 = self._monotonic()

    def _wall(self) -> float:
        return 0.0 if self._t0 is None else self._monotonic() - self._t0

    def _slot(self, wall: float) -> int:
        return min(bisect.bisect_right(self.bounds, wall), len(self.walls) - 1)

    def __call__(self) -> float:
        wall = self._wall()
        i = bisect.bisect_right(self.bounds, wall)
        if i >= len(self.walls):
            return len(self.walls) * SLOT.total_seconds() + (wall - self.bounds[-1]) * self.tail_speed
        begin = self.bounds[i - 1] if i else 0.0
        return i * SLOT.total_seconds() + (wall - begin) * self.speeds[i]

    def speed(self) -> float:
        wall = self._wall()
        return self.tail_speed if wall >= self.bounds[-1] else self.speeds[self._slot(wall)]


def slot_weights(conn, campaign_id: int, start: datetime, end: datetime) -> list[float]:
    """Per slot of the day: the share of READY prospects whose window is open at its middle, plus a floor."""
    middles = []
    moment = start
    while moment < end:
        middles.append(moment + SLOT / 2)
        moment += SLOT
    ready, open_now = progress.ready_open_at(conn, campaign_id, middles)
    return [0.05 + n / (ready or 1) for n in open_now]


# -- figures -------------------------------------------------------------------------------

def busiest_hour(rows: list[dict], sessions: int) -> tuple[datetime | None, float]:
    """The clock hour (UTC) whose agent sessions spent the largest share on calls, from report rows."""
    spans = [(datetime.fromisoformat(r["answered_at_utc"]),
              datetime.fromisoformat(r["ended_at_utc"]) if r["ended_at_utc"] else None)
             for r in rows if r["answered_at_utc"]]
    hours = {answered.replace(minute=0, second=0, microsecond=0) for answered, _ in spans}
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
        self.result: dict = {"home": str(self.home)}
        self.began = time.monotonic()

    def say(self, *parts, **kwargs) -> None:
        if not self.quiet:
            out.print(*parts, soft_wrap=True, **kwargs)

    def step(self, number: int, title: str, text: str) -> None:
        self.say(Text.assemble((f"{number}. {title:<9} ", "bold cyan"), text))

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
        self.step(1, "Campaign", f"{self.name} from {self.home / 'campaign.yaml'}: "
                  f"{len(settings.dispositions)} dispositions, call ratio {settings.dialing.call_ratio:g} with the "
                  f"waiting-stations damper, DNC list {settings.workspace}/{settings.dnc.lists[0]}")

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
            self.weights = slot_weights(conn, self.campaign_id, self.start, self.end)
        filled = hopper.fill_campaign(engine, self.campaign_id, self.start)
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

        clock = DayClock(self.weights, self.seconds)
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
        self.step(5, "Dialing", f"voice simulator on {client.base_url} with {SESSIONS} agent sessions; daemon "
                  f"`demo` pacing the campaign and filling its hopper on the simulator's clock; the day in "
                  f"~{self.seconds:g} s (daemon log: {log_path})")
        stop = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                daemon.run(stop=stop, speed=clock.speed())
            except BaseException as exc:  # noqa: BLE001 — reported by the main thread
                failure.append(exc)

        clock.start()
        thread = threading.Thread(target=run, name="demo-daemon", daemon=True)
        thread.start()
        # The live line's reads: plain deferred transactions, never the write lock the project's
        # engine takes on SQLite (BEGIN IMMEDIATE), so they never hold the daemon up.
        reader = db.make_reader_engine(self.config.database_url)
        paused_at_tick: int | None = None  # the daemon's tick count when the campaign was paused
        finish_by = 0.0
        interrupted = False
        try:
            with self._display() as show:
                while True:
                    try:
                        now = sim.now()
                        daemon.speed = clock.speed()
                        with reader.connect() as conn:
                            figures = progress.call_figures(conn, self.campaign_id, now, SESSIONS)
                        show(self._line(now, figures, paused_at_tick is not None), now)
                        if failure or not thread.is_alive():
                            raise DialerError(f"the daemon stopped: {failure[0] if failure else 'no reason given'}")
                        if paused_at_tick is None and now >= self.end:
                            paused_at_tick, finish_by = self._pause(engine, daemon), time.monotonic() + 60
                            continue
                        # A tick that began before the pause may still start a call: two full ticks
                        # after it, no new call can come, and nothing in flight means all ended.
                        if paused_at_tick is not None and figures.in_flight == 0 \
                                and daemon.metrics.total("ticks") >= paused_at_tick + 2:
                            break
                        if paused_at_tick is not None and time.monotonic() > finish_by:
                            raise DialerError(f"{figures.in_flight} call(s) did not end after the campaign was paused; "
                                              f"see {log_path}")
                        time.sleep(0.2)
                    except KeyboardInterrupt:
                        if interrupted:
                            raise  # a second Ctrl-C: stop at once
                        # Ctrl-C: no new call, let the calls on end, then drain (as at the day's end).
                        interrupted = True
                        if paused_at_tick is None:
                            paused_at_tick = self._pause(engine, daemon)
                        finish_by = time.monotonic() + 15
        finally:
            previous = {n: signal.signal(n, signal.SIG_IGN) for n in (signal.SIGINT, signal.SIGTERM)}
            try:
                stop.set()
                thread.join(timeout=60)
                server.shutdown()
                client.close()
                logging_to_file.close()
                with reader.connect() as conn:
                    figures = progress.call_figures(conn, self.campaign_id, sim.now(), SESSIONS)
                reader.dispose()
                if paused_at_tick is not None:
                    with engine.begin() as conn:
                        registry.set_state(conn, registry.resolve_campaign(conn, self.name),
                                           CampaignState.ACTIVE, datetime.now(UTC))
            finally:
                for number, handler in previous.items():
                    signal.signal(number, handler)
        if thread.is_alive():
            raise DialerError(f"the daemon did not stop within 60 s of being asked to; see {log_path}")
        if interrupted:
            raise KeyboardInterrupt
        if figures.in_flight:
            raise DialerError(f"{figures.in_flight} call(s) were still in flight when the daemon stopped")
        self.finished_at = sim.now()
        self.result["dialing"] = {
            "calls": figures.calls, "not_placed": figures.not_placed, "answered": figures.answered,
            "abandoned": figures.abandoned, "platform_calls": len(sim.calls()),
            "simulated_until": self.finished_at.isoformat(), "daemon_ticks": daemon.metrics.total("ticks"),
            "tick_ms_p50": _median_tick_ms(log_path), "busiest_speed": round(clock.tail_speed),
        }
        self.say(f"   the window has closed in every zone; the campaign was paused while the last calls ended, "
                 f"then resumed. The platform placed {len(sim.calls()):,} calls.")

    def _pause(self, engine, daemon) -> int:
        """Pause the campaign (its events are still applied, no new call starts); the tick count then."""
        with engine.begin() as conn:
            registry.set_state(conn, registry.resolve_campaign(conn, self.name), CampaignState.PAUSED,
                               datetime.now(UTC))
        return daemon.metrics.total("ticks")

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

    def _line(self, now: datetime, f: progress.Figures, paused: bool) -> Text:
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
            f"  occupancy {f.occupancy:.0%}  hopper {f.hopper:,}",
        )

    # 6: the report -----------------------------------------------------------------------
    def report(self, engine) -> None:
        from campaigns.reporting.mailer import Mailer
        from dialer_cli.reporting import summary_table

        with engine.connect() as conn:
            built = reports.build(conn, self.campaign_id, self.day, self.finished_at,
                                  reports_dir=self.config.reports_dir)
            attempts = progress.attempt_count(conn, self.campaign_id)
        delivery = deliver(engine, self.campaign_id, built, lambda: Mailer.from_config(self.config.mail),
                           lambda: datetime.now(UTC))
        recipients, sent = list(delivery.recipients), delivery.sent_via
        rows = reports.read_detail(built.detail_path)
        hour, share = busiest_hour(rows, SESSIONS)
        talk_hours = sum(float(r["duration_s"] or 0) for r in rows if r["answered_at_utc"]) / 3600
        other_days = attempts - built.rows
        self.result["report"] = {**built.summary.as_dict(), "rows": built.rows, "file": str(built.detail_path),
                                 "emailed_to": recipients, "email": sent, "attempts_in_database": attempts,
                                 "attempts_other_days": other_days,
                                 "busiest_hour": hour.isoformat() if hour else None,
                                 "busiest_hour_occupancy": round(share, 4), "talk_hours": round(talk_hours, 2)}
        self.result["seconds"] = round(time.monotonic() - self.began, 1)
        if self.quiet:
            return
        self.step(6, "Report", f"the day's report, built from the calls export and mailed to {', '.join(recipients)}")
        extra = [("agent occupancy, busiest hour", f"{share:.0%} ({hour:%H:00} UTC)" if hour else "—"),
                 ("agent hours on calls", f"{talk_hours:.1f}")]
        out.print(summary_table(built.summary, extra))
        s = built.summary
        states = ", ".join(f"{k} {v:,}" for k, v in sorted(s.prospects.items()) if v)
        self.say(f"   prospects now: {states}")
        if other_days:
            self.say(f"   {other_days} more call(s) reached prospects whose local date was already "
                     f"{self.day + timedelta(days=1)} (Guam and Saipan are a day ahead): they belong to that day's report.")
        self.say(f"   report: {built.detail_path}")
        self.say(f"   email:  {sent}")
        self.say(Text.assemble(("Done in ", "bold green"), (f"{self.result['seconds']:.0f} s", "bold green"),
                               ". Run it again any time: it starts afresh. To look around in Dagster's UI: "
                               f"make dev DIALER_HOME={_shown(self.home)}"))


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
    seconds: Annotated[float, typer.Option("--seconds", help="Wall-clock seconds the dialing day takes.", min=5, max=3600)] = 60.0,
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
                           f" — on embedded defaults in {_shown(home)}: a SQLite database, a bucket folder, "
                           "a mail folder and a Dagster instance."))
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
        done = ("no new call was started, the calls on ended and the daemon drained" if stage == "dialing"
                else f"stopped during the {stage} step")
        err.print(f"interrupted: {done}; {_shown(home)} keeps what was done.", style="yellow", soft_wrap=True)
        raise typer.Exit(130) from None
    finally:
        engine.dispose()
    if json_out:
        print_json(demo.result)
    sys.stdout.flush()
