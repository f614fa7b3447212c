"""The DynamoDB catalog's transactions helper and its reads: strongly consistent, so a writer's compare-and-swap starts from the truth.

History is derived, not stored twice: every version item records when it was published (and what it
replaced) or rejected, and rollbacks are their own ``H#`` items; vacuum turns expired versions into
tombstones (``state = expired``), which keeps their history and drops them from ``versions``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from medallion_pipeline.resources.catalog import dynamo_items as items
from medallion_pipeline.resources.catalog.base import (
    HistoryEvent,
    LedgerEntry,
    PartitionVersion,
    PublishConflict,
    SchemaChange,
)
from medallion_pipeline.resources.catalog.vacuum import expirable
from medallion_pipeline.tables import TableId


class Cancelled(Exception):
    """A transaction's conditions failed: which items, by label."""

    def __init__(self, failed: list[tuple[str, str]]):
        super().__init__(failed)
        self.failed = failed  # (label, detail) of each item whose condition failed


class DynamoState:
    """Mixed into ``DynamoCatalog``: ``self.client`` (DynamoDB) and ``self.table_name`` come from it."""

    client: object
    table_name: str

    def create_table(self) -> None:
        """Create the state table if it is missing (deploy/terraform provisions it in production)."""
        try:
            self.client.create_table(
                TableName=self.table_name, BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                      {"AttributeName": "sk", "AttributeType": "S"}])
        except self.client.exceptions.ResourceInUseException:
            return
        self.client.get_waiter("table_exists").wait(TableName=self.table_name)

    # -- transactions -----------------------------------------------------------------------------------

    def _transact(self, labelled: list[tuple[tuple[str, str], dict]]) -> None:
        try:
            self.client.transact_write_items(TransactItems=[item for _, item in labelled])
        except self.client.exceptions.TransactionCanceledException as e:
            reasons = e.response.get("CancellationReasons", [])
            codes = {r.get("Code") for r in reasons} - {None, "None", "ConditionalCheckFailed", "TransactionConflict"}
            if codes:
                raise
            # Only a failed condition says something about the state; a TransactionConflict (another
            # transaction on the same item at that moment) is transient, so those items count as "retry".
            failed = [label for (label, _), r in zip(labelled, reasons) if r.get("Code") == "ConditionalCheckFailed"]
            raise Cancelled(failed or [("retry", "")]) from e

    def _conditional(self, kind: str, key: dict, condition: str, values: dict | None = None, **extra) -> dict:
        body = {"TableName": self.table_name, "Key": key, "ConditionExpression": condition, **extra}
        if values:
            body["ExpressionAttributeValues"] = items.encode(values)
        return {kind: body}

    def _raise_conflict(self, cancelled: Cancelled, done: list[str]) -> None:
        """Conditions the writer asserted failed: a conflict. Others (a pointer or schema that moved): retry."""
        published = f" (days {done[0]}..{done[-1]} were published before)" if done else ""
        for label, detail in cancelled.failed:
            if label == "expected":
                raise PublishConflict(f"{detail}: another run published it meanwhile — rerun{published}")
            if label == "lease":
                raise PublishConflict(f"{detail}: vacuum revoked its staging lease (the run was no longer in "
                                      f"progress) and may have deleted its files — rerun{published}")
            if label == "version":
                raise PublishConflict(f"{detail}: this version is already recorded{published}")

    # -- low level --------------------------------------------------------------------------------------

    def _get(self, key: dict) -> dict | None:
        item = self.client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get("Item")
        return items.decode(item) if item else None

    def _query(self, pk: str, prefix: str | None = None) -> list[dict]:
        condition, values = "pk = :pk", {":pk": pk}
        if prefix is not None:
            condition += " AND begins_with(sk, :prefix)"
            values[":prefix"] = prefix
        found: list[dict] = []
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(TableName=self.table_name, KeyConditionExpression=condition,
                                       ExpressionAttributeValues=items.encode(values), ConsistentRead=True):
            found.extend(items.decode(i) for i in page.get("Items", []))
        return found

    def _batch_get(self, keys: list[dict]) -> list[dict]:
        found: list[dict] = []
        for start in range(0, len(keys), 100):
            request = {self.table_name: {"Keys": keys[start:start + 100], "ConsistentRead": True}}
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                found.extend(items.decode(i) for i in response["Responses"].get(self.table_name, []))
                request = response.get("UnprocessedKeys") or None
        return found

    def _pointers(self, table: TableId, dts: Iterable[str]) -> dict[str, str]:
        keys = [items.pointer_key(table, dt) for dt in sorted(set(dts))]
        return {i["sk"]: i["version_id"] for i in self._batch_get(keys)}

    def _table_item(self, table: TableId) -> dict:
        return self._get(items.table_key(table)) or {}

    # -- the Catalog readers ----------------------------------------------------------------------------

    def current(self, table: TableId, dts: Iterable[str]) -> dict[str, PartitionVersion]:
        pointers = self._pointers(table, dts)
        found = self._batch_get([items.version_key(table, dt, vid) for dt, vid in pointers.items()])
        return {i["dt"]: items.to_version(table, i) for i in found}

    def partitions(self, table: TableId) -> list[PartitionVersion]:
        pointers = {i["sk"]: i["version_id"] for i in self._query(f"P#{table.qualified}")}
        found = self._batch_get([items.version_key(table, dt, vid) for dt, vid in pointers.items()])
        return sorted((items.to_version(table, i) for i in found), key=lambda v: v.dt)

    def versions(self, table: TableId, dt: str) -> list[PartitionVersion]:
        found = [i for i in self._query(f"V#{table.qualified}", f"{dt}#") if i["state"] != "expired"]
        found.sort(key=lambda i: (i["created_at"], i["version_id"]), reverse=True)
        return [items.to_version(table, i) for i in found]

    def history(self, table: TableId, dt: str | None = None) -> list[HistoryEvent]:
        events: list[tuple[int, str, HistoryEvent]] = []
        for i in self._query(f"V#{table.qualified}", None if dt is None else f"{dt}#"):
            if "published_at" in i:
                events.append((i["at_ns"], i["dt"], HistoryEvent(
                    table, i["dt"], "publish", i["version_id"], i.get("previous_version_id"), i["run_id"], "",
                    i["published_at"])))
            elif "rejected_at" in i:
                events.append((i["at_ns"], i["dt"], HistoryEvent(
                    table, i["dt"], "reject", i["version_id"], None, i["run_id"], i.get("reason", ""),
                    i["rejected_at"])))
        for i in self._query(f"H#{table.qualified}"):
            if dt is None or i["dt"] == dt:
                events.append((int(i["sk"].split("#", 1)[0]), i["dt"], HistoryEvent(
                    table, i["dt"], "rollback", i["version_id"], i["previous_version_id"], i["run_id"], i["reason"],
                    i["at"])))
        return [event for _, _, event in sorted(events, key=lambda e: (e[0], e[1]))]

    def ledger(self, table: TableId, dt: str) -> list[LedgerEntry]:
        return self._ledger_as_of(table, dt, self._pointers(table, [dt]).get(dt))

    def _ledger_as_of(self, table: TableId, dt: str, version_id: str | None) -> list[LedgerEntry]:
        """The version's snapshot plus the entries recorded while it was current (see ``dynamodb``)."""
        merged: dict[str, LedgerEntry] = {}
        if version_id is not None:
            version = self._get(items.version_key(table, dt, version_id)) or {}
            n = version.get("ledger_chunks", 0)
            # Chunks past ``n`` are left over from a retried write of the same version: never part of it.
            stored = [c for c in self._query(items.ledger_pk(table, dt, version_id)) if int(c["sk"]) < n]
            if len(stored) != n:
                raise RuntimeError(f"{table} {dt} {version_id}: ledger snapshot has {len(stored)} of {n} chunks")
            for chunk in stored:
                merged.update((e.key, e) for e in items.rows_to_entries(dt, json.loads(chunk["rows"])))
        for extra in self._query(items.extras_pk(table, dt)):
            if extra["owner"] == (version_id or ""):
                merged.update((e.key, e) for e in items.rows_to_entries(dt, json.loads(extra["entries"])))
        return list(merged.values())

    def tables(self) -> list[tuple[TableId, str, tuple]]:
        found = [i for i in self._query("T") if "columns" in i]
        return [(TableId(*i["sk"].split(".", 1)), i.get("description", ""), items.columns_from_json(i["columns"]))
                for i in sorted(found, key=lambda i: i["sk"])]

    def schema_history(self, table: TableId) -> list[SchemaChange]:
        schema = json.loads(self._table_item(table).get("schema", "{}"))
        changes = [SchemaChange(table, name, c["type"], c["first_dt"], c["first_version_id"], c["first_seen_at"])
                   for name, c in schema.items()]
        return sorted(changes, key=lambda c: (c.first_dt, c.first_seen_at, c.column))

    # -- for vacuum -------------------------------------------------------------------------------------

    def _expirable(self, table: TableId, keep: int, grace_seconds: float) -> list[tuple[dict, list[str]]]:
        """Versions vacuum may forget — not current, not among the newest ``keep``, not current lately, not a
        segment of a version that stays — each with the ids of the versions listing it as a segment, newest
        first per partition (so those come before it)."""
        cutoff = (datetime.now(timezone.utc) - timedelta(seconds=grace_seconds)).isoformat(timespec="milliseconds")
        versions = self._query(f"V#{table.qualified}")
        pointers = {i["sk"]: i["version_id"] for i in self._query(f"P#{table.qualified}")}
        replaced_at: dict[tuple[str, str], str] = {}  # when a version stopped being current
        stops = [(v["dt"], v.get("previous_version_id"), v.get("published_at", "")) for v in versions]
        stops += [(h["dt"], h["previous_version_id"], h["at"]) for h in self._query(f"H#{table.qualified}")]
        for dt, previous, at in stops:
            if previous:
                replaced_at[(dt, previous)] = max(at, replaced_at.get((dt, previous), ""))
        by_dt: dict[str, list[dict]] = defaultdict(list)
        for v in versions:
            if v["state"] != "expired":
                by_dt[v["dt"]].append(v)
        candidates: list[tuple[str, str]] = []
        known: dict[tuple[str, str], dict] = {}
        for dt, found in sorted(by_dt.items()):
            found.sort(key=lambda v: (v["created_at"], v["version_id"]), reverse=True)
            for rank, v in enumerate(found):
                known[(dt, v["version_id"])] = v
                if rank < keep or pointers.get(dt) == v["version_id"] or replaced_at.get((dt, v["version_id"]), "") > cutoff:
                    continue
                candidates.append((dt, v["version_id"]))
        layout = {key: (v["location"], tuple(items.segments_of(v))) for key, v in known.items()}
        removable = expirable(candidates, layout)
        return [(known[key], sorted(other[1] for other in removable[key])) for key in candidates if key in removable]

    def _delete_snapshot(self, table: TableId, dt: str, version_id: str) -> None:
        keys = [{"DeleteRequest": {"Key": items.key(i["pk"], i["sk"])}}
                for i in self._query(items.ledger_pk(table, dt, version_id))]
        self._batch_write(keys)

    def _batch_write(self, requests: list[dict]) -> None:
        """Put/delete requests in batches of 25 (BatchWriteItem's limit), retrying what comes back unprocessed."""
        for start in range(0, len(requests), 25):
            request = {self.table_name: requests[start:start + 25]}
            while request:
                request = self.client.batch_write_item(RequestItems=request).get("UnprocessedItems") or None
