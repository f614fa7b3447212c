"""Landing: where producers drop raw log files, ``<root>/<source>/dt=YYYY-MM-DD/<name>``.

``LandingStore`` is what bronze and the sensors depend on; ``LocalLandingStore`` is the embedded
implementation (a local directory). An S3 implementation lists the same layout with boto3.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date
from pathlib import Path

LOG_SUFFIXES = (".json", ".jsonl", ".ndjson")
_KEY = re.compile(r"^[^/]+/dt=(\d{4}-\d{2}-\d{2})/[^/]+$")


def is_log_file(name: str) -> bool:
    """A landing object worth ingesting: ``.json|.jsonl|.ndjson``, optionally ``.gz``; no hidden/temp files."""
    base = name.rsplit("/", 1)[-1]
    if base.startswith((".", "_")):
        return False
    if base.endswith(".gz"):
        base = base[:-3]
    return base.endswith(LOG_SUFFIXES)


def partition_of(key: str) -> str | None:
    """The ``dt`` of a landing key ``<source>/dt=YYYY-MM-DD/<name>`` for a log file, else None."""
    match = _KEY.match(key)
    if not match or not is_log_file(key) or key.startswith((".", "_")):
        return None
    try:
        date.fromisoformat(match.group(1))
    except ValueError:
        return None
    return match.group(1)


class LandingReadError(RuntimeError):
    """A landing file could not be read (network, throttling, permissions, gone since the listing).

    Retryable: it says nothing about the file's bytes, so nothing is recorded for the file and the run fails;
    the next run checks it again.
    """


@dataclass(frozen=True)
class LandingFile:
    key: str  # relative to the landing root: <source>/dt=YYYY-MM-DD/<name>
    uri: str  # what Spark reads
    size: int
    etag: str  # content fingerprint (MD5, like a non-multipart S3 ETag)

    @property
    def source(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def compressed(self) -> bool:
        return self.key.endswith(".gz")


class LandingStore(ABC):
    # Errors of ``open_bytes`` that mean "could not read", never "the bytes are corrupt".
    read_errors: tuple[type[BaseException], ...] = (OSError,)

    @abstractmethod
    def sources(self) -> list[str]:
        """The ``<source>`` folders present in landing."""

    @abstractmethod
    def list_partition(self, dt: str, sources: list[str] | None = None) -> list[LandingFile]:
        """Every log file under ``<source>/dt=<dt>/`` for ``sources`` (default: all of them), sorted by key.
        A caller listing several days passes ``sources()`` once instead of listing them per day."""

    @abstractmethod
    def open_bytes(self, file: LandingFile) -> bytes: ...

    def unreadable_reason(self, file: LandingFile) -> str | None:
        """Why a file cannot be read whole (truncated or corrupt gzip), or None when it can.

        Spark fails the whole job on a truncated gzip stream, and ``ignoreCorruptFiles`` would drop it
        silently; checking first lets bronze record the file as unreadable instead. Only the bytes decide:
        a failure to read them raises ``LandingReadError`` (retryable) rather than condemning the file.
        """
        if not file.compressed:
            return None
        try:
            data = self.open_bytes(file)
        except self.read_errors as exc:
            raise LandingReadError(
                f"could not read landing file {file.key} to check it ({type(exc).__name__}: {exc}); "
                "it was not recorded in the ingest ledger — retry the run"
            ) from exc
        try:
            decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
            while data:
                decompressor.decompress(data)
                data = decompressor.unused_data
                if data:  # concatenated gzip members are valid
                    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
            if not decompressor.eof:
                return "truncated gzip stream"
        except (zlib.error, EOFError, gzip.BadGzipFile) as exc:
            return f"corrupt gzip: {exc}"
        return None


class LocalLandingStore(LandingStore):
    # MD5s by (path, size, mtime): a listing sensor re-lists the same days every tick.
    _etags: dict[tuple[str, int, int], str] = {}
    _ETAGS_KEPT = 200_000

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def sources(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))

    def list_partition(self, dt, sources=None):
        files = []
        for source in self.sources() if sources is None else sources:
            folder = self.root / source / f"dt={dt}"
            if not folder.is_dir():
                continue
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_file() and is_log_file(entry.name):
                        files.append(self._describe(source, dt, entry))
        return sorted(files, key=lambda f: f.key)

    @classmethod
    def _describe(cls, source: str, dt: str, entry: os.DirEntry) -> LandingFile:
        stat = entry.stat()
        fingerprint = (os.path.abspath(entry.path), stat.st_size, stat.st_mtime_ns)
        etag = cls._etags.get(fingerprint)
        if etag is None:
            with open(entry.path, "rb") as fh:
                etag = hashlib.md5(fh.read(), usedforsecurity=False).hexdigest()
            if len(cls._etags) >= cls._ETAGS_KEPT:
                cls._etags.clear()
            cls._etags[fingerprint] = etag
        return LandingFile(key=f"{source}/dt={dt}/{entry.name}", uri=fingerprint[0], size=stat.st_size, etag=etag)

    def open_bytes(self, file: LandingFile) -> bytes:
        return Path(file.uri).read_bytes()


class S3LandingStore(LandingStore):
    """Landing in S3: lists only the ``<source>/dt=<dt>/`` prefixes asked for, never the whole bucket.

    File URIs are ``s3://`` (read by EMRFS on EMR; local Spark has no S3 filesystem).
    """

    def __init__(self, uri: str, client=None):
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.client = client or boto3.client("s3")
        # Any S3 error (NoSuchKey after a listing, SlowDown, AccessDenied, 5xx, a dropped connection) is
        # about the request, not the object's bytes.
        self.read_errors = (OSError, ClientError, BotoCoreError)

    def _pages(self, prefix: str, delimiter: str = ""):
        kwargs = {"Bucket": self.bucket, "Prefix": prefix, **({"Delimiter": delimiter} if delimiter else {})}
        return self.client.get_paginator("list_objects_v2").paginate(**kwargs)

    def sources(self) -> list[str]:
        names = []
        for page in self._pages(self.prefix, delimiter="/"):
            names += [p["Prefix"][len(self.prefix):].strip("/") for p in page.get("CommonPrefixes", [])]
        return sorted(n for n in names if n and not n.startswith((".", "_")))

    def list_partition(self, dt, sources=None):
        files = []
        for source in self.sources() if sources is None else sources:
            for page in self._pages(f"{self.prefix}{source}/dt={dt}/"):
                for obj in page.get("Contents", []):
                    if obj["Key"].endswith("/") or not is_log_file(obj["Key"]):
                        continue  # directory markers and other suffixes
                    files.append(LandingFile(
                        key=obj["Key"][len(self.prefix):], uri=f"s3://{self.bucket}/{obj['Key']}",
                        size=obj["Size"], etag=obj["ETag"].strip('"'),
                    ))
        return sorted(files, key=lambda f: f.key)

    def relative_key(self, bucket: str, key: str) -> str | None:
        """A bucket key as a landing key (relative to the prefix), or None when it is outside landing."""
        if bucket != self.bucket or not key.startswith(self.prefix):
            return None
        return key[len(self.prefix):]

    def open_bytes(self, file: LandingFile) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=f"{self.prefix}{file.key}")["Body"].read()


def landing_store_for(root: str) -> LandingStore:
    if root.startswith("s3://"):
        return S3LandingStore(root)
    if "://" in root and not root.startswith("file://"):
        raise NotImplementedError(f"landing {root!r} is not supported (a local directory or s3://)")
    return LocalLandingStore(root.removeprefix("file://"))
