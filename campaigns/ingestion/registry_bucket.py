"""National DNC Registry files dropped in the bucket: `dnc/_registry/<file>`, one version each.

```
dnc/_registry/<file>                 a full list or change list (.txt, .csv, either .gz, or .zip)
dnc/_registry/<file>.yaml            optional sidecar: obtained_at, kind, area_codes
processed/dnc/_registry/<file>       imported (with its sidecar)
rejected/dnc/_registry/<file>        refused whole, beside <file>.error.txt
```

`_registry` can never be a workspace (a workspace is a slug starting with a letter or digit), so
the folder cannot collide with `dnc/<workspace>/<list>/`. The kind is read from the content;
obtained-at comes from the sidecar, else the day the file arrived (its modification time in the
bucket: the earlier day, so a run that waited past midnight never makes the data look newer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from campaigns.core.errors import DialerError
from campaigns.core.yamlfile import load_yaml
from campaigns.ingestion.bucket import Bucket, fitted_key
from campaigns.ingestion.inbox import _BAD_NAME, DNC, BadKey, key_parts
from campaigns.ingestion.registry_files import RegistryFile, RegistryKind
from campaigns.ingestion.registry_import import RegistryImport, import_registry
from campaigns.ingestion.uploads import _error_text

REGISTRY = "_registry"
PREFIX = f"{DNC}/{REGISTRY}/"
SUFFIXES = (".txt", ".csv", ".txt.gz", ".csv.gz", ".zip")
MAX_SIDECAR_BYTES = 64 << 10


@dataclass(frozen=True)
class RegistryKey:
    filename: str

    @property
    def partition_key(self) -> str:
        """The import's Dagster partition: the file's name."""
        return self.filename

    @property
    def key(self) -> str:
        return PREFIX + self.filename

    def sidecar_keys(self) -> tuple[str, ...]:
        return (f"{self.key}.yaml", f"{self.key}.yml")

    def moved_key(self, area: str) -> str:
        return f"{area}/{self.key}"


def is_registry_key(key: str) -> bool:
    return key == PREFIX.rstrip("/") or key.startswith(PREFIX)


def parse_registry_key(key: str) -> RegistryKey:
    parts = key_parts(key, "not imported")
    if len(parts) != 3 or not is_registry_key(key):
        raise BadKey(f"{key}: is not at {PREFIX}<file>; registry files sit directly in that folder.")
    filename = parts[2]
    if _BAD_NAME.search(filename):
        raise BadKey(f"{key}: the file name has control characters or '...'; rename it.")
    if not filename.lower().endswith(SUFFIXES):
        raise BadKey(f"{key}: is not a .txt, .csv, .txt.gz, .csv.gz or .zip file.")
    return RegistryKey(filename)


class RegistryOptions(BaseModel):
    """A registry file's sidecar: what its content cannot say."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    obtained_at: date | None = None
    kind: Literal["full", "changes"] | None = None
    area_codes: list[int] = Field(default_factory=list, max_length=1000)


def read_options(bucket: Bucket, target: RegistryKey) -> tuple[RegistryOptions, str | None]:
    """The sidecar's options and its key, or the defaults when there is none."""
    from campaigns.setup.settings import explain

    for key in target.sidecar_keys():
        info = bucket.info(key)
        if info is None:
            continue
        if info.size > MAX_SIDECAR_BYTES:
            raise DialerError(f"{key}: is larger than {MAX_SIDECAR_BYTES // 1024} KiB; a sidecar holds a few lines.")
        try:
            data = load_yaml(bucket.read_text(key), key)
        except UnicodeDecodeError:
            raise DialerError(f"{key}: is not UTF-8 text; save the sidecar as UTF-8.") from None
        if data is None:
            return RegistryOptions(), key
        if not isinstance(data, dict):
            raise DialerError(f"{key}: expected a mapping with obtained_at, kind or area_codes.")
        try:
            return RegistryOptions.model_validate(data), key
        except ValidationError as exc:
            raise DialerError(explain(exc, key, RegistryOptions)) from None
    return RegistryOptions(), None


@dataclass(frozen=True)
class BucketImport:
    target: RegistryKey
    result: RegistryImport | None  # None: it was imported before (found in processed/)
    filed_as: str


def import_bucket_file(engine, bucket: Bucket, target: RegistryKey, now: datetime) -> BucketImport:
    """Import one dropped registry file and file it away: processed/ when a version was made,
    rejected/ beside a `.error.txt` when it was refused (the `DialerError` is raised again)."""
    if not bucket.exists(target.key):
        processed = target.moved_key("processed")
        if bucket.exists(processed):
            return BucketImport(target, None, processed)
        raise DialerError(f"{target.key}: is not in the bucket any more; drop it again.")
    sidecar: str | None = None
    try:
        options, sidecar = read_options(bucket, target)
        arrived = bucket.modified_at(target.key) or now
        result = import_registry(
            engine, [RegistryFile(target.key, lambda: bucket.open(target.key))], now=now,
            kind=RegistryKind(options.kind) if options.kind else None,
            obtained_on=options.obtained_at or arrived.astimezone(UTC).date(), area_codes=options.area_codes,
        )
    except DialerError as exc:
        destination = bucket.move(target.key, target.moved_key("rejected"))
        if sidecar is not None:
            bucket.move(sidecar, f"rejected/{sidecar}")
        bucket.write_text(fitted_key(destination + ".error.txt"), _error_text(target.key, str(exc), now))
        raise
    destination = bucket.move(target.key, target.moved_key("processed"))
    if sidecar is not None:
        bucket.move(sidecar, f"processed/{sidecar}")
    return BucketImport(target, result, destination)
