"""Reading YAML that people write (campaign files, upload sidecars, simulator profiles).

PyYAML's safe loader accepts more than these files ever need and fails badly on some of it:
nesting recurses once per level (100,000 `[` end in a RecursionError), a key given twice
silently keeps the last value, and a double-quoted `"\\0"` or `"\\e[31m"` puts a NUL byte or
a terminal escape into a name (PostgreSQL refuses the one mid-transaction; the other reaches
every terminal that shows the name). Here the text is bounded in size, nesting is counted
while the document is composed (before any structure is built), and duplicate keys and
control characters are refused with the key and its line, in one sentence each.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import yaml
from yaml import AliasEvent, MappingNode, Node, ScalarNode, SequenceNode

from campaigns.core.errors import DialerError
from campaigns.core.text import first_unshowable

MAX_BYTES = 1 << 20  # a campaign file is a few KB; a megabyte is a mistake, not a campaign
MAX_DEPTH = 20  # a campaign file nests 4 levels (dispositions → a disposition → its keys)
# The data, aliases expanded, in characters, per byte of text allowed: without aliases a document
# holds less than twice its text, so only aliases of aliases reach this.
EXPANSION = 4

_MERGE = "tag:yaml.org,2002:merge"
# What YAML's block scalars (`|`, `>`) leave around a value and the settings model strips anyway.
_SURROUNDING = " \t\r\n"


class YamlError(DialerError):
    """A YAML file that cannot be read as the plain data it should hold."""


class _TooLarge(Exception):
    """The document, measured as it is composed, passes a bound; `kind` says which."""

    def __init__(self, kind: str, mark: yaml.Mark) -> None:
        self.kind, self.mark = kind, mark


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, measuring each node as it composes it, so a document too deep or too large
    is refused before it is built (and before the composer's recursion goes far).

    An alias (`*name`) measures what it names: a chain of aliases cannot nest the data deeper than
    the bound, nor aliases of aliases expand a kilobyte of text into gigabytes of data (which any
    `repr` of a wrong value would then try to print); an alias inside its own anchor (a structure
    containing itself) is refused.
    """

    def __init__(self, stream: str, max_depth: int, max_weight: int) -> None:
        super().__init__(stream)
        self.max_depth, self.max_weight = max_depth, max_weight
        self.depth = 0
        # id(node) → (levels down to its deepest scalar, characters it holds with aliases expanded)
        self.sizes: dict[int, tuple[int, int]] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self.depth += 1
        try:
            mark = self.peek_event().start_mark
            if self.depth > self.max_depth:
                raise _TooLarge("depth", mark)
            alias = self.check_event(AliasEvent)
            node = super().compose_node(parent, index)
            if alias:
                if id(node) not in self.sizes:  # named while still being composed: it contains itself
                    raise _TooLarge("recursive", mark)
                height, weight = self.sizes[id(node)]
                if self.depth - 1 + height > self.max_depth:
                    raise _TooLarge("depth", mark)
            else:
                below = [self.sizes[id(child)] for child in _children(node)]
                height = 1 + max((h for h, _ in below), default=0)
                weight = (len(node.value) if isinstance(node, ScalarNode) else 0) + 1 + sum(w for _, w in below)
                self.sizes[id(node)] = (height, weight)
            if weight > self.max_weight:
                raise _TooLarge("weight", mark)
            return node
        finally:
            self.depth -= 1


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return node.value
    if isinstance(node, MappingNode):
        return [child for pair in node.value for child in pair]
    return []


_NAMED = {"\0": "a NUL byte (U+0000)", "\n": "a line break", "\r": "a line break", "\t": "a tab"}


def describe_character(char: str) -> str:
    """A control character as a sentence names it: "a NUL byte (U+0000)", "the control character U+001B"."""
    if char in _NAMED:
        return _NAMED[char]
    kind = "invalid character" if unicodedata.category(char) == "Cs" else "control character"
    return f"the {kind} U+{ord(char):04X}"


def _at(node: Node) -> str:
    return f"line {node.start_mark.line + 1}"


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check_plain(node: Node, source: str, path: str, seen: set[int]) -> None:
    """Refuse duplicate keys and control characters anywhere under `node`.

    Walks the composed nodes, not the built data: each node once (an alias is a shared node, so a
    document of aliases to aliases costs what its text costs, and a recursive one terminates).
    """
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, ScalarNode):
        char = first_unshowable(node.value.strip(_SURROUNDING))
        if char is not None:
            where = f"`{path}`" if path else "the document"
            raise YamlError(
                f"{source}: {where} ({_at(node)}) contains {describe_character(char)}; "
                "write names and settings as plain text on one line."
            )
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _check_plain(item, source, f"{path}[{index}]", seen)
    elif isinstance(node, MappingNode):
        first: dict[tuple[str, str], Node] = {}
        for key, value in node.value:
            if key.tag == _MERGE:  # `<<: *defaults`: keys written beside it override it on purpose
                _check_plain(value, source, path, seen)
                continue
            if not isinstance(key, ScalarNode):
                raise YamlError(
                    f"{source}: {_at(key)} has a key that is a list or mapping; keys are plain names."
                )
            char = first_unshowable(key.value)
            if char is not None:
                raise YamlError(
                    f"{source}: a key at {_at(key)} contains {describe_character(char)}; "
                    "keys are plain names."
                )
            name = _child(path, key.value)
            earlier = first.setdefault((key.tag, key.value), key)
            if earlier is not key:
                raise YamlError(
                    f"{source}: key `{name}` appears twice (lines {earlier.start_mark.line + 1} and "
                    f"{key.start_mark.line + 1}); keep one, since only the last would count."
                )
            _check_plain(value, source, name, seen)


def load_yaml(text: str, source: str, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES) -> Any:
    """The data of one YAML document written by a person, or `YamlError` naming what is wrong and where.

    The data, its aliases expanded, may hold `EXPANSION` × `max_bytes` characters (the text itself is
    bounded by the caller).
    """
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text, max_depth, EXPANSION * max_bytes)  # the reader refuses non-printable characters here
        node = loader.get_single_node()
        if node is None:
            return None
        _check_plain(node, source, "", set())
        return loader.construct_document(node)
    except _TooLarge as exc:
        line = exc.mark.line + 1
        if exc.kind == "recursive":
            raise YamlError(
                f"{source}: the alias at line {line} is inside the anchor it names; "
                "a structure cannot contain itself."
            ) from None
        if exc.kind == "weight":
            raise YamlError(
                f"{source}: its aliases (`*name`) expand it past {_mib(EXPANSION * max_bytes)} (at line {line}); "
                "write the values out instead."
            ) from None
        raise YamlError(
            f"{source}: nests deeper than {max_depth} levels (at line {line}); "
            "these files nest a few levels only."
        ) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else 0
        raise YamlError(
            f"{source}: line {line} contains {describe_character(chr(code))}; "
            "write names and settings as plain text."
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "it cannot be parsed"
        context = getattr(exc, "context", None)
        if context and problem.startswith("but "):  # "expected a single document … but found another"
            problem = f"{context} {problem}"
        raise YamlError(f"{source}: is not valid YAML{where}: {problem}.") from None
    finally:
        if loader is not None:
            loader.dispose()


def _mib(size: int) -> str:
    return f"{size / (1 << 20):g} MiB"


def read_yaml_file(path: Path, *, what: str = "YAML file", max_bytes: int = MAX_BYTES) -> Any:
    """Read and load a YAML file from disk: at most `max_bytes`, UTF-8, one document, as `load_yaml`."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise YamlError(f"{path}: no such file.") from None
    except IsADirectoryError:
        raise YamlError(f"{path}: is a directory; name the {what} itself.") from None
    except OSError as exc:
        raise YamlError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    if len(raw) > max_bytes:
        raise YamlError(f"{path}: is larger than {_mib(max_bytes)}, which no {what} needs; "
                        "check that this is the right file.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(
            f"{path}: is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            f"save the {what} as UTF-8."
        ) from None
    return load_yaml(text, str(path), max_bytes=max_bytes)
