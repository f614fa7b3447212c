"""Metrics job: per-partition data-quality and operations figures, as a queryable long-format table.

Operational figures (files, bytes, row accounting, durations) come from what each layer recorded in the
catalog when it published; data figures (malformed, rescued, null rates) are measured on the published
data, so the table is reproducible from the lake alone.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion_pipeline.jobs.environment import JobEnvironment
from medallion_pipeline.jobs.publish import publish_table, read_published
from medallion_pipeline.jobs.report import LayerReport
from medallion_pipeline.schemas.bronze import CORRUPT, RESCUED
from medallion_pipeline.schemas.silver import CONTRACT_COLUMNS
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


def collect_figures(spark: SparkSession, dts: list[str], env: JobEnvironment) -> list[tuple[str, str, str, str, float]]:
    """Rows of (dt, layer, table, metric, value) for ``dts``."""
    rows: list[tuple[str, str, str, str, float]] = []

    def add(dt: str, table: TableId, metric: str, value: float | None) -> None:
        if value is not None:
            rows.append((dt, table.layer, table.name, metric, float(value)))

    for table in (BRONZE_APP_LOGS, SILVER_APP_LOGS, SILVER_QUARANTINE, *GOLD_TABLES):
        for dt, version in env.catalog.current(table, dts).items():
            add(dt, table, "rows", version.row_count)
            if table == SILVER_APP_LOGS or table == BRONZE_APP_LOGS:
                for metric, value in version.stats.items():
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
    bronze = read_published(spark, env, BRONZE_APP_LOGS, dts)
    if bronze is not None:
        for r in _bronze_quality(bronze):
            add(r["dt"], BRONZE_APP_LOGS, "malformed_lines_total", r["malformed"])
            add(r["dt"], BRONZE_APP_LOGS, "rescued_rows_total", r["rescued"])
            add(r["dt"], BRONZE_APP_LOGS, "malformed_rate", r["malformed"] / r["rows"] if r["rows"] else None)
    silver = read_published(spark, env, SILVER_APP_LOGS, dts)
    if silver is not None:
        for dt, metric, value in _null_rates(silver):
            add(dt, SILVER_APP_LOGS, metric, value)
    return rows


def _bronze_quality(bronze: DataFrame):
    return (
        bronze.groupBy("dt")
        .agg(F.count(F.lit(1)).alias("rows"), F.count(CORRUPT).alias("malformed"), F.count(RESCUED).alias("rescued"))
        .collect()
    )


def _null_rates(silver: DataFrame):
    columns = [c for c in CONTRACT_COLUMNS if c in silver.columns]
    aggregates = [F.count(F.lit(1)).alias("_rows"), *[F.count(c).alias(c) for c in columns]]
    for row in silver.groupBy("dt").agg(*aggregates).collect():
        for c in columns:
            yield row["dt"], f"null_rate:{c}", 1 - row[c] / row["_rows"] if row["_rows"] else None


def run_metrics(spark: SparkSession, dts: list[str], env: JobEnvironment) -> LayerReport:
    started = time.monotonic()
    figures = collect_figures(spark, dts, env)
    computed_at = datetime.now(timezone.utc)
    df = (
        spark.createDataFrame(figures, METRIC_SCHEMA)
        .withColumn("computed_at", F.lit(computed_at).cast("timestamp"))
        .withColumn("run_id", F.lit(env.run_id))
        .select("layer", "table_name", "metric", "value", "computed_at", "run_id", "dt")
    )
    by_dt: dict[str, dict[str, float]] = {}
    for dt, layer, table, metric, value in figures:
        by_dt.setdefault(dt, {})[f"{layer}.{table}.{metric}"] = value
    report = LayerReport(layer="metrics", dts=dts)
    report.add(publish_table(df, env, METRICS_DQ, dts, stats=by_dt, description=DESCRIPTION))
    report.duration_s = time.monotonic() - started
    return report
