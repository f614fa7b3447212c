"""bronze/app_logs: landing files into the raw, schema-evolving bronze table."""

import dagster as dg

from medallion_pipeline.defs.partition_locks import partition_locks
from medallion_pipeline.defs.partitions import OWNERS, daily_partitions, single_run
from medallion_pipeline.defs.reporting import check_specs, materialize_result, model_schema
from medallion_pipeline.jobs.bronze import DESCRIPTION
from medallion_pipeline.launchers.launcher import SparkLauncher
from medallion_pipeline.schemas.bronze import PII_COLUMNS, BronzeAppLogs
from medallion_pipeline.tables import BRONZE_APP_LOGS


class BronzeConfig(dg.Config):
    full_refresh: bool = False
    """Re-read every landing file of the partitions and replace them (a backfill always does)."""
    drop_missing_files: bool = False
    """With a full refresh, drop the rows of ingested files no longer in landing (kept by default)."""


@dg.asset(
    key=BRONZE_APP_LOGS.asset_path,
    group_name="bronze",
    description=DESCRIPTION,
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    kinds={"spark", "parquet"},
    owners=OWNERS,
    tags={"layer": "bronze"},
    metadata={"dagster/column_schema": model_schema(BronzeAppLogs, PII_COLUMNS)},
    check_specs=check_specs(BRONZE_APP_LOGS),
)
def bronze_app_logs(
    context: dg.AssetExecutionContext, config: BronzeConfig, spark_launcher: SparkLauncher
) -> dg.MaterializeResult:
    full_refresh = config.full_refresh or "dagster/backfill" in context.run.tags
    options = {"full_refresh": full_refresh, "drop_missing_files": config.drop_missing_files}
    with partition_locks(context, "bronze"):
        report = spark_launcher.run_layer(context, "bronze", context.partition_keys, options)
    context.log.info("bronze %s: %s rows (full_refresh=%s)", context.partition_key_range,
                     report.table(BRONZE_APP_LOGS).row_count, full_refresh)
    return materialize_result(context, report.table(BRONZE_APP_LOGS), report.spark)
