"""Gold job: the four KPI tables from one scan of published silver, in one Spark application.

Silver is read once (cached); each table's result is a few rows per day, kept in memory by the write that
computes it, which also counts the audit's figures (rule violations per day), so nothing is recomputed or
read back; the cache is read again only for the samples of a failing partition. The four tables are
computed, written and audited side by side (``usage.side_by_side``) from the filled cache.

The four tables of a day are one view of it: they are published in one catalog transaction, and only if
none of them moved since the job started reading (each gold table's own gate still decides its partitions).
"""

from __future__ import annotations

import functools

from pyspark import StorageLevel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from medallion_pipeline.jobs.environment import JobEnvironment
from medallion_pipeline.jobs.audit import audit_gold, gold_counts, record, rejections
from medallion_pipeline.jobs.publish import (
    StagedTable,
    current_version_ids,
    publish_staged_tables,
    read_current,
    same_day_lineage,
    stage_table,
)
from medallion_pipeline.schemas.gold import DailyKpis, EndpointStats, Funnel, Sessions
from medallion_pipeline.jobs.usage import measured, side_by_side
from medallion_pipeline.jobs.report import CheckOutcome, LayerReport
from medallion_pipeline.schemas.silver import CONTRACT_COLUMNS
from medallion_pipeline.tables import (
    GOLD_DAILY_KPIS,
    GOLD_ENDPOINT_STATS,
    GOLD_FUNNEL,
    GOLD_SESSIONS,
    SILVER_APP_LOGS,
    TableId,
)
from medallion_pipeline.transforms import gold

GOLD_SCHEMAS = {
    GOLD_DAILY_KPIS: DailyKpis, GOLD_ENDPOINT_STATS: EndpointStats, GOLD_SESSIONS: Sessions, GOLD_FUNNEL: Funnel,
}
GOLD_TRANSFORMS = {
    GOLD_DAILY_KPIS: (gold.daily_kpis, "Per day and service: requests, status mix, rates, latency, users."),
    GOLD_ENDPOINT_STATS: (gold.endpoint_stats, "Per day and endpoint (ids normalized): requests, errors, p95."),
    GOLD_SESSIONS: (gold.sessions, "Per day: sessions, duration, events per session, bounce rate."),
    GOLD_FUNNEL: (gold.funnel, "Per day: users through login, view_item, add_to_cart, purchase."),
}
SILVER_COLUMNS = ("event_id", "event_ts", "service", "event_type", "user_id", "session_id", "method", "path",
                  "status", "latency_ms", "bytes", "dt")


@measured
def run_gold(spark: SparkSession, dts: list[str], env: JobEnvironment) -> LayerReport:
    report = LayerReport(layer="gold", dts=dts)
    expected = current_version_ids(env, GOLD_TRANSFORMS, dts)  # before reading: what this run replaces
    silver, silver_versions = read_current(spark, env, SILVER_APP_LOGS, dts)
    if silver is None:  # nothing to aggregate: empty KPI partitions, still audited
        silver = spark.createDataFrame([], ", ".join(f"{c} {k}" for c, k in {**CONTRACT_COLUMNS, "dt": "string"}.items()))
    silver = silver.select(*SILVER_COLUMNS).persist(StorageLevel.MEMORY_AND_DISK)
    lineage = same_day_lineage(dts, silver_versions)

    def build(table: TableId, transform) -> tuple[StagedTable, list[CheckOutcome]]:
        # A few rows per day, computed once into memory by the write, which counts what the audit judges.
        result = silver.transform(transform).persist(StorageLevel.MEMORY_AND_DISK)
        schema = GOLD_SCHEMAS[table].to_schema()
        counts = {name: F.when(broken, 1) for name, broken in gold_counts(table, result.columns, schema).items()}
        staged = stage_table(result, env, table, dts, built_from=lineage, layout="one_task", observed=counts)
        checks = audit_gold(table, result, schema, dts, counted=staged.observed)
        result.unpersist()
        return staged, checks

    silver.count()  # the cache filled once, before the four tables read it at once
    built = side_by_side({table: functools.partial(build, table, transform)
                          for table, (transform, _) in GOLD_TRANSFORMS.items()})
    staged, checks, rejected = [], {}, {}
    for table, (table_staged, checks[table]) in built.items():
        staged.append(table_staged)
        record(env, table, checks[table])
        rejected[table] = rejections(checks[table])
    descriptions = {table: description for table, (_, description) in GOLD_TRANSFORMS.items()}
    for table_report in publish_staged_tables(env, staged, expected=expected, rejected=rejected,
                                              descriptions=descriptions):
        report.add(table_report)
        table_report.checks = checks[table_report.table]
    silver.unpersist()
    return report
