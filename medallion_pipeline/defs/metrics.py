"""metrics/dq: per-partition data-quality and operations figures for every layer."""

import dagster as dg

from medallion_pipeline.defs.automation import GATED
from medallion_pipeline.defs.partition_locks import partition_locks
from medallion_pipeline.defs.partitions import OWNERS, daily_partitions, single_run
from medallion_pipeline.defs.reporting import asset_key, materialize_result
from medallion_pipeline.jobs.metrics import DESCRIPTION
from medallion_pipeline.launchers.launcher import SparkLauncher
from medallion_pipeline.tables import ALL_TABLES, METRICS_DQ


@dg.asset(
    key=METRICS_DQ.asset_path,
    deps=[asset_key(t) for t in ALL_TABLES if t != METRICS_DQ],
    group_name="metrics",
    description=DESCRIPTION,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    kinds={"spark", "parquet"},
    owners=OWNERS,
    tags={"layer": "metrics"},
    automation_condition=GATED,
)
def metrics_dq(context: dg.AssetExecutionContext, spark_launcher: SparkLauncher) -> dg.MaterializeResult:
    with partition_locks(context, "metrics"):
        report = spark_launcher.run_layer(context, "metrics", context.partition_keys)
    return materialize_result(context, report.table(METRICS_DQ), report.spark)
