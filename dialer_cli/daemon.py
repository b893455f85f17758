"""`dialer daemon` and `dialer simulator`: dialing from a terminal."""

from __future__ import annotations

import logging
import os
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from campaigns.core.errors import DialerError
from campaigns.core.yamlfile import read_yaml_file
from campaigns.setup import registry
from dialer_cli.common import (
    JsonFlag,
    config_of,
    database,
    err,
    out,
    parse_at,
    print_json,
    user_errors,
)

if TYPE_CHECKING:
    from dialer_daemon.simulator import Profile, ProfileChange

commands = typer.Typer()


@commands.command("simulator")
@user_errors
def simulator_cmd(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1.", min=0, max=65535)] = 8765,
    seed: Annotated[int, typer.Option("--seed", help="Seed: the same requests give the same calls.")] = 1,
    sessions: Annotated[int, typer.Option("--sessions", help="Agent sessions per campaign.", min=1)] = 10,
    speed: Annotated[float, typer.Option("--speed", help="Simulated seconds per wall-clock second.", min=0.01)] = 1.0,
    start: Annotated[str | None, typer.Option("--start", help="The simulated clock's first instant, ISO-8601.")] = None,
    profile: Annotated[Path | None, typer.Option("--profile", help="YAML: `default:` and per-campaign `campaigns:` call profiles, and `changes:` to them at simulated instants.")] = None,
    faults: Annotated[str, typer.Option("--faults", help="Provider faults, e.g. error=0.02,error_after_accept=0.01,timeout=0.01,timeout_s=10,drop=0.01,slow=0.05,slow_s=0.5,outage_every_s=300,outage_s=5.")] = "",
) -> None:
    """Run a simulated voice platform on loopback (the API of docs/voice-api.yaml)."""
    from dialer_daemon.simulator import Faults, Simulator, serve

    default, profiles, changes = simulator_profiles(profile, sessions)
    try:
        injected = Faults.parse(faults)
    except ValueError as exc:
        raise DialerError(f"--faults: {exc}.") from None
    sim = Simulator(seed=seed, start=parse_at(start, flag="--start"), speed=speed, default=default, profiles=profiles,
                    token=config_of(ctx).voice_api_token, faults=injected, changes=changes)
    try:
        server = serve(sim, "127.0.0.1", port)
    except OSError as exc:
        raise DialerError(f"--port {port}: cannot listen on 127.0.0.1 ({exc.strerror or exc}).") from None
    out.print(f"Voice simulator on http://127.0.0.1:{server.server_port} — clock {sim.now().isoformat()}, "
              f"speed ×{speed:g}, {default.sessions} sessions per campaign"
              f"{f', {len(changes)} profile change(s)' if changes else ''}"
              f"{', faults ' + faults if injected.any else ''}. Ctrl-C stops it.")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


def simulator_profiles(path: Path | None, sessions: int) -> tuple[Profile, dict[str, Profile], list[ProfileChange]]:
    """The `--profile` file: the default profile, per-campaign profiles and the changes to them, in time order.

    ```yaml
    default: {answer_rate: 0.2, talk_s_mean: 120}
    campaigns:
      acme/spring: {sessions: 4}          # starts from the default
    changes:                              # in time order
      - {at: 2026-07-01T10:30:00-04:00, answer_rate: 0.35, talk_s_mean: 300}   # the default
      - {at: "2026-07-01T15:00Z", campaign: acme/spring, answer_rate: 0.1}
    ```
    A change without `campaign:` changes the default, so it reaches the campaigns not listed
    under `campaigns:`; `sessions` cannot change.
    """
    from dialer_daemon.simulator import Profile, ProfileChange

    default = Profile(sessions=sessions)
    if path is None:
        return default, {}, []
    data = read_yaml_file(path, what="simulator profile") or {}
    if not isinstance(data, dict) or not set(data) <= {"default", "campaigns", "changes"}:
        raise DialerError(f"{path}: a simulator profile has `default:` and `campaigns:` mappings and a `changes:` "
                          "list only.")
    default_values, campaign_values = data.get("default") or {}, data.get("campaigns") or {}
    if not isinstance(default_values, dict) or not isinstance(campaign_values, dict) \
            or not all(isinstance(values or {}, dict) for values in campaign_values.values()):
        raise DialerError(f"{path}: `default:` is a mapping of profile keys, and `campaigns:` a mapping of campaign "
                          "name to such a mapping.")
    try:
        default = Profile.from_mapping(default_values, default)
        campaigns = {str(name): Profile.from_mapping(values or {}, default)
                     for name, values in campaign_values.items()}
    except (TypeError, ValueError) as exc:
        raise DialerError(f"{path}: {exc}.") from None
    changes = data.get("changes") or []
    if not isinstance(changes, list) or not all(isinstance(item, dict) for item in changes):
        raise DialerError(f"{path}: `changes:` is a list of mappings, each with `at:` (an instant), an optional "
                          "`campaign:` and the profile keys that change.")
    parsed: list[ProfileChange] = []
    for number, item in enumerate(changes, start=1):
        values = dict(item)
        at = _change_instant(path, number, values.pop("at", None))
        campaign = values.pop("campaign", None)
        if campaign is not None and not isinstance(campaign, str):
            raise DialerError(f"{path}: change {number}: `campaign:` is a campaign name, got {campaign!r}.")
        if parsed and at < parsed[-1].at:
            raise DialerError(f"{path}: changes must be in time order, and change {number} ({at.isoformat()}) "
                              f"comes before change {number - 1} ({parsed[-1].at.isoformat()}).")
        try:
            parsed.append(ProfileChange(at=at, values=values, campaign=campaign))
        except ValueError as exc:
            raise DialerError(f"{path}: change {number}: {exc}.") from None
    return default, campaigns, parsed


def _change_instant(path: Path, number: int, value: Any) -> datetime:
    """A change's `at:`: YAML reads an unquoted timestamp as a datetime, a quoted one as a string."""
    if value is None:
        raise DialerError(f"{path}: change {number} has no `at:`; give the instant it takes effect, "
                          "e.g. at: 2026-07-01T10:30:00-04:00.")
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            moment = None
    if moment is None or moment.tzinfo is None:
        shown = value.isoformat() if isinstance(value, datetime) else repr(value)
        raise DialerError(f"{path}: change {number}: `at:` {shown} is not an ISO-8601 instant with a UTC offset; "
                          "write e.g. at: 2026-07-01T10:30:00-04:00.")
    return moment.astimezone(UTC)


@commands.command("daemon")
@user_errors
def daemon_cmd(
    ctx: typer.Context,
    campaign: Annotated[list[str] | None, typer.Option("--campaign", help="Pace only this campaign (repeatable).")] = None,
    once: Annotated[bool, typer.Option("--once", help="One tick of each campaign whose lease is free, then exit.")] = False,
    exit_when_done: Annotated[bool, typer.Option("--exit-when-done", help="Exit once no call is in flight and nothing more can be dialed today.")] = False,
    fill_hopper: Annotated[bool, typer.Option("--fill-hopper/--no-fill-hopper", help="Fill the hopper of the campaigns this daemon holds, on the platform's clock (Dagster shows the fills through hopper_fills_sensor). --no-fill-hopper leaves it to `dialer hopper fill` or the `hopper` asset.")] = True,
    metrics_port: Annotated[int | None, typer.Option("--metrics-port", help="Serve /metrics (Prometheus) and /healthz on PORT.", min=0, max=65535)] = None,
    metrics_host: Annotated[str, typer.Option("--metrics-host", help="Address for --metrics-port; loopback unless you mean to expose it.")] = "127.0.0.1",
    lease_seconds: Annotated[float, typer.Option("--lease-seconds", help="A campaign's lease lasts this long unrenewed: how soon another daemon takes over from a dead one.", min=3, max=300)] = 15.0,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Requests to place calls in flight at once.", min=1, max=64)] = 8,
    log_format: Annotated[str, typer.Option("--log-format", help="auto (JSON unless stderr is a terminal), json or text.")] = "auto",
    debug: Annotated[bool, typer.Option("--debug", help="Log at debug level too (the tracebacks behind each fault).")] = False,
    daemon_id: Annotated[str | None, typer.Option("--id", help="This daemon's name in leases and logs (default: host-pid-random).")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Dial: pace each active campaign every dialer interval through the voice platform.

    Several daemons may run against one PostgreSQL database: each campaign is paced by one
    of them at a time (a lease), and a dead daemon's campaigns are taken over once its lease
    expires. SIGTERM drains: no new call, requests in flight answered, leases handed back, exit 0;
    a drain that outlasts DIALER_DAEMON_DRAIN_TIMEOUT_S (30 s) ends the process with exit 1.
    """
    from datetime import timedelta

    from dialer_daemon import logs
    from dialer_daemon.daemon import Daemon, PlatformClock
    from dialer_daemon.voice import VoiceApiError, VoiceClient

    try:
        logs.configure(log_format, level=logging.DEBUG if debug else logging.INFO)
    except ValueError as exc:
        raise DialerError(f"--log-format: {exc}.") from None
    config = config_of(ctx)
    deadlines, db_timeouts = config.daemon_deadlines, config.database_timeouts
    stop = threading.Event()  # SIGTERM from the first moment: drain, exit 0 — within the drain deadline
    signal.signal(signal.SIGTERM, lambda *_: drain(stop, deadlines.drain_s))
    client = VoiceClient.from_config(config, halt=stop)
    with database(config, timeouts=db_timeouts) as engine:
        ids = None
        if campaign:
            with engine.connect() as conn:
                ids = [registry.resolve_campaign(conn, ref).id for ref in campaign]
        daemon = Daemon(engine, client, clock=PlatformClock(client), campaigns=ids, fill_hopper=fill_hopper,
                        lease_period=timedelta(seconds=lease_seconds), concurrency=concurrency,
                        daemon_id=daemon_id)
        server = None
        if metrics_port is not None:
            from dialer_daemon.metrics import serve_metrics

            try:
                server = serve_metrics(daemon.metrics, metrics_port, metrics_host,
                                       stall_after=max(60.0, 4 * lease_seconds))
            except OSError as exc:
                raise DialerError(f"--metrics-port {metrics_port}: cannot listen on {metrics_host} ({exc}).") from None
        daemon.stop = stop
        # The platform is asked once before the loop: an address that is not the voice API
        # (an HTML page, an empty object) ends the start with one sentence and exit 2 rather
        # than a crash, which a supervisor would restart forever.
        try:
            speed = 1.0 if stop.is_set() else client.clock_speed()
        except VoiceApiError as exc:
            if exc.sent:
                raise
            speed = 1.0  # SIGTERM while starting: the loop drains at once
        try:
            daemon.run(once=once, exit_when_done=exit_when_done, speed=speed)
        except KeyboardInterrupt:
            pass
        finally:
            if server is not None:
                server.shutdown()
            client.close()
    summary = {"daemon": daemon.daemon_id, "ticks": daemon.metrics.total("ticks"),
               "calls_placed": daemon.metrics.total("calls_placed")}
    if json_out:
        print_json(summary)
    else:
        err.print(f"daemon {summary['daemon']} stopped: {summary['ticks']} ticks, "
                  f"{summary['calls_placed']} calls placed")


DRAIN_OVERRUN_EXIT = 1


def drain(stop: threading.Event, within_s: float) -> None:
    """SIGTERM: the daemon drains (`stop`), and the process ends within `within_s` whatever happens.

    Every wait of the drain has its own deadline; this bounds their sum. Ending here is safe
    for the same reasons a SIGKILL is: attempts are committed before their requests, and the
    next lease holder settles them and takes the claimed rows back once the leases expire.
    """
    if stop.is_set():
        return
    stop.set()
    timer = threading.Timer(within_s, _drain_overrun, args=(within_s,))
    timer.daemon = True
    timer.start()


def _drain_overrun(within_s: float) -> None:
    logging.getLogger("dialer.daemon").error(
        "the drain did not end within %g s (DIALER_DAEMON_DRAIN_TIMEOUT_S); exiting now: the leases expire "
        "and the next holder settles the calls in flight", within_s, extra={"event": "drain_overrun"})
    os._exit(DRAIN_OVERRUN_EXIT)
