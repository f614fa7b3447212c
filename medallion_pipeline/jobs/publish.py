"""Reading published partitions and publishing new ones: the write–publish half of every job.

New data is written once per table and run into a fresh version directory (``partitionBy("dt")``), row
counts are read back from the Parquet footers, and only then does the catalog pointer move.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion_pipeline.jobs.environment import JobEnvironment
from medallion_pipeline.jobs.report import PartitionResult, TableReport
from medallion_pipeline.resources.catalog import Column, LedgerEntry, PartitionVersion
from medallion_pipeline.resources.lake import new_version_id
from medallion_pipeline.tables import TableId


def read_published(spark: SparkSession, env: JobEnvironment, table: TableId, dts: Iterable[str]) -> DataFrame | None:
    """The current version of each requested partition, with a ``dt`` column; None if none is published.

    Partitions written with different columns are unioned by name, so a column missing from an older
    partition reads as NULL there.
    """
    return read_versions(spark, list(env.catalog.current(table, dts).values()))


def read_versions(spark: SparkSession, versions: list[PartitionVersion]) -> DataFrame | None:
    """These exact partition versions, with a ``dt`` column; None for an empty list."""
    if not versions:
        return None
    frames = [spark.read.parquet(v.location).withColumn("dt", F.lit(v.dt)) for v in sorted(versions, key=lambda v: v.dt)]
    return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)


def columns_of(df: DataFrame, pii: Mapping[str, str] | None = None) -> tuple[Column, ...]:
    """The catalog's column list for a DataFrame (without the ``dt`` partition column)."""
    pii = pii or {}
    return tuple(
        Column(f.name, f.dataType.simpleString(), f.name in pii, pii.get(f.name, ""))
        for f in df.schema.fields
        if f.name != "dt"
    )


@dataclass(frozen=True)
class WrittenVersion:
    version_id: str
    rows: dict[str, int]  # dt -> rows written
    present: dict[str, frozenset[str]]  # dt -> evolving columns holding at least one value


def write_version(
    df: DataFrame, env: JobEnvironment, table: TableId, dts: list[str], evolving: Iterable[str] = ()
) -> WrittenVersion:
    """Write ``df`` (with a ``dt`` column) for ``dts`` into a new immutable version directory.

    Each ``dt`` is written by one task, so a partition gets one file per ``target_file_rows`` rows however
    many input files it came from. A ``dt`` without rows gets an empty Parquet file with the schema, so
    "published and empty" is distinguishable from "never published". Row counts (and which ``evolving``
    columns hold data in which ``dt``) are read back from what was written: Parquet footers and single
    columns, not a second pass over the input.
    """
    version_id = new_version_id()
    root = env.lake.version_root(table, version_id)
    (
        df.repartition("dt")
        .write.partitionBy("dt")
        .option("maxRecordsPerFile", env.settings.target_file_rows)
        .mode("errorifexists")
        .parquet(root)
    )
    evolving = list(evolving)
    written = {p.rsplit("dt=", 1)[-1] for p, _ in env.files.list_children(root)}
    figures = []
    if written:
        figures = (
            df.sparkSession.read.parquet(root)
            .groupBy("dt")
            .agg(F.count(F.lit(1)).alias("_rows"), *[F.count(c).alias(c) for c in evolving])
            .collect()
        )
    rows = {str(r["dt"]): r["_rows"] for r in figures}
    present = {str(r["dt"]): frozenset(c for c in evolving if r[c]) for r in figures}
    empty = df.sparkSession.createDataFrame([], df.drop("dt").schema)
    for dt in sorted(set(dts) - set(rows)):
        empty.coalesce(1).write.mode("errorifexists").parquet(env.lake.partition_location(table, version_id, dt))
        rows[dt], present[dt] = 0, frozenset()
    return WrittenVersion(version_id, rows, present)


@dataclass
class StagedTable:
    """A new version of a table, fully written and not yet visible to readers."""

    table: TableId
    root: str
    versions: dict[str, PartitionVersion]
    columns: tuple[Column, ...]

    def frame(self, spark: SparkSession) -> DataFrame:
        """What was written, with ``dt`` (a string) — the data the audit judges."""
        return spark.read.parquet(self.root)


def stage_table(
    df: DataFrame,
    env: JobEnvironment,
    table: TableId,
    dts: list[str],
    *,
    stats: Mapping[str, dict[str, float]] | None = None,
    pii: Mapping[str, str] | None = None,
    evolving: Iterable[str] = (),
) -> StagedTable:
    """Write ``df`` as a new version of ``table`` for ``dts`` without publishing it.

    ``evolving`` columns (fields that arrived after v1) are recorded in a partition's schema only where
    they hold data, so the schema history says in which partition a column first appeared.
    """
    stats = stats or {}
    columns = columns_of(df, pii)
    evolving = set(evolving)
    written = write_version(df, env, table, dts, evolving)
    versions = {
        dt: PartitionVersion(
            table=table, dt=dt, version_id=written.version_id,
            location=env.lake.partition_location(table, written.version_id, dt),
            row_count=written.rows[dt],
            columns=tuple(c for c in columns if c.name not in evolving or c.name in written.present[dt]),
            stats=dict(stats.get(dt, {})), run_id=env.run_id,
        )
        for dt in dts
    }
    return StagedTable(table, env.lake.version_root(table, written.version_id), versions, columns)


def publish_staged(
    env: JobEnvironment,
    staged: StagedTable,
    dts: Iterable[str] | None = None,
    *,
    ledger: Iterable[LedgerEntry] = (),
    replace_ledger: bool = False,
    description: str = "",
    rejected: Mapping[str, str] | None = None,
    expected: dict[str, str | None] | None = None,
) -> TableReport:
    """Publish the staged partitions ``dts`` (default: all) in one transaction.

    Partitions in ``rejected`` (dt -> reason) failed their audit: they are recorded as rejected versions,
    left where they were written for inspection, and the published partition does not change.
    """
    rejected = dict(rejected or {})
    publish = [dt for dt in (staged.versions if dts is None else dts) if dt not in rejected]
    new_columns = env.catalog.publish(
        staged.table, [staged.versions[dt] for dt in publish], ledger=list(ledger),
        replace_ledger=replace_ledger, description=description, expected=expected,
    )
    for reason in sorted(set(rejected.values())):
        env.catalog.reject(
            staged.table, [staged.versions[dt] for dt, r in rejected.items() if r == reason], reason
        )
    report = TableReport(table=staged.table, columns=staged.columns)
    for dt, version in staged.versions.items():
        report.partitions[dt] = PartitionResult(
            dt=dt,
            published=dt in publish,
            row_count=version.row_count,
            version_id=version.version_id,
            location=version.location,
            stats=dict(version.stats),
            new_columns=new_columns.get(dt, []),
            note=rejected.get(dt) or ("" if version.row_count else "empty partition"),
        )
    return report


def publish_table(df: DataFrame, env: JobEnvironment, table: TableId, dts: list[str], *, stats=None, pii=None,
                  evolving: Iterable[str] = (), ledger: Iterable[LedgerEntry] = (), replace_ledger: bool = False,
                  description: str = "") -> TableReport:
    """Stage and publish every partition (for tables without a blocking gate)."""
    staged = stage_table(df, env, table, dts, stats=stats, pii=pii, evolving=evolving)
    return publish_staged(env, staged, ledger=ledger, replace_ledger=replace_ledger, description=description)
