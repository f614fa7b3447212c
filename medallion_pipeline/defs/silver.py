"""silver/app_logs and silver/quarantine: one Spark job writes both from bronze."""

import dagster as dg

from medallion_pipeline.defs.automation import GATED
from medallion_pipeline.defs.partition_locks import partition_locks
from medallion_pipeline.defs.partitions import OWNERS, daily_partitions, single_run
from medallion_pipeline.defs.reporting import asset_key, check_specs, gated_results, model_schema
from medallion_pipeline.jobs.silver import QUARANTINE_DESCRIPTION, SILVER_DESCRIPTION
from medallion_pipeline.launchers.launcher import SparkLauncher
from medallion_pipeline.schemas.silver import CONTRACT_COLUMNS, PII_COLUMNS, SilverAppLogs
from medallion_pipeline.tables import BRONZE_APP_LOGS, SILVER_APP_LOGS, SILVER_QUARANTINE

# Every contract column comes from the bronze column of the same name (typed, masked or pseudonymized).
_LINEAGE = dg.TableColumnLineage(
    deps_by_column={
        c: [dg.TableColumnDep(asset_key=asset_key(BRONZE_APP_LOGS), column_name=c)] for c in CONTRACT_COLUMNS
    }
)


def _spec(table, description):
    return dg.AssetSpec(
        key=asset_key(table),
        deps=[asset_key(BRONZE_APP_LOGS)],
        group_name="silver",
        description=description,
        kinds={"spark", "parquet"},
        owners=OWNERS,
        tags={"layer": "silver"},
        metadata={"dagster/column_lineage": _LINEAGE,
                  "dagster/column_schema": model_schema(SilverAppLogs, PII_COLUMNS)},
        automation_condition=GATED,
    )


@dg.multi_asset(
    name="silver",
    specs=[_spec(SILVER_APP_LOGS, SILVER_DESCRIPTION), _spec(SILVER_QUARANTINE, QUARANTINE_DESCRIPTION)],
    check_specs=check_specs(SILVER_APP_LOGS),
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    can_subset=False,
)
def silver(context: dg.AssetExecutionContext, spark_launcher: SparkLauncher):
    with partition_locks(context, "silver"):
        report = spark_launcher.run_layer(context, "silver", context.partition_keys)
    yield from gated_results(context, [report.table(SILVER_APP_LOGS), report.table(SILVER_QUARANTINE)], report.spark)
