"""The Glue Data Catalog as a projection of the AWS catalog: the tables, columns and partitions Athena reads.

Glue is a projection, not the source of truth, because it cannot hold a compare-and-swap: UpdatePartition and
BatchUpdatePartition take no version or condition, and batch calls fail entry by entry. DynamoDB holds the
transactional state; Glue is written *after* each DynamoDB commit. The publish path calls
``GlueProjection.sync_table(..., only=<the dts it touched>)`` and ``medallion catalog sync`` calls the same
method over whole tables, so a crash between the two commits is repaired by either. Every step therefore reads
what Glue has, writes only the difference to what DynamoDB says, and converges when rerun.

Schema rules (issue 13): new columns are appended at the end, never reordered or removed, and an existing
column keeps its Glue type, because Athena reads every partition through the table's schema and a retyped
column breaks the old ones. ``UpdateTable`` passes ``SkipArchive``: Glue table versions are not the history
(the catalog's schema history is) and they count against a quota.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from medallion_pipeline.resources.catalog.base import Column
from medallion_pipeline.resources.lake import Lake
from medallion_pipeline.tables import TableId

log = logging.getLogger(__name__)

PARTITION_KEY = "dt"
COMMENT_LIMIT = 255  # Glue: a column comment is one line of at most 255 bytes
DESCRIPTION_LIMIT = 2048
CREATE_BATCH, UPDATE_BATCH, DELETE_BATCH, GET_BATCH = 100, 100, 25, 1000  # Glue's per-call limits
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"

# Spark simpleString() names and the typeName() aliases callers also write, to Hive names.
_PRIMITIVES = {
    "boolean": "boolean", "tinyint": "tinyint", "byte": "tinyint", "smallint": "smallint", "short": "smallint",
    "int": "int", "integer": "int", "bigint": "bigint", "long": "bigint", "float": "float", "real": "float",
    "double": "double", "string": "string", "binary": "binary", "date": "date", "timestamp": "timestamp",
    "timestamp_ltz": "timestamp", "timestamp_ntz": "timestamp", "decimal": "decimal(10,0)",
}
_DECIMAL = re.compile(r"(?:decimal|numeric|dec)\((\d+)(?:,(\d+))?\)")
_SIZED = re.compile(r"(char|varchar)\((\d+)\)")


@dataclass
class SyncReport:
    """What one ``sync_table`` changed in Glue."""

    table: str
    created_table: bool = False
    added_columns: list[str] = field(default_factory=list)
    kept_types: dict[str, tuple[str, str]] = field(default_factory=dict)  # column -> (Glue type kept, refused)
    partitions_created: int = 0
    partitions_updated: int = 0
    partitions_deleted: int = 0
    partitions_unchanged: int = 0
    dropped_table: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.created_table or self.added_columns or self.partitions_created or self.partitions_updated
                    or self.partitions_deleted or self.dropped_table)


def glue_type(spark_type: str) -> str:
    """The Hive type Glue and Athena expect for a Spark ``simpleString()`` type, nested types included."""
    try:
        return _convert(spark_type)
    except ValueError as error:
        raise ValueError(f"no Glue type for Spark type {spark_type!r}: {error}") from None


def _convert(text: str) -> str:
    text = text.strip()
    low = re.sub(r"\s+", "", text.lower())
    if low in _PRIMITIVES:
        return _PRIMITIVES[low]
    if match := _DECIMAL.fullmatch(low):
        return f"decimal({match[1]},{match[2] or 0})"
    if match := _SIZED.fullmatch(low):
        return f"{match[1]}({match[2]})"
    kind = low.partition("<")[0]
    if kind not in ("array", "map", "struct") or not low.endswith(">"):
        raise ValueError(f"unknown type {text!r}")
    body = text[text.index("<") + 1:text.rindex(">")]
    parts = _split_top_level(body)
    if kind == "array" and len(parts) == 1:
        return f"array<{_convert(parts[0])}>"
    if kind == "map" and len(parts) == 2:
        return f"map<{_convert(parts[0])},{_convert(parts[1])}>"
    if kind == "struct" and body.strip():
        fields = []
        for part in parts:
            name, colon, type_ = part.partition(":")
            if not colon or not name.strip():
                raise ValueError(f"malformed struct field {part.strip()!r}")
            fields.append(f"{name.strip()}:{_convert(type_)}")
        return f"struct<{','.join(fields)}>"
    raise ValueError(f"malformed {kind}<{body}>")


def _split_top_level(body: str) -> list[str]:
    """``a:int,b:map<string,int>`` -> ``["a:int", "b:map<string,int>"]``: commas inside <> or () stay put."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(body):
        depth += (char in "<(") - (char in ">)")
        if depth < 0:
            raise ValueError(f"unbalanced brackets in {body!r}")
        if char == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"unbalanced brackets in {body!r}")
    return [*parts, body[start:]]


def _truncate(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes, never cutting a character in half."""
    return text.encode()[:limit].decode("utf-8", "ignore")


def _glue_column(column: Column) -> dict[str, Any]:
    comment = _truncate(" ".join(column.description.split()), COMMENT_LIMIT)
    return {"Name": column.name, "Type": glue_type(column.type), **({"Comment": comment} if comment else {}),
            "Parameters": {"pii": "true" if column.pii else "false"}}


def _merge_columns(existing: Sequence[dict], columns: Sequence[Column], report: SyncReport) -> list[dict]:
    """Glue's columns in Glue's order with comments and pii refreshed and types kept, then the new ones."""
    wanted: dict[str, Column] = {}
    for column in columns:
        if column.name.lower() != PARTITION_KEY:
            wanted.setdefault(column.name.lower(), column)
    merged = []
    for current in existing:
        column = wanted.pop(current["Name"].lower(), None)
        if column is None:
            merged.append(current)
            continue
        fresh = _glue_column(column)
        if re.sub(r"\s+", "", current["Type"].lower()) != fresh["Type"]:
            report.kept_types[current["Name"]] = (current["Type"], fresh["Type"])
            log.warning("%s.%s stays %s in Glue: a column's type never changes (refused %s)",
                        report.table, current["Name"], current["Type"], fresh["Type"])
        kept = {key: value for key, value in current.items() if key not in ("Comment", "Parameters")}
        merged.append({**kept, **fresh, "Name": current["Name"], "Type": current["Type"],
                       "Parameters": {**current.get("Parameters", {}), **fresh["Parameters"]}})
    for column in wanted.values():
        merged.append(_glue_column(column))
        report.added_columns.append(column.name)
    return merged


def _pruned(value: Any) -> Any:
    """Empty values dropped: Glue omits an empty comment or parameter map that was sent."""
    if isinstance(value, dict):
        return {k: _pruned(v) for k, v in value.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class GlueProjection:
    """Writes one environment's Glue database from the catalog's state; see the module docstring."""

    def __init__(self, database: str, lake_root: str, client: Any = None):
        if client is None:
            import boto3

            client = boto3.client("glue")
        self.database = database
        self.lake = Lake(lake_root)
        self.client = client
        self._table_input_keys = set(client.meta.service_model.shape_for("TableInput").members)

    def ensure_database(self) -> None:
        """Creates the database if it is missing (so a role without ``glue:CreateDatabase`` can run once it
        exists); a concurrent creation is fine."""
        try:
            self.client.get_database(Name=self.database)
            return
        except self.client.exceptions.EntityNotFoundException:
            pass
        try:
            self.client.create_database(DatabaseInput={
                "Name": self.database, "Description": "medallion_pipeline tables (a projection of the catalog)"})
        except self.client.exceptions.AlreadyExistsException:
            pass

    def sync_table(self, table: TableId, description: str, columns: Sequence[Column], partitions: Mapping[str, str],
                   *, only: Iterable[str] | None = None) -> SyncReport:
        """Makes Glue's table and partitions match the catalog; with ``only``, just those dts' partitions.

        ``partitions`` maps dt -> the location of its current version. Nothing is written when nothing differs.
        """
        report = SyncReport(table.sql_name)
        current = self._get_table(table)
        if current is None:
            desired = self._table_input(table, description, _merge_columns([], columns, report), {})
            self.client.create_table(DatabaseName=self.database, TableInput=desired)
            report.created_table = True
        else:
            base = {key: value for key, value in current.items() if key in self._table_input_keys}
            merged = _merge_columns(base.get("StorageDescriptor", {}).get("Columns", []), columns, report)
            desired = self._table_input(table, description, merged, base)
            if _pruned(desired) != _pruned(base):
                self.client.update_table(DatabaseName=self.database, TableInput=desired, SkipArchive=True)
        self._sync_partitions(table, desired["StorageDescriptor"], partitions, only, report)
        log.log(logging.INFO if report.changed else logging.DEBUG, "glue %s: %s", self.database, report)
        return report

    def drop_table(self, table: TableId) -> SyncReport:
        """Removes the table (and its partitions) from Glue if it is there: for a table not projected."""
        report = SyncReport(table.sql_name)
        try:
            self.client.delete_table(DatabaseName=self.database, Name=table.sql_name)
            report.dropped_table = True
        except self.client.exceptions.EntityNotFoundException:
            pass
        return report

    def partition_locations(self, table: TableId) -> dict[str, str]:
        """dt -> Location of every partition as Glue has it (empty if the table does not exist)."""
        pages = self.client.get_paginator("get_partitions").paginate(
            DatabaseName=self.database, TableName=table.sql_name)
        try:
            return _locations(p for page in pages for p in page["Partitions"])
        except self.client.exceptions.EntityNotFoundException:
            return {}

    def _get_table(self, table: TableId) -> dict | None:
        try:
            return self.client.get_table(DatabaseName=self.database, Name=table.sql_name)["Table"]
        except self.client.exceptions.EntityNotFoundException:
            return None

    def _table_input(self, table: TableId, description: str, columns: list[dict], base: dict) -> dict:
        """The table as it should be: ``base`` (what Glue has) with what this module owns set on top."""
        storage = dict(base.get("StorageDescriptor", {}))
        serde = dict(storage.get("SerdeInfo", {}))
        serde.update(SerializationLibrary=PARQUET_SERDE,
                     Parameters={**serde.get("Parameters", {}), "serialization.format": "1"})
        storage.update(Columns=columns, Location=self.lake.table_root(table), InputFormat=PARQUET_INPUT,
                       OutputFormat=PARQUET_OUTPUT, SerdeInfo=serde)
        return {**base, "Name": table.sql_name, "Description": _truncate(description, DESCRIPTION_LIMIT),
                "TableType": "EXTERNAL_TABLE", "PartitionKeys": [{"Name": PARTITION_KEY, "Type": "string"}],
                "Parameters": {**base.get("Parameters", {}), "classification": "parquet", "EXTERNAL": "TRUE"},
                "StorageDescriptor": storage}

    def _sync_partitions(self, table: TableId, storage: dict, partitions: Mapping[str, str],
                         only: Iterable[str] | None, report: SyncReport) -> None:
        if only is None:
            glue, wanted = self.partition_locations(table), dict(partitions)
        else:
            scope = set(only)
            glue = self._locations_of(table, sorted(scope))
            wanted = {dt: location for dt, location in partitions.items() if dt in scope}
        create = [dt for dt in sorted(wanted) if dt not in glue]
        update = [dt for dt in sorted(wanted) if dt in glue and glue[dt] != wanted[dt]]
        delete = sorted(set(glue) - set(wanted))
        where = {"DatabaseName": self.database, "TableName": table.sql_name}
        inputs = {dt: {"Values": [dt], "StorageDescriptor": {**storage, "Location": wanted[dt]}}
                  for dt in create + update}
        for chunk in _chunks(create, CREATE_BATCH):
            self._check("create", table, self.client.batch_create_partition(
                **where, PartitionInputList=[inputs[dt] for dt in chunk]))
        for chunk in _chunks(update, UPDATE_BATCH):
            self._check("update", table, self.client.batch_update_partition(
                **where, Entries=[{"PartitionValueList": [dt], "PartitionInput": inputs[dt]} for dt in chunk]))
        for chunk in _chunks(delete, DELETE_BATCH):
            self._check("delete", table, self.client.batch_delete_partition(
                **where, PartitionsToDelete=[{"Values": [dt]} for dt in chunk]))
        report.partitions_created, report.partitions_updated = len(create), len(update)
        report.partitions_deleted, report.partitions_unchanged = len(delete), len(wanted) - len(create) - len(update)

    def _locations_of(self, table: TableId, dts: list[str], attempts: int = 5) -> dict[str, str]:
        """dt -> Location for just these dts (the publish path must not list a table of years)."""
        found: dict[str, str] = {}
        pending = [{"Values": [dt]} for dt in dts]
        for attempt in range(attempts):
            unprocessed: list[dict] = []
            for chunk in _chunks(pending, GET_BATCH):
                response = self.client.batch_get_partition(
                    DatabaseName=self.database, TableName=table.sql_name, PartitionsToGet=list(chunk))
                found.update(_locations(response.get("Partitions", [])))
                unprocessed += response.get("UnprocessedKeys", [])
            if not unprocessed:
                return found
            pending = unprocessed
            time.sleep(0.2 * 2 ** attempt)
        raise RuntimeError(f"Glue kept {len(pending)} partition(s) of {self.database}.{table.sql_name} unprocessed")

    def _check(self, action: str, table: TableId, response: dict) -> None:
        """Batch calls succeed as a whole and fail per entry: any entry error fails the sync."""
        if errors := response.get("Errors"):
            details = "; ".join(
                f"dt={(error.get('PartitionValues') or error.get('PartitionValueList') or ['?'])[0]}: "
                f"{error['ErrorDetail'].get('ErrorCode')}: {error['ErrorDetail'].get('ErrorMessage')}"
                for error in errors)
            raise RuntimeError(f"Glue could not {action} {len(errors)} partition(s) of "
                               f"{self.database}.{table.sql_name} ({details}); `medallion catalog sync` repairs it")


def _locations(partitions: Iterable[dict]) -> dict[str, str]:
    return {p["Values"][0]: p.get("StorageDescriptor", {}).get("Location", "") for p in partitions}
