"""Where the dialer keeps its data, from the environment.

`DIALER_HOME` (default `./.dialer`) holds the embedded defaults: a SQLite
file, the bucket folder and the mail folder. `DIALER_DATABASE_URL` and
`DIALER_BUCKET_URL` override the first two. Every function reads the
environment when called, never at import, so tests and the CLI can change it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_HOME = ".dialer"


def dialer_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("DIALER_HOME") or DEFAULT_HOME).expanduser().absolute()


def database_url(env: Mapping[str, str] | None = None) -> str:
    """The project database: `DIALER_DATABASE_URL`, else `<home>/dialer.sqlite3`."""
    env = os.environ if env is None else env
    url = env.get("DIALER_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{dialer_home(env) / 'dialer.sqlite3'}"


def bucket_url(env: Mapping[str, str] | None = None) -> str:
    """The watched bucket: `DIALER_BUCKET_URL`, else the folder `<home>/bucket`."""
    env = os.environ if env is None else env
    return env.get("DIALER_BUCKET_URL") or str(dialer_home(env) / "bucket")


def mail_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the embedded mailer writes messages when no SMTP host is set."""
    return dialer_home(env) / "mail"
