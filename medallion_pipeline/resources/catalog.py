"""The catalog: which immutable version of each table partition is current, and how it got there.

Publishing is atomic because readers never list directories: they ask the catalog for a partition's
location, and the pointer moves inside one transaction after the new version is fully written. A process
killed before that transaction leaves the previous version current; its half-written directory is an
orphan that ``vacuum`` removes.

``Catalog`` is the interface jobs use; ``SqliteCatalog`` is the embedded implementation (one SQLite file,
WAL mode). An AWS Glue implementation replaces it without touching jobs.
"""

from __future__ import annotations

import json
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from medallion_pipeline.resources.lake import Lake, LakeFiles, age_seconds
from medallion_pipeline.tables import TableId


class PublishConflict(RuntimeError):
    """A partition changed since the writer read it: publishing would silently drop the other write."""


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    pii: bool = False
    description: str = ""


@dataclass(frozen=True)
class PartitionVersion:
    table: TableId
    dt: str
    version_id: str
    location: str
    row_count: int
    columns: tuple[Column, ...] = ()
    stats: dict[str, float] = field(default_factory=dict)
    run_id: str = ""
    created_at: str = ""
    state: str = "published"  # or "rejected": failed its audit, kept for inspection, never current


@dataclass(frozen=True)
class LedgerEntry:
    """One landing file recorded as ingested into a bronze partition."""

    dt: str
    key: str
    size: int
    etag: str
    status: str = "ingested"  # or "unreadable": kept out of Spark, counted, left in landing to inspect


@dataclass(frozen=True)
class HistoryEvent:
    table: TableId
    dt: str
    action: str  # publish | rollback | reject
    version_id: str
    previous_version_id: str | None
    run_id: str
    reason: str
    at: str


@dataclass(frozen=True)
class CheckRecord:
    """The outcome of one data-quality rule on one partition, as the catalog keeps it."""

    dt: str
    check: str
    severity: str
    passed: bool
    observed: float | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class SchemaChange:
    table: TableId
    column: str
    type: str
    first_dt: str
    first_version_id: str
    first_seen_at: str


class Catalog(ABC):
    """What jobs, the CLI and tests need from a catalog."""

    @abstractmethod
    def current(self, table: TableId, dts: Iterable[str]) -> dict[str, PartitionVersion]:
        """The published version of each requested partition that has one."""

    @abstractmethod
    def publish(
        self,
        table: TableId,
        versions: Sequence[PartitionVersion],
        *,
        ledger: Sequence[LedgerEntry] = (),
        replace_ledger: bool = False,
        description: str = "",
        expected: dict[str, str | None] | None = None,
    ) -> dict[str, list[str]]:
        """Make ``versions`` current in one transaction (with the bronze ingest ``ledger``, if any).

        ``expected`` (dt -> version id the writer built on, None for "no version yet") makes the publish a
        compare-and-swap: if another run published one of those partitions meanwhile, nothing is published
        and ``PublishConflict`` is raised.
        ``replace_ledger`` (a full rebuild) first forgets the ledger of the published partitions.

        Returns the columns that are new to the table, by partition.
        """

    @abstractmethod
    def reject(self, table: TableId, versions: Sequence[PartitionVersion], reason: str) -> None:
        """Record staged versions that failed their audit: kept and listed, the pointer does not move."""

    @abstractmethod
    def rollback(self, table: TableId, dt: str, reason: str, run_id: str = "") -> PartitionVersion:
        """Point a partition back to the version that was current before the current one."""

    @abstractmethod
    def partitions(self, table: TableId) -> list[PartitionVersion]:
        """Every published partition of a table, by ``dt``."""

    @abstractmethod
    def versions(self, table: TableId, dt: str) -> list[PartitionVersion]:
        """Every version of a partition still known to the catalog, newest first."""

    @abstractmethod
    def history(self, table: TableId, dt: str | None = None) -> list[HistoryEvent]: ...

    @abstractmethod
    def ledger(self, table: TableId, dt: str) -> list[LedgerEntry]: ...

    @abstractmethod
    def tables(self) -> list[tuple[TableId, str, tuple[Column, ...]]]:
        """Registered tables with their description and latest columns."""

    @abstractmethod
    def schema_history(self, table: TableId) -> list[SchemaChange]: ...

    @abstractmethod
    def record_checks(self, table: TableId, checks: Sequence[CheckRecord], run_id: str = "") -> None: ...

    @abstractmethod
    def latest_checks(self, table: TableId, dts: Iterable[str]) -> list[CheckRecord]:
        """The most recent outcome of every rule for each partition."""

    @abstractmethod
    def vacuum(self, lake: Lake, files: LakeFiles, keep: int, grace_seconds: float = 3600) -> list[str]:
        """Delete versions beyond the newest ``keep`` per partition and orphaned version directories."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    table_name TEXT NOT NULL, dt TEXT NOT NULL, version_id TEXT NOT NULL, location TEXT NOT NULL,
    row_count INTEGER NOT NULL, columns_json TEXT NOT NULL, stats_json TEXT NOT NULL,
    run_id TEXT NOT NULL, created_at TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'published',
    PRIMARY KEY (table_name, dt, version_id));
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

    def publish(self, table, versions, *, ledger=(), replace_ledger=False, description="", expected=None):
        now = utc_now()
        new_columns: dict[str, list[str]] = {}
        with self._transaction() as db:
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
                if replace_ledger:
                    db.execute(
                        "DELETE FROM ingest_ledger WHERE table_name = ? AND dt = ?", [table.qualified, v.dt]
                    )
            for entry in ledger:
                # One ledger row per key: a key overwritten with new content replaces its old row.
                db.execute(
                    "DELETE FROM ingest_ledger WHERE table_name = ? AND dt = ? AND file_key = ?",
                    [table.qualified, entry.dt, entry.key],
                )
                db.execute(
                    "INSERT OR REPLACE INTO ingest_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [table.qualified, entry.dt, entry.key, entry.size, entry.etag, entry.status,
                     next((v.version_id for v in versions if v.dt == entry.dt), ""), now],
                )
            if versions:
                latest = max(versions, key=lambda v: v.dt)
                db.execute(
                    "INSERT OR REPLACE INTO tables VALUES (?, ?, ?, ?)",
                    [table.qualified, description, _columns_to_json(latest.columns), now],
                )
        return new_columns

    @staticmethod
    def _insert_version(db, v: PartitionVersion, state: str, now: str) -> None:
        db.execute(
            "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [v.table.qualified, v.dt, v.version_id, v.location, v.row_count, _columns_to_json(v.columns),
             json.dumps(v.stats), v.run_id, v.created_at or now, state],
        )

    def reject(self, table, versions, reason):
        now = utc_now()
        with self._transaction() as db:
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

    def vacuum(self, lake, files, keep, grace_seconds=3600):
        removed: list[str] = []
        with self._transaction() as db:
            rows = db.execute(
                """SELECT v.table_name, v.dt, v.version_id, v.location,
                          (c.version_id IS NOT NULL) AS is_current
                   FROM versions v LEFT JOIN current_partitions c
                   ON c.table_name = v.table_name AND c.dt = v.dt AND c.version_id = v.version_id
                   ORDER BY v.table_name, v.dt, v.created_at DESC, v.version_id DESC"""
            ).fetchall()
            seen: dict[tuple[str, str], int] = {}
            for r in rows:
                rank = seen.get((r["table_name"], r["dt"]), 0)
                seen[(r["table_name"], r["dt"])] = rank + 1
                if rank < keep or r["is_current"]:
                    continue
                db.execute(
                    "DELETE FROM versions WHERE table_name = ? AND dt = ? AND version_id = ?",
                    [r["table_name"], r["dt"], r["version_id"]],
                )
                files.delete_tree(r["location"])
                removed.append(r["location"])
            referenced = {(r[0], r[1]) for r in db.execute("SELECT DISTINCT table_name, version_id FROM versions")}
        removed += self._remove_orphans(lake, files, referenced, grace_seconds)
        return removed

    @staticmethod
    def _remove_orphans(lake, files, referenced, grace_seconds) -> list[str]:
        from medallion_pipeline.tables import ALL_TABLES

        removed = []
        for table in ALL_TABLES:
            for location, mtime in files.list_children(lake.table_root(table)):
                version_id = location.rstrip("/").rsplit("/", 1)[-1]
                if (table.qualified, version_id) in referenced or age_seconds(mtime) < grace_seconds:
                    continue
                files.delete_tree(location)
                removed.append(location)
        return removed


def open_catalog(uri: str) -> Catalog:
    """The catalog named by a settings URI: a SQLite file path (``glue://`` comes with the AWS deployment)."""
    if uri.startswith("sqlite://"):
        uri = uri[len("sqlite://"):]
    if "://" in uri:
        raise NotImplementedError(f"catalog {uri!r} is not supported yet (embedded SQLite only)")
    return SqliteCatalog(uri)
