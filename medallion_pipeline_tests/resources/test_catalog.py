"""The catalog contract, run on both catalogs: atomic publish, history, rollback, schema history, ledger, vacuum.

``catalog`` is the embedded SQLite catalog and the AWS one (DynamoDB on the moto server); tests named
``sqlite`` are about that implementation alone.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import pytest

from medallion_pipeline.resources.catalog import (
    Column,
    LedgerEntry,
    PartitionVersion,
    PublishConflict,
    SqliteCatalog,
)
from medallion_pipeline.resources.catalog.dynamodb import DynamoCatalog
from medallion_pipeline.resources.lake import Lake, LocalLakeFiles, new_version_id
from medallion_pipeline.tables import BRONZE_APP_LOGS, SILVER_APP_LOGS

COLUMNS = (Column("event_id", "string"), Column("user_id", "string", pii=True, description="personal"))


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(str(tmp_path / "lake"))


@pytest.fixture(params=["sqlite", "dynamodb"])
def catalog(request, tmp_path: Path):
    if request.param == "sqlite":
        return SqliteCatalog(tmp_path / "lake" / "_catalog" / "catalog.db")
    request.getfixturevalue("aws")
    dynamo = DynamoCatalog("medallion-state")
    dynamo.create_table()
    return dynamo


def stage(lake: Lake, dt: str, columns=COLUMNS, rows: int = 3) -> PartitionVersion:
    """A written (not yet published) partition version with one file in it."""
    version_id = new_version_id()
    location = lake.partition_location(SILVER_APP_LOGS, version_id, dt)
    os.makedirs(location)
    Path(location, "part-0.parquet").write_bytes(b"data of " + version_id.encode())
    return PartitionVersion(SILVER_APP_LOGS, dt, version_id, location, rows, columns, {"rows": rows}, "run-1")


def test_unpublished_version_is_invisible_until_publish(catalog, lake):
    staged = stage(lake, "2024-01-01")
    assert catalog.current(SILVER_APP_LOGS, ["2024-01-01"]) == {}
    catalog.publish(SILVER_APP_LOGS, [staged])
    current = catalog.current(SILVER_APP_LOGS, ["2024-01-01", "2024-01-02"])
    assert list(current) == ["2024-01-01"]
    assert current["2024-01-01"].version_id == staged.version_id
    assert current["2024-01-01"].columns == COLUMNS
    assert current["2024-01-01"].stats == {"rows": 3}


def test_republish_moves_pointer_and_keeps_history(catalog, lake):
    v1, v2 = stage(lake, "2024-01-01"), stage(lake, "2024-01-01")
    catalog.publish(SILVER_APP_LOGS, [v1])
    catalog.publish(SILVER_APP_LOGS, [v2])
    assert catalog.current(SILVER_APP_LOGS, ["2024-01-01"])["2024-01-01"].version_id == v2.version_id
    history = catalog.history(SILVER_APP_LOGS, "2024-01-01")
    assert [(h.action, h.version_id, h.previous_version_id) for h in history] == [
        ("publish", v1.version_id, None),
        ("publish", v2.version_id, v1.version_id),
    ]
    assert [v.version_id for v in catalog.versions(SILVER_APP_LOGS, "2024-01-01")] == [v2.version_id, v1.version_id]


def test_rollback_round_trip(catalog, lake):
    v1, v2 = stage(lake, "2024-01-01"), stage(lake, "2024-01-01")
    catalog.publish(SILVER_APP_LOGS, [v1])
    catalog.publish(SILVER_APP_LOGS, [v2])
    restored = catalog.rollback(SILVER_APP_LOGS, "2024-01-01", reason="bad publish")
    assert restored.version_id == v1.version_id
    assert catalog.current(SILVER_APP_LOGS, ["2024-01-01"])["2024-01-01"].version_id == v1.version_id
    actions = [(h.action, h.version_id, h.reason) for h in catalog.history(SILVER_APP_LOGS, "2024-01-01")]
    assert actions[-1] == ("rollback", v1.version_id, "bad publish")
    assert len(actions) == 3


def test_rollback_without_earlier_version_fails_clearly(catalog, lake):
    catalog.publish(SILVER_APP_LOGS, [stage(lake, "2024-01-01")])
    with pytest.raises(LookupError, match="no earlier version"):
        catalog.rollback(SILVER_APP_LOGS, "2024-01-01", reason="x")
    with pytest.raises(LookupError, match="no published partition"):
        catalog.rollback(SILVER_APP_LOGS, "2024-01-09", reason="x")


def test_publish_of_several_partitions_is_one_transaction(catalog, lake):
    good = stage(lake, "2024-01-01")
    clash = stage(lake, "2024-01-02")
    catalog.publish(SILVER_APP_LOGS, [clash])
    # Publishing the same version id twice is refused: nothing of the batch may land.
    with pytest.raises(PublishConflict, match="already recorded"):
        catalog.publish(SILVER_APP_LOGS, [good, clash], ledger=[LedgerEntry("2024-01-01", "k", 1, "e")])
    assert catalog.current(SILVER_APP_LOGS, ["2024-01-01"]) == {}
    assert catalog.ledger(SILVER_APP_LOGS, "2024-01-01") == []


def test_ledger_is_recorded_with_publish_and_replaced_on_rebuild(catalog, lake):
    entries = [LedgerEntry("2024-01-01", "web/dt=2024-01-01/a.json", 10, "e1"),
               LedgerEntry("2024-01-01", "web/dt=2024-01-01/b.json.gz", 5, "e2", "unreadable")]
    catalog.publish(SILVER_APP_LOGS, [stage(lake, "2024-01-01")], ledger=entries)
    assert sorted(catalog.ledger(SILVER_APP_LOGS, "2024-01-01"), key=lambda e: e.key) == entries
    rebuilt = [LedgerEntry("2024-01-01", "web/dt=2024-01-01/a.json", 10, "e1")]
    catalog.publish(SILVER_APP_LOGS, [stage(lake, "2024-01-01")], ledger=rebuilt, replace_ledger=True)
    assert catalog.ledger(SILVER_APP_LOGS, "2024-01-01") == rebuilt


def test_schema_history_records_where_a_column_first_appeared(catalog, lake):
    region = (*COLUMNS, Column("region", "string"))
    new = catalog.publish(SILVER_APP_LOGS, [stage(lake, "2024-01-01"), stage(lake, "2024-01-02", region)])
    assert new == {"2024-01-01": [], "2024-01-02": ["region"]}
    history = {c.column: c.first_dt for c in catalog.schema_history(SILVER_APP_LOGS)}
    assert history == {"event_id": "2024-01-01", "user_id": "2024-01-01", "region": "2024-01-02"}
    # Seen later in an earlier partition (a backfill): the first partition moves back, nothing is "new".
    assert catalog.publish(SILVER_APP_LOGS, [stage(lake, "2023-12-31", region)]) == {"2023-12-31": []}
    assert {c.column: c.first_dt for c in catalog.schema_history(SILVER_APP_LOGS)}["region"] == "2023-12-31"


def test_tables_lists_columns_with_pii_tags(catalog, lake):
    catalog.publish(SILVER_APP_LOGS, [stage(lake, "2024-01-01")], description="silver events")
    [(table, description, columns)] = catalog.tables()
    assert table == SILVER_APP_LOGS and description == "silver events"
    assert [c.name for c in columns if c.pii] == ["user_id"]


def test_vacuum_keeps_newest_versions_and_the_current_one(catalog, lake):
    versions = [stage(lake, "2024-01-01") for _ in range(4)]
    for v in versions:
        catalog.publish(SILVER_APP_LOGS, [v])
    catalog.rollback(SILVER_APP_LOGS, "2024-01-01", reason="keep v3 current")
    removed = catalog.vacuum(lake, LocalLakeFiles(), keep=1, grace_seconds=0)
    kept = [v.version_id for v in catalog.versions(SILVER_APP_LOGS, "2024-01-01")]
    assert kept == [versions[3].version_id, versions[2].version_id]  # newest, and the current (rolled back)
    assert set(removed) >= {versions[0].location, versions[1].location}
    assert not os.path.exists(versions[0].location)
    assert os.path.exists(versions[2].location) and os.path.exists(versions[3].location)


def test_vacuum_removes_orphans_only_after_the_grace_period(catalog, lake):
    published = stage(lake, "2024-01-01")
    catalog.publish(SILVER_APP_LOGS, [published])
    orphan = stage(lake, "2024-01-01")  # written, never published: a killed run
    orphan_root = lake.version_root(SILVER_APP_LOGS, orphan.version_id)
    assert catalog.vacuum(lake, LocalLakeFiles(), keep=5, grace_seconds=3600) == []
    assert os.path.exists(orphan_root)
    old = time.time() - 7200
    os.utime(orphan_root, (old, old))
    assert catalog.vacuum(lake, LocalLakeFiles(), keep=5, grace_seconds=3600) == [orphan_root]
    assert not os.path.exists(orphan_root) and os.path.exists(published.location)


def test_latest_check_outcome_per_partition(catalog):
    from medallion_pipeline.resources.catalog import CheckRecord

    catalog.record_checks(SILVER_APP_LOGS, [CheckRecord("2024-01-01", "rule", "ERROR", False, 0.2, 0.03),
                                            CheckRecord("2024-01-02", "rule", "ERROR", True, 0.01, 0.03)])
    catalog.record_checks(SILVER_APP_LOGS, [CheckRecord("2024-01-01", "rule", "ERROR", True, 0.02, 0.03)])
    latest = catalog.latest_checks(SILVER_APP_LOGS, ["2024-01-01", "2024-01-02", "2024-01-03"])
    assert [(c.dt, c.passed, c.observed) for c in latest] == [("2024-01-01", True, 0.02), ("2024-01-02", True, 0.01)]


def test_opens_a_catalog_from_before_rejected_versions(tmp_path):

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE versions (table_name TEXT NOT NULL, dt TEXT NOT NULL, version_id TEXT NOT NULL,"
            " location TEXT NOT NULL, row_count INTEGER NOT NULL, columns_json TEXT NOT NULL,"
            " stats_json TEXT NOT NULL, run_id TEXT NOT NULL, created_at TEXT NOT NULL,"
            " PRIMARY KEY (table_name, dt, version_id))"
        )
        db.execute("INSERT INTO versions VALUES ('silver.app_logs', '2024-01-01', 'v1', '/x', 1, '[]', '{}', '', 't')")
    assert SqliteCatalog(path).versions(SILVER_APP_LOGS, "2024-01-01")[0].state == "published"


def test_compare_and_swap_publish_refuses_a_lost_update(catalog, lake):
    from medallion_pipeline.resources.catalog import PublishConflict

    v1 = stage(lake, "2024-01-01")
    catalog.publish(SILVER_APP_LOGS, [v1], expected={"2024-01-01": None})
    # Two writers both built on v1; the first wins, the second must not overwrite it blindly.
    first, second = stage(lake, "2024-01-01"), stage(lake, "2024-01-01")
    catalog.publish(SILVER_APP_LOGS, [first], expected={"2024-01-01": v1.version_id})
    with pytest.raises(PublishConflict, match="another run published it meanwhile"):
        catalog.publish(SILVER_APP_LOGS, [second], expected={"2024-01-01": v1.version_id},
                        ledger=[LedgerEntry("2024-01-01", "k", 1, "e")])
    assert catalog.current(SILVER_APP_LOGS, ["2024-01-01"])["2024-01-01"].version_id == first.version_id
    assert catalog.ledger(SILVER_APP_LOGS, "2024-01-01") == []


def entry(key: str, etag: str, status: str = "ingested") -> LedgerEntry:
    return LedgerEntry("2024-01-01", f"web/dt=2024-01-01/{key}", 10, etag, status)


def sorted_ledger(catalog) -> list[LedgerEntry]:
    return sorted(catalog.ledger(SILVER_APP_LOGS, "2024-01-01"), key=lambda e: e.key)


def test_rollback_restores_the_ledger_of_the_version_it_returns_to(catalog, lake):
    dt = "2024-01-01"
    catalog.publish(SILVER_APP_LOGS, [stage(lake, dt)], ledger=[entry("a", "a1"), entry("b", "b1")])
    as_of_v1 = sorted_ledger(catalog)
    # v2 adds c and overwrites a's content; then, while v2 is current, a run records an unreadable file.
    catalog.publish(SILVER_APP_LOGS, [stage(lake, dt)], ledger=[entry("a", "a2"), entry("c", "c1")])
    catalog.publish(SILVER_APP_LOGS, [], ledger=[entry("d.gz", "d1", "unreadable")])
    as_of_v2 = sorted_ledger(catalog)
    # v3, a full rebuild, replaces the whole ledger.
    catalog.publish(SILVER_APP_LOGS, [stage(lake, dt)], ledger=[entry("e", "e1")], replace_ledger=True)
    assert sorted_ledger(catalog) == [entry("e", "e1")]
    catalog.rollback(SILVER_APP_LOGS, dt, reason="undo rebuild")
    assert sorted_ledger(catalog) == as_of_v2
    catalog.rollback(SILVER_APP_LOGS, dt, reason="undo v2")
    assert sorted_ledger(catalog) == as_of_v1 == [entry("a", "a1"), entry("b", "b1")]


def test_a_failed_rollback_leaves_the_ledger_alone(catalog, lake):
    catalog.publish(SILVER_APP_LOGS, [stage(lake, "2024-01-01")], ledger=[entry("a", "a1")])
    with pytest.raises(LookupError, match="no earlier version"):
        catalog.rollback(SILVER_APP_LOGS, "2024-01-01", reason="x")
    assert sorted_ledger(catalog) == [entry("a", "a1")]


def test_publish_many_is_one_transaction_across_tables(catalog, lake):
    from medallion_pipeline.resources.catalog import PublishConflict, PublishRequest
    from medallion_pipeline.tables import SILVER_QUARANTINE

    dt = "2024-01-01"
    silver_v1 = stage(lake, dt)
    quarantine_v1 = PartitionVersion(SILVER_QUARANTINE, dt, new_version_id(), "/q1", 0)
    catalog.publish_many([PublishRequest(SILVER_APP_LOGS, [silver_v1], expected={dt: None}),
                          PublishRequest(SILVER_QUARANTINE, [quarantine_v1], expected={dt: None})])
    # Another run replaced the quarantine partition after this writer read: the silver half must not land.
    catalog.publish(SILVER_QUARANTINE, [PartitionVersion(SILVER_QUARANTINE, dt, new_version_id(), "/q-other", 0)])
    silver_v2 = stage(lake, dt)
    with pytest.raises(PublishConflict, match="silver.quarantine 2024-01-01"):
        catalog.publish_many([
            PublishRequest(SILVER_APP_LOGS, [silver_v2], expected={dt: silver_v1.version_id}),
            PublishRequest(SILVER_QUARANTINE, [PartitionVersion(SILVER_QUARANTINE, dt, new_version_id(), "/q2", 0)],
                           expected={dt: quarantine_v1.version_id}),
        ])
    assert catalog.current(SILVER_APP_LOGS, [dt])[dt].version_id == silver_v1.version_id
    assert [h.version_id for h in catalog.history(SILVER_APP_LOGS, dt)] == [silver_v1.version_id]
    assert [v.version_id for v in catalog.versions(SILVER_APP_LOGS, dt)] == [silver_v1.version_id]


def test_publish_records_the_upstream_versions_a_partition_was_built_from(catalog, lake):
    built_from = {"bronze.app_logs": {"2024-01-01": "v20240101T000000000Z-abcdef"}}
    staged = stage(lake, "2024-01-01")
    catalog.publish(SILVER_APP_LOGS, [PartitionVersion(**{**staged.__dict__, "built_from": built_from})])
    assert catalog.current(SILVER_APP_LOGS, ["2024-01-01"])["2024-01-01"].built_from == built_from


def aged(path: str, seconds: float = 7200) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_vacuum_keeps_an_in_progress_runs_staged_version_past_the_grace_and_deletes_it_after(catalog, lake):
    from medallion_pipeline.resources.catalog import PublishConflict

    version_id = new_version_id()
    catalog.begin_staging(SILVER_APP_LOGS, version_id, "run-A")  # before the first file is written
    location = lake.partition_location(SILVER_APP_LOGS, version_id, "2024-01-01")
    os.makedirs(location)
    root = lake.version_root(SILVER_APP_LOGS, version_id)
    aged(root)  # a long write: older than the grace, still in progress
    assert catalog.vacuum(lake, LocalLakeFiles(), keep=5, grace_seconds=60,
                          run_in_progress=lambda run_id: run_id == "run-A") == []
    assert catalog.vacuum(lake, LocalLakeFiles(), keep=5, grace_seconds=60) == []  # run states unknown: kept
    assert os.path.exists(location)

    assert catalog.vacuum(lake, LocalLakeFiles(), keep=5, grace_seconds=60,
                          run_in_progress=lambda run_id: False) == [root]
    assert not os.path.exists(root)
    [lease] = catalog.staging_leases()
    assert (lease.version_id, lease.run_id) == (version_id, "run-A") and lease.revoked_at
    # The run was judged finished: a late publish of the deleted version is refused, not a dangling pointer.
    with pytest.raises(PublishConflict, match="revoked its staging lease"):
        catalog.publish(SILVER_APP_LOGS, [PartitionVersion(SILVER_APP_LOGS, "2024-01-01", version_id, location, 3)])
    assert catalog.current(SILVER_APP_LOGS, ["2024-01-01"]) == {}


def test_publish_and_reject_end_the_staging_lease(catalog, lake):
    staged = stage(lake, "2024-01-01")
    rejected = stage(lake, "2024-01-02")
    catalog.begin_staging(SILVER_APP_LOGS, staged.version_id, "run-1")
    catalog.begin_staging(SILVER_APP_LOGS, rejected.version_id, "run-1")
    catalog.publish(SILVER_APP_LOGS, [staged])
    catalog.reject(SILVER_APP_LOGS, [rejected], "gate failed")
    assert catalog.staging_leases() == []
    # Referenced now: vacuum keeps both even though their run is over.
    assert catalog.vacuum(lake, LocalLakeFiles(), keep=5, grace_seconds=0, run_in_progress=lambda run_id: False) == []


class AssertingLakeFiles(LocalLakeFiles):
    """Deletes like the real thing, after checking no catalog transaction is open and the catalog forgot it —
    or fails every delete (a crash between the catalog commit and the file deletes)."""

    def __init__(self, catalog, fail: bool):
        self.catalog, self.fail, self.deleted = catalog, fail, []

    def delete_tree(self, location: str) -> None:
        if isinstance(self.catalog, SqliteCatalog):
            with sqlite3.connect(self.catalog.path, timeout=0, isolation_level=None) as db:
                db.execute("BEGIN IMMEDIATE")  # "database is locked" if vacuum still held its transaction
                db.execute("ROLLBACK")
        referenced = {v.location for v in self.catalog.versions(SILVER_APP_LOGS, "2024-01-01")}
        assert location not in referenced, f"{location} deleted while the catalog still references it"
        self.deleted.append(location)
        if self.fail:
            raise OSError(f"simulated failure deleting {location}")
        super().delete_tree(location)


def test_vacuum_deletes_files_after_the_catalog_commit_and_a_failed_delete_is_cleaned_up_next_time(catalog, lake):
    old, new = stage(lake, "2024-01-01"), stage(lake, "2024-01-01")
    catalog.publish(SILVER_APP_LOGS, [old])
    catalog.publish(SILVER_APP_LOGS, [new])
    failing = AssertingLakeFiles(catalog, fail=True)
    with pytest.raises(OSError, match="simulated failure"):
        catalog.vacuum(lake, failing, keep=1, grace_seconds=0)
    assert failing.deleted == [old.location]
    # The catalog was committed first: the old version is gone from it, its files are left over.
    assert [v.version_id for v in catalog.versions(SILVER_APP_LOGS, "2024-01-01")] == [new.version_id]
    assert os.path.exists(old.location)
    old_root = lake.version_root(SILVER_APP_LOGS, old.version_id)
    working = AssertingLakeFiles(catalog, fail=False)
    assert catalog.vacuum(lake, working, keep=1, grace_seconds=0) == [old_root]
    assert not os.path.exists(old_root) and os.path.exists(new.location)


def test_vacuum_keeps_a_version_published_while_it_was_listing(catalog, lake):
    published = stage(lake, "2024-01-01")
    catalog.publish(SILVER_APP_LOGS, [published])
    slow = stage(lake, "2024-01-01")  # a write that took longer than the grace, published mid-vacuum
    aged(lake.version_root(SILVER_APP_LOGS, slow.version_id))

    class PublishWhileListing(LocalLakeFiles):
        def list_children(self, location):
            children = super().list_children(location)
            if location == lake.table_root(SILVER_APP_LOGS):
                catalog.publish(SILVER_APP_LOGS, [slow])
            return children

    catalog.vacuum(lake, PublishWhileListing(), keep=5, grace_seconds=3600)
    assert catalog.current(SILVER_APP_LOGS, ["2024-01-01"])["2024-01-01"].version_id == slow.version_id
    assert os.listdir(slow.location) == ["part-0.parquet"]


def test_vacuum_never_deletes_a_referenced_version(catalog, lake):
    dts = ["2024-01-01", "2024-01-02"]
    version_id = new_version_id()
    both = []
    for dt in dts:  # one version directory holding two partitions
        location = lake.partition_location(SILVER_APP_LOGS, version_id, dt)
        os.makedirs(location)
        Path(location, "part-0.parquet").write_bytes(b"x")
        both.append(PartitionVersion(SILVER_APP_LOGS, dt, version_id, location, 1))
    catalog.publish(SILVER_APP_LOGS, both)
    newer = stage(lake, "2024-01-01")
    catalog.publish(SILVER_APP_LOGS, [newer])
    aged(lake.version_root(SILVER_APP_LOGS, version_id))
    removed = catalog.vacuum(lake, LocalLakeFiles(), keep=1, grace_seconds=0, run_in_progress=lambda run_id: False)
    assert removed == [both[0].location]  # the expired partition only; the directory still holds a current one
    assert os.path.exists(both[1].location) and os.path.exists(newer.location)
    for dt in dts:
        current = catalog.current(SILVER_APP_LOGS, [dt])[dt]
        assert os.listdir(current.location) == ["part-0.parquet"]


def test_vacuum_keeps_a_just_replaced_version_for_its_readers(catalog, lake):
    v1, v2 = stage(lake, "2024-01-01"), stage(lake, "2024-01-01")
    catalog.publish(SILVER_APP_LOGS, [v1])
    catalog.publish(SILVER_APP_LOGS, [v2])
    # v1 was current a moment ago: a reader that resolved it then may still be reading its files.
    assert catalog.vacuum(lake, LocalLakeFiles(), keep=1, grace_seconds=3600) == []
    assert catalog.vacuum(lake, LocalLakeFiles(), keep=1, grace_seconds=0) == [
        v1.location, lake.version_root(SILVER_APP_LOGS, v1.version_id)]
    assert os.path.exists(v2.location)


# -- versions made of segments (incremental bronze) ---------------------------------------------------------


def appended(lake: Lake, to: PartitionVersion) -> PartitionVersion:
    """A new version of ``to``'s partition made of its segments plus one new directory."""
    own = stage(lake, to.dt)
    return replace(own, row_count=to.row_count + own.row_count, segments=to.locations)


def published_chain(catalog, lake: Lake) -> tuple[PartitionVersion, ...]:
    """Three published versions of one partition, each made of the one before plus a new directory."""
    v1 = stage(lake, "2024-01-01")
    v2 = appended(lake, v1)
    v3 = appended(lake, v2)
    for v in (v1, v2, v3):
        catalog.publish(SILVER_APP_LOGS, [v])
    return v1, v2, v3


def test_a_version_made_of_segments_round_trips_and_rolls_back_to_its_predecessors_segments(catalog, lake):
    v1, v2, v3 = published_chain(catalog, lake)
    current = catalog.current(SILVER_APP_LOGS, ["2024-01-01"])["2024-01-01"]
    assert current.segments == (v1.location, v2.location) and current.locations == (*current.segments, v3.location)
    assert [v.segments for v in catalog.versions(SILVER_APP_LOGS, "2024-01-01")] == [v3.segments, v2.segments, ()]
    assert catalog.rollback(SILVER_APP_LOGS, "2024-01-01", reason="bad ingest").segments == (v1.location,)


def test_vacuum_keeps_every_version_a_kept_version_is_made_of_and_forgets_them_once_none_is(catalog, lake):
    v1, v2, v3 = published_chain(catalog, lake)
    # keep=1 keeps v3 only by age, but v3 is made of v1's and v2's directories: all three stay.
    assert catalog.vacuum(lake, LocalLakeFiles(), keep=1, grace_seconds=0) == []
    assert [v.version_id for v in catalog.versions(SILVER_APP_LOGS, "2024-01-01")] == [
        v3.version_id, v2.version_id, v1.version_id]
    assert all(os.path.exists(location) for location in v3.locations)
    compacted = stage(lake, "2024-01-01")  # the day rewritten into one directory
    catalog.publish(SILVER_APP_LOGS, [compacted])
    removed = catalog.vacuum(lake, LocalLakeFiles(), keep=1, grace_seconds=0)
    assert set(removed) >= {v1.location, v2.location, v3.location}
    assert [v.version_id for v in catalog.versions(SILVER_APP_LOGS, "2024-01-01")] == [compacted.version_id]
    assert os.path.exists(compacted.location)


def test_vacuum_keeps_the_segments_of_a_version_rolled_back_to(catalog, lake):
    v1 = stage(lake, "2024-01-01")
    v2 = appended(lake, v1)
    compacted = stage(lake, "2024-01-01")
    for v in (v1, v2, compacted):
        catalog.publish(SILVER_APP_LOGS, [v])
    catalog.rollback(SILVER_APP_LOGS, "2024-01-01", reason="bad compaction")  # v2, made of v1 + its own, is current
    catalog.vacuum(lake, LocalLakeFiles(), keep=1, grace_seconds=0)
    assert {v.version_id for v in catalog.versions(SILVER_APP_LOGS, "2024-01-01")} >= {v1.version_id, v2.version_id}
    current = catalog.current(SILVER_APP_LOGS, ["2024-01-01"])["2024-01-01"]
    assert all(os.listdir(location) == ["part-0.parquet"] for location in current.locations)


# -- scale: more than one DynamoDB transaction holds (100 items) ---------------------------------------------


def test_a_ledger_of_thousands_of_files_is_published_and_rolled_back_with_its_version(catalog, lake):
    dt = "2024-01-01"
    pad = "x" * 100  # long keys: the DynamoDB snapshot of each version spans several chunk items
    first = [entry(f"batch1/{pad}{i:05d}.json", f"e{i}") for i in range(3000)]
    catalog.publish(SILVER_APP_LOGS, [stage(lake, dt)], ledger=first)
    second = [entry(f"batch2/{pad}{i:05d}.json", f"f{i}") for i in range(2500)]
    catalog.publish(SILVER_APP_LOGS, [stage(lake, dt)], ledger=second, expected={
        dt: catalog.current(SILVER_APP_LOGS, [dt])[dt].version_id})
    assert sorted_ledger(catalog) == sorted(first + second, key=lambda e: e.key)
    if isinstance(catalog, DynamoCatalog):
        assert ledger_chunks(catalog, dt) >= 3
    catalog.rollback(SILVER_APP_LOGS, dt, reason="undo the second batch")
    assert sorted_ledger(catalog) == sorted(first, key=lambda e: e.key)


def test_a_ranged_publish_larger_than_one_transaction_lands_every_day(catalog, lake):
    from medallion_pipeline.resources.catalog import PublishRequest
    from medallion_pipeline.tables import SILVER_QUARANTINE

    dts = [f"2024-{m:02d}-{d:02d}" for m in (1, 2) for d in range(1, 29)]  # 56 days x 2 tables
    version_id = new_version_id()
    silver = [PartitionVersion(SILVER_APP_LOGS, dt, version_id, f"/s/{dt}", 1, COLUMNS) for dt in dts]
    quarantine = [PartitionVersion(SILVER_QUARANTINE, dt, version_id, f"/q/{dt}", 0) for dt in dts]
    catalog.publish_many([PublishRequest(SILVER_APP_LOGS, silver, expected=dict.fromkeys(dts)),
                          PublishRequest(SILVER_QUARANTINE, quarantine, expected=dict.fromkeys(dts))])
    assert [p.dt for p in catalog.partitions(SILVER_APP_LOGS)] == dts
    assert [p.dt for p in catalog.partitions(SILVER_QUARANTINE)] == dts
    assert {c.column for c in catalog.schema_history(SILVER_APP_LOGS)} == {"event_id", "user_id"}


# -- concurrency: two processes, one partition ---------------------------------------------------------------


def _racing_publisher(args) -> str:
    """One writer in its own process: an incremental bronze ingest of its own file on top of ``base``."""
    kind, where, writer, base, barrier = args
    from medallion_pipeline.resources.catalog import PublishConflict

    catalog = SqliteCatalog(where) if kind == "sqlite" else DynamoCatalog(where)
    version = PartitionVersion(BRONZE_APP_LOGS, "2024-01-01", new_version_id(), f"/v/{writer}", 1, COLUMNS)
    barrier.wait(timeout=60)
    try:
        catalog.publish(BRONZE_APP_LOGS, [version], ledger=[entry(f"{writer}.json", writer)],
                        expected={"2024-01-01": base})
        return version.version_id
    except PublishConflict:
        return "conflict"


def test_two_processes_ingesting_into_the_same_bronze_day_one_wins_nothing_of_the_other_is_recorded(catalog):
    import multiprocessing

    dt = "2024-01-01"
    base = PartitionVersion(BRONZE_APP_LOGS, dt, new_version_id(), "/v/base", 1, COLUMNS)
    catalog.publish(BRONZE_APP_LOGS, [base], ledger=[entry("base.json", "b")])
    kind = "sqlite" if isinstance(catalog, SqliteCatalog) else "dynamodb"
    where = str(catalog.path) if kind == "sqlite" else catalog.table_name
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(4)
        with context.Pool(4) as pool:
            outcomes = pool.map(_racing_publisher, [(kind, where, f"w{i}", base.version_id, barrier) for i in range(4)])
    winners = [(i, o) for i, o in enumerate(outcomes) if o != "conflict"]
    assert len(winners) == 1, outcomes
    [(winner, version_id)] = winners
    assert catalog.current(BRONZE_APP_LOGS, [dt])[dt].version_id == version_id
    assert [h.version_id for h in catalog.history(BRONZE_APP_LOGS, dt)] == [base.version_id, version_id]
    assert sorted(e.key for e in catalog.ledger(BRONZE_APP_LOGS, dt)) == [
        entry("base.json", "b").key, entry(f"w{winner}.json", "").key]
    assert {v.version_id for v in catalog.versions(BRONZE_APP_LOGS, dt)} == {base.version_id, version_id}


def ledger_chunks(catalog: DynamoCatalog, dt: str) -> int:
    from medallion_pipeline.resources.catalog import dynamo_items

    current = catalog.current(SILVER_APP_LOGS, [dt])[dt]
    return catalog._get(dynamo_items.version_key(SILVER_APP_LOGS, dt, current.version_id))["ledger_chunks"]


# -- a writer killed mid-publish (DynamoDB: the ledger snapshot is written before the commit) ----------------


class _StallingClient:
    """The real DynamoDB client, except that the second ledger chunk write announces itself and hangs."""

    def __init__(self, client, marker: str):
        self._client, self._marker, self._chunks = client, marker, 0

    def __getattr__(self, name):
        return getattr(self._client, name)

    def put_item(self, **kwargs):
        if kwargs["Item"]["pk"]["S"].startswith("L#"):
            self._chunks += 1
            if self._chunks == 2:
                Path(self._marker).touch()
                time.sleep(120)
        return self._client.put_item(**kwargs)


def _publish_until_killed(table_name: str, marker: str, location: str) -> None:
    import boto3

    catalog = DynamoCatalog(table_name, client=_StallingClient(boto3.client("dynamodb"), marker))
    current = catalog.current(SILVER_APP_LOGS, ["2024-01-01"])["2024-01-01"].version_id
    big = [entry(f"new/{'y' * 100}{i:05d}.json", f"n{i}") for i in range(4000)]
    catalog.publish(SILVER_APP_LOGS, [PartitionVersion(SILVER_APP_LOGS, "2024-01-01", new_version_id(), location, 9)],
                    ledger=big, expected={"2024-01-01": current})


def test_a_writer_killed_between_ledger_chunks_changes_nothing_and_the_rerun_publishes(aws, lake, tmp_path):
    import multiprocessing
    import signal

    catalog = DynamoCatalog("medallion-state")
    catalog.create_table()
    before = stage(lake, "2024-01-01")
    catalog.publish(SILVER_APP_LOGS, [before], ledger=[entry("old.json", "o1")])
    marker = str(tmp_path / "stalled")
    writer = multiprocessing.get_context("spawn").Process(
        target=_publish_until_killed, args=("medallion-state", marker, "/v/killed"))
    writer.start()
    deadline = time.monotonic() + 120
    while not os.path.exists(marker):
        assert writer.is_alive() and time.monotonic() < deadline, "the writer never reached its second chunk"
        time.sleep(0.05)
    os.kill(writer.pid, signal.SIGKILL)
    writer.join()
    # One chunk of the new version's ledger is stored, but nothing references it.
    assert catalog.current(SILVER_APP_LOGS, ["2024-01-01"])["2024-01-01"].version_id == before.version_id
    assert sorted_ledger(catalog) == [entry("old.json", "o1")]
    rerun = stage(lake, "2024-01-01")
    catalog.publish(SILVER_APP_LOGS, [rerun], ledger=[entry("new.json", "n1")],
                    expected={"2024-01-01": before.version_id})
    assert sorted_ledger(catalog) == [entry("new.json", "n1"), entry("old.json", "o1")]
