"""Silver job: rebuild each requested partition from its published bronze version.

Silver is always recomputed whole per partition (bronze holds every row of the day), so deduplication is
complete and reruns are idempotent. Rows breaking a row-level rule go to ``silver.quarantine``.
"""

from __future__ import annotations

from datetime import date, timedelta

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion_pipeline.jobs.environment import JobEnvironment
from medallion_pipeline.jobs.metrics import metric_stat_key
from medallion_pipeline.jobs.audit import audit_silver, record, rejections, row_count_anomalies
from medallion_pipeline.jobs.publish import (
    current_version_ids,
    publish_staged_tables,
    read_current,
    same_day_lineage,
    stage_table,
)
from medallion_pipeline.jobs.usage import measured
from medallion_pipeline.jobs.report import LayerReport
from medallion_pipeline.schemas.bronze import INGESTED_AT, TYPED_FIELDS
from medallion_pipeline.schemas.silver import (
    CONTRACT_COLUMNS,
    NON_NULL,
    PII_COLUMNS,
    QUARANTINE_REASON,
    QUARANTINE_REASONS,
)
from medallion_pipeline.tables import BRONZE_APP_LOGS, METRICS_DQ, SILVER_APP_LOGS, SILVER_QUARANTINE
from medallion_pipeline.transforms.silver import (
    DUPLICATE_RANK,
    extra_columns,
    flag_rows,
    free_text_columns,
    normalize,
    protect_pii,
    select_quarantine,
    select_silver,
)

SILVER_DESCRIPTION = "Typed, deduplicated, PII-safe application log events (UTC)."
QUARANTINE_DESCRIPTION = "Events that broke a row-level rule, with the reason; PII-safe."
# New string fields and rescued values can hold anything: tagged, and masked like ``message``.
MASKED_FREE_TEXT = "may hold personal data; emails, IPs, card numbers, keys and tokens masked"


@measured
def run_silver(spark: SparkSession, dts: list[str], env: JobEnvironment) -> LayerReport:
    report = LayerReport(layer="silver", dts=dts)
    # What this run replaces, captured before it reads: a publish by another run meanwhile is a conflict.
    expected = current_version_ids(env, (SILVER_APP_LOGS, SILVER_QUARANTINE), dts)
    # No bronze at all still goes through the gates: the empty partitions fail total_rows_positive.
    bronze, bronze_versions = read_current(spark, env, BRONZE_APP_LOGS, dts)
    if bronze is None:
        bronze = _empty_bronze(spark)
    pii_key = env.settings.resolved_pii_key().encode()
    flagged = (
        bronze.transform(normalize)
        .transform(lambda df: protect_pii(df, pii_key))
        .transform(lambda df: flag_rows(df, env.settings.allowed_event_types))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    stats = _row_accounting(flagged, {dt: v.row_count for dt, v in bronze_versions.items()}, dts)
    evolving = extra_columns(flagged)
    pii = {**{c: MASKED_FREE_TEXT for c in free_text_columns(flagged) if c not in ("path", "user_agent")},
           **PII_COLUMNS}
    # The metrics dataset's null rates are counted while silver is written.
    silver = stage_table(select_silver(flagged), env, SILVER_APP_LOGS, dts, stats=stats, pii=pii,
                         evolving=evolving, built_from=same_day_lineage(dts, bronze_versions),
                         measures={f"{NON_NULL}{c}": F.col(c) for c in CONTRACT_COLUMNS})
    quarantine = stage_table(select_quarantine(flagged), env, SILVER_QUARANTINE, dts, stats=stats,
                             pii=pii, evolving=evolving, built_from=same_day_lineage(dts, bronze_versions))
    # Audit what was written, before anything is published (write–audit–publish).
    checks = audit_silver(silver.frame(spark), dts, stats, env.settings,
                          duplicates=flagged.where(F.col(DUPLICATE_RANK) > 1))
    checks += row_count_anomalies({dt: v.row_count for dt, v in silver.versions.items()},
                                  _trailing_silver_rows(env, dts), env.settings)
    rejected = rejections(checks)
    record(env, SILVER_APP_LOGS, checks)
    # Silver and its quarantine are one outcome: both partitions move together, or neither.
    for table_report in publish_staged_tables(
        env, [silver, quarantine], expected=expected,
        rejected={SILVER_APP_LOGS: rejected, SILVER_QUARANTINE: rejected},
        descriptions={SILVER_APP_LOGS: SILVER_DESCRIPTION, SILVER_QUARANTINE: QUARANTINE_DESCRIPTION},
    ):
        report.add(table_report)
    report.table(SILVER_APP_LOGS).checks = checks
    flagged.unpersist()
    return report


def _trailing_silver_rows(env: JobEnvironment, dts: list[str]) -> dict[str, float]:
    """``silver_rows`` of the days before ``dts`` from the metrics dataset (the row-count anomaly baseline),
    as its partitions recorded them in the catalog: no scan."""
    first, last = date.fromisoformat(min(dts)), date.fromisoformat(max(dts))
    window = env.settings.dq_row_count_history_days
    days = [(first - timedelta(days=i)).isoformat() for i in range(1, window + 1)]
    days += [(first + timedelta(days=i)).isoformat() for i in range((last - first).days)]
    key = metric_stat_key(SILVER_APP_LOGS, "silver_rows")
    return {dt: v.stats[key] for dt, v in env.catalog.current(METRICS_DQ, days).items() if key in v.stats}


def _empty_bronze(spark: SparkSession) -> DataFrame:
    columns = [*(f"{name} {kind}" for name, kind in TYPED_FIELDS.items()),
               "_rescued_data string", "_corrupt_record string", "_source_file string", "_ingested_at timestamp",
               "dt string"]
    return spark.createDataFrame([], ", ".join(columns))


def _row_accounting(flagged: DataFrame, bronze_rows: dict[str, int], dts: list[str]) -> dict[str, dict[str, float]]:
    """Per ``dt``: bronze rows in, parsed, quarantined (by reason), duplicates removed, silver rows out.

    One aggregation over the flagged rows (it fills their cache); bronze's row count is its catalog figure,
    and the malformed lines are the bronze rows that did not parse (``normalize`` drops exactly those).
    ``silver_rows + quarantined_rows + duplicates_removed == bronze_parsed_rows`` holds by construction.
    """
    reason = F.col(QUARANTINE_REASON)
    lag_s = F.unix_timestamp(INGESTED_AT) - F.unix_timestamp("event_ts")
    aggregates = [
        F.count(F.lit(1)).alias("bronze_parsed_rows"),
        F.count(reason).alias("quarantined_rows"),
        F.count(F.when(F.col(DUPLICATE_RANK) > 1, 1)).alias("duplicates_removed"),
        F.count(F.when(F.col(DUPLICATE_RANK) == 1, 1)).alias("silver_rows"),
        F.max(F.when(F.col(DUPLICATE_RANK) == 1, lag_s)).alias("event_lag_max_s"),
        F.percentile_approx(F.when(F.col(DUPLICATE_RANK) == 1, lag_s), 0.5).alias("event_lag_p50_s"),
        *[F.count(F.when(reason == name, 1)).alias(f"quarantined_{name}") for name in QUARANTINE_REASONS],
    ]
    stats: dict[str, dict[str, float]] = {}
    for row in flagged.groupBy("dt").agg(*aggregates).collect():
        figures = {k: (float(v) if v is not None else 0.0) for k, v in row.asDict().items() if k != "dt"}
        figures["bronze_rows"] = float(bronze_rows.get(row["dt"], 0))
        figures["malformed_lines"] = figures["bronze_rows"] - figures["bronze_parsed_rows"]
        figures["duplicate_rate"] = figures["duplicates_removed"] / figures["bronze_parsed_rows"]
        stats[row["dt"]] = figures
    for dt in dts:  # a day whose bronze rows are all malformed has no parsed row to group
        if dt not in stats and bronze_rows.get(dt):
            stats[dt] = {"bronze_rows": float(bronze_rows[dt]), "malformed_lines": float(bronze_rows[dt]),
                         "bronze_parsed_rows": 0.0}
    return stats
