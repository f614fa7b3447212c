"""The catalog: which immutable version of each table partition is current, and how it got there.

Publishing is atomic because readers never list directories: they ask the catalog for a partition's
location, and the pointer moves inside one transaction after the new version is fully written. A process
killed before that transaction leaves the previous version current; its half-written directory is an
orphan that ``vacuum`` removes.

- ``base``: the ``Catalog`` interface (its docstrings are the contract) and the records it exchanges;
- ``sqlite``: the embedded implementation, the default;
- ``vacuum``: the one vacuum order every implementation runs.
"""

from medallion_pipeline.resources.catalog.base import (
    Catalog,
    CheckRecord,
    Column,
    HistoryEvent,
    LedgerEntry,
    PartitionVersion,
    PublishConflict,
    PublishRequest,
    SchemaChange,
    StagingLease,
    utc_now,
)
from medallion_pipeline.resources.catalog.sqlite import SqliteCatalog

__all__ = [
    "Catalog", "CheckRecord", "Column", "HistoryEvent", "LedgerEntry", "PartitionVersion", "PublishConflict",
    "PublishRequest", "SchemaChange", "SqliteCatalog", "StagingLease", "open_catalog", "utc_now",
]


def open_catalog(uri: str) -> Catalog:
    """The catalog named by a settings URI: a SQLite file path (``glue://`` comes with the AWS deployment)."""
    if uri.startswith("sqlite://"):
        uri = uri[len("sqlite://"):]
    if "://" in uri:
        raise NotImplementedError(f"catalog {uri!r} is not supported yet (embedded SQLite only)")
    return SqliteCatalog(uri)
