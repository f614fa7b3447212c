"""The embedded catalog: atomic publish, history, rollback, schema history, ledger, vacuum."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from medallion_pipeline.resources.catalog import Column, LedgerEntry, PartitionVersion, SqliteCatalog
from medallion_pipeline.resources.lake import Lake, LocalLakeFiles, new_version_id
from medallion_pipeline.tables import SILVER_APP_LOGS

COLUMNS = (Column("event_id", "string"), Column("user_id", "string", pii=True, description="personal"))


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(str(tmp_path / "lake"))


@pytest.fixture
def catalog(tmp_path: Path) -> SqliteCatalog:
    return SqliteCatalog(tmp_path / "lake" / "_catalog" / "catalog.db")


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
    # Publishing the same version id twice violates the primary key: nothing of the batch may land.
    with pytest.raises(sqlite3.IntegrityError):
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
