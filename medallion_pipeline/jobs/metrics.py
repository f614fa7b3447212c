"""Metrics job: per-partition data-quality and operations figures, as a queryable long-format table.

Every figure comes from what a layer recorded in the catalog when it published: files, bytes, row
accounting, durations, and the data figures (malformed and rescued lines, null rates) that bronze and silver
counted while writing — nothing is rescanned (a partition written before they were counted is measured
here once). The input versions are pinned once per run: the
figures are measured on them, each partition records them as ``built_from``, and the publish is a
compare-and-swap on the metrics partitions current when the run started.
"""

from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from medallion_pipeline.jobs.environment import JobEnvironment
from medallion_pipeline.jobs.publish import current_version_ids, publish_table, read_versions, same_day_lineage
from medallion_pipeline.jobs.usage import measured
from medallion_pipeline.jobs.report import LayerReport
from medallion_pipeline.resources.catalog import PartitionVersion
from medallion_pipeline.schemas.bronze import CORRUPT, RESCUED
from medallion_pipeline.schemas.silver import CONTRACT_COLUMNS, NON_NULL
from medallion_pipeline.tables import (
    ALL_TABLES,
    BRONZE_APP_LOGS,
    GOLD_TABLES,
    METRICS_DQ,
    SILVER_APP_LOGS,
    SILVER_QUARANTINE,
    TableId,
)

DESCRIPTION = "Per-partition data-quality and operations figures for every layer (long format)."
METRIC_SCHEMA = "dt string, layer string, table_name string, metric string, value double"
INPUT_TABLES = (BRONZE_APP_LOGS, SILVER_APP_LOGS, SILVER_QUARANTINE, *GOLD_TABLES)


def metric_stat_key(table: TableId, metric: str) -> str:
    """How a metrics partition's catalog stats name one figure, e.g. ``silver.app_logs.silver_rows``
    (silver's row-count baseline reads them without scanning the metrics dataset)."""
    return f"{table.qualified}.{metric}"


def collect_figures(
    spark: SparkSession, dts: list[str], env: JobEnvironment,
    inputs: dict[TableId, dict[str, PartitionVersion]] | None = None,
) -> list[tuple[str, str, str, str, float]]:
    """Rows of (dt, layer, table, metric, value) for ``dts``, measured on ``inputs`` (default: current)."""
    inputs = inputs or {table: env.catalog.current(table, dts) for table in INPUT_TABLES}
    rows: list[tuple[str, str, str, str, float]] = []

    def add(dt: str, table: TableId, metric: str, value: float | None) -> None:
        if value is not None:
            rows.append((dt, table.layer, table.name, metric, float(value)))

    for table in INPUT_TABLES:
        for dt, version in inputs[table].items():
            add(dt, table, "rows", version.row_count)
            if table == SILVER_APP_LOGS or table == BRONZE_APP_LOGS:
                for metric, value in version.stats.items():
                    if not metric.startswith(NON_NULL):  # null rates below
                        add(dt, table, metric, value)
    for table in ALL_TABLES:
        for check in env.catalog.latest_checks(table, dts):
            add(check.dt, table, f"check_passed:{check.check}", float(check.passed))
            add(check.dt, table, f"check_observed:{check.check}", check.observed)
    for dt in dts:
        ledger = env.catalog.ledger(BRONZE_APP_LOGS, dt)
        add(dt, BRONZE_APP_LOGS, "files_ingested", sum(e.status == "ingested" for e in ledger))
        add(dt, BRONZE_APP_LOGS, "files_unreadable", sum(e.status == "unreadable" for e in ledger))
        add(dt, BRONZE_APP_LOGS, "bytes_ingested", sum(e.size for e in ledger))
    for table in ALL_TABLES:
        changes = env.catalog.schema_history(table)
        # Columns present in the table's earliest partition are its initial schema, not drift.
        baseline = min((c.first_dt for c in changes), default=None)
        for change in changes:
            if change.first_dt in dts and change.first_dt != baseline:
                add(change.first_dt, table, f"new_column:{change.column}", 1)
    for dt, version in inputs[BRONZE_APP_LOGS].items():
        figures = version.stats if BRONZE_TOTALS <= set(version.stats) else None
        if figures is None:  # written before bronze counted these while writing: measured here, once
            figures = _bronze_quality(spark, version)
            for metric in BRONZE_TOTALS:
                add(dt, BRONZE_APP_LOGS, metric, figures[metric])
        malformed = figures["malformed_lines_total"]
        add(dt, BRONZE_APP_LOGS, "malformed_rate", malformed / version.row_count if version.row_count else None)
    for dt, version in inputs[SILVER_APP_LOGS].items():
        present = {c: version.stats.get(f"{NON_NULL}{c}") for c in CONTRACT_COLUMNS}
        if None in present.values():  # written before silver counted them while writing
            present = _non_null(spark, version)
        for column, n in present.items():
            add(dt, SILVER_APP_LOGS, f"null_rate:{column}", 1 - n / version.row_count if version.row_count else None)
    return rows


BRONZE_TOTALS = {"malformed_lines_total", "rescued_rows_total"}


def _bronze_quality(spark: SparkSession, version: PartitionVersion) -> dict[str, float]:
    row = read_versions(spark, [version]).agg(
        F.count(CORRUPT).alias("malformed_lines_total"), F.count(RESCUED).alias("rescued_rows_total")).first()
    return row.asDict()


def _non_null(spark: SparkSession, version: PartitionVersion) -> dict[str, float]:
    silver = spark.read.parquet(version.location)
    row = silver.agg(*[(F.count(c) if c in silver.columns else F.lit(0)).alias(c) for c in CONTRACT_COLUMNS]).first()
    return row.asDict()


@measured
def run_metrics(spark: SparkSession, dts: list[str], env: JobEnvironment) -> LayerReport:
    expected = current_version_ids(env, [METRICS_DQ], dts)[METRICS_DQ]  # before reading: what this run replaces
    inputs = {table: env.catalog.current(table, dts) for table in INPUT_TABLES}
    figures = collect_figures(spark, dts, env, inputs)
    computed_at = datetime.now(timezone.utc)
    df = (
        spark.createDataFrame(figures, METRIC_SCHEMA)
        .withColumn("computed_at", F.lit(computed_at).cast("timestamp"))
        .withColumn("run_id", F.lit(env.run_id))
        .select("layer", "table_name", "metric", "value", "computed_at", "run_id", "dt")
    )
    by_dt: dict[str, dict[str, float]] = {}
    for dt, layer, table, metric, value in figures:
        by_dt.setdefault(dt, {})[metric_stat_key(TableId(layer, table), metric)] = value
    report = LayerReport(layer="metrics", dts=dts)
    report.add(publish_table(df, env, METRICS_DQ, dts, stats=by_dt, description=DESCRIPTION, expected=expected,
                             built_from=same_day_lineage(dts, *inputs.values()), layout="one_task"))
    return report
