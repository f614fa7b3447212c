"""The AWS catalog: transactional state in DynamoDB, the Glue Data Catalog as the projection Athena reads.

Every writer — the Dagster process, a spark-submit driver, an EMR Serverless driver with its job role —
builds this catalog from the same settings and commits with ``TransactWriteItems``, so the
compare-and-swap of ``Catalog.publish_many`` holds across machines: each pointer write is conditioned on
the version the writer read (``expected``, or the version read just before the commit), each staging lease
delete on the lease not being revoked, each table item (schema history) on its revision. The item layout is
in ``dynamo_items``.

**Ledgers larger than a transaction.** ``TransactWriteItems`` takes 100 items, and a bronze partition may
hold thousands of landing files, so ledger entries are not items of the transaction: before committing, the
writer stores the partition's *whole* ledger as of the new version in chunk items keyed by that version
(``L#table#dt#version``, ~300 KB each). Nothing reads them until the pointer names the version, and the
pointer moves in the transaction — so the ledger and the current version change together, whatever the
number of files: a crash before the commit leaves unreferenced chunks (harmless; never read), a crash after
it leaves a complete ledger. Rolling a version back restores its predecessor's ledger by construction, and
entries recorded without a new version (only unreadable files arrived) are small ``X#`` items owned by the
version current when they were written, which vanish from the ledger with that version.

**Days are the unit of atomicity.** A ranged run (a 30-day backfill of silver and quarantine) exceeds 100
items, so ``publish_many`` commits whole days in ``dt`` order, every table's items of a day in the same
transaction, as many days per transaction as fit; a day is never split. If a later day conflicts, the
earlier days stay published and ``PublishConflict`` says which were not. Dagster's per-(layer, day)
partition locks keep two runs off the same day, so a conflict means something outside the pipeline wrote.

**Glue is updated after the commit** (it has no conditional writes): the touched partitions are synced
through ``glue.GlueProjection``; a failure is logged, never raised, and ``medallion catalog sync`` repairs
it from DynamoDB. Every layer but bronze is projected (columns with their `pii` tags). Bronze is not: it holds
raw personal data that Athena users have no need for, and a bronze partition is a version made of segments
(several directories, see ``PartitionVersion.segments``), which a Glue partition's one location cannot name —
a symlink manifest per version would be the Athena-compatible way if bronze ever had to be queried there. Its
readers are the pipeline's jobs and ``medallion query``, which resolve segments through the catalog. A Glue
bronze table left by an earlier release is removed by ``medallion catalog sync``.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence

import boto3

from medallion_pipeline.resources.catalog import dynamo_items as items
from medallion_pipeline.resources.catalog.base import (
    Catalog,
    LedgerEntry,
    PublishConflict,
    PublishRequest,
    utc_now,
)
from medallion_pipeline.resources.catalog.dynamo_state import Cancelled
from medallion_pipeline.resources.catalog.dynamo_upkeep import MAX_ITEMS, DynamoUpkeep
from medallion_pipeline.tables import GLUE_TABLES, TableId

log = logging.getLogger(__name__)
RETRIES = 5


class DynamoCatalog(DynamoUpkeep, Catalog):
    """The catalog on AWS; ``projection`` (a ``GlueProjection``) is what Athena reads."""

    def __init__(self, table_name: str, *, client=None, projection=None):
        self.table_name = table_name
        self.client = client or boto3.client("dynamodb")
        self.projection = projection
        self._database_ready = False

    @staticmethod
    def _pointer_condition(version_id: str | None) -> tuple[str, dict]:
        if version_id is None:
            return "attribute_not_exists(pk)", {}
        return "version_id = :expected", {":expected": version_id}

    # -- publish ----------------------------------------------------------------------------------------

    def publish_many(self, requests: Sequence[PublishRequest]) -> dict[TableId, dict[str, list[str]]]:
        self.check_one_request_per_table(requests)
        result: dict[TableId, dict[str, list[str]]] = {r.table: {} for r in requests}
        done: list[str] = []
        for group in self._day_groups(requests):
            for attempt in range(RETRIES):
                labelled, new_columns = self._plan(requests, group)
                try:
                    if labelled:
                        self._transact(labelled)
                    break
                except Cancelled as cancelled:
                    self._raise_conflict(cancelled, done)
                    if attempt == RETRIES - 1:
                        raise PublishConflict(f"days {group[0]}..{group[-1]} kept changing; rerun") from cancelled
            done.extend(group)
            for table, by_dt in new_columns.items():
                result[table].update(by_dt)
            for request in requests:
                self._project(request.table, [dt for dt in group if dt in self._touched(request)])
        return result

    @staticmethod
    def _touched(request: PublishRequest) -> set[str]:
        return {v.dt for v in request.versions} | {e.dt for e in request.ledger}

    def _day_groups(self, requests: Sequence[PublishRequest]) -> list[list[str]]:
        """Days in ``dt`` order packed into transactions of at most ``MAX_ITEMS`` items, never split."""
        cost: dict[str, int] = defaultdict(int)
        for r in requests:
            published = {v.dt for v in r.versions}
            for v in r.versions:
                cost[v.dt] += 3  # pointer, version, lease
            for dt in set(r.expected or {}) - published:
                cost[dt] += 1  # a condition check
            by_dt: dict[str, list[LedgerEntry]] = defaultdict(list)
            for e in r.ledger:
                by_dt[e.dt].append(e)
            for dt in set(by_dt) - published:
                cost[dt] += sum(1 for _ in items.chunks(by_dt[dt]))  # extras items
        overhead = len(requests)  # one table item per request
        groups: list[list[str]] = []
        size = 0
        for dt in sorted(cost):
            if cost[dt] + overhead > MAX_ITEMS:
                raise ValueError(f"{dt}: {cost[dt]} items exceed one DynamoDB transaction ({MAX_ITEMS})")
            if not groups or size + cost[dt] + overhead > MAX_ITEMS:
                groups.append([])
                size = 0
            groups[-1].append(dt)
            size += cost[dt]
        return groups

    def _plan(self, requests: Sequence[PublishRequest], group: list[str]):
        """Read the current state of the group's days and build the transaction's items (labelled)."""
        days, now = set(group), utc_now()
        labelled: list[tuple[tuple[str, str], dict]] = []
        new_columns: dict[TableId, dict[str, list[str]]] = {}
        for r in requests:
            table = r.table
            versions = sorted((v for v in r.versions if v.dt in days), key=lambda v: v.dt)
            expected = {dt: vid for dt, vid in (r.expected or {}).items() if dt in days}
            entries: dict[str, list[LedgerEntry]] = defaultdict(list)
            for e in r.ledger:
                if e.dt in days:
                    entries[e.dt].append(e)
            pointers = self._pointers(table, {v.dt for v in versions} | set(expected) | set(entries))
            for dt, vid in expected.items():
                if pointers.get(dt) != vid:
                    raise PublishConflict(
                        f"{table} {dt}: current version is {pointers.get(dt)}, expected {vid}; another run "
                        "published it meanwhile — rerun to build on the new version")
            meta = self._table_item(table)
            has_ledger = bool(meta.get("has_ledger")) or bool(entries)
            schema = json.loads(meta.get("schema", "{}"))
            known = bool(schema)
            new_columns[table] = {}
            for v in versions:
                previous = pointers.get(v.dt)
                ledger = [] if r.replace_ledger or not has_ledger else self._ledger_as_of(table, v.dt, previous)
                merged = {e.key: e for e in (*ledger, *entries.get(v.dt, ()))}
                n_chunks = self._write_snapshot(table, v.dt, v.version_id, list(merged.values()))
                condition, values = self._pointer_condition(previous)
                label = "expected" if v.dt in expected else "pointer"
                labelled.append(((label, f"{table} {v.dt}"), self._conditional(
                    "Update", items.pointer_key(table, v.dt), condition, {**values, ":v": v.version_id, ":at": now},
                    UpdateExpression="SET version_id = :v, published_at = :at")))
                labelled.append((("version", f"{table} {v.dt} {v.version_id}"), {"Put": {
                    "TableName": self.table_name, "ConditionExpression": "attribute_not_exists(pk)",
                    "Item": items.version_item(v, "published", now, previous_version_id=previous, published_at=now,
                                               ledger_chunks=n_chunks)}}))
                new_columns[table][v.dt] = self._record_schema(schema, v, now, known)
                known = True
            for dt in sorted(set(expected) - {v.dt for v in versions}):
                condition, values = self._pointer_condition(expected[dt])
                labelled.append((("expected", f"{table} {dt}"), self._conditional(
                    "ConditionCheck", items.pointer_key(table, dt), condition, values)))
            for dt in sorted(set(entries) - {v.dt for v in versions}):
                for chunk in items.chunks(entries[dt]):
                    labelled.append((("extra", f"{table} {dt}"), {"Put": {"TableName": self.table_name, "Item": {
                        **items.key(items.extras_pk(table, dt), items.unique_sk()),
                        **items.encode({"owner": pointers.get(dt) or "", "entries": chunk})}}}))
            for version_id in sorted({v.version_id for v in versions}):
                labelled.append((("lease", f"{table} {version_id}"), self._conditional(
                    "Delete", items.lease_key(table, version_id), "attribute_not_exists(revoked_at)")))
            if versions or entries:
                labelled.append((("table", str(table)), self._table_put(r, meta, versions, schema, has_ledger, now)))
        return labelled, new_columns

    def _table_put(self, r: PublishRequest, meta: dict, versions, schema: dict, has_ledger: bool, now: str) -> dict:
        revision = meta.get("revision", 0)
        latest = max(versions, key=lambda v: v.dt) if versions else None
        item = {**meta, "schema": json.dumps(schema, sort_keys=True), "has_ledger": has_ledger,
                "revision": revision + 1, "updated_at": now}
        if latest is not None:
            item.update(description=r.description, columns=json.dumps([c.__dict__ for c in latest.columns]))
        item.pop("pk", None), item.pop("sk", None)
        condition = "attribute_not_exists(pk)" if not revision else "revision = :r"
        body = {"TableName": self.table_name, "Item": {**items.table_key(r.table), **items.encode(item)},
                "ConditionExpression": condition}
        if revision:
            body["ExpressionAttributeValues"] = items.encode({":r": revision})
        return {"Put": body}

    @staticmethod
    def _record_schema(schema: dict, v, now: str, known: bool) -> list[str]:
        added = []
        for column in v.columns:
            seen = schema.get(column.name)
            if seen is None:
                added.append(column.name)
                schema[column.name] = {"type": column.type, "first_dt": v.dt, "first_version_id": v.version_id,
                                       "first_seen_at": now}
            elif v.dt < seen["first_dt"]:
                seen.update(first_dt=v.dt, first_version_id=v.version_id)
        return added if known else []

    def _write_snapshot(self, table: TableId, dt: str, version_id: str, entries: list[LedgerEntry]) -> int:
        """Stored before the commit; invisible until the pointer names ``version_id`` (see the docstring)."""
        n = 0
        for n, chunk in enumerate(items.chunks(sorted(entries, key=lambda e: e.key)), start=1):
            self.client.put_item(TableName=self.table_name, Item={
                **items.key(items.ledger_pk(table, dt, version_id), f"{n - 1:04d}"), **items.encode({"rows": chunk})})
        return n

    # -- rollback ---------------------------------------------------------------------------------------

    def rollback(self, table, dt, reason, run_id=""):
        now = utc_now()
        current = self._pointers(table, [dt]).get(dt)
        if current is None:
            raise LookupError(f"{table} has no published partition {dt}")
        version = self._get(items.version_key(table, dt, current)) or {}
        target = version.get("previous_version_id")
        previous = self._get(items.version_key(table, dt, target)) if target else None
        if not previous or previous.get("state") != "published":
            raise LookupError(f"{table} {dt}: no earlier version to roll back to")
        try:
            self._transact([
                (("expected", f"{table} {dt}"), self._conditional(
                    "Update", items.pointer_key(table, dt), "version_id = :expected",
                    {":expected": current, ":v": target, ":at": now},
                    UpdateExpression="SET version_id = :v, published_at = :at")),
                (("previous", f"{table} {dt} {target}"), self._conditional(
                    "ConditionCheck", items.version_key(table, dt, target), "#s = :published", {":published": "published"},
                    ExpressionAttributeNames={"#s": "state"})),
                (("event", ""), {"Put": {"TableName": self.table_name, "Item": {
                    **items.key(f"H#{table.qualified}", items.unique_sk(dt)),
                    **items.encode({"dt": dt, "version_id": target, "previous_version_id": current, "run_id": run_id,
                                    "reason": reason, "at": now})}}}),
            ])
        except Cancelled as cancelled:
            raise PublishConflict(f"{table} {dt}: changed during the rollback ({cancelled.failed}); retry") from None
        self._project(table, [dt])
        return self.current(table, [dt])[dt]

    # -- Glue -------------------------------------------------------------------------------------------

    def _project(self, table: TableId, dts: Iterable[str]) -> None:
        """Sync the touched partitions to Glue after a commit; a failure is logged (``catalog sync`` repairs)."""
        dts = sorted(set(dts))
        if self.projection is None or not dts or table not in GLUE_TABLES:
            return
        try:
            self.sync(table, only=dts)
        except Exception:  # noqa: BLE001 — DynamoDB is committed; Glue is repaired by `medallion catalog sync`
            log.warning("Glue projection of %s %s failed; run `medallion catalog sync --table %s`",
                        table, ",".join(dts), table, exc_info=True)

    def sync(self, table: TableId, only: Sequence[str] | None = None):
        """Make Glue's table and partitions match DynamoDB (all partitions, or ``only`` these days); a table
        that is not projected (bronze) is removed from Glue if an earlier release put it there."""
        if self.projection is None:
            raise ValueError("this catalog has no Glue projection")
        if not self._database_ready:
            self.projection.ensure_database()
            self._database_ready = True
        if table not in GLUE_TABLES:
            return self.projection.drop_table(table)
        meta = self._table_item(table)
        current = self.current(table, only) if only is not None else {p.dt: p for p in self.partitions(table)}
        columns = items.columns_from_json(meta["columns"]) if "columns" in meta else ()
        return self.projection.sync_table(table, meta.get("description", ""), columns,
                                          {dt: v.location for dt, v in current.items()}, only=only)
