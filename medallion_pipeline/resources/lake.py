"""Where data lives: the one place lake paths are built, and the file operations the catalog needs.

Every published partition version gets its own immutable directory::

    <lake_root>/<layer>/<table>/<version_id>/dt=YYYY-MM-DD/part-*.parquet

A version directory is never rewritten: publishing moves the catalog pointer, not files. The version id is
not a ``key=value`` segment, so Hive-style readers (Athena, DuckDB) derive only ``dt`` from the path.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from medallion_pipeline.tables import TableId


def new_version_id() -> str:
    """Sortable, unique: ``v20261122T042500123Z-1a2b3c``."""
    now = datetime.now(timezone.utc)
    return f"v{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Lake:
    """Builds every path in the lake from its root (a local directory or an ``s3://`` URI)."""

    root: str

    def table_root(self, table: TableId) -> str:
        return f"{self.root.rstrip('/')}/{table.layer}/{table.name}"

    def version_root(self, table: TableId, version_id: str) -> str:
        return f"{self.table_root(table)}/{version_id}"

    def partition_location(self, table: TableId, version_id: str, dt: str) -> str:
        return f"{self.version_root(table, version_id)}/dt={dt}"


class LakeFiles(ABC):
    """The few file operations publishing and vacuum need, for one storage scheme."""

    @abstractmethod
    def list_children(self, location: str) -> list[tuple[str, float]]:
        """Direct sub-directories of ``location`` with their modification time (epoch seconds)."""

    @abstractmethod
    def delete_tree(self, location: str) -> None:
        """Remove ``location`` and everything below it; a missing location is not an error."""


class LocalLakeFiles(LakeFiles):
    def list_children(self, location: str) -> list[tuple[str, float]]:
        if not os.path.isdir(location):
            return []
        with os.scandir(location) as entries:
            return [
                (entry.path, entry.stat().st_mtime)
                for entry in entries
                if entry.is_dir() and not entry.name.startswith((".", "_"))
            ]

    def delete_tree(self, location: str) -> None:
        shutil.rmtree(location, ignore_errors=True)


class S3LakeFiles(LakeFiles):
    """The same operations on ``s3://`` locations (the lake on AWS): "directories" are key prefixes.

    Every listing follows continuation tokens (S3 returns at most 1,000 keys per page), and deletes go in
    batches of at most 1,000 keys, the ``DeleteObjects`` limit.
    """

    DELETE_BATCH = 1000  # the most keys one DeleteObjects request accepts

    def __init__(self, client=None):
        import boto3

        self.client = client or boto3.client("s3")

    @staticmethod
    def _split(location: str) -> tuple[str, str]:
        bucket, _, key = location.removeprefix("s3://").partition("/")
        return bucket, f"{key.strip('/')}/" if key.strip("/") else ""

    def _objects(self, bucket: str, prefix: str) -> Iterator[dict]:
        """Every object below ``prefix``, page after page."""
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            yield from page.get("Contents", [])

    def list_children(self, location: str) -> list[tuple[str, float]]:
        bucket, prefix = self._split(location)
        return [
            (f"s3://{bucket}/{prefix}{name}", mtime)
            for name, mtime in sorted(self._newest(bucket, prefix).items())
            if not name.startswith((".", "_"))
        ]

    def _newest(self, bucket: str, prefix: str) -> dict[str, float]:
        """The newest object below each direct child "directory" of ``prefix``, by child name.

        A prefix has no modification time of its own: the newest object below it stands in for one. One
        listing of everything below ``prefix`` gives every child's, instead of one listing per child.
        Keys directly under ``prefix`` are files, not children.
        """
        newest: dict[str, float] = {}
        for obj in self._objects(bucket, prefix):
            name, slash, _ = obj["Key"][len(prefix):].partition("/")
            if name and slash:
                newest[name] = max(newest.get(name, 0.0), obj["LastModified"].timestamp())
        return newest

    def delete_tree(self, location: str) -> None:
        bucket, prefix = self._split(location)
        if not prefix:
            raise ValueError(f"refusing to delete a whole bucket: {location!r}")
        batch: list[str] = []
        for obj in self._objects(bucket, prefix):
            batch.append(obj["Key"])
            if len(batch) == self.DELETE_BATCH:
                self._delete(bucket, batch)
                batch = []
        if batch:
            self._delete(bucket, batch)

    def _delete(self, bucket: str, keys: list[str]) -> None:
        """One ``DeleteObjects`` call; it answers 200 even when keys fail, so its ``Errors`` are checked."""
        response = self.client.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True})
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise OSError(
                f"could not delete s3://{bucket}/{first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                + (f" (and {len(errors) - 1} more keys)" if len(errors) > 1 else "")
            )


def lake_files_for(root: str) -> LakeFiles:
    if root.startswith("s3://"):
        return S3LakeFiles()
    if "://" in root and not root.startswith("file://"):
        raise NotImplementedError(f"no file operations for {root!r} (a local directory or s3://)")
    return LocalLakeFiles()


def age_seconds(mtime: float) -> float:
    return time.time() - mtime
