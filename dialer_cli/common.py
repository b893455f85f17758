"""What every `dialer` command shares: the consoles, error handling, the database, JSON output,
`--at` instants and the configuration of the invocation.

The command modules import these; `dialer_cli.main` imports the command modules and builds
the `dialer` app from them. Nothing imports `main` back.
"""

from __future__ import annotations

import functools
import json
import re
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
from campaigns.core.errors import ConfigurationError, DialerError
from campaigns.core.text import (
    escaped as plain,  # names shown as data: a control character as its escape
)


def literal(value: object, style: str = "") -> Text:
    """User data for rich — a campaign, workspace, list or file name, a cell, a sentence quoting
    them: never read as markup (`Q1 [west]` stays `Q1 [west]`, `[/bold]` is not a tag) nor as an
    emoji code, control characters escaped (`plain`). Build output from these with `Text.assemble`."""
    return Text(plain(value), style=style)


class LiteralConsole(Console):
    """A console on which a `str` is shown as written: markup and emoji codes off, control
    characters other than line breaks and tabs escaped. Whatever reaches `print`, a table cell
    or a title as a string — names from the database included — cannot be read as markup or
    reach the terminal as a control sequence; styles come from `Text`/`literal` only."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(highlight=False, markup=False, emoji=False, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(plain(text, keep="\n\t"), **kwargs)


out = LiteralConsole()
err = LiteralConsole(stderr=True)

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
            err.print(Text.assemble(("error: ", "bold red"), sentence(exc)), soft_wrap=True)
            raise typer.Exit(code=exc.exit_code) from None

    return wrapper


def sentence(exc: BaseException) -> Text:
    """An error's message as one line: it quotes names, files and cells (`literal`), and a driver's
    own message may run over several lines."""
    return literal(" ".join(line.strip() for line in str(exc).splitlines() if line.strip()))


def open_engine(config: DialerConfig, timeouts: DatabaseTimeouts) -> db.Engine:
    """An engine on the configured database (not yet connected), its waits bounded by `timeouts`."""
    try:
        return db.make_engine(config.database_url, timeouts=timeouts)
    except OSError as exc:  # the SQLite file's folder is made here, under DIALER_HOME by default
        raise ConfigurationError(
            f"cannot create the folder {exc.filename} for the SQLite database ({exc.strerror}); "
            "check DIALER_HOME and DIALER_DATABASE_URL."
        ) from None


@contextmanager
def database(config: DialerConfig, *, ready: bool = True, timeouts: DatabaseTimeouts | None = None
             ) -> Iterator[db.Engine]:
    """An engine on the configured database, checked to be migrated unless `ready=False`; disposed after.

    Its waits are bounded by `timeouts` (the daemon's); else by the batch limits (connect,
    SQLite busy), so a long command is never cut by a statement limit meant for a tick.
    """
    engine = open_engine(config, timeouts or config.batch_timeouts)
    try:
        if ready:
            db.check_ready(engine)
        yield engine
    finally:
        engine.dispose()


# JSON escapes C0 itself; DEL, C1 and lone surrogates it leaves raw with ensure_ascii=False.
_JSON_RAW = re.compile("[\x7f-\x9f\ud800-\udfff]")


def print_json(payload: Any) -> None:
    text = json.dumps(payload, indent=2, default=str, ensure_ascii=False)
    # Outside strings JSON has only ASCII, so each of these is inside one, where \uXXXX means the same.
    sys.stdout.write(_JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n")


def parse_at(value: str | None, *, flag: str = "--at") -> datetime:
    """An ISO-8601 instant (`--at`, `--start`), now when None; one without an offset is refused rather than guessed."""
    if value is None:
        return now()
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise DialerError(
            f"{flag} {value!r} is not an ISO-8601 instant; write e.g. 2026-07-01T03:30Z or "
            "2026-07-01T09:30-04:00."
        ) from None
    if moment.tzinfo is None:
        raise DialerError(
            f"{flag} {value!r} has no UTC offset; add Z or an offset such as -05:00 so the instant is unambiguous."
        )
    if not 1970 <= moment.year <= 2999:
        raise DialerError(f"{flag} {value!r} is outside the years 1970–2999 this command answers for.")
    return moment.astimezone(UTC)
