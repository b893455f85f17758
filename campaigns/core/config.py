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
| `DAGSTER_HOME` | Dagster's instance folder (`dialer dev`, `dialer list upload`) | — |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from campaigns.core.errors import ConfigurationError

DEFAULT_HOME = ".dialer"

# Every variable the dialer reads; `DialerConfig.from_env` reads these and nothing else.
VARIABLES = (
    "DIALER_HOME", "DIALER_DATABASE_URL", "DIALER_BUCKET_URL", "DIALER_S3_ENDPOINT_URL",
    "DIALER_SMTP_HOST", "DIALER_SMTP_PORT", "DIALER_SMTP_SECURITY", "DIALER_SMTP_USER",
    "DIALER_SMTP_PASSWORD", "DIALER_MAIL_FROM", "DIALER_VOICE_API_URL", "DIALER_VOICE_API_TOKEN",
    "DAGSTER_HOME",
)


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
        )

    @classmethod
    def embedded(cls, home: Path) -> DialerConfig:
        """The embedded defaults under `home`, whatever the environment says (the demo)."""
        return cls.from_env({"DIALER_HOME": str(home)})

    @property
    def reports_dir(self) -> Path:
        """Where report exports are written."""
        return self.home / "reports"

    def is_set(self, variable: str) -> bool:
        """Was `variable` set in the environment this configuration came from?"""
        return variable in self.from_environment


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
