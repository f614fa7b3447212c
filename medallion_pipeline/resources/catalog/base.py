"""The catalog interface: which immutable version of each table partition is current, and how it got there.

Publishing is atomic because readers never list directories: they ask the catalog for a partition's
location, and the pointer moves inside one transaction after the new version is fully written. A process
killed before that transaction leaves the previous version current; its half-written directory is an
orphan that ``vacuum`` removes.

``Catalog`` is the interface jobs use, and its docstrings are the contract every implementation keeps
(compare-and-swap publishes, multi-table transactions, staging leases, vacuum order); the records below are
what crosses it. Implementations: ``sqlite.SqliteCatalog`` (embedded, the default) and
``dynamodb.DynamoCatalog`` (AWS: state in DynamoDB, Glue a projection). ``vacuum.vacuum`` is the one vacuum
algorithm both run, on the three primitives at the end of ``Catalog``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from medallion_pipeline.resources.lake import Lake, LakeFiles
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
    # Lineage: the upstream partition versions this one was computed from, {"bronze.app_logs": {dt: version_id}}.
    built_from: dict[str, dict[str, str]] = field(default_factory=dict)
    # A version made of segments (incremental bronze): the partition locations of earlier versions of the
    # same partition whose files are part of this one, oldest first, referenced rather than rewritten;
    # ``location`` holds only this version's own files. Empty for a version written whole.
    segments: tuple[str, ...] = ()

    @property
    def locations(self) -> tuple[str, ...]:
        """Every directory holding this version's files: its segments, then its own location."""
        return (*self.segments, self.location)


@dataclass(frozen=True)
class PublishRequest:
    """One table's share of a (possibly multi-table) publish; see ``Catalog.publish_many``."""

    table: TableId
    versions: Sequence[PartitionVersion]
    ledger: Sequence[LedgerEntry] = ()
    replace_ledger: bool = False
    description: str = ""
    expected: dict[str, str | None] | None = None


@dataclass(frozen=True)
class StagingLease:
    """A run is writing a version that the catalog does not reference yet; see ``Catalog.begin_staging``."""

    table: TableId
    version_id: str
    run_id: str
    started_at: str
    revoked_at: str | None = None  # set by vacuum once the run was no longer in progress


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

        One table's ``publish_many`` (see there for the transaction, the compare-and-swap on ``expected``
        and staging leases). ``expected`` (dt -> version id current when the writer started reading, None
        for "no version yet"): if another run published one of those partitions meanwhile, nothing is
        published and ``PublishConflict`` is raised.
        ``replace_ledger`` (a full rebuild) first forgets the ledger of the published partitions.

        Ledger semantics (every implementation, e.g. DynamoDB, must keep them, in the same transaction as
        the pointers): each entry is *owned* by a version — the partition's version in this publish, or the
        partition's current version when the publish moves no pointer for it (only unreadable files arrived).
        There is one entry per (partition, key): an entry for a key already recorded, and every entry of a
        partition under ``replace_ledger``, supersede the entries they replace, which are kept as
        *superseded by* the owning version (with their own owner) so ``rollback`` can restore them.

        Returns the columns that are new to the table, by partition.
        """
        request = PublishRequest(table, tuple(versions), tuple(ledger), replace_ledger, description, expected)
        return self.publish_many([request])[table]

    @abstractmethod
    def publish_many(self, requests: Sequence[PublishRequest]) -> dict[TableId, dict[str, list[str]]]:
        """Make every request's ``versions`` current in ONE transaction: all of them, or none.

        Each version becomes its partition's current version (history records the one it replaced), with
        its columns, stats and ``built_from`` lineage; each request's ledger is recorded as ``publish``
        describes; each table's description and latest columns are updated. A table appears in at most one
        request.

        Compare-and-swap: a request's ``expected`` maps dt -> the version id that was current when the
        writer started reading (None: "no version yet"). Inside the transaction every listed partition of
        every request must still point at that version; otherwise ``PublishConflict`` is raised and nothing
        of any request is published (no pointer, history, ledger or lease change). Without ``expected`` a
        request publishes unconditionally (tools, tests); every layer job passes it — silver with
        quarantine, and the four gold tables, each as one call.

        Staging leases (see ``begin_staging``): publishing a version ends its lease in the same transaction;
        a version whose lease vacuum revoked is refused with ``PublishConflict`` (its files may be gone).

        A bounded transaction (DynamoDB ``TransactWriteItems`` takes 100 items) makes the *day* the unit:
        every table's share of one ``dt`` is always in one transaction, days are committed in ``dt`` order,
        and if a later day conflicts the earlier ones stay published and ``PublishConflict`` names them.
        (SQLite commits everything at once.) Dagster's per-(layer, day) partition locks keep two runs off the
        same day, so this partial case needs a writer outside the pipeline. Returns, per table, the columns
        new to the table by partition.
        """

    @staticmethod
    def check_one_request_per_table(requests: Sequence[PublishRequest]) -> None:
        tables = [r.table for r in requests]
        if len(set(tables)) != len(tables):
            raise ValueError(f"a table may appear in one request only: {[str(t) for t in tables]}")

    @abstractmethod
    def reject(self, table: TableId, versions: Sequence[PartitionVersion], reason: str) -> None:
        """Record staged versions that failed their audit: kept and listed, the pointer does not move.

        Unconditional (nothing becomes current, so there is nothing to compare). Ends the versions' staging
        leases and, like ``publish_many``, refuses a version whose lease vacuum revoked.
        """

    @abstractmethod
    def begin_staging(self, table: TableId, version_id: str, run_id: str) -> None:
        """Record a staging lease: run ``run_id`` is about to write version ``version_id`` of ``table``.

        Called before the version's first file is written, so every version directory vacuum can list is
        already referenced or leased. The lease ends when the version is published or rejected (same
        transaction), or is revoked by ``vacuum`` once its run is no longer in progress (finished, failed,
        cancelled or killed); a revoked lease is kept, so a late publish of that version is refused.

        Why leases in the catalog, judged by the run's state in the orchestrator (not by age alone, and not
        by the run clearing them): every writer — the Dagster process or a remote EMR Serverless driver —
        already writes to the catalog and knows its Dagster run id, but a killed driver cannot clear
        anything; only the Dagster instance knows whether a run is still in progress, and vacuum runs next
        to it. A lease is a conditional item like a partition pointer, so DynamoDB implements it the same
        way, with no marker object per directory in S3. Revocation fences a run Dagster considers finished
        whose driver still runs (a cancelled run's EMR job): it cannot publish files vacuum may delete.
        """

    @abstractmethod
    def staging_leases(self) -> list[StagingLease]:
        """Every lease the catalog holds, active and revoked, oldest first."""

    @abstractmethod
    def rollback(self, table: TableId, dt: str, reason: str, run_id: str = "") -> PartitionVersion:
        """Point a partition back to the version that was current before the current one.

        In the same transaction the partition's ingest ledger returns to what it was when the target was
        current: the entries owned by the rolled-back version are deleted and the entries it superseded
        (except those it owned itself) are restored with their owners; its superseded set is then discarded.
        Files the rolled-back version ingested are therefore new again to the next bronze run. Limit: a
        version published by a release before superseded entries were kept restores nothing it replaced
        (its own entries are still removed), and entries recorded without any owner (``""``) stay.
        """

    @abstractmethod
    def partitions(self, table: TableId) -> list[PartitionVersion]:
        """Every published partition of a table, by ``dt``."""

    @abstractmethod
    def versions(self, table: TableId, dt: str) -> list[PartitionVersion]:
        """Every version of a partition still known to the catalog, newest first."""

    @abstractmethod
    def history(self, table: TableId, dt: str | None = None) -> list[HistoryEvent]: ...

    @abstractmethod
    def ledger(self, table: TableId, dt: str) -> list[LedgerEntry]:
        """The partition's ingest ledger as of its current version (see ``publish`` and ``rollback``)."""

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

    def vacuum(
        self,
        lake: Lake,
        files: LakeFiles,
        keep: int,
        grace_seconds: float = 3600,
        run_in_progress: Callable[[str], bool] | None = None,
    ) -> list[str]:
        """Delete expired versions and abandoned version directories; returns the deleted locations.

        It deletes only:
        - a partition version that is not current, not among its partition's newest ``keep``, and was not
          current during the last ``grace_seconds`` (a reader that resolved it just before the pointer
          moved may still be reading it);
        - a version directory the catalog does not reference (no version row of that id) that is leased
          by a run for which ``run_in_progress(run_id)`` is false (the lease is revoked first), or is
          unleased and older than ``grace_seconds`` (written before leases existed, or lost).
        A directory leased by a run in progress is kept whatever its age; ``run_in_progress=None`` (run
        states unknown) keeps every leased directory.

        Segments: a version whose location is a segment of a version that is kept is kept too (its row and
        its files), whatever its age — it is part of the kept version's data. Segments only ever point at
        older versions of the same partition, and a new version lists segments of the version current when
        it was written, so nothing expired can be referenced later; an implementation that expires versions
        one transaction at a time expires a version only after every version listing it (an expired version
        cannot become current again, while one whose expiry failed may: a rollback meanwhile).

        Order, which every implementation keeps: (1) list the lake's version directories; (2) read the
        catalog and commit its changes (version rows removed, leases revoked) — a directory listed in (1)
        was leased or published before it was written, so (2) sees its owner, and ``run_in_progress`` is
        asked after the lease was read, so a run it reports finished can no longer publish the version;
        (3) delete files, outside any catalog transaction. A crash or a failed delete in (3) leaves
        unreferenced directories, which the next vacuum deletes.
        """
        from medallion_pipeline.resources.catalog.vacuum import vacuum

        return vacuum(self, lake, files, keep, grace_seconds, run_in_progress)

    # The primitives ``vacuum`` runs on; each is one transaction (or one consistent snapshot).

    @abstractmethod
    def forget_expired_versions(self, keep: int, grace_seconds: float) -> list[str]:
        """Remove the rows of the versions vacuum may delete (see ``vacuum``); returns their locations.

        Committed before any file is deleted. A version current at that moment is never removed, nor one
        whose location is a segment of a version that stays (``expirable`` decides both catalogs' set).
        """

    @abstractmethod
    def owners(self) -> tuple[set[tuple[str, str]], list[StagingLease]]:
        """The (qualified table, version id) pairs any version row references, and every lease.

        One snapshot: publishing moves a version from the leases to the references atomically, so a
        version is in one of them.
        """

    @abstractmethod
    def revoke_leases(self, leases: Sequence[StagingLease]) -> set[tuple[str, str]]:
        """Revoke each of these leases that is still active (not ended by a publish meanwhile).

        Returns the (qualified table, version id) pairs revoked now.
        """
