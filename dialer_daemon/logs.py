"""Structured logs for the daemon: one JSON object per line, or plain text for a terminal.

Every record carries its time (UTC, ISO-8601), level, logger and message, plus
the fields passed with `extra=` (event, campaign, daemon, pacing figures…), so
a log pipeline can filter on `event == "tick"` or on one campaign without
parsing sentences. `auto` picks JSON unless stderr is a terminal.
"""

from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from campaigns.core.text import escaped

# Attributes every LogRecord has; anything else came in through `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """One line per record for a terminal. Control characters in the line (a name stored before
    names were checked, a platform's error text) are shown as escapes, so they can neither act on
    the terminal nor start a forged line; JSON lines escape them already."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escaped(super().formatMessage(record))


def configure(fmt: str = "auto", level: int = logging.INFO) -> None:
    """Send the dialer's logs to stderr as JSON lines (`json`), text (`text`), or by terminal (`auto`)."""
    if fmt not in ("auto", "json", "text"):
        raise ValueError(f"log format {fmt!r}: expected auto, json or text")
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # requests/urllib3 retries are counted in the metrics; their own warnings would repeat them.
    logging.getLogger("urllib3").setLevel(logging.ERROR)


@contextmanager
def to_file(path: Path, level: int = logging.INFO):
    """For the block's length, the dialer's logs go to `path` as JSON lines and not to the terminal
    (`dialer demo` and `dialer dev` keep the terminal for their own output)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("dialer")
    level_before, propagate_before = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level_before)
        logger.propagate = propagate_before
        handler.close()
