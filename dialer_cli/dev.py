"""`dialer dev` (what `make dev` runs): Dagster's UI, the voice simulator and the daemon, together.

- `dagster dev` on 127.0.0.1 with the project's code location and a persistent
  `DAGSTER_HOME` (default `<DIALER_HOME>/dagster`, seeded with telemetry off), in a
  process group of its own: its sensors load what is dropped into the inbox and
  show the daemon's hopper fills;
- the voice simulator on 127.0.0.1, on the real clock;
- the dialer daemon, filling the hopper of and pacing every active campaign through the simulator.

The simulator and the daemon run on threads of this process. Ctrl-C (or SIGTERM,
or the terminal closing) stops all three: the daemon drains, `dagster dev`'s
group gets SIGTERM (and SIGKILL for whatever outlives its leader, which gets
30 s), the simulator's server closes. Should `dagster dev` exit or the daemon
stop, the rest is stopped too and the exit status is 1.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from contextlib import ExitStack
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from campaigns.core import db
from campaigns.core.config import DialerConfig
from campaigns.core.errors import DialerError
from dialer_cli.common import config_of, open_engine, out, user_errors

commands = typer.Typer()

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def seed_dagster_home(home: Path) -> Path:
    """A Dagster instance folder with the project's settings (`pipelines/dagster.yaml`: telemetry off)."""
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():
        settings.write_bytes(resources.files("pipelines").joinpath("dagster.yaml").read_bytes())
    return home


def dagster_home(config: DialerConfig) -> Path:
    """`DAGSTER_HOME`, else `<DIALER_HOME>/dagster`; seeded with the project's settings."""
    return seed_dagster_home(config.dagster_home or config.home / "dagster")


def _dagster_command(port: int) -> list[str]:
    exe = shutil.which("dagster", path=str(Path(sys.executable).parent)) or shutil.which("dagster")
    if exe is None:
        raise DialerError("`dagster` is not installed in this environment; run `make install`.")
    location = ["-w", "workspace.yaml"] if Path("workspace.yaml").exists() else ["-m", "pipelines.definitions"]
    return [exe, "dev", "-h", "127.0.0.1", "-p", str(port), *location]


def stop_process_group(process: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM to the group (webserver, daemon, code server), SIGKILL to what outlives the grace."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # children of a leader that already exited
    except ProcessLookupError:
        pass
    process.wait()


@commands.command("dev")
@user_errors
def dev_cmd(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", help="Dagster UI port on 127.0.0.1.", min=1, max=65535)] = 3000,
    simulator_port: Annotated[int, typer.Option("--simulator-port", help="Voice simulator port on 127.0.0.1.", min=0, max=65535)] = 8765,
    sessions: Annotated[int, typer.Option("--sessions", help="Simulated agent sessions per campaign.", min=1)] = 10,
) -> None:
    """Run Dagster's UI, the voice simulator and the daemon together; Ctrl-C stops all three."""
    from dialer_daemon import logs
    from dialer_daemon.daemon import Daemon, PlatformClock
    from dialer_daemon.simulator import Profile, Simulator, serve
    from dialer_daemon.voice import VoiceClient

    stop = threading.Event()
    for number in STOP_SIGNALS:
        signal.signal(number, lambda *_: stop.set())
    config = config_of(ctx)
    home = config.home
    engine = open_engine(config, config.batch_timeouts)
    db.migrate(engine)
    instance = dagster_home(config)

    try:
        sim_server = serve(Simulator(seed=1, default=Profile(sessions=sessions)), "127.0.0.1", simulator_port)
    except OSError as exc:
        raise DialerError(f"--simulator-port {simulator_port}: cannot listen on 127.0.0.1 ({exc}).") from None
    url = f"http://127.0.0.1:{sim_server.server_port}"
    client = VoiceClient(url)
    log_path = home / "logs" / "daemon.log"
    logging_to_file = ExitStack()
    logging_to_file.enter_context(logs.to_file(log_path))

    env = {**os.environ, "DAGSTER_HOME": str(instance), "DIALER_HOME": str(home),
           "DIALER_VOICE_API_URL": url}
    daemon = Daemon(engine, client, clock=PlatformClock(client), daemon_id="dev", fill_hopper=True)
    failure: list[BaseException] = []

    def run_daemon() -> None:
        try:
            daemon.run(stop=stop)
        except BaseException as exc:  # noqa: BLE001 — reported below
            failure.append(exc)

    thread = threading.Thread(target=run_daemon, name="dev-daemon", daemon=True)
    dagster: subprocess.Popen | None = None
    status = 0
    try:
        if not stop.is_set():  # Ctrl-C while starting: do not launch what would be torn down at once
            dagster = subprocess.Popen(_dagster_command(port), env=env, start_new_session=True)
            thread.start()
            out.print(f"Dagster UI       http://127.0.0.1:{port}  (dagster dev, pid {dagster.pid}; "
                      f"DAGSTER_HOME={instance})", soft_wrap=True, markup=False)
            out.print(f"Voice simulator  {url}  ({sessions} agent sessions per campaign, real time)", markup=False)
            out.print(f"Daemon           `dev`, pacing every active campaign; log: {log_path}", soft_wrap=True,
                      markup=False)
            out.print(f"Drop a CSV into {home / 'bucket' / 'inbox'}/<workspace>/<campaign>/ and watch it load. "
                      "Ctrl-C stops all three.", soft_wrap=True, markup=False)
        while not stop.wait(0.5):
            if dagster.poll() is not None:
                out.print(f"dagster dev exited ({dagster.returncode}); stopping the daemon and the simulator.")
                status = 1
                break
            if not thread.is_alive():
                out.print(f"the daemon stopped ({failure[0] if failure else 'no reason given'}); stopping the rest.")
                status = 1
                break
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(timeout=60)
        if dagster is not None:
            stop_process_group(dagster)
        sim_server.shutdown()
        client.close()
        engine.dispose()
        logging_to_file.close()
    out.print("Stopped dagster dev, the daemon and the simulator.")
    if status:
        raise typer.Exit(status)
