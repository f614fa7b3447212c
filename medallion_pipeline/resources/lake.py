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
    """The same operations on ``s3://`` locations (the lake on AWS): "directories" are key prefixes."""

    def __init__(self, client=None):
        import boto3

        self.client = client or boto3.client("s3")

    @staticmethod
    def _split(location: str) -> tuple[str, str]:
        bucket, _, key = location.removeprefix("s3://").partition("/")
        return bucket, f"{key.strip('/')}/" if key.strip("/") else ""

    def list_children(self, location: str) -> list[tuple[str, float]]:
        bucket, prefix = self._split(location)
        children = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                name = common["Prefix"][len(prefix):].strip("/")
                if name and not name.startswith((".", "_")):
                    children.append((f"s3://{bucket}/{prefix}{name}", self._newest(bucket, common["Prefix"])))
        return children

    def _newest(self, bucket: str, prefix: str) -> float:
        """A prefix has no modification time of its own: the newest object below it stands in for one."""
        newest = 0.0
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                newest = max(newest, obj["LastModified"].timestamp())
        return newest

    def delete_tree(self, location: str) -> None:
        bucket, prefix = self._split(location)
        if not prefix:
            raise ValueError(f"refusing to delete a whole bucket: {location!r}")
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def lake_files_for(root: str) -> LakeFiles:
    if root.startswith("s3://"):
        return S3LakeFiles()
    if "://" in root and not root.startswith("file://"):
        raise NotImplementedError(f"no file operations for {root!r} (a local directory or s3://)")
    return LocalLakeFiles()


def age_seconds(mtime: float) -> float:
    return time.time() - mtime
