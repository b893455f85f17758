"""The bucket's layout and what each key in it means.

```
inbox/<workspace>/<campaign-slug>/<file>.csv[.gz]   prospect lists waiting to load
inbox/<workspace>/<campaign-slug>/<file>.yaml       optional sidecar: upload options for <file>
processed/<workspace>/<campaign-slug>/<file>        loaded (with their sidecar)
rejected/<workspace>/<campaign-slug>/<file>         refused whole, beside <file>.error.txt
rejects/<workspace>/<campaign-slug>/<file>.rejects.csv   per-row rejects with their reason
dnc/<workspace>/<list>/<file>                       DNC numbers to add to a workspace's list
reports/<workspace>/<campaign-slug>/<YYYY-MM-DD>/<slug>-<date>-calls.csv[.zip|.gz]
                                                    the day's report export (written by the
                                                    reports, never scanned as an upload)
```

The sensors scan `inbox/` and `dnc/` (the registry's `dnc/_registry/` among them) only, so
nothing the dialer writes elsewhere (`processed/`, `rejected/`, `rejects/`, `reports/`) is
ever taken for a file to load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from campaigns.core.errors import DialerError
from campaigns.core.yamlfile import load_yaml
from campaigns.ingestion.bucket import Bucket, UnsafeKey, check_key
from campaigns.setup.settings import SLUG_PATTERN

INBOX = "inbox"
DNC = "dnc"
DATA_SUFFIXES = (".csv", ".csv.gz")
DNC_SUFFIXES = (".csv", ".csv.gz", ".txt", ".txt.gz")
_SLUG = re.compile(SLUG_PATTERN)
# Dagster partition keys may not contain these; such a file name is refused.
_BAD_NAME = re.compile(r"\.\.\.|[\x00-\x1f\x7f]")


class BadKey(DialerError):
    """A bucket key that does not fit the layout."""


@dataclass(frozen=True)
class InboxFile:
    workspace: str
    campaign: str
    filename: str

    @property
    def partition_key(self) -> str:
        """The upload's Dagster partition: the key below `inbox/`."""
        return f"{self.workspace}/{self.campaign}/{self.filename}"

    @property
    def key(self) -> str:
        return f"{INBOX}/{self.partition_key}"

    def sidecar_keys(self) -> tuple[str, ...]:
        stem = self.filename
        for suffix in DATA_SUFFIXES[::-1]:
            if stem.lower().endswith(suffix):
                stem = stem[: -len(suffix)]
                break
        base = f"{INBOX}/{self.workspace}/{self.campaign}"
        return tuple(f"{base}/{name}.{ext}" for name in (self.filename, stem) for ext in ("yaml", "yml"))

    def moved_key(self, area: str) -> str:
        return f"{area}/{self.partition_key}"

    @property
    def rejects_key(self) -> str:
        return f"rejects/{self.partition_key}.rejects.csv"


def _layout_error(key: str, expected: str) -> BadKey:
    return BadKey(f"{key}: is not at {expected}; move it there.")


def key_parts(key: str, refused: str) -> list[str]:
    """A key's segments once it is known to stay inside the bucket; else `BadKey` ("…; it was `refused`.")."""
    try:
        check_key(key)
    except UnsafeKey as exc:
        raise BadKey(f"{key}: {exc}; it was {refused}.") from None
    return key.split("/")


def parse_inbox_key(key: str) -> InboxFile:
    """Check a key under `inbox/` and split it; refuses anything that could land elsewhere."""
    parts = key_parts(key, "not loaded")
    expected = "inbox/<workspace>/<campaign-slug>/<file>.csv"
    if len(parts) != 4 or parts[0] != INBOX:
        raise _layout_error(key, expected)
    _, workspace, campaign, filename = parts
    if not _SLUG.fullmatch(workspace) or not _SLUG.fullmatch(campaign):
        raise BadKey(
            f"{key}: workspace and campaign folders must be lowercase slugs "
            f"(got {workspace!r} and {campaign!r})."
        )
    if _BAD_NAME.search(filename):
        raise BadKey(f"{key}: the file name has control characters or '...'; rename it.")
    if not filename.lower().endswith(DATA_SUFFIXES):
        raise BadKey(f"{key}: is not a .csv or .csv.gz file.")
    return InboxFile(workspace, campaign, filename)


def inbox_file_for_partition(partition_key: str) -> InboxFile:
    return parse_inbox_key(f"{INBOX}/{partition_key}")


def is_sidecar(key: str) -> bool:
    return key.lower().endswith((".yaml", ".yml"))


class UploadOptions(BaseModel):
    """Per-file overrides of the campaign's upload defaults, from a sidecar YAML file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    priority: int | None = Field(default=None, ge=0, le=100)
    dupe_days: int | None = Field(default=None, ge=-1, le=3650)
    expire_days: int | None = Field(default=None, ge=1, le=3650)

    def merged(self, other: UploadOptions) -> UploadOptions:
        """`other`'s values where set, else ours."""
        data = self.model_dump()
        data.update({k: v for k, v in other.model_dump().items() if v is not None})
        return UploadOptions(**data)


def parse_options(data: object, source: str) -> UploadOptions:
    from campaigns.setup.settings import explain

    if data is None:
        return UploadOptions()
    if not isinstance(data, dict):
        raise DialerError(f"{source}: expected a mapping with priority, dupe_days or expire_days.")
    try:
        return UploadOptions.model_validate(data)
    except ValidationError as exc:
        raise DialerError(explain(exc, source, UploadOptions)) from None


def read_sidecar(bucket: Bucket, inbox_file: InboxFile) -> tuple[UploadOptions, str | None]:
    """The sidecar's options and its key, or empty options when there is none."""
    for key in inbox_file.sidecar_keys():
        if bucket.exists(key):
            try:
                text = bucket.read_text(key)
            except UnicodeDecodeError:
                raise DialerError(f"{key}: is not UTF-8 text; save the options file as UTF-8.") from None
            data = load_yaml(text, key)
            return parse_options(data, key), key
    return UploadOptions(), None


@dataclass(frozen=True)
class DncFile:
    workspace: str
    list: str
    filename: str

    @property
    def partition_key(self) -> str:
        return f"{self.workspace}/{self.list}/{self.filename}"

    @property
    def key(self) -> str:
        return f"{DNC}/{self.partition_key}"

    def moved_key(self, area: str) -> str:
        return f"{area}/{DNC}/{self.partition_key}"


def parse_dnc_key(key: str) -> DncFile:
    parts = key_parts(key, "not imported")
    if len(parts) != 4 or parts[0] != DNC:
        raise _layout_error(key, "dnc/<workspace>/<list>/<file>.csv")
    _, workspace, name, filename = parts
    if not _SLUG.fullmatch(workspace) or not _SLUG.fullmatch(name):
        raise BadKey(f"{key}: workspace and list folders must be lowercase slugs (got {workspace!r} and {name!r}).")
    if _BAD_NAME.search(filename):
        raise BadKey(f"{key}: the file name has control characters or '...'; rename it.")
    if not filename.lower().endswith(DNC_SUFFIXES):
        raise BadKey(f"{key}: is not a .csv, .txt, .csv.gz or .txt.gz file.")
    return DncFile(workspace, name, filename)


def is_hidden(key: str) -> bool:
    """Files being written by upload tools (.part, dotfiles) are not ours yet."""
    name = key.rsplit("/", 1)[-1]
    return name.startswith(".") or name.lower().endswith((".part", ".tmp", ".crdownload"))
