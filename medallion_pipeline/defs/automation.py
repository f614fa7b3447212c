"""Automatic materialization downstream, respecting the blocking gates.

Declarative automation refreshes a layer when its upstream partitions update and their blocking checks
passed. One case it cannot see: a range run in which some days passed their gates and one did not. Dagster
records one check evaluation per run for the whole range, so it treats every day of the range as failed
and holds them all back; the catalog, though, published the good days. ``downstream_of_published_days``
closes that gap from the catalog: silver partitions that a failed run published, and that gold has not
been rebuilt from since, get gold and metrics runs — one ranged run per contiguous stretch of days.
"""

from __future__ import annotations

import dagster as dg

from medallion_pipeline.defs.partitions import contiguous_ranges, range_tags
from medallion_pipeline.defs.reporting import asset_key
from medallion_pipeline.resources.catalog import open_catalog
from medallion_pipeline.settings import Settings
from medallion_pipeline.tables import GOLD_DAILY_KPIS, GOLD_TABLES, METRICS_DQ, SILVER_APP_LOGS

# Any partition, not only the latest: late data refreshes old days too.
GATED = (
    dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())
    & dg.AutomationCondition.all_deps_blocking_checks_passed()
)
DOWNSTREAM_OF_SILVER = [asset_key(t) for t in (*GOLD_TABLES, METRICS_DQ)]


def published_days_waiting(instance: dg.DagsterInstance, catalog) -> dict[str, str]:
    """dt -> silver version, for silver partitions a failed run published that gold was not rebuilt from."""
    silver = catalog.partitions(SILVER_APP_LOGS)
    gold = catalog.current(GOLD_DAILY_KPIS, [p.dt for p in silver])
    waiting = {}
    for partition in silver:
        built = gold.get(partition.dt)
        if built is not None and built.created_at >= partition.created_at:
            continue
        run = instance.get_run_by_id(partition.run_id) if partition.run_id else None
        if run is not None and run.status == dg.DagsterRunStatus.FAILURE:
            waiting[partition.dt] = partition.version_id
    return waiting


@dg.sensor(
    name="downstream_of_published_days",
    target=dg.AssetSelection.assets(*DOWNSTREAM_OF_SILVER),
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Builds gold and metrics for days a partially failed silver run did publish.",
)
def downstream_of_published_days(context: dg.SensorEvaluationContext):
    settings = Settings.from_env()
    versions = published_days_waiting(context.instance, open_catalog(settings.resolved_catalog_uri, settings.lake_root))
    for start, end in contiguous_ranges(list(versions)):
        in_range = [v for d, v in sorted(versions.items()) if start <= d <= end]
        yield dg.RunRequest(
            run_key=f"{start}..{end}:{','.join(in_range)}",  # once per set of silver versions
            tags=range_tags(start, end),
        )
