"""The DynamoDB catalog's item layout: keys, encoding, and the ledger's chunked snapshots.

One table, string keys ``pk``/``sk``, on-demand capacity. Every item kind, with ``q`` a qualified table name:

=====================  ========================  ===============================================================
pk                     sk                        what
=====================  ========================  ===============================================================
``P#q``                ``dt``                    the partition's pointer: ``version_id``, ``published_at``
``V#q``                ``dt#version_id``         a version: location, segments, counts, columns, lineage, ``state``
                                                 (published | rejected | expired), ``previous_version_id``,
                                                 ``published_at``/``rejected_at``, ``ledger_chunks``
``H#q``                ``at_ns#dt#id``           a rollback event (publish and reject events are the versions)
``L#q#dt#version_id``  ``0000``, ``0001``...     the partition's whole ingest ledger as of that version
``X#q#dt``             ``at_ns#id``              ledger entries recorded without a new version, ``owner``
``LEASE``              ``q#version_id``          a staging lease: ``run_id``, ``started_at``, ``revoked_at``
``T``                  ``q``                     the table: description, latest columns, schema history,
                                                 ``revision`` (the compare-and-swap of schema updates)
``C#q``                ``dt#check``              the latest outcome of a check on a partition
=====================  ========================  ===============================================================
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Iterator
from decimal import Decimal

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from medallion_pipeline.resources.catalog.base import Column, LedgerEntry, PartitionVersion
from medallion_pipeline.tables import TableId

CHUNK_BYTES = 300_000  # DynamoDB items hold 400 KB; a ledger snapshot chunk stays well below
_serializer, _deserializer = TypeSerializer(), TypeDeserializer()


def encode(item: dict) -> dict:
    """A plain dict (str, int, float, bool, None) as DynamoDB attribute values; None attributes are left out."""
    return {k: _serializer.serialize(Decimal(str(v)) if isinstance(v, float) else v)
            for k, v in item.items() if v is not None}


def decode(item: dict) -> dict:
    plain = {k: _deserializer.deserialize(v) for k, v in item.items()}
    return {k: (int(v) if isinstance(v, Decimal) and v == v.to_integral_value() else
                float(v) if isinstance(v, Decimal) else v) for k, v in plain.items()}


def key(pk: str, sk: str) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def pointer_key(table: TableId, dt: str) -> dict:
    return key(f"P#{table.qualified}", dt)


def version_key(table: TableId, dt: str, version_id: str) -> dict:
    return key(f"V#{table.qualified}", f"{dt}#{version_id}")


def lease_key(table: TableId, version_id: str) -> dict:
    return key("LEASE", f"{table.qualified}#{version_id}")


def table_key(table: TableId) -> dict:
    return key("T", table.qualified)


def ledger_pk(table: TableId, dt: str, version_id: str) -> str:
    return f"L#{table.qualified}#{dt}#{version_id}"


def extras_pk(table: TableId, dt: str) -> str:
    return f"X#{table.qualified}#{dt}"


def unique_sk(*parts: str) -> str:
    """Sorts by commit time (nanoseconds, zero-padded) and never collides."""
    return "#".join((f"{time.time_ns():020d}", *parts, uuid.uuid4().hex[:8]))


def version_item(v: PartitionVersion, state: str, now: str, **extra) -> dict:
    return {
        **version_key(v.table, v.dt, v.version_id),
        **encode({
            "dt": v.dt, "version_id": v.version_id, "location": v.location, "row_count": v.row_count,
            "columns": json.dumps([c.__dict__ for c in v.columns]), "stats": json.dumps(v.stats),
            "run_id": v.run_id, "created_at": v.created_at or now, "state": state,
            "built_from": json.dumps(v.built_from, sort_keys=True), "segments": json.dumps(list(v.segments)),
            "at_ns": time.time_ns(), **extra,
        }),
    }


def segments_of(item: dict) -> list[str]:
    """A version item's segments (items written before segments existed have none)."""
    return json.loads(item.get("segments", "[]"))


def to_version(table: TableId, item: dict) -> PartitionVersion:
    return PartitionVersion(
        table=table, dt=item["dt"], version_id=item["version_id"], location=item["location"],
        row_count=item["row_count"], columns=columns_from_json(item["columns"]), stats=json.loads(item["stats"]),
        run_id=item["run_id"], created_at=item["created_at"], state=item["state"],
        built_from=json.loads(item["built_from"]), segments=tuple(segments_of(item)),
    )


def columns_from_json(text: str) -> tuple[Column, ...]:
    return tuple(Column(**c) for c in json.loads(text))


def entries_to_rows(entries: Iterable[LedgerEntry]) -> list[list]:
    return [[e.key, e.size, e.etag, e.status] for e in entries]


def rows_to_entries(dt: str, rows: Iterable[list]) -> list[LedgerEntry]:
    return [LedgerEntry(dt, k, size, etag, status) for k, size, etag, status in rows]


def chunks(entries: list[LedgerEntry]) -> Iterator[str]:
    """The entries as JSON arrays of at most ``CHUNK_BYTES`` each (one item apiece)."""
    batch: list[list] = []
    size = 2
    for row in entries_to_rows(entries):
        row_size = len(json.dumps(row)) + 1
        if batch and size + row_size > CHUNK_BYTES:
            yield json.dumps(batch)
            batch, size = [], 2
        batch.append(row)
        size += row_size
    if batch:
        yield json.dumps(batch)
