"""Smoke test of the deployment (deploy/compose.yaml + deploy/compose.smoke.yaml) on podman.

    .venv/bin/python deploy/smoke.py --image localhost/campaign-dialer:ci

Runs with the project's test environment (`make install-test`), for its libraries only — moto's S3
server and aiosmtpd as the bucket and the mail sink, boto3 and psycopg to look at them; everything
under test runs in containers of the image. Steps, each printed with its time:

 1. its own databases on the host's PostgreSQL, an S3 server and an SMTP sink on 127.0.0.1, and
    `podman system service` serving the Docker API on a socket of its own;
 2. the migration job (`dialer init`) to completion, then two campaigns applied;
 3. code server, webserver, dagster-daemon and the voice simulator up;
 4. three CSVs dropped under inbox/<workspace>/<campaign>/; each load_prospect_list run must
    succeed in a container of its own that DockerRunLauncher started through the socket;
 5. two dialing daemons: calls placed, each campaign held by one of them; SIGTERM to one, which
    drains and exits 0 while the other takes its campaign over;
 6. a report built and emailed: found in the bucket (reports/…) and in the SMTP sink.

Every wait has a deadline, and everything it started is torn down on the way out, pass or fail.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import email
import io
import json
import mailbox
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PROJECT = "dialer-smoke"
WORKSPACE = "acme"
CAMPAIGNS = ("smoke-a", "smoke-b")
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
DATABASES = ("dialer_smoke", "dagster_smoke")


STARTED = time.monotonic()


class SmokeFailure(Exception):
    """A step did not see what it expected; the message says what."""


def log(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


@contextlib.contextmanager
def step(name: str):
    """`with step("…"):` prints the step, then how it ended and how long it took."""
    t0 = time.monotonic()
    log(f"▶ {name}")
    try:
        yield
    except BaseException as exc:
        log(f"  {name}: FAILED: {exc} ({time.monotonic() - t0:.1f}s)")
        raise
    log(f"  {name}: ok ({time.monotonic() - t0:.1f}s)")


def wait_for(what: str, probe: Callable[[], object], timeout: float, every: float = 1.0,
             seen: Callable[[], object] | None = None):
    """`probe()` until it returns something truthy; SmokeFailure after `timeout` seconds, saying
    what `seen()` says was last seen, if given."""
    deadline = time.monotonic() + timeout
    last_error: Exception | str | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
            last_error = f"last seen: {seen()}" if seen else None
        except SmokeFailure:
            raise
        except Exception as exc:  # a server not up yet: retried until the deadline
            last_error = exc
        time.sleep(every)
    raise SmokeFailure(f"{what}: not seen within {timeout:.0f} s" + (f" ({last_error})" if last_error else ""))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args: list[str], timeout: float, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    if check and done.returncode != 0:
        raise SmokeFailure(f"{' '.join(args[:6])} … exited {done.returncode}: {(done.stderr or done.stdout).strip()[-800:]}")
    return done


class Smoke:
    def __init__(self, image: str, compose: list[str]):
        self.image = image
        self.compose_cmd = compose
        self.tmp = Path(tempfile.mkdtemp(prefix="dialer-smoke-"))
        self.tmp.chmod(0o755)
        self.ports = {name: free_port() for name in ("s3", "smtp", "code", "web", "sim", "metrics1", "metrics2")}
        self.bucket = "dialer-smoke"
        self.token = secrets.token_hex(16)
        self.socket = self.tmp / "podman.sock"
        self.maildir = self.tmp / "mail"
        self.processes: list[subprocess.Popen] = []
        self.databases_created: list[str] = []
        self.run_containers: set[str] = set()
        self.day = pick_dialing_day(datetime.now(UTC))
        self.env = {
            **os.environ,
            "DIALER_IMAGE": image,
            "SMOKE_DAGSTER_PG_URL": f"{POSTGRES.replace('postgresql:', 'postgresql+psycopg2:')}/dagster_smoke",
            "SMOKE_DIALER_DATABASE_URL": f"{POSTGRES}/dialer_smoke",
            "SMOKE_S3_ENDPOINT_URL": f"http://127.0.0.1:{self.ports['s3']}",
            "SMOKE_SMTP_PORT": str(self.ports["smtp"]),
            "SMOKE_CODE_SERVER_PORT": str(self.ports["code"]),
            "SMOKE_WEBSERVER_PORT": str(self.ports["web"]),
            "SMOKE_SIMULATOR_PORT": str(self.ports["sim"]),
            "SMOKE_SIMULATOR_START": datetime.combine(self.day, dtime(19, 0), UTC).isoformat(),
            "SMOKE_METRICS_PORT_1": str(self.ports["metrics1"]),
            "SMOKE_METRICS_PORT_2": str(self.ports["metrics2"]),
            "SMOKE_BUCKET": self.bucket,
            "DIALER_VOICE_API_TOKEN": self.token,
            # deploy/compose.yaml's required variables; the override replaces what they feed.
            "POSTGRES_PASSWORD": "unused", "S3_SECRET_KEY": "unused",
            "DIALER_VOICE_API_URL": f"http://127.0.0.1:{self.ports['sim']}",
            "DOCKER_SOCKET": str(self.socket), "DOCKER_GID": "0",
        }

    # ---- plumbing -------------------------------------------------------------------------
    def compose(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return run([*self.compose_cmd, "-p", PROJECT, "-f", str(DEPLOY / "compose.yaml"),
                    "-f", str(DEPLOY / "compose.smoke.yaml"), *args], timeout=timeout, env=self.env)

    def container(self, service: str) -> str:
        return f"{PROJECT}_{service}_1"

    def state(self, container: str) -> tuple[str, int]:
        out = run(["podman", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", container], timeout=30).stdout.split()
        return out[0], int(out[1])

    def wait_exited(self, container: str, timeout: float) -> int:
        status = wait_for(f"{container} exited", lambda: (s := self.state(container))[0] in ("exited", "stopped") and s,
                          timeout, every=0.5)
        return status[1]

    def dialer(self, *args: str, mounts: tuple[str, ...] = (), timeout: float = 90) -> str:
        """`dialer ARGS` in a one-off container of the image, with the stack's settings."""
        return self.one_off(["dialer", *args], mounts, timeout)

    def dialer_shell(self, script: str, mounts: tuple[str, ...] = (), timeout: float = 90) -> str:
        return self.one_off(["sh", "-ec", script], mounts, timeout)

    def one_off(self, command: list[str], mounts: tuple[str, ...], timeout: float) -> str:
        env_args = []
        for key, value in {
            "DIALER_DATABASE_URL": self.env["SMOKE_DIALER_DATABASE_URL"],
            "DIALER_BUCKET_URL": f"s3://{self.bucket}", "DIALER_S3_ENDPOINT_URL": self.env["SMOKE_S3_ENDPOINT_URL"],
            "AWS_ACCESS_KEY_ID": "smoke", "AWS_SECRET_ACCESS_KEY": "smoke", "AWS_DEFAULT_REGION": "us-east-1",
            "DIALER_SMTP_HOST": "127.0.0.1", "DIALER_SMTP_PORT": str(self.ports["smtp"]),
            "DIALER_SMTP_SECURITY": "none", "DIALER_MAIL_FROM": "dialer-smoke@localhost",
        }.items():
            env_args += ["-e", f"{key}={value}"]
        volumes = [arg for m in mounts for arg in ("-v", m)]
        return run(["podman", "run", "--rm", "--no-healthcheck", "--network", "host", *env_args, *volumes, self.image, *command],
                   timeout=timeout, env=self.env).stdout

    def s3(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.env["SMOKE_S3_ENDPOINT_URL"], aws_access_key_id="smoke",
                            aws_secret_access_key="smoke", region_name="us-east-1")

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.ports['web']}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.load(response)
        if body.get("errors"):
            raise SmokeFailure(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def spawn(self, args: list[str], name: str) -> subprocess.Popen:
        with open(self.tmp / f"{name}.log", "wb") as log_file:  # the child keeps its own descriptor
            process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, env=self.env,
                                       start_new_session=True)
        self.processes.append(process)
        return process

    # ---- steps ----------------------------------------------------------------------------
    def host_services(self) -> None:
        import psycopg

        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True, connect_timeout=10) as conn:
            for name in DATABASES:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')
                self.databases_created.append(name)
        bin_dir = Path(sys.executable).parent
        self.spawn([str(bin_dir / "moto_server"), "-H", "127.0.0.1", "-p", str(self.ports["s3"])], "s3")
        mailbox.Maildir(self.maildir, create=True)  # with its tmp/, new/ and cur/
        self.spawn([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.ports['smtp']}",
                    "-c", "aiosmtpd.handlers.Mailbox", str(self.maildir)], "smtp")
        self.spawn(["podman", "system", "service", "--time=0", f"unix://{self.socket}"], "podman-service")
        wait_for("S3 server", lambda: self.s3().list_buckets() is not None, 30, every=0.5)
        self.s3().create_bucket(Bucket=self.bucket)
        wait_for("SMTP sink", lambda: socket.create_connection(("127.0.0.1", self.ports["smtp"]), 2).close() or True, 30, 0.5)
        wait_for("Docker API on the podman socket", self.docker_ping, 30, every=0.5)
        # podman creates it 0600; dagster-daemon runs as the image's user with the socket's group
        # (compose `group_add`), as with Docker's 0660 root:docker socket.
        self.socket.chmod(0o660)

    def docker_ping(self) -> bool:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.socket))
            s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b"200 OK" in s.recv(4096)

    def migrate(self) -> None:
        self.compose("up", "-d", "--no-deps", "migrate")
        code = self.wait_exited(self.container("migrate"), 90)
        if code != 0:
            raise SmokeFailure(f"dialer init exited {code}: {self.logs('migrate')}")

    def apply_campaigns(self) -> None:
        folder = self.tmp / "campaigns"
        folder.mkdir()
        template = (ROOT / "examples" / "campaign.yaml").read_text()
        for slug in CAMPAIGNS:
            text = re.sub(r"(?m)^name: .*$", f"name: Smoke {slug}", template)
            text = re.sub(r"(?m)^slug: .*$", f"slug: {slug}", text)
            text = re.sub(r"dialer_interval_s: \d+", "dialer_interval_s: 2", text)
            (folder / f"{slug}.yaml").write_text(text)
        folder.chmod(0o755)
        for path in folder.iterdir():
            path.chmod(0o644)
        # One container for both (each container start costs seconds on a busy CI machine).
        self.dialer_shell(" && ".join(f"dialer campaign apply /campaigns/{slug}.yaml" for slug in CAMPAIGNS),
                          mounts=(f"{folder}:/campaigns:ro",))

    def healthy(self, service: str) -> bool:
        """The service's compose healthcheck, run now (podman runs them from systemd timers, absent
        on CI machines, and podman-compose skips `service_healthy` before podman 4.6)."""
        return run(["podman", "healthcheck", "run", self.container(service)], timeout=30, check=False).returncode == 0

    def dagster_up(self) -> None:
        # In the order of deploy/compose.yaml's depends_on, each waited for here (see `healthy`).
        self.compose("up", "-d", "--no-deps", "code-server", "simulator", timeout=120)
        wait_for("code server healthy", lambda: self.healthy("code-server"), 120, every=2)
        wait_for("simulator healthy", lambda: self.healthy("simulator"), 30, every=1)
        self.compose("up", "-d", "--no-deps", "webserver", "dagster-daemon", timeout=120)
        wait_for("webserver healthy", lambda: self.healthy("webserver"), 120, every=2)
        query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
        wait_for("code location loaded in the webserver",
                 lambda: any(e["loadStatus"] == "LOADED" for e in self.graphql(query)["workspaceOrError"]["locationEntries"]),
                 150, every=2)

    def drop_lists(self) -> list[str]:
        rows = list(csv.reader((ROOT / "examples" / "prospects.csv").open(newline="")))
        header, body = rows[0], rows[1:]
        third = len(body) // 3
        files = {f"inbox/{WORKSPACE}/smoke-a/list-1.csv": body[:third],
                 f"inbox/{WORKSPACE}/smoke-a/list-2.csv": body[third:2 * third],
                 f"inbox/{WORKSPACE}/smoke-b/list-3.csv": body[2 * third:]}
        s3 = self.s3()
        for key, part in files.items():
            out = io.StringIO()
            csv.writer(out).writerows([header, *part])
            s3.put_object(Bucket=self.bucket, Key=key, Body=out.getvalue().encode())
        return list(files)

    def upload_runs(self, expected: int) -> list[dict]:
        query = """query($f: RunsFilter) { runsOrError(filter: $f) { ... on Runs { results {
                     runId status tags { key value } } } } }"""

        def finished():
            runs = self.graphql(query, {"f": {"pipelineName": "load_prospect_list"}})["runsOrError"]["results"]
            failed = [r for r in runs if r["status"] in ("FAILURE", "CANCELED")]
            if failed:
                raise SmokeFailure(f"upload run {failed[0]['runId']} ended {failed[0]['status']}")
            done = [r for r in runs if r["status"] == "SUCCESS"]
            return done if len(done) >= expected else None

        runs = wait_for(f"{expected} successful load_prospect_list runs", finished, 200, every=3)
        for r in runs:
            tags = {t["key"]: t["value"] for t in r["tags"]}
            container = tags.get("docker/container_id")
            if not container:
                raise SmokeFailure(f"run {r['runId']} has no docker/container_id tag: not started by DockerRunLauncher")
            self.run_containers.add(container)
            info = json.loads(run(["podman", "inspect", container], timeout=30).stdout)[0]
            label = info["Config"]["Labels"].get("dagster/run_id")
            if label != r["runId"] or info["State"]["ExitCode"] != 0:
                raise SmokeFailure(f"run {r['runId']}: its container {container[:12]} has run label {label} "
                                   f"and exit code {info['State']['ExitCode']}")
            log(f"  run {r['runId'][:8]} ({tags.get('dagster/partition')}) succeeded in container {container[:12]} "
                f"of {info['ImageName']}, queue tag {tags.get('dialer/queue')}")
        # S3ComputeLogManager uploads each run's captured stdout/stderr when its steps end.
        logs = wait_for("the runs' compute logs in the bucket", lambda: self.s3().list_objects_v2(
            Bucket=self.bucket, Prefix="dagster/compute-logs/").get("KeyCount", 0), 30, every=2)
        log(f"  {logs} compute-log objects under s3://{self.bucket}/dagster/compute-logs/")
        return runs

    def holders(self) -> dict[str, str]:
        """Campaign → the daemon `dialer campaign list --json` says paces it (its lease holder)."""
        return {c["slug"]: c["paced_by"] for c in json.loads(self.dialer("campaign", "list", "--json"))}

    def metrics(self, port: int) -> dict[str, float]:
        """The daemon's /metrics: calls placed (all campaigns) and the number of leases it holds."""
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        found = {"placed": 0.0, "leases": 0.0}
        for line in text.splitlines():
            if line.startswith("dialer_calls_placed_total{"):
                found["placed"] += float(line.rsplit(" ", 1)[1])
            elif line.startswith("dialer_leases_held "):
                found["leases"] = float(line.rsplit(" ", 1)[1])
        return found

    def daemons(self) -> None:
        self.compose("up", "-d", "--no-deps", "dialer-daemon", "dialer-daemon-2", timeout=120)
        replicas = {"replica-1": self.ports["metrics1"], "replica-2": self.ports["metrics2"]}
        for name, port in replicas.items():
            wait_for(f"{name} serving /metrics", lambda port=port: self.metrics(port) is not None, 150, every=1)
        seen: dict = {}

        def one_lease_each():
            seen.update({name: self.metrics(port)["leases"] for name, port in replicas.items()})
            return set(seen.values()) == {1.0}

        wait_for("one lease held by each replica (dialer_leases_held)", one_lease_each, 60, every=1,
                 seen=lambda: dict(seen))
        holders = self.holders()
        if sorted(holders.values()) != sorted(replicas):
            raise SmokeFailure(f"`dialer campaign list` says the campaigns are paced by {holders}")
        log(f"  leases: {holders}")

        def placed():
            counts = {name: self.metrics(port)["placed"] for name, port in replicas.items()}
            return counts if sum(counts.values()) > 0 else None

        log(f"  calls placed so far: {wait_for('calls placed by the daemons', placed, 60, every=1)}")
        for service in ("dialer-daemon", "dialer-daemon-2"):
            if not self.healthy(service):
                raise SmokeFailure(f"{service}: its healthcheck (/healthz) failed: {self.logs(service)[-600:]}")
        victim = self.container("dialer-daemon-2")
        run(["podman", "kill", "--signal", "TERM", victim], timeout=30)
        t0 = time.monotonic()
        code = self.wait_exited(victim, 45)
        if code != 0:
            raise SmokeFailure(f"replica-2 exited {code} after SIGTERM: {self.logs('dialer-daemon-2')[-600:]}")
        if '"event": "stopped"' not in self.logs("dialer-daemon-2", tail=5):
            raise SmokeFailure(f"replica-2 exited 0 without logging its drained stop: {self.logs('dialer-daemon-2')[-600:]}")
        log(f"  replica-2 drained and exited 0 in {time.monotonic() - t0:.1f}s")
        wait_for("replica-1 holding both leases", lambda: self.metrics(replicas["replica-1"])["leases"] == 2, 60)
        holders = self.holders()
        if set(holders.values()) != {"replica-1"}:
            raise SmokeFailure(f"after replica-2 stopped, `dialer campaign list` says {holders}")
        log(f"  replica-1 took over: {holders}")

    def report(self) -> None:
        slug = CAMPAIGNS[0]
        out = json.loads(self.dialer("report", f"{WORKSPACE}/{slug}", "--date", self.day.isoformat(),
                                     "--email", "--json"))
        log(f"  report: {out['rows']} call attempts, file {out['file']}, emailed to {out['emailed_to']}")
        if out["rows"] < 1:
            raise SmokeFailure("the report has no call attempts")

        def mailed():
            box = mailbox.Maildir(self.maildir, create=False)
            for message in box:
                parsed = email.message_from_bytes(message.as_bytes())
                names = [p.get_filename() for p in parsed.walk() if p.get_filename()]
                if any(slug in n for n in names):
                    return parsed["To"], names
            return None

        to, names = wait_for("the report in the SMTP sink", mailed, 30)
        log(f"  mail to {to} with {names}")
        key = f"reports/{WORKSPACE}/{slug}/{self.day}/{slug}-{self.day}-calls.csv"
        listed = self.s3().list_objects_v2(Bucket=self.bucket, Prefix=f"reports/{WORKSPACE}/{slug}/{self.day}/")
        keys = [o["Key"] for o in listed.get("Contents", [])]
        if not any(k.startswith(key) for k in keys):  # .zip/.gz suffixes with compression
            raise SmokeFailure(f"no {key}[.zip|.gz] in the bucket; found {keys}")
        log(f"  in the bucket: {keys}")

    def logs(self, service: str, tail: int = 30) -> str:
        done = run(["podman", "logs", "--tail", str(tail), self.container(service)], timeout=30, check=False)
        return (done.stdout + done.stderr).strip()

    def dump_run_containers(self) -> None:
        """What the run containers said, for a failed run."""
        listed = run(["podman", "ps", "-a", "--filter", "label=dagster/run_id", "--format",
                      "{{.ID}} {{.Status}} {{.Labels}}"], timeout=30, check=False).stdout.strip()
        print(f"---- run containers ----\n{listed}", flush=True)
        for line in listed.splitlines()[:3]:
            done = run(["podman", "logs", "--tail", "15", line.split()[0]], timeout=30, check=False)
            print(f"---- run container {line.split()[0]} ----\n{(done.stdout + done.stderr).strip()}", flush=True)

    # ---- teardown -------------------------------------------------------------------------
    def teardown(self) -> None:
        log("▶ teardown")
        for args, timeout in (([*self.compose_cmd, "-p", PROJECT, "-f", str(DEPLOY / "compose.yaml"),
                                "-f", str(DEPLOY / "compose.smoke.yaml"), "down", "-t", "5"], 150),):
            try:
                run(args, timeout=timeout, env=self.env, check=False)
            except subprocess.TimeoutExpired:
                log("  compose down timed out; removing the containers by force")
        def listed(*filters: str) -> set[str]:
            try:
                return set(run(["podman", "ps", "-a", "-q", *filters], timeout=30, check=False).stdout.split())
            except subprocess.TimeoutExpired:  # the rest of the teardown still runs
                log(f"  podman ps {' '.join(filters)} timed out")
                return set()

        ids = sorted(listed("--filter", f"label=io.podman.compose.project={PROJECT}")
                     | listed("--filter", "label=dagster/run_id", "--filter", f"ancestor={self.image}")
                     | self.run_containers)
        if ids:
            try:
                run(["podman", "rm", "-f", "-t", "5", *ids], timeout=90, check=False)
            except subprocess.TimeoutExpired:
                log(f"  podman rm of {len(ids)} containers timed out")
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(10)
        if self.databases_created:
            try:
                import psycopg

                with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True, connect_timeout=10) as conn:
                    for name in self.databases_created:
                        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as exc:  # reported, not hidden: the next run drops them first anyway
                log(f"  could not drop {self.databases_created}: {exc}")
        # Without -f: a network some other container still uses (a real stack's) stays.
        try:
            run(["podman", "network", "rm", "dialer"], timeout=30, check=False)
        except subprocess.TimeoutExpired:
            log("  podman network rm timed out")
        shutil.rmtree(self.tmp, ignore_errors=True)
        log(f"  teardown done ({len(ids)} containers removed)")


def pick_dialing_day(now: datetime) -> date:
    """A Tuesday–Thursday at least two days ahead, away from the US holidays that fall midweek,
    for the simulator's clock (19:00 UTC: 09:00–14:00 from Hawaii to the East coast)."""
    day = now.date() + timedelta(days=2)
    while day.weekday() not in (1, 2, 3) or (day.month, day.day) in {
        (1, 1), (1, 2), (6, 19), (7, 3), (7, 4), (7, 5), (11, 11), (12, 24), (12, 25), (12, 26), (12, 31)
    } or (day.month == 11 and 22 <= day.day <= 28):
        day += timedelta(days=1)
    return day


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default="localhost/campaign-dialer:ci")
    parser.add_argument("--compose", default="podman-compose", help="The compose command (a path or a command line).")
    args = parser.parse_args()
    # A CI timeout's SIGTERM still tears everything down (SystemExit runs the `finally` below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    smoke = Smoke(args.image, args.compose.split())
    log(f"smoke: image {args.image}, simulated dialing day {smoke.day}, ports {smoke.ports}")
    ok = False
    try:
        with step("host services: databases, S3 server, SMTP sink, Docker API socket"):
            smoke.host_services()
        with step("migration job (dialer init)"):
            smoke.migrate()
        with step("campaigns applied"):
            smoke.apply_campaigns()
        with step("code server, webserver, dagster-daemon, simulator up"):
            smoke.dagster_up()
        with step("three CSVs in the inbox"):
            keys = smoke.drop_lists()
            log(f"  {keys}")
        with step("upload runs succeeded, each in its own container"):
            smoke.upload_runs(len(keys))
        with step("two dialing daemons: calls, leases, SIGTERM drain"):
            smoke.daemons()
        with step("report built and mailed"):
            smoke.report()
        ok = True
    except (SmokeFailure, subprocess.TimeoutExpired) as exc:
        log(f"smoke FAILED: {exc}")
        for service in ("code-server", "webserver", "dagster-daemon", "dialer-daemon", "dialer-daemon-2"):
            tail = smoke.logs(service)
            if tail:
                print(f"---- {service} (last lines) ----\n{tail}", flush=True)
        smoke.dump_run_containers()
    finally:
        smoke.teardown()
    log("smoke passed" if ok else "smoke failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
