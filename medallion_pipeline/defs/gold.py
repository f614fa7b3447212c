"""gold/*: the four KPI tables, computed together from one read of silver."""

import dagster as dg

from medallion_pipeline.defs.automation import GATED
from medallion_pipeline.defs.partition_locks import partition_locks
from medallion_pipeline.defs.partitions import OWNERS, daily_partitions, single_run
from medallion_pipeline.defs.reporting import asset_key, check_specs, gated_results, model_schema
from medallion_pipeline.jobs.gold import GOLD_SCHEMAS, GOLD_TRANSFORMS
from medallion_pipeline.launchers.launcher import SparkLauncher
from medallion_pipeline.tables import GOLD_DAILY_KPIS, GOLD_ENDPOINT_STATS, GOLD_FUNNEL, GOLD_SESSIONS, SILVER_APP_LOGS


def _from_silver(*columns: str) -> list[dg.TableColumnDep]:
    return [dg.TableColumnDep(asset_key=asset_key(SILVER_APP_LOGS), column_name=c) for c in columns]


_LINEAGE = {
    GOLD_DAILY_KPIS: {
        "requests": _from_silver("event_type"),
        "success_rate": _from_silver("event_type", "status"),
        "error_rate": _from_silver("event_type", "status"),
        "client_error_rate": _from_silver("event_type", "status"),
        "latency_p95_ms": _from_silver("latency_ms"),
        "unique_users": _from_silver("user_id"),
        "sessions": _from_silver("session_id"),
        "bytes": _from_silver("bytes"),
    },
    GOLD_ENDPOINT_STATS: {
        "path": _from_silver("path"),
        "method": _from_silver("method"),
        "error_rate": _from_silver("status"),
        "latency_p95_ms": _from_silver("latency_ms"),
    },
    GOLD_SESSIONS: {"mean_duration_s": _from_silver("session_id", "event_ts"), "sessions": _from_silver("session_id")},
    GOLD_FUNNEL: {f"{s}_users": _from_silver("user_id", "event_type", "event_ts")
                  for s in ("login", "view_item", "add_to_cart", "purchase")},
}


@dg.multi_asset(
    name="gold",
    specs=[
        dg.AssetSpec(
            key=asset_key(table),
            deps=[asset_key(SILVER_APP_LOGS)],
            group_name="gold",
            description=description,
            kinds={"spark", "parquet"},
            owners=OWNERS,
            tags={"layer": "gold"},
            metadata={"dagster/column_lineage": dg.TableColumnLineage(deps_by_column=_LINEAGE[table]),
                      "dagster/column_schema": model_schema(GOLD_SCHEMAS[table])},
            automation_condition=GATED,
        )
        for table, (_, description) in GOLD_TRANSFORMS.items()
    ],
    check_specs=[spec for table in GOLD_TRANSFORMS for spec in check_specs(table)],
    partitions_def=daily_partitions,
    backfill_policy=single_run,
    can_subset=False,
)
def gold(context: dg.AssetExecutionContext, spark_launcher: SparkLauncher):
    with partition_locks(context, "gold"):
        report = spark_launcher.run_layer(context, "gold", context.partition_keys)
    yield from gated_results(context, [report.table(table) for table in GOLD_TRANSFORMS], report.spark)
