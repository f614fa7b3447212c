"""Reading published partitions and publishing new ones: the write–publish half of every job.

New data is written once per table and run into a fresh version directory (``partitionBy("dt")``), its row
counts observed in the same pass, and only then does the catalog pointer move.

Every publish is a compare-and-swap: a job captures its outputs' current versions (``current_version_ids``)
before it reads its inputs, records which input versions each partition was built from (``built_from``),
and publishes only if its partitions did not move meanwhile (``PublishConflict`` otherwise). Tables that
must change together (silver + quarantine, the four gold tables) publish in one catalog transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce

from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from medallion_pipeline.jobs.environment import JobEnvironment
from medallion_pipeline.jobs.report import PartitionResult, TableReport
from medallion_pipeline.resources.catalog import Column, LedgerEntry, PartitionVersion, PublishRequest
from medallion_pipeline.resources.lake import new_version_id
from medallion_pipeline.tables import TableId


def read_published(spark: SparkSession, env: JobEnvironment, table: TableId, dts: Iterable[str]) -> DataFrame | None:
    """The current version of each requested partition, with a ``dt`` column; None if none is published.

    Partitions written with different columns are unioned by name, so a column missing from an older
    partition reads as NULL there.
    """
    return read_versions(spark, list(env.catalog.current(table, dts).values()))


def read_current(
    spark: SparkSession, env: JobEnvironment, table: TableId, dts: Iterable[str]
) -> tuple[DataFrame | None, dict[str, PartitionVersion]]:
    """``read_published``, with the versions it read (dt -> version): the input a job records as lineage."""
    versions = env.catalog.current(table, dts)
    return read_versions(spark, list(versions.values())), versions


def current_version_ids(
    env: JobEnvironment, tables: Iterable[TableId], dts: Iterable[str]
) -> dict[TableId, dict[str, str | None]]:
    """What a job's publish must still find (``expected``): per table, dt -> current version id or None.

    Captured before the job reads its inputs, so a publish by another run meanwhile is a conflict.
    """
    dts = list(dts)
    out = {}
    for table in tables:
        current = env.catalog.current(table, dts)
        out[table] = {dt: current[dt].version_id if dt in current else None for dt in dts}
    return out


def same_day_lineage(
    dts: Iterable[str], *inputs: Mapping[str, PartitionVersion]
) -> dict[str, dict[str, dict[str, str]]]:
    """Per dt: the input partition versions of the same day it is built from, ``{table: {dt: version_id}}``."""
    return {
        dt: {versions[dt].table.qualified: {dt: versions[dt].version_id} for versions in inputs if dt in versions}
        for dt in dts
    }


def read_versions(spark: SparkSession, versions: list[PartitionVersion]) -> DataFrame | None:
    """These exact partition versions, with a ``dt`` column; None for an empty list.

    A version made of segments is read as one relation over all its directories, their schemas merged (a
    column that arrived in a later segment reads as NULL in the earlier ones).
    """
    if not versions:
        return None
    frames = [_read_version(spark, v).withColumn("dt", F.lit(v.dt)) for v in sorted(versions, key=lambda v: v.dt)]
    return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)


def _read_version(spark: SparkSession, version: PartitionVersion) -> DataFrame:
    if not version.segments:
        return spark.read.parquet(version.location)
    return spark.read.option("mergeSchema", "true").parquet(*version.locations)


def columns_of(df: DataFrame, pii: Mapping[str, str] | None = None) -> tuple[Column, ...]:
    """The catalog's column list for a DataFrame (without the ``dt`` partition column)."""
    pii = pii or {}
    return tuple(
        Column(f.name, f.dataType.simpleString(), f.name in pii, pii.get(f.name, ""))
        for f in df.schema.fields
        if f.name != "dt"
    )


LAYOUTS = {"by_day": lambda df: df.repartition("dt"), "as_read": lambda df: df, "one_task": lambda df: df.coalesce(1)}


@dataclass(frozen=True)
class WrittenVersion:
    version_id: str
    rows: dict[str, int]  # dt -> rows written
    present: dict[str, frozenset[str]]  # dt -> evolving columns holding at least one value
    measured: dict[str, dict[str, int]]  # dt -> measure -> rows where it is not NULL


def write_version(
    df: DataFrame, env: JobEnvironment, table: TableId, dts: list[str], evolving: Iterable[str] = (),
    version_id: str | None = None, *, measures: Mapping[str, SparkColumn] | None = None, layout: str = "by_day",
) -> WrittenVersion:
    """Write ``df`` (with a ``dt`` column) for ``dts`` into a new immutable version directory, in one pass.

    ``layout`` says how rows reach the files: ``by_day`` shuffles so that each ``dt`` is written by one task
    (one file per ``target_file_rows`` rows however many tasks computed it); ``as_read`` writes each task's
    rows where they are, without a shuffle, for input already grouped by day (landing files are listed per
    day, so a task reads few days); ``one_task`` writes a small result (gold, metrics) from one task. Files
    never exceed ``target_file_rows`` rows. A ``dt`` without rows gets an empty Parquet file with the schema,
    so "published and empty" is distinguishable from "never published". Row counts, which ``evolving`` columns
    hold data in which ``dt``, and per ``dt`` the rows where each of ``measures`` is not NULL are observed
    while writing (``DataFrame.observe``): nothing is read back.
    """
    version_id = version_id or new_version_id()
    root = env.lake.version_root(table, version_id)
    evolving, measures = list(evolving), dict(measures or {})
    observed = {"_rows": F.lit(1), **{f"_present:{c}": F.col(c) for c in evolving}, **measures}
    observation = Observation(f"write-{version_id}")
    aggregates = [F.count(F.when(F.col("dt") == dt, value)).alias(f"{i}|{name}")
                  for i, dt in enumerate(dts) for name, value in observed.items()]
    out = df.observe(observation, *aggregates)
    (
        LAYOUTS[layout](out)
        .write.partitionBy("dt")
        .option("maxRecordsPerFile", env.settings.target_file_rows)
        .mode("errorifexists")
        .parquet(root)
    )
    # Spark observes nothing when the plan turns out empty (no rows at all): every figure is then 0.
    figures = observation.get
    count = lambda i, name: int(figures.get(f"{i}|{name}") or 0)  # noqa: E731
    rows = {dt: count(i, "_rows") for i, dt in enumerate(dts)}
    present = {dt: frozenset(c for c in evolving if count(i, f"_present:{c}")) for i, dt in enumerate(dts)}
    measured = {dt: {name: count(i, name) for name in measures} for i, dt in enumerate(dts)}
    empty = df.sparkSession.createDataFrame([], df.drop("dt").schema)
    for dt in sorted(dt for dt in dts if not rows[dt]):
        empty.coalesce(1).write.mode("errorifexists").parquet(env.lake.partition_location(table, version_id, dt))
    return WrittenVersion(version_id, rows, present, measured)


@dataclass
class StagedTable:
    """A new version of a table, fully written and not yet visible to readers."""

    table: TableId
    root: str
    versions: dict[str, PartitionVersion]
    columns: tuple[Column, ...]
    written: dict[str, int]  # dt -> rows this write added (all of them, but for a version made of segments)
    observed: dict[str, dict[str, int]] = field(default_factory=dict)  # dt -> name -> rows (``observed``)

    def frame(self, spark: SparkSession) -> DataFrame:
        """What was written, with ``dt`` (a string): for a version made of segments, only its new segment."""
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
    built_from: Mapping[str, dict[str, dict[str, str]]] | None = None,
    measures: Mapping[str, SparkColumn] | None = None,
    layout: str = "by_day",
    appending_to: Mapping[str, PartitionVersion] | None = None,
    cumulative: Iterable[str] = (),
    observed: Mapping[str, SparkColumn] | None = None,
) -> StagedTable:
    """Write ``df`` as a new version of ``table`` for ``dts`` without publishing it.

    ``evolving`` columns (fields that arrived after v1) are recorded in a partition's schema only where
    they hold data, so the schema history says in which partition a column first appeared. ``built_from``
    (dt -> input versions) is the partition's lineage. ``measures`` (name -> column) are counted per ``dt``
    while writing — the rows where the column is not NULL — and join the partition's ``stats``. The version
    is leased to this run in the catalog before its first file is written, so vacuum leaves it alone while
    the run is in progress.

    ``appending_to`` (dt -> the partition's current version): for those days ``df`` holds only new rows,
    and the new version is made of segments — the current version's directories, referenced, plus this
    write's — so its row count, the evolving columns it holds, and the ``cumulative`` measures (counts over
    the whole partition) add up the current version's and this write's.

    ``observed`` (name -> column) are counted the same way in the same pass but not recorded: the audit's
    figures (``StagedTable.observed``).
    """
    stats, built_from, appending_to = stats or {}, built_from or {}, appending_to or {}
    columns = columns_of(df, pii)
    evolving, cumulative = set(evolving), set(cumulative)
    version_id = new_version_id()
    env.catalog.begin_staging(table, version_id, env.run_id)
    measures, observed = dict(measures or {}), dict(observed or {})
    written = write_version(df, env, table, dts, evolving, version_id, measures={**measures, **observed},
                            layout=layout)
    versions = {}
    for dt in dts:
        base = appending_to.get(dt)
        present = written.present[dt] | ({c.name for c in base.columns} if base else set())
        measured = {k: float(v) + (base.stats.get(k, 0.0) if base and k in cumulative else 0.0)
                    for k, v in written.measured[dt].items() if k in measures}
        if base:  # a figure the earlier version never counted cannot be added up: left out, not guessed
            measured = {k: v for k, v in measured.items() if k not in cumulative or k in base.stats}
        versions[dt] = PartitionVersion(
            table=table, dt=dt, version_id=written.version_id,
            location=env.lake.partition_location(table, written.version_id, dt),
            row_count=written.rows[dt] + (base.row_count if base else 0),
            columns=tuple(c for c in columns if c.name not in evolving or c.name in present),
            stats={**stats.get(dt, {}), **measured},
            run_id=env.run_id, built_from=dict(built_from.get(dt, {})),
            segments=base.locations if base else (),
        )
    return StagedTable(table, env.lake.version_root(table, written.version_id), versions, columns, dict(written.rows),
                       {dt: {k: v for k, v in written.measured[dt].items() if k in observed} for dt in dts})


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
    ``expected`` (dt -> version id current when the job started reading) makes it a compare-and-swap.
    """
    request = _request(staged, dts, rejected or {}, description, expected, list(ledger), replace_ledger)
    new_columns = env.catalog.publish_many([request])[staged.table]
    return _record_rejections_and_report(env, staged, request, rejected or {}, new_columns)


def publish_staged_tables(
    env: JobEnvironment,
    staged: Sequence[StagedTable],
    *,
    descriptions: Mapping[TableId, str],
    expected: Mapping[TableId, dict[str, str | None]],
    rejected: Mapping[TableId, Mapping[str, str]] | None = None,
) -> list[TableReport]:
    """Publish several staged tables in ONE catalog transaction: all their partitions, or none.

    ``expected`` (per table, dt -> the version id current when the job started reading) makes it a
    compare-and-swap over every table: if any of those partitions moved, ``PublishConflict`` is raised and
    nothing is published. ``rejected`` (per table, dt -> reason) as in ``publish_staged``; rejections are
    recorded after the publish, unconditionally.
    """
    rejected = rejected or {}
    requests = [_request(s, None, rejected.get(s.table, {}), descriptions.get(s.table, ""), expected[s.table])
                for s in staged]
    new_columns = env.catalog.publish_many(requests)
    return [_record_rejections_and_report(env, s, r, rejected.get(s.table, {}), new_columns[s.table])
            for s, r in zip(staged, requests)]


def _request(staged: StagedTable, dts: Iterable[str] | None, rejected: Mapping[str, str], description: str,
             expected: Mapping[str, str | None] | None, ledger: Sequence[LedgerEntry] = (),
             replace_ledger: bool = False) -> PublishRequest:
    publish = [dt for dt in (staged.versions if dts is None else dts) if dt not in rejected]
    # Only the partitions that move are compared: a rejected one keeps its pointer whatever happened to it.
    expected = None if expected is None else {dt: v for dt, v in expected.items() if dt in publish}
    return PublishRequest(staged.table, [staged.versions[dt] for dt in publish], tuple(ledger), replace_ledger,
                          description, expected)


def _record_rejections_and_report(env: JobEnvironment, staged: StagedTable, request: PublishRequest,
                                  rejected: Mapping[str, str], new_columns: dict[str, list[str]]) -> TableReport:
    for reason in sorted(set(rejected.values())):
        env.catalog.reject(
            staged.table, [staged.versions[dt] for dt, r in rejected.items() if r == reason], reason
        )
    published = {v.dt for v in request.versions}
    report = TableReport(table=staged.table, columns=staged.columns)
    for dt, version in staged.versions.items():
        report.partitions[dt] = PartitionResult(
            dt=dt,
            published=dt in published,
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
                  description: str = "", expected: dict[str, str | None] | None = None,
                  built_from: Mapping[str, dict[str, dict[str, str]]] | None = None, layout: str = "by_day") -> TableReport:
    """Stage and publish every partition (for tables without a blocking gate)."""
    staged = stage_table(df, env, table, dts, stats=stats, pii=pii, evolving=evolving, built_from=built_from,
                         layout=layout)
    return publish_staged(env, staged, ledger=ledger, replace_ledger=replace_ledger, description=description,
                          expected=expected)
