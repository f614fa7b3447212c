"""The catalog: which immutable version of each table partition is current, and how it got there.

Publishing is atomic because readers never list directories: they ask the catalog for a partition's
location, and the pointer moves inside one transaction after the new version is fully written. A process
killed before that transaction leaves the previous version current; its half-written directory is an
orphan that ``vacuum`` removes.

- ``base``: the ``Catalog`` interface (its docstrings are the contract) and the records it exchanges;
- ``sqlite``: the embedded implementation, the default;
- ``dynamodb``: the AWS implementation, state in DynamoDB (``dynamo_items``: the item layout;
  ``dynamo_state``: transactions and reads; ``dynamo_upkeep``: leases, rejects, checks, vacuum primitives);
- ``glue``: the Glue Data Catalog projection of the AWS catalog (what Athena reads);
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
    "PublishRequest", "SchemaChange", "SqliteCatalog", "StagingLease", "open_catalog", "parse_glue_uri", "utc_now",
]


def parse_glue_uri(uri: str) -> tuple[str, str]:
    """``glue://<glue database>?state_table=<DynamoDB table>`` -> (database, state table)."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(uri)
    query = parse_qs(parts.query)
    database, state_table = parts.netloc, query.get("state_table", [""])[0]
    if parts.scheme != "glue" or not database or not state_table or parts.path.strip("/") or set(query) - {"state_table"}:
        raise ValueError(f"catalog URI {uri!r}: expected glue://<glue database>?state_table=<DynamoDB table>")
    return database, state_table


def open_catalog(uri: str, lake_root: str = "") -> Catalog:
    """The catalog a settings URI names: a SQLite file path (the default), or the AWS catalog.

    ``glue://<database>?state_table=<table>``: state in the DynamoDB table, projected into the Glue
    database, whose table locations are under ``lake_root``.
    """
    if uri.startswith("glue://"):
        from medallion_pipeline.resources.catalog.dynamodb import DynamoCatalog
        from medallion_pipeline.resources.catalog.glue import GlueProjection

        database, state_table = parse_glue_uri(uri)
        if not lake_root:
            raise ValueError("the AWS catalog needs the lake root (the Glue tables' location)")
        return DynamoCatalog(state_table, projection=GlueProjection(database, lake_root))
    if uri.startswith("sqlite://"):
        uri = uri[len("sqlite://"):]
    if "://" in uri:
        raise ValueError(f"catalog URI {uri!r}: a SQLite file path or glue://<database>?state_table=<table>")
    return SqliteCatalog(uri)
