"""Gold job: the four KPI tables from published silver, in one Spark application."""

from __future__ import annotations

import time

from pyspark import StorageLevel
from pyspark.sql import SparkSession

from medallion_pipeline.jobs.environment import JobEnvironment
from medallion_pipeline.jobs.audit import audit_gold, record, rejections
from medallion_pipeline.jobs.publish import publish_staged, read_published, stage_table
from medallion_pipeline.schemas.gold import DailyKpis, EndpointStats, Funnel, Sessions
from medallion_pipeline.jobs.report import LayerReport
from medallion_pipeline.schemas.silver import CONTRACT_COLUMNS
from medallion_pipeline.tables import (
    GOLD_DAILY_KPIS,
    GOLD_ENDPOINT_STATS,
    GOLD_FUNNEL,
    GOLD_SESSIONS,
    SILVER_APP_LOGS,
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


def run_gold(spark: SparkSession, dts: list[str], env: JobEnvironment) -> LayerReport:
    started = time.monotonic()
    report = LayerReport(layer="gold", dts=dts)
    silver = read_published(spark, env, SILVER_APP_LOGS, dts)
    if silver is None:  # nothing to aggregate: empty KPI partitions, still audited
        silver = spark.createDataFrame([], ", ".join(f"{c} {k}" for c, k in {**CONTRACT_COLUMNS, "dt": "string"}.items()))
    silver = silver.select(*SILVER_COLUMNS).persist(StorageLevel.MEMORY_AND_DISK)
    for table, (transform, description) in GOLD_TRANSFORMS.items():
        staged = stage_table(silver.transform(transform), env, table, dts)
        checks = audit_gold(table, staged.frame(spark), GOLD_SCHEMAS[table].to_schema(), dts)
        record(env, table, checks)
        report.add(publish_staged(env, staged, rejected=rejections(checks), description=description))
        report.table(table).checks = checks
    silver.unpersist()
    report.duration_s = time.monotonic() - started
    return report
