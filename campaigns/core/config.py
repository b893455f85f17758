"""The dialer's configuration: read from the environment once, at each entry point, then passed down.

This is the only module of the project that reads `os.environ`. The CLI, the Dagster
definitions, the daemon and the demo each build one `DialerConfig` (`DialerConfig.from_env()`)
and hand it, or the one value a callee needs, to what they call; nothing below them looks at
the environment.

| variable | meaning | default |
|---|---|---|
| `DIALER_HOME` | folder of the embedded defaults | `./.dialer` |
| `DIALER_DATABASE_URL` | the project database | SQLite file `<home>/dialer.sqlite3` |
| `DIALER_BUCKET_URL` | the watched bucket (a folder or `s3://…`) | folder `<home>/bucket` |
| `DIALER_S3_ENDPOINT_URL` | an S3-compatible endpoint for `s3://` buckets | AWS |
| `DIALER_SMTP_HOST` | SMTP server; unset: `.eml` files in `<home>/mail` | — |
| `DIALER_SMTP_PORT` | port | 465 with `ssl`, else 587 (25 with `none`) |
| `DIALER_SMTP_SECURITY` | `starttls`, `ssl` or `none` | `starttls` |
| `DIALER_SMTP_USER`, `DIALER_SMTP_PASSWORD` | login, when the server wants one | — |
| `DIALER_MAIL_FROM` | the From address | `dialer@localhost` |
| `DIALER_VOICE_API_URL`, `DIALER_VOICE_API_TOKEN` | the voice platform (the daemon) | — |
| `DIALER_VOICE_API_TIMEOUT_S` | whole voice-API request (connect + full answer), per try | 5 |
| `DIALER_DAEMON_DRAIN_TIMEOUT_S` | SIGTERM to exit, at most, whatever the platform or database do | 30 |
| `DIALER_DATABASE_CONNECT_TIMEOUT_S` | opening a database connection (PostgreSQL) | 10 |
| `DIALER_DATABASE_STATEMENT_TIMEOUT_S` | one statement of the daemon (PostgreSQL; 0: none) | 15 |
| `DIALER_DATABASE_LOCK_TIMEOUT_S` | one lock wait of the daemon (PostgreSQL; 0: none) | 5 |
| `DIALER_SQLITE_BUSY_TIMEOUT_S` | waiting for SQLite's write lock (every process) | 30 |
| `DAGSTER_HOME` | Dagster's instance folder (`dialer dev`, `dialer list upload`) | — |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from campaigns.core.errors import ConfigurationError

DEFAULT_HOME = ".dialer"

# Every variable the dialer reads; `DialerConfig.from_env` reads these and nothing else.
VARIABLES = (
    "DIALER_HOME", "DIALER_DATABASE_URL", "DIALER_BUCKET_URL", "DIALER_S3_ENDPOINT_URL",
    "DIALER_SMTP_HOST", "DIALER_SMTP_PORT", "DIALER_SMTP_SECURITY", "DIALER_SMTP_USER",
    "DIALER_SMTP_PASSWORD", "DIALER_MAIL_FROM", "DIALER_VOICE_API_URL", "DIALER_VOICE_API_TOKEN",
    "DAGSTER_HOME", *(
        "DIALER_VOICE_API_TIMEOUT_S", "DIALER_DAEMON_DRAIN_TIMEOUT_S", "DIALER_DATABASE_CONNECT_TIMEOUT_S",
        "DIALER_DATABASE_STATEMENT_TIMEOUT_S", "DIALER_DATABASE_LOCK_TIMEOUT_S", "DIALER_SQLITE_BUSY_TIMEOUT_S",
    ),
)
# The waits each setting bounds, with its default (seconds) and whether 0 ("no limit") is allowed.
_TIMEOUTS: dict[str, tuple[float, bool]] = {
    "DIALER_VOICE_API_TIMEOUT_S": (5.0, False),
    "DIALER_DAEMON_DRAIN_TIMEOUT_S": (30.0, False),
    "DIALER_DATABASE_CONNECT_TIMEOUT_S": (10.0, False),
    "DIALER_DATABASE_STATEMENT_TIMEOUT_S": (15.0, True),
    "DIALER_DATABASE_LOCK_TIMEOUT_S": (5.0, True),
    "DIALER_SQLITE_BUSY_TIMEOUT_S": (30.0, False),
}
MAX_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class MailConfig:
    """Where reports are mailed: an SMTP server, or (no host) the mail folder.

    Port and security are kept as written; the mailer checks them (`Mailer.from_config`), so a
    bad value fails the first delivery with a `MailError`, not every command that reads the
    configuration.
    """

    host: str | None = None
    port: str | None = None
    security: str = "starttls"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = "dialer@localhost"
    folder: Path | None = None


@dataclass(frozen=True)
class DatabaseTimeouts:
    """How long a database wait may last, in seconds (None: no limit of its own).

    The statement and lock limits are the daemon's (`DialerConfig.database_timeouts`): a hung
    database stalls a tick for seconds. Batch work (ingestion, reports, the CLI) gets
    `DialerConfig.batch_timeouts`, without them, so a long load is never cut by a limit meant for a tick.
    """

    connect_s: float = 10.0
    statement_s: float | None = None
    lock_s: float | None = None
    sqlite_busy_s: float = 30.0

    def for_batch(self) -> DatabaseTimeouts:
        return replace(self, statement_s=None, lock_s=None)


@dataclass(frozen=True)
class DaemonDeadlines:
    """The daemon's own deadlines, in seconds: one voice-API request (connect and whole answer,
    per try) and the drain after SIGTERM."""

    voice_api_s: float = 5.0
    drain_s: float = 30.0


@dataclass(frozen=True)
class DialerConfig:
    """Every setting the dialer takes from its environment, resolved to values."""

    home: Path
    database_url: str
    bucket_url: str
    s3_endpoint_url: str | None = None
    mail: MailConfig = MailConfig()
    voice_api_url: str | None = None
    voice_api_token: str | None = field(default=None, repr=False)
    dagster_home: Path | None = None
    # The variables that were set, by name: the Dagster definitions show these as EnvVars.
    from_environment: frozenset[str] = frozenset()
    # The timeout variables as written; read through `database_timeouts` and `daemon_deadlines`, which
    # check them, so a bad value fails the command that uses it with a sentence, not every command.
    timeouts_written: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DialerConfig:
        """The configuration the environment describes (`os.environ` unless `env` is given)."""
        env = os.environ if env is None else env
        home = _folder("DIALER_HOME", env.get("DIALER_HOME") or DEFAULT_HOME)
        return cls(
            home=home,
            database_url=env.get("DIALER_DATABASE_URL") or f"sqlite:///{home / 'dialer.sqlite3'}",
            bucket_url=env.get("DIALER_BUCKET_URL") or str(home / "bucket"),
            s3_endpoint_url=env.get("DIALER_S3_ENDPOINT_URL") or None,
            mail=_mail(env, home),
            voice_api_url=env.get("DIALER_VOICE_API_URL") or None,
            voice_api_token=env.get("DIALER_VOICE_API_TOKEN") or None,
            dagster_home=_folder("DAGSTER_HOME", env["DAGSTER_HOME"]) if env.get("DAGSTER_HOME") else None,
            from_environment=frozenset(k for k in VARIABLES if env.get(k)),
            timeouts_written=tuple((k, env[k]) for k in _TIMEOUTS if env.get(k)),
        )

    @classmethod
    def embedded(cls, home: Path) -> DialerConfig:
        """The embedded defaults under `home`, whatever the environment says (the demo)."""
        return cls.from_env({"DIALER_HOME": str(home)})

    def is_set(self, variable: str) -> bool:
        """Was `variable` set in the environment this configuration came from?"""
        return variable in self.from_environment

    def _seconds(self, variable: str) -> float | None:
        """A timeout setting in seconds (its default when unset); None when 0 switches it off."""
        default, may_be_off = _TIMEOUTS[variable]
        written = dict(self.timeouts_written).get(variable)
        if written is None:
            return default
        try:
            value = float(written)
        except ValueError:
            value = -1.0
        if value != value or not 0 <= value <= MAX_TIMEOUT_S or (value == 0 and not may_be_off):
            low = "0 (no limit)" if may_be_off else "more than 0"
            raise ConfigurationError(f"{variable} is {written!r}; expected a number of seconds from {low} to "
                              f"{MAX_TIMEOUT_S:g} (default {default:g}).")
        return value or None

    @property
    def database_timeouts(self) -> DatabaseTimeouts:
        """The daemon's database limits (statement and lock included); `batch_timeouts` for batch work."""
        return replace(
            self.batch_timeouts,
            statement_s=self._seconds("DIALER_DATABASE_STATEMENT_TIMEOUT_S"),
            lock_s=self._seconds("DIALER_DATABASE_LOCK_TIMEOUT_S"),
        )

    @property
    def batch_timeouts(self) -> DatabaseTimeouts:
        """The limits of batch work (ingestion, reports, the CLI, Dagster runs): connect and SQLite's
        busy wait only. It reads only those two settings, so a bad value of a daemon-only one fails
        the daemon, not every command."""
        return DatabaseTimeouts(
            connect_s=self._seconds("DIALER_DATABASE_CONNECT_TIMEOUT_S") or 10.0,
            sqlite_busy_s=self._seconds("DIALER_SQLITE_BUSY_TIMEOUT_S") or 30.0,
        )

    @property
    def daemon_deadlines(self) -> DaemonDeadlines:
        return DaemonDeadlines(voice_api_s=self._seconds("DIALER_VOICE_API_TIMEOUT_S") or 5.0,
                               drain_s=self._seconds("DIALER_DAEMON_DRAIN_TIMEOUT_S") or 30.0)


def _folder(variable: str, value: str) -> Path:
    try:
        return Path(value).expanduser().absolute()
    except RuntimeError:  # `~name/…` where this machine has no user `name`
        raise ConfigurationError(
            f"{variable} `{value}` starts with a home directory this machine does not know; "
            "give the folder as an absolute path."
        ) from None


def _mail(env: Mapping[str, str], home: Path) -> MailConfig:
    return MailConfig(
        host=env.get("DIALER_SMTP_HOST") or None, port=env.get("DIALER_SMTP_PORT") or None,
        security=(env.get("DIALER_SMTP_SECURITY") or "starttls").lower(),
        user=env.get("DIALER_SMTP_USER") or None, password=env.get("DIALER_SMTP_PASSWORD") or None,
        sender=env.get("DIALER_MAIL_FROM") or "dialer@localhost", folder=home / "mail",
    )
