"""Text shown to a person: control characters found and escaped in one place.

A name, a cell or a platform's error text may hold control characters (C0, DEL, C1) or lone
surrogates: what a terminal acts on (cursor moves, colours, window titles, OSC 8 links), what
starts a forged log line, or what no encoding can write. The CLI's output, the daemon's text
log and the YAML loader's refusals all find them with `UNSHOWABLE` and show them with `escaped`.
"""

from __future__ import annotations

import re

UNSHOWABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def escape(char: str) -> str:
    """One unshowable character as its escape: ESC → `\\x1b`, a lone surrogate → `\\udc80`."""
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escaped(value: object, *, keep: str = "") -> str:
    """`value` as text a terminal shows as written, each control character as its escape.
    `keep` names control characters left as they are (the line breaks of a whole message)."""
    return UNSHOWABLE.sub(lambda m: m.group() if m.group() in keep else escape(m.group()), str(value))


def first_unshowable(value: str) -> str | None:
    """The first control character or lone surrogate in `value`, or None."""
    found = UNSHOWABLE.search(value)
    return found.group() if found else None
