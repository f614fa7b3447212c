"""The DynamoDB catalog's upkeep: rejected versions, staging leases, check records, vacuum's primitives."""

from __future__ import annotations

from medallion_pipeline.resources.catalog import dynamo_items as items
from medallion_pipeline.resources.catalog.base import CheckRecord, PublishConflict, StagingLease, utc_now
from medallion_pipeline.resources.catalog.dynamo_state import Cancelled, DynamoState
from medallion_pipeline.tables import ALL_TABLES, TableId

MAX_ITEMS = 100  # TransactWriteItems


class DynamoUpkeep(DynamoState):
    """Mixed into ``DynamoCatalog``: everything but publishing and rolling back."""

    # -- reject, leases -----------------------------------------------------------------------------

    def reject(self, table, versions, reason):
        now = utc_now()
        labelled = []
        for v in versions:
            labelled.append((("version", f"{table} {v.dt} {v.version_id}"), {"Put": {
                "TableName": self.table_name, "ConditionExpression": "attribute_not_exists(pk)",
                "Item": items.version_item(v, "rejected", now, rejected_at=now, reason=reason)}}))
        for version_id in sorted({v.version_id for v in versions}):
            labelled.append((("lease", f"{table} {version_id}"), self._conditional(
                "Delete", items.lease_key(table, version_id), "attribute_not_exists(revoked_at)")))
        for start in range(0, len(labelled), MAX_ITEMS):
            try:
                self._transact(labelled[start:start + MAX_ITEMS])
            except Cancelled as cancelled:
                self._raise_conflict(cancelled, [])
                raise PublishConflict(f"{table}: the reject transaction was cancelled ({cancelled.failed}); retry") from None

    def begin_staging(self, table, version_id, run_id):
        self.client.put_item(
            TableName=self.table_name, ConditionExpression="attribute_not_exists(pk)",
            Item={**items.lease_key(table, version_id), **items.encode({"run_id": run_id, "started_at": utc_now()})})

    def revoke_leases(self, leases):
        revoked: set[tuple[str, str]] = set()
        for lease in leases:
            try:  # a publish since the read deleted the lease: nothing to revoke
                self.client.update_item(
                    TableName=self.table_name, Key=items.lease_key(lease.table, lease.version_id),
                    UpdateExpression="SET revoked_at = :now", ExpressionAttributeValues=items.encode({":now": utc_now()}),
                    ConditionExpression="attribute_exists(pk) AND attribute_not_exists(revoked_at)")
                revoked.add((lease.table.qualified, lease.version_id))
            except self.client.exceptions.ConditionalCheckFailedException:
                pass
        return revoked

    # -- checks -----------------------------------------------------------------------------------------

    def record_checks(self, table, checks, run_id=""):
        now = utc_now()
        latest = {(c.dt, c.check): c for c in checks}  # one item per key and batch: the last outcome wins
        puts = [{"PutRequest": {"Item": {
            **items.key(f"C#{table.qualified}", f"{c.dt}#{c.check}"),
            **items.encode({"dt": c.dt, "check": c.check, "severity": c.severity, "passed": c.passed,
                            "observed": c.observed, "threshold": c.threshold, "run_id": run_id, "at": now})}}}
            for c in latest.values()]
        self._batch_write(puts)

    def latest_checks(self, table, dts):
        wanted = set(dts)
        found = [i for i in self._query(f"C#{table.qualified}") if i["dt"] in wanted]
        return [CheckRecord(i["dt"], i["check"], i["severity"], i["passed"], i.get("observed"), i.get("threshold"))
                for i in sorted(found, key=lambda i: (i["dt"], i["check"]))]

    # -- vacuum primitives ------------------------------------------------------------------------------

    def owners(self):
        leases = self.staging_leases()  # first: a version moves from the leases to the references atomically
        referenced = {(t.qualified, i["version_id"]) for t in ALL_TABLES
                      for i in self._query(f"V#{t.qualified}") if i["state"] != "expired"}
        return referenced, leases

    def staging_leases(self):
        leases = [StagingLease(TableId(*i["sk"].rsplit("#", 1)[0].split(".", 1)), i["sk"].rsplit("#", 1)[1],
                               i["run_id"], i["started_at"], i.get("revoked_at")) for i in self._query("LEASE")]
        return sorted(leases, key=lambda lease: (lease.started_at, lease.version_id))

    def forget_expired_versions(self, keep, grace_seconds):
        expired: list[str] = []
        for table in ALL_TABLES:
            forgotten: set[tuple[str, str]] = set()
            for version, listed_by in self._expirable(table, keep, grace_seconds):  # listers come first
                # Each transaction expires one version: one listing this one as a segment that was not expired
                # (current again after a rollback) could become current later, so this one stays.
                if any((version["dt"], other) not in forgotten for other in listed_by):
                    continue
                try:
                    self._transact([
                        (("current", ""), self._conditional(
                            "ConditionCheck", items.pointer_key(table, version["dt"]),
                            "attribute_not_exists(pk) OR version_id <> :v", {":v": version["version_id"]})),
                        (("version", ""), self._conditional(
                            "Update", items.version_key(table, version["dt"], version["version_id"]), "#s <> :x",
                            {":x": "expired", ":at": utc_now()}, UpdateExpression="SET #s = :x, expired_at = :at",
                            ExpressionAttributeNames={"#s": "state"})),
                    ])
                except Cancelled:
                    continue  # current again (a rollback) or already expired
                forgotten.add((version["dt"], version["version_id"]))
                self._delete_snapshot(table, version["dt"], version["version_id"])
                expired.append(version["location"])
        return expired
