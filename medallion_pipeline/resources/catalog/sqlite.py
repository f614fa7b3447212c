"""The embedded catalog: one SQLite file (WAL mode), safe for concurrent processes on one machine.

Each ``Catalog`` transaction is one ``BEGIN IMMEDIATE`` transaction, so the compare-and-swap, the ledger
and the leases hold trivially; the tables below are the model the DynamoDB catalog mirrors.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

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
from medallion_pipeline.resources.catalog.vacuum import expirable
from medallion_pipeline.tables import TableId

_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    table_name TEXT NOT NULL, dt TEXT NOT NULL, version_id TEXT NOT NULL, location TEXT NOT NULL,
    row_count INTEGER NOT NULL, columns_json TEXT NOT NULL, stats_json TEXT NOT NULL,
    run_id TEXT NOT NULL, created_at TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'published',
    built_from_json TEXT NOT NULL DEFAULT '{}', segments_json TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (table_name, dt, version_id));
CREATE TABLE IF NOT EXISTS staging_leases (
    table_name TEXT NOT NULL, version_id TEXT NOT NULL, run_id TEXT NOT NULL, started_at TEXT NOT NULL,
    revoked_at TEXT, PRIMARY KEY (table_name, version_id));
CREATE TABLE IF NOT EXISTS current_partitions (
    table_name TEXT NOT NULL, dt TEXT NOT NULL, version_id TEXT NOT NULL, published_at TEXT NOT NULL,
    PRIMARY KEY (table_name, dt));
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, table_name TEXT NOT NULL, dt TEXT NOT NULL, action TEXT NOT NULL,
    version_id TEXT NOT NULL, previous_version_id TEXT, run_id TEXT NOT NULL, reason TEXT NOT NULL,
    at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tables (
    table_name TEXT PRIMARY KEY, description TEXT NOT NULL, columns_json TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS schema_history (
    table_name TEXT NOT NULL, column_name TEXT NOT NULL, data_type TEXT NOT NULL, first_dt TEXT NOT NULL,
    first_version_id TEXT NOT NULL, first_seen_at TEXT NOT NULL, PRIMARY KEY (table_name, column_name));
CREATE TABLE IF NOT EXISTS check_results (
    id INTEGER PRIMARY KEY AUTOINCREMENT, table_name TEXT NOT NULL, dt TEXT NOT NULL, check_name TEXT NOT NULL,
    severity TEXT NOT NULL, passed INTEGER NOT NULL, observed REAL, threshold REAL, run_id TEXT NOT NULL,
    at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ingest_ledger (
    table_name TEXT NOT NULL, dt TEXT NOT NULL, file_key TEXT NOT NULL, size INTEGER NOT NULL,
    etag TEXT NOT NULL, status TEXT NOT NULL, version_id TEXT NOT NULL, ingested_at TEXT NOT NULL,
    PRIMARY KEY (table_name, dt, file_key, etag));
CREATE TABLE IF NOT EXISTS ingest_ledger_superseded (
    table_name TEXT NOT NULL, dt TEXT NOT NULL, superseded_by TEXT NOT NULL, file_key TEXT NOT NULL,
    size INTEGER NOT NULL, etag TEXT NOT NULL, status TEXT NOT NULL, version_id TEXT NOT NULL,
    ingested_at TEXT NOT NULL, PRIMARY KEY (table_name, dt, superseded_by, file_key, etag));
"""


def _columns_to_json(columns: Iterable[Column]) -> str:
    return json.dumps([c.__dict__ for c in columns])


def _columns_from_json(text: str) -> tuple[Column, ...]:
    return tuple(Column(**c) for c in json.loads(text))


class SqliteCatalog(Catalog):
    """The embedded catalog: one SQLite database file, safe for concurrent processes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)
            self._migrate(db)

    @staticmethod
    def _migrate(db) -> None:
        """Bring catalogs created by earlier releases up to the current schema."""
        columns = {row[1] for row in db.execute("PRAGMA table_info(versions)")}
        if "state" not in columns:
            db.execute("ALTER TABLE versions ADD COLUMN state TEXT NOT NULL DEFAULT 'published'")
        if "built_from_json" not in columns:
            db.execute("ALTER TABLE versions ADD COLUMN built_from_json TEXT NOT NULL DEFAULT '{}'")
        if "segments_json" not in columns:
            db.execute("ALTER TABLE versions ADD COLUMN segments_json TEXT NOT NULL DEFAULT '[]'")

    @contextmanager
    def _connect(self):
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            yield db
        finally:
            db.close()

    @contextmanager
    def _transaction(self):
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @staticmethod
    def _version(row: sqlite3.Row) -> PartitionVersion:
        return PartitionVersion(
            table=TableId(*row["table_name"].split(".", 1)),
            dt=row["dt"],
            version_id=row["version_id"],
            location=row["location"],
            row_count=row["row_count"],
            columns=_columns_from_json(row["columns_json"]),
            stats=json.loads(row["stats_json"]),
            run_id=row["run_id"],
            created_at=row["created_at"],
            state=row["state"],
            built_from=json.loads(row["built_from_json"]),
            segments=tuple(json.loads(row["segments_json"])),
        )

    def current(self, table: TableId, dts: Iterable[str]) -> dict[str, PartitionVersion]:
        wanted = sorted(set(dts))
        if not wanted:
            return {}
        with self._connect() as db:
            rows = db.execute(
                f"""SELECT v.* FROM current_partitions c JOIN versions v
                    ON v.table_name = c.table_name AND v.dt = c.dt AND v.version_id = c.version_id
                    WHERE c.table_name = ? AND c.dt IN ({",".join("?" * len(wanted))})""",
                [table.qualified, *wanted],
            ).fetchall()
        return {row["dt"]: self._version(row) for row in rows}

    def partitions(self, table: TableId) -> list[PartitionVersion]:
        with self._connect() as db:
            rows = db.execute(
                """SELECT v.* FROM current_partitions c JOIN versions v
                   ON v.table_name = c.table_name AND v.dt = c.dt AND v.version_id = c.version_id
                   WHERE c.table_name = ? ORDER BY c.dt""",
                [table.qualified],
            ).fetchall()
        return [self._version(row) for row in rows]

    def versions(self, table: TableId, dt: str) -> list[PartitionVersion]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM versions WHERE table_name = ? AND dt = ? ORDER BY created_at DESC, version_id DESC",
                [table.qualified, dt],
            ).fetchall()
        return [self._version(row) for row in rows]

    def publish_many(self, requests):
        self.check_one_request_per_table(requests)
        now = utc_now()
        with self._transaction() as db:
            for request in requests:
                self._check_expected(db, request.table, request.expected)
            return {request.table: self._publish_in(db, request, now) for request in requests}

    @staticmethod
    def _check_expected(db, table: TableId, expected: dict[str, str | None] | None) -> None:
        for dt, version_id in (expected or {}).items():
            row = db.execute(
                "SELECT version_id FROM current_partitions WHERE table_name = ? AND dt = ?",
                [table.qualified, dt],
            ).fetchone()
            if (row[0] if row else None) != version_id:
                raise PublishConflict(
                    f"{table} {dt}: current version is {row[0] if row else None}, expected {version_id}; "
                    "another run published it meanwhile — rerun to build on the new version"
                )

    def _publish_in(self, db, request: PublishRequest, now: str) -> dict[str, list[str]]:
        """One request's share of a ``publish_many`` transaction (``expected`` already checked)."""
        table, versions, ledger = request.table, request.versions, request.ledger
        replace_ledger, description = request.replace_ledger, request.description
        new_columns: dict[str, list[str]] = {}
        self._end_leases(db, table, versions)
        for v in sorted(versions, key=lambda v: v.dt):
            previous = db.execute(
                "SELECT version_id FROM current_partitions WHERE table_name = ? AND dt = ?",
                [table.qualified, v.dt],
            ).fetchone()
            self._insert_version(db, v, "published", now)
            db.execute(
                "INSERT OR REPLACE INTO current_partitions VALUES (?, ?, ?, ?)",
                [table.qualified, v.dt, v.version_id, now],
            )
            db.execute(
                "INSERT INTO history (table_name, dt, action, version_id, previous_version_id, run_id,"
                " reason, at) VALUES (?, ?, 'publish', ?, ?, ?, '', ?)",
                [table.qualified, v.dt, v.version_id, previous[0] if previous else None, v.run_id, now],
            )
            new_columns[v.dt] = self._record_schema(db, table, v, now)
        self._record_ledger(db, table, versions, ledger, replace_ledger, now)
        if versions:
            latest = max(versions, key=lambda v: v.dt)
            db.execute(
                "INSERT OR REPLACE INTO tables VALUES (?, ?, ?, ?)",
                [table.qualified, description, _columns_to_json(latest.columns), now],
            )
        return new_columns

    @classmethod
    def _record_ledger(cls, db, table: TableId, versions, ledger, replace_ledger: bool, now: str) -> None:
        """Write ledger entries, each owned by its partition's version once the pointers have moved.

        What an entry replaces is kept in ``ingest_ledger_superseded`` under the owning version, so that
        rolling that version back can restore the ledger it replaced (see ``Catalog.rollback``).
        """
        published = {v.dt: v.version_id for v in versions}
        if replace_ledger:
            for dt, version_id in published.items():
                cls._supersede(db, table, dt, version_id)
        owners: dict[str, str] = dict(published)
        for entry in ledger:
            if entry.dt not in owners:  # recorded without a new version: owned by the current one
                row = db.execute(
                    "SELECT version_id FROM current_partitions WHERE table_name = ? AND dt = ?",
                    [table.qualified, entry.dt],
                ).fetchone()
                owners[entry.dt] = row[0] if row else ""
            # One ledger row per key: a key overwritten with new content replaces its old row.
            cls._supersede(db, table, entry.dt, owners[entry.dt], entry.key)
            db.execute(
                "INSERT OR REPLACE INTO ingest_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [table.qualified, entry.dt, entry.key, entry.size, entry.etag, entry.status, owners[entry.dt], now],
            )

    @staticmethod
    def _supersede(db, table: TableId, dt: str, by_version: str, key: str | None = None) -> None:
        """Move a partition's ledger rows (one key's, or all) aside as superseded by ``by_version``."""
        where = "table_name = ? AND dt = ?" + (" AND file_key = ?" if key is not None else "")
        params = [table.qualified, dt, *([key] if key is not None else [])]
        db.execute(
            "INSERT OR REPLACE INTO ingest_ledger_superseded SELECT table_name, dt, ?, file_key, size, etag, status,"
            f" version_id, ingested_at FROM ingest_ledger WHERE {where}",
            [by_version, *params],
        )
        db.execute(f"DELETE FROM ingest_ledger WHERE {where}", params)

    @staticmethod
    def _restore_ledger(db, table: TableId, dt: str, rolled_back: str) -> None:
        """Undo what version ``rolled_back`` did to the ledger: drop its entries, restore what it superseded.

        Entries it superseded that it had itself recorded (a key overwritten twice while it was current)
        are not restored: they never belonged to the version the partition returns to.
        """
        restored = db.execute(
            """SELECT table_name, dt, file_key, size, etag, status, version_id, ingested_at
               FROM ingest_ledger_superseded WHERE table_name = ? AND dt = ? AND superseded_by = ?
               AND version_id != ?""",
            [table.qualified, dt, rolled_back, rolled_back],
        ).fetchall()
        db.execute(
            "DELETE FROM ingest_ledger WHERE table_name = ? AND dt = ? AND version_id = ?",
            [table.qualified, dt, rolled_back],
        )
        for row in restored:
            db.execute(
                "DELETE FROM ingest_ledger WHERE table_name = ? AND dt = ? AND file_key = ?",
                [table.qualified, dt, row["file_key"]],
            )
            db.execute("INSERT INTO ingest_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?)", tuple(row))
        db.execute(
            "DELETE FROM ingest_ledger_superseded WHERE table_name = ? AND dt = ? AND superseded_by = ?",
            [table.qualified, dt, rolled_back],
        )

    @staticmethod
    def _insert_version(db, v: PartitionVersion, state: str, now: str) -> None:
        if db.execute("SELECT 1 FROM versions WHERE table_name = ? AND dt = ? AND version_id = ?",
                      [v.table.qualified, v.dt, v.version_id]).fetchone():
            raise PublishConflict(f"{v.table} {v.dt} {v.version_id}: this version is already recorded")
        db.execute(
            "INSERT INTO versions (table_name, dt, version_id, location, row_count, columns_json, stats_json,"
            " run_id, created_at, state, built_from_json, segments_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [v.table.qualified, v.dt, v.version_id, v.location, v.row_count, _columns_to_json(v.columns),
             json.dumps(v.stats), v.run_id, v.created_at or now, state, json.dumps(v.built_from, sort_keys=True),
             json.dumps(list(v.segments))],
        )

    @staticmethod
    def _end_leases(db, table: TableId, versions: Iterable[PartitionVersion]) -> None:
        """The catalog now references these versions: their staging leases end (a revoked one refuses)."""
        for version_id in sorted({v.version_id for v in versions}):
            row = db.execute(
                "SELECT revoked_at FROM staging_leases WHERE table_name = ? AND version_id = ?",
                [table.qualified, version_id],
            ).fetchone()
            if row and row["revoked_at"]:
                raise PublishConflict(
                    f"{table} {version_id}: vacuum revoked its staging lease at {row['revoked_at']} (the run was "
                    "no longer in progress) and may have deleted its files — rerun"
                )
            db.execute("DELETE FROM staging_leases WHERE table_name = ? AND version_id = ?",
                       [table.qualified, version_id])

    def begin_staging(self, table, version_id, run_id):
        with self._transaction() as db:
            db.execute("INSERT INTO staging_leases VALUES (?, ?, ?, ?, NULL)",
                       [table.qualified, version_id, run_id, utc_now()])

    def staging_leases(self):
        return self.owners()[1]

    def reject(self, table, versions, reason):
        now = utc_now()
        with self._transaction() as db:
            self._end_leases(db, table, versions)
            for v in versions:
                self._insert_version(db, v, "rejected", now)
                db.execute(
                    "INSERT INTO history (table_name, dt, action, version_id, previous_version_id, run_id,"
                    " reason, at) VALUES (?, ?, 'reject', ?, NULL, ?, ?, ?)",
                    [table.qualified, v.dt, v.version_id, v.run_id, reason, now],
                )

    @staticmethod
    def _record_schema(db, table: TableId, v: PartitionVersion, now: str) -> list[str]:
        known = {
            row[0]: row[1]
            for row in db.execute(
                "SELECT column_name, first_dt FROM schema_history WHERE table_name = ?", [table.qualified]
            )
        }
        added = []
        for column in v.columns:
            if column.name not in known:
                added.append(column.name)
                db.execute(
                    "INSERT INTO schema_history VALUES (?, ?, ?, ?, ?, ?)",
                    [table.qualified, column.name, column.type, v.dt, v.version_id, now],
                )
            elif v.dt < known[column.name]:
                db.execute(
                    "UPDATE schema_history SET first_dt = ?, first_version_id = ? WHERE table_name = ?"
                    " AND column_name = ?",
                    [v.dt, v.version_id, table.qualified, column.name],
                )
        # The first version of a table introduces every column; only later arrivals are "new".
        return added if known else []

    def rollback(self, table, dt, reason, run_id=""):
        now = utc_now()
        with self._transaction() as db:
            current = db.execute(
                "SELECT version_id FROM current_partitions WHERE table_name = ? AND dt = ?",
                [table.qualified, dt],
            ).fetchone()
            if current is None:
                raise LookupError(f"{table} has no published partition {dt}")
            previous = db.execute(
                """SELECT previous_version_id FROM history WHERE table_name = ? AND dt = ?
                   AND version_id = ? AND action = 'publish' ORDER BY id DESC LIMIT 1""",
                [table.qualified, dt, current[0]],
            ).fetchone()
            target = previous[0] if previous else None
            exists = target and db.execute(
                "SELECT 1 FROM versions WHERE table_name = ? AND dt = ? AND version_id = ? AND state = 'published'",
                [table.qualified, dt, target],
            ).fetchone()
            if not exists:
                raise LookupError(f"{table} {dt}: no earlier version to roll back to")
            db.execute(
                "UPDATE current_partitions SET version_id = ?, published_at = ? WHERE table_name = ? AND dt = ?",
                [target, now, table.qualified, dt],
            )
            self._restore_ledger(db, table, dt, rolled_back=current[0])
            db.execute(
                "INSERT INTO history (table_name, dt, action, version_id, previous_version_id, run_id, reason,"
                " at) VALUES (?, ?, 'rollback', ?, ?, ?, ?, ?)",
                [table.qualified, dt, target, current[0], run_id, reason, now],
            )
        return self.current(table, [dt])[dt]

    def history(self, table, dt=None):
        query = "SELECT * FROM history WHERE table_name = ?"
        params = [table.qualified]
        if dt is not None:
            query += " AND dt = ?"
            params.append(dt)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY id", params).fetchall()
        return [
            HistoryEvent(table, r["dt"], r["action"], r["version_id"], r["previous_version_id"], r["run_id"],
                         r["reason"], r["at"])
            for r in rows
        ]

    def ledger(self, table, dt):
        with self._connect() as db:
            rows = db.execute(
                "SELECT dt, file_key, size, etag, status FROM ingest_ledger WHERE table_name = ? AND dt = ?",
                [table.qualified, dt],
            ).fetchall()
        return [LedgerEntry(*row) for row in rows]

    def tables(self):
        with self._connect() as db:
            rows = db.execute("SELECT * FROM tables ORDER BY table_name").fetchall()
        return [
            (TableId(*r["table_name"].split(".", 1)), r["description"], _columns_from_json(r["columns_json"]))
            for r in rows
        ]

    def schema_history(self, table):
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM schema_history WHERE table_name = ? ORDER BY first_dt, first_seen_at, column_name",
                [table.qualified],
            ).fetchall()
        return [
            SchemaChange(table, r["column_name"], r["data_type"], r["first_dt"], r["first_version_id"],
                         r["first_seen_at"])
            for r in rows
        ]

    def record_checks(self, table, checks, run_id=""):
        now = utc_now()
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO check_results (table_name, dt, check_name, severity, passed, observed, threshold,"
                " run_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(table.qualified, c.dt, c.check, c.severity, int(c.passed), c.observed, c.threshold, run_id, now)
                 for c in checks],
            )

    def latest_checks(self, table, dts):
        wanted = sorted(set(dts))
        if not wanted:
            return []
        with self._connect() as db:
            rows = db.execute(
                f"""SELECT dt, check_name, severity, passed, observed, threshold FROM check_results
                    WHERE id IN (SELECT MAX(id) FROM check_results WHERE table_name = ?
                                 AND dt IN ({",".join("?" * len(wanted))}) GROUP BY dt, check_name)
                    ORDER BY dt, check_name""",
                [table.qualified, *wanted],
            ).fetchall()
        return [CheckRecord(r[0], r[1], r[2], bool(r[3]), r[4], r[5]) for r in rows]

    def owners(self):
        with self._connect() as db:
            db.execute("BEGIN")
            leases = [StagingLease(TableId(*r["table_name"].split(".", 1)), r["version_id"], r["run_id"],
                                   r["started_at"], r["revoked_at"])
                      for r in db.execute("SELECT * FROM staging_leases ORDER BY started_at, version_id")]
            referenced = {(r[0], r[1]) for r in db.execute("SELECT DISTINCT table_name, version_id FROM versions")}
            db.execute("COMMIT")
        return referenced, leases

    def forget_expired_versions(self, keep, grace_seconds):
        cutoff = (datetime.now(timezone.utc) - timedelta(seconds=grace_seconds)).isoformat(timespec="milliseconds")
        expired: list[str] = []
        with self._transaction() as db:
            superseded_at = {
                (r[0], r[1], r[2]): r[3]
                for r in db.execute(
                    "SELECT table_name, dt, previous_version_id, MAX(at) FROM history"
                    " WHERE previous_version_id IS NOT NULL GROUP BY table_name, dt, previous_version_id"
                )
            }
            rows = db.execute(
                """SELECT v.table_name, v.dt, v.version_id, v.location, v.segments_json,
                          (c.version_id IS NOT NULL) AS is_current
                   FROM versions v LEFT JOIN current_partitions c
                   ON c.table_name = v.table_name AND c.dt = v.dt AND c.version_id = v.version_id
                   ORDER BY v.table_name, v.dt, v.created_at DESC, v.version_id DESC"""
            ).fetchall()
            seen: dict[tuple[str, str], int] = {}
            candidates, layout = [], {}
            for r in rows:
                key = (r["table_name"], r["dt"], r["version_id"])
                layout[key] = (r["location"], tuple(json.loads(r["segments_json"])))
                rank = seen.get(key[:2], 0)
                seen[key[:2]] = rank + 1
                recently_current = superseded_at.get(key, "") > cutoff
                if not (rank < keep or r["is_current"] or recently_current):
                    candidates.append(key)
            removable = expirable(candidates, layout)  # one transaction: nothing can become current meanwhile
            for key in candidates:
                if key in removable:
                    db.execute("DELETE FROM versions WHERE table_name = ? AND dt = ? AND version_id = ?", list(key))
                    expired.append(layout[key][0])
        return expired

    def revoke_leases(self, leases):
        now = utc_now()
        revoked: set[tuple[str, str]] = set()
        with self._transaction() as db:
            for lease in leases:
                # A publish since the read ended the lease: then there is nothing to revoke.
                cursor = db.execute(
                    "UPDATE staging_leases SET revoked_at = ? WHERE table_name = ? AND version_id = ?"
                    " AND revoked_at IS NULL",
                    [now, lease.table.qualified, lease.version_id],
                )
                if cursor.rowcount:
                    revoked.add((lease.table.qualified, lease.version_id))
        return revoked
