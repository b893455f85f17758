"""The watched bucket: a local folder by default, S3 (or any S3-compatible store) by URL.

Keys are always relative, `/`-separated and checked: a key that is absolute,
contains `..` or a backslash, or otherwise tries to leave the bucket's prefix
is refused before any file system call (`UnsafeKey`). On a folder, a key must
also be where its file really is: a symbolic link anywhere below the bucket's
root (a file link, or a folder link such as `inbox/wsb/camp → ../wsa/camp`)
would let one workspace's key read and move another's file, or one outside
the bucket, so such a key is refused and the file left alone (`LinkedKey`).
S3 has no links.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

import fsspec

from campaigns.core.config import DialerConfig
from campaigns.core.errors import DialerError


class UnsafeKey(DialerError):
    """A key that would leave the bucket's prefix."""


class LinkedKey(UnsafeKey):
    """A key on a folder bucket whose path goes through a symbolic link."""


# Most file systems refuse a name (one segment of a key) longer than 255 bytes (ENAMETOOLONG).
MAX_NAME_BYTES = 255
# The trailing extensions a shortened name keeps: `.csv`, `.1.csv.rejects.csv`, `.csv.gz.error.txt`.
_EXTENSIONS = re.compile(r"(?:\.[A-Za-z0-9_-]{1,12}){0,5}$")


def fitted_key(key: str, limit: int = MAX_NAME_BYTES) -> str:
    """`key`, its last segment shortened to `limit` bytes of UTF-8 if it is longer.

    A name derived from a file's (its rejects file, its `.error.txt`, a
    numbered variant) may pass the limit although the file's own name does
    not. The stem is cut at a character boundary and a hash of the whole name
    added before the extensions, so the result stays recognisable, keeps its
    extensions and differs for any two names.
    """
    folder, slash, name = key.rpartition("/")
    encoded = name.encode("utf-8")
    if len(encoded) <= limit:
        return key
    extensions = _EXTENSIONS.search(name).group()  # type: ignore[union-attr]  # it matches "" at worst
    tail = f"~{hashlib.sha256(encoded).hexdigest()[:12]}{extensions}"
    room = max(0, limit - len(tail.encode("utf-8")))
    stem = name[: len(name) - len(extensions)].encode("utf-8")[:room].decode("utf-8", "ignore")
    return f"{folder}{slash}{stem}{tail}"


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    version: str  # ETag on S3, size and mtime on a folder: changes whenever the content does
    modified_at: datetime | None = None  # when it was last written (its arrival, for a file dropped once)


@dataclass(frozen=True)
class Listing:
    files: list[ObjectInfo]  # sorted by key; raw keys, not yet checked against the layout
    links: list[str]  # symbolic links met on a folder bucket, sorted: never read, never moved


def storage_options(url: str, s3_endpoint_url: str | None = None) -> dict:
    """fsspec options for the bucket at `url` (`s3_endpoint_url`: an S3-compatible endpoint)."""
    if url.startswith("s3://"):
        options: dict = {}
        endpoint = s3_endpoint_url
        if endpoint:
            options["client_kwargs"] = {"endpoint_url": endpoint}
        # Fresh listings every time: the sensor must see files as they arrive.
        options["use_listings_cache"] = False
        return options
    return {}


def check_key(key: str) -> str:
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise UnsafeKey(f"bucket key {key!r} is not a relative path inside the bucket")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise UnsafeKey(f"bucket key {key!r} has an empty, '.' or '..' segment")
    return key


class Bucket:
    """Files under one root URL; every path is a key relative to it."""

    def __init__(self, url: str, options: dict | None = None) -> None:
        self.url = url
        opts = storage_options(self.url) if options is None else options
        self.fs, root = fsspec.core.url_to_fs(self.url, **opts)
        self.root = root.rstrip("/")
        self.is_local = self.fs.protocol in ("file", ("file", "local")) or "file" in (
            self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        )
        if self.is_local:
            self.fs.makedirs(self.root, exist_ok=True)

    @classmethod
    def from_config(cls, config: DialerConfig) -> Bucket:
        """The bucket `config` names, with its S3 endpoint if any."""
        return cls(config.bucket_url, storage_options(config.bucket_url, config.s3_endpoint_url))

    def path(self, key: str) -> str:
        path = f"{self.root}/{check_key(key)}"
        if self.is_local:
            self._real(path, key)
        return path

    def refusal(self, key: str) -> str | None:
        """The sentence that refuses `key` (a link on its path, a bad segment), or None if it is fine."""
        try:
            self.path(key)
        except UnsafeKey as exc:
            return str(exc)
        return None

    def _real(self, path: str, key: str) -> None:
        """On a folder, the key must be its file's real place: no symbolic link below the root."""
        real_root = os.path.realpath(self.root)
        if os.path.realpath(path) != os.path.join(real_root, *key.split("/")):
            raise LinkedKey(self._link_sentence(key, real_root))

    def _link_sentence(self, key: str, real_root: str) -> str:
        parts = key.split("/")
        for depth in range(1, len(parts) + 1):
            link = "/".join(parts[:depth])
            if not os.path.islink(f"{self.root}/{link}"):
                continue
            target = os.path.realpath(f"{self.root}/{link}")
            inside = target.startswith(real_root + os.sep)
            where = (
                "to " + os.path.relpath(target, real_root).replace(os.sep, "/")
                if inside else "that leads outside the bucket"
            )
            if link == key:
                what = "is a symbolic link"
                fix = f"make {key} a real folder" if os.path.isdir(target) else f"put the file itself at {key}"
            else:
                what, fix = f"goes through {link}, a symbolic link", f"make {link} a real folder holding the file"
            return (
                f"{key}: {what} {where}; files are only read and moved where they really are, "
                f"so it was left untouched: {fix}."
            )
        return f"{key}: leads outside the bucket; put the file itself at {key}."

    def url_of(self, key: str) -> str:
        return f"{self.url.rstrip('/')}/{check_key(key)}"

    def _key_of(self, path: str) -> str:
        path = path.rstrip("/")
        prefix = self.root + "/"
        if not path.startswith(prefix):
            raise UnsafeKey(f"{path!r} is outside the bucket {self.url}")
        return path[len(prefix):]

    def _info(self, path: str, info: dict) -> ObjectInfo:
        size = int(info.get("size") or 0)
        etag = info.get("ETag") or info.get("etag")
        if etag:
            version = str(etag).strip('"')
        else:
            mtime = info.get("mtime") or info.get("LastModified") or info.get("created") or 0
            stamp = mtime.timestamp() if hasattr(mtime, "timestamp") else float(mtime)
            version = f"{size}-{int(stamp * 1_000_000)}"
        return ObjectInfo(key=self._key_of(path), size=size, version=version, modified_at=_modified(info))

    def scan(self, prefix: str) -> Listing:
        """Every file under `prefix`, and apart the symbolic links met (a folder's links are not followed)."""
        prefix = prefix.strip("/")
        base = f"{self.root}/{prefix}"
        if self.is_local:
            try:
                self.path(prefix)
            except LinkedKey:
                return Listing([], [prefix])
        if not self.fs.exists(base):
            return Listing([], [])
        found = self.fs.find(base, detail=True)
        listed, links = [], []
        for path, info in found.items():
            if info.get("type") == "directory":
                continue
            if self.is_local and (info.get("islink") or os.path.islink(path)):
                links.append(self._key_of(path))  # a link could point anywhere; only real files are ours
                continue
            listed.append(self._info(path, info))
        return Listing(sorted(listed, key=lambda o: o.key), sorted(links))

    def list(self, prefix: str) -> list[ObjectInfo]:
        """Every file under `prefix`, sorted by key; raw keys, not yet checked against the layout."""
        return self.scan(prefix).files

    def info(self, key: str) -> ObjectInfo | None:
        try:
            return self._info(self.path(key), self.fs.info(self.path(key)))
        except FileNotFoundError:
            return None

    def modified_at(self, key: str) -> datetime | None:
        """When the file at `key` was last written (its arrival, for a file dropped once), if known."""
        return _modified(self.fs.info(self.path(key)))

    def exists(self, key: str) -> bool:
        return self.fs.exists(self.path(key))

    def open(self, key: str, mode: str = "rb") -> BinaryIO:
        if "w" in mode and self.is_local:
            self.fs.makedirs(posixpath.dirname(self.path(key)), exist_ok=True)
        return self.fs.open(self.path(key), mode)

    def read_bytes(self, key: str) -> bytes:
        with self.open(key) as handle:
            return handle.read()

    def read_text(self, key: str) -> str:
        return self.read_bytes(key).decode("utf-8")

    def write_bytes(self, key: str, data: bytes) -> None:
        with self.open(key, "wb") as handle:
            handle.write(data)

    def write_text(self, key: str, text: str) -> None:
        self.write_bytes(key, text.encode("utf-8"))

    def free_key(self, wanted: str) -> str:
        """`wanted`, or a numbered variant of it (a.1.csv, a.2.csv, …) that no file occupies, each
        shortened to fit (`fitted_key`)."""
        target = fitted_key(wanted)
        n = 1
        while self.exists(target):
            for suffix in (".rejects.csv", ".csv.gz", ".error.txt"):
                if wanted.endswith(suffix):
                    target = f"{wanted[: -len(suffix)]}.{n}{suffix}"
                    break
            else:
                stem, dot, ext = wanted.rpartition(".")
                target = f"{stem}.{n}.{ext}" if dot and "/" not in ext else f"{wanted}.{n}"
            target = fitted_key(target)
            n += 1
        return target

    def move(self, source: str, destination: str) -> str:
        """Move a file; if the destination exists, a numbered name is used. Returns the key used."""
        target = self.free_key(destination)
        if self.is_local:
            self.fs.makedirs(posixpath.dirname(self.path(target)), exist_ok=True)
        self.fs.mv(self.path(source), self.path(target))
        return target

    def quarantine(self, listed_key: str, destination: str) -> str:
        """Move a file found by `list` whose key is unsafe (e.g. an S3 key with '..') to a safe key.

        The source is addressed literally under the root, never resolved, so
        it cannot reach outside the bucket; the destination is checked as usual.
        """
        if listed_key.startswith("/") or "\x00" in listed_key:
            raise UnsafeKey(f"bucket key {listed_key!r} cannot be moved")
        source = f"{self.root}/{listed_key}"
        if not self.fs.exists(source):
            raise FileNotFoundError(listed_key)
        target = self.free_key(destination)
        if self.is_local:
            self.fs.makedirs(posixpath.dirname(self.path(target)), exist_ok=True)
        self.fs.mv(source, self.path(target))
        return target

    def walk_keys(self, prefix: str) -> Iterator[str]:
        for info in self.list(prefix):
            yield info.key


def _modified(info: dict) -> datetime | None:
    """An fsspec listing entry's modification time (a folder's mtime, S3's LastModified), if known."""
    stamp = info.get("mtime") or info.get("LastModified") or info.get("created")
    if isinstance(stamp, datetime):
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(stamp), UTC) if stamp else None
