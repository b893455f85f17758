"""What every `dialer` command shares: the consoles, error handling, the database, JSON output,
`--at` instants and the configuration of the invocation.

The command modules import these; `dialer_cli.main` imports the command modules and builds
the `dialer` app from them. Nothing imports `main` back.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from campaigns.core import db
from campaigns.core.config import DatabaseTimeouts, DialerConfig
from campaigns.core.errors import DialerError

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def now() -> datetime:
    return datetime.now(UTC)


def config_of(ctx: typer.Context) -> DialerConfig:
    """The configuration the `dialer` callback read from the environment for this invocation."""
    config = ctx.find_object(DialerConfig)
    if config is None:
        raise RuntimeError("no DialerConfig in the context: run the command through the `dialer` app")
    return config


def user_errors(fn: Callable) -> Callable:
    """Turn a DialerError into one red sentence and its exit status (2; 1 when the database refused)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with db.refusals_as_errors():
                return fn(*args, **kwargs)
        except DialerError as exc:
            # The sentence may quote file names or cells: never read it as markup.
            err.print(Text.assemble(("error: ", "bold red"), str(exc)), soft_wrap=True)
            raise typer.Exit(code=exc.exit_code) from None

    return wrapper


@contextmanager
def database(config: DialerConfig, *, ready: bool = True, timeouts: DatabaseTimeouts | None = None
             ) -> Iterator[db.Engine]:
    """An engine on the configured database, checked to be migrated unless `ready=False`; disposed after.

    Its waits are bounded by `timeouts` (the daemon's); else by the batch limits (connect,
    SQLite busy), so a long command is never cut by a statement limit meant for a tick.
    """
    engine = db.make_engine(config.database_url, timeouts=timeouts or config.database_timeouts.for_batch())
    try:
        if ready:
            db.check_ready(engine)
        yield engine
    finally:
        engine.dispose()


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str, ensure_ascii=False) + "\n")


def parse_at(value: str | None) -> datetime:
    """An ISO-8601 instant (`--at`, `--start`), now when None; one without an offset is refused rather than guessed."""
    if value is None:
        return now()
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise DialerError(
            f"--at {value!r} is not an ISO-8601 instant; write e.g. 2026-07-01T03:30Z or "
            "2026-07-01T09:30-04:00."
        ) from None
    if moment.tzinfo is None:
        raise DialerError(
            f"--at {value!r} has no UTC offset; add Z or an offset such as -05:00 so the instant is unambiguous."
        )
    if not 1970 <= moment.year <= 2999:
        raise DialerError(f"--at {value!r} is outside the years 1970–2999 this command answers for.")
    return moment.astimezone(UTC)
