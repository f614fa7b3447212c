"""Bronze job: ingest the landing files not yet in the ledger, in O(new files).

Incremental by default: for each ``dt`` only files whose (key, etag) — or whose content — is not in the
ingest ledger are read, and the partition's new version is the previous rows plus the new ones: made of
segments (the previous version's directories, referenced, plus one holding the new rows), or rewritten
into one when it would exceed ``MEDALLION_BRONZE_MAX_SEGMENTS`` or a landing object's earlier rows must go
(see ``_appendable``). A full rebuild re-reads the whole ``dt`` prefix and replaces both the partition and
its ledger — except for files the ledger has ingested that are no longer in landing (expired by a lifecycle
rule): bronze is their only copy, so their rows and ledger entries are carried over from the current
version, unless the caller asks explicitly to drop them (``drop_missing_files``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion_pipeline.jobs.environment import JobEnvironment
from medallion_pipeline.jobs.audit import audit_bronze, carried_over, record
from medallion_pipeline.jobs.publish import publish_staged, read_versions, stage_table
from medallion_pipeline.jobs.usage import measured
from medallion_pipeline.jobs.report import LayerReport, PartitionResult, TableReport
from medallion_pipeline.resources.catalog import LedgerEntry, PartitionVersion
from medallion_pipeline.resources.landing import LandingFile
from medallion_pipeline.schemas.bronze import (
    CORRUPT,
    INGESTED_AT,
    METADATA_COLUMNS,
    PII_COLUMNS,
    RESCUED,
    TYPED_FIELDS,
)
from medallion_pipeline.tables import BRONZE_APP_LOGS
from medallion_pipeline.transforms.bronze import parse_lines, plan_new_columns, to_bronze, unknown_keys

DESCRIPTION = "Raw application log events, one row per input line, schema-evolving."


@dataclass
class IngestPlan:
    """What one partition's ingest will read, and what it skips."""

    dt: str
    landed: list[LandingFile]
    new: list[LandingFile] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # key -> reason
    already_ingested: int = 0
    duplicate_content: int = 0
    replaced: list[str] = field(default_factory=list)  # keys overwritten with new content: old rows go
    # Full refresh only: ingested files no longer in landing, whose rows are carried over (kept) or dropped.
    kept: list[LedgerEntry] = field(default_factory=list)
    dropped: list[LedgerEntry] = field(default_factory=list)

    @property
    def readable(self) -> list[LandingFile]:
        return [f for f in self.new if f.key not in self.unreadable]

    def ledger(self) -> list[LedgerEntry]:
        return [
            LedgerEntry(self.dt, f.key, f.size, f.etag, "unreadable" if f.key in self.unreadable else "ingested")
            for f in self.new
        ] + self.kept


def plan_ingest(env: JobEnvironment, dt: str, full_refresh: bool, drop_missing_files: bool = False) -> IngestPlan:
    plan = IngestPlan(dt=dt, landed=env.landing.list_partition(dt))
    ledger = env.catalog.ledger(BRONZE_APP_LOGS, dt)
    if full_refresh:
        landed_keys = {f.key for f in plan.landed}
        missing = [e for e in ledger if e.status == "ingested" and e.key not in landed_keys]
        if drop_missing_files:
            plan.dropped = missing
        else:
            plan.kept = missing
        # A rebuild starts from no ledger but the kept files: their content re-landed under another key
        # is a duplicate, as it would be in an incremental run.
        ledger = plan.kept
    seen_files = {(e.key, e.etag) for e in ledger}
    seen_keys = {e.key for e in ledger}
    seen_content = {e.etag for e in ledger if e.status == "ingested"}
    for f in plan.landed:
        if (f.key, f.etag) in seen_files:
            plan.already_ingested += 1
        elif f.etag in seen_content:
            plan.duplicate_content += 1  # the same bytes re-delivered under a new key
        else:
            plan.new.append(f)
            seen_content.add(f.etag)
            if f.key in seen_keys:
                plan.replaced.append(f.key)
    for f in plan.new:
        reason = env.landing.unreadable_reason(f)
        if reason:
            plan.unreadable[f.key] = reason
    return plan


def read_lines(spark: SparkSession, files: list[LandingFile]) -> DataFrame:
    return spark.read.text([f.uri for f in files]).select("value", F.col("_metadata.file_path").alias("_file_path"))


@measured
def run_bronze(spark: SparkSession, dts: list[str], env: JobEnvironment, full_refresh: bool = False,
               drop_missing_files: bool = False) -> LayerReport:
    """Ingest new landing files for ``dts`` into bronze; ``full_refresh`` rebuilds the partitions.

    A rebuild keeps the rows of ingested files that are gone from landing unless ``drop_missing_files``.
    """
    plans = {dt: plan_ingest(env, dt, full_refresh, drop_missing_files) for dt in dts}
    report = LayerReport(layer="bronze", dts=dts)
    to_read = [f for p in plans.values() for f in p.readable]
    changed = [dt for dt, p in plans.items() if p.new]
    ledger = [e for dt in changed for e in plans[dt].ledger()]
    # New versions build on the current ones (a rebuild carries rows over): publish only if nobody replaced
    # them meanwhile.
    current = env.catalog.current(BRONZE_APP_LOGS, changed)
    expected = {dt: current[dt].version_id if dt in current else None for dt in changed}
    table_report = TableReport(table=BRONZE_APP_LOGS)
    if to_read:
        # Two passes over the new files, none cached: the keys decide the columns, then one parse and write.
        lines = read_lines(spark, to_read)
        keys = unknown_keys(lines)
        missing_stats: dict[str, dict[str, float]] = {}
        appending = {} if full_refresh else _appendable(plans, current, env.settings.bronze_max_segments)
        if full_refresh:
            previous, missing_stats = _rows_of_missing_files(spark, plans, current)
        else:  # the days rewritten whole; the days appended to are not read, only their schema is
            previous = read_versions(spark, [current[dt] for dt in changed if dt in current and dt not in appending])
        schema_only = read_versions(spark, list(appending.values()))
        established = [c for c in _columns(previous, schema_only) if c not in METADATA_COLUMNS]
        new_columns = plan_new_columns(keys, established, env.settings.max_new_columns)
        now = datetime.now(timezone.utc)
        fresh = to_bronze(parse_lines(lines), new_columns, F.lit(now).cast("timestamp"))
        replaced = [key for p in plans.values() for key in p.replaced]
        if previous is not None and replaced:  # an overwritten landing object replaces its earlier rows
            previous = previous.where(~F.col("_source_file").isin(replaced))
        merged = fresh
        if schema_only is not None:  # a new segment is written with its partition's whole schema
            merged = schema_only.where(F.lit(False)).unionByName(merged, allowMissingColumns=True)
        if previous is not None:
            merged = previous.unionByName(merged, allowMissingColumns=True)
        merged = merged.select(*_ordered(merged.columns))
        stats = {dt: {**_plan_stats(p), **missing_stats.get(dt, {}),
                      "segments": float(len(appending[dt].locations) + 1 if dt in appending else 1)}
                 for dt, p in plans.items()}
        staged = stage_table(merged, env, BRONZE_APP_LOGS, changed, stats=stats, pii=PII_COLUMNS,
                             evolving=_new_columns(merged.columns), measures=_line_measures(now),
                             appending_to=appending, cumulative=PARTITION_TOTALS,
                             # New files only: the tasks that read them write them (landing is listed per day).
                             # A day rewritten with earlier rows is compacted, one file per day.
                             layout="as_read" if previous is None else "by_day")
        table_report = publish_staged(env, staged, ledger=ledger, replace_ledger=full_refresh, description=DESCRIPTION,
                                      expected=expected)
        untagged = [c.name for c in staged.columns if c.type == "string" and not c.pii and c.name != "_source_file"]
        table_report.checks = audit_bronze(
            staged.frame(spark), changed, {dt: p.new_columns for dt, p in table_report.partitions.items()},
            env.settings, untagged, staged=staged, earlier=carried_over(env, BRONZE_APP_LOGS, sorted(appending)),
        )
        record(env, BRONZE_APP_LOGS, table_report.checks)
    elif ledger:  # only unreadable files arrived: record them so they are not re-checked every run
        env.catalog.publish(BRONZE_APP_LOGS, [], ledger=ledger)
    for dt, plan in plans.items():
        if dt not in table_report.partitions or not table_report.partitions[dt].published:
            table_report.partitions[dt] = PartitionResult(
                dt=dt, published=False, stats=_plan_stats(plan),
                note="no new landing files" if not plan.readable else "new files held no rows",
            )
    audited = {c.dt for c in table_report.checks}
    table_report.checks += carried_over(env, BRONZE_APP_LOGS, [dt for dt in dts if dt not in audited])
    report.add(table_report)
    return report


def _rows_of_missing_files(
    spark: SparkSession, plans: dict[str, IngestPlan], current: dict[str, PartitionVersion]
) -> tuple[DataFrame | None, dict[str, dict[str, float]]]:
    """For a rebuild: the current rows of kept files gone from landing, and how many rows were kept or dropped.

    ``_source_file`` is the landing key, so a file's rows are found by its ledger key.
    """
    affected = [current[dt] for dt, p in plans.items() if dt in current and p.new and (p.kept or p.dropped)]
    rows = read_versions(spark, affected)
    if rows is None:
        return None, {}
    # A join, not ``isin``: a day whose landing expired can have thousands of missing files.
    missing = spark.createDataFrame(
        [(e.key, True) for p in plans.values() for e in p.kept]
        + [(e.key, False) for p in plans.values() for e in p.dropped],
        "_source_file string, _kept boolean",
    )
    rows = rows.join(F.broadcast(missing), "_source_file", "left")
    counts = rows.groupBy("dt").agg(
        F.count(F.when(F.col("_kept"), 1)).alias("rows_kept_missing_from_landing"),
        F.count(F.when(~F.col("_kept"), 1)).alias("rows_dropped_missing_from_landing"),
    )
    stats = {r["dt"]: {k: r[k] for k in ("rows_kept_missing_from_landing", "rows_dropped_missing_from_landing")}
             for r in counts.collect()}
    kept = rows.where(F.col("_kept")).drop("_kept")
    return (kept if any(p.kept for p in plans.values()) else None), stats


def _appendable(plans: dict[str, IngestPlan], current: dict[str, PartitionVersion],
                max_segments: int) -> dict[str, PartitionVersion]:
    """The days whose new rows become one more segment of the current version (dt -> that version).

    The others are rewritten whole (compacted): a day without a version yet, a day where a landing object
    was overwritten (its earlier rows must go), and a day whose version would be made of more than
    ``max_segments`` directories.
    """
    return {dt: current[dt] for dt, plan in plans.items()
            if plan.new and dt in current and not plan.replaced and len(current[dt].locations) < max_segments}


def _columns(*frames: DataFrame | None) -> list[str]:
    return [c for frame in frames if frame is not None for c in frame.columns]


def _new_columns(columns: list[str]) -> list[str]:
    """Columns beyond the v1 fields: the ones schema evolution added."""
    return sorted(c for c in columns if c not in TYPED_FIELDS and c not in METADATA_COLUMNS and c != "dt")


def _ordered(columns: list[str]) -> list[str]:
    """Known fields, then new columns alphabetically, then lineage columns, then ``dt``."""
    return [*TYPED_FIELDS, *_new_columns(columns), *METADATA_COLUMNS, "dt"]


def _plan_stats(plan: IngestPlan) -> dict[str, float]:
    return {
        "files_landed": len(plan.landed),
        "files_new": len(plan.new),
        "files_already_ingested": plan.already_ingested,
        "files_duplicate_content": plan.duplicate_content,
        "files_unreadable": len(plan.unreadable),
        "files_replaced": len(plan.replaced),
        "files_kept_missing_from_landing": len(plan.kept),
        "files_dropped_missing_from_landing": len(plan.dropped),
        "bytes_new": sum(f.size for f in plan.new),
    }


PARTITION_TOTALS = ("malformed_lines_total", "rescued_rows_total")  # over the whole partition: segments add up


def _line_measures(ingested_at: datetime) -> dict[str, Column]:
    """Counted while the partition is written: lines, malformed lines and rows with rescued values, of this
    ingest's rows (its ``_ingested_at``) and of the whole partition (the metrics dataset's figures)."""
    new = F.col(INGESTED_AT) == F.lit(ingested_at).cast("timestamp")
    return {
        "lines_new": F.when(new, 1), "malformed_lines_new": F.when(new, F.col(CORRUPT)),
        "rescued_rows_new": F.when(new, F.col(RESCUED)),
        "malformed_lines_total": F.col(CORRUPT), "rescued_rows_total": F.col(RESCUED),
    }
