"""Lake maintenance: ``medallion vacuum`` as a daily Dagster job, so the lake does not grow without bound.

Vacuum needs no Spark: it reads the catalog, asks this Dagster instance which runs are still in progress
(a run's staged versions are leased to it, see ``Catalog.begin_staging``) and deletes files.
"""

# No ``from __future__ import annotations``: Dagster resolves the op's config class from its annotation.
from collections.abc import Callable

import dagster as dg

from medallion_pipeline.resources.catalog import open_catalog
from medallion_pipeline.resources.lake import Lake, lake_files_for
from medallion_pipeline.settings import Settings

# A run in one of these states may still write or publish its staged versions.
RUN_IN_PROGRESS = frozenset({
    dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING,
})
VACUUM_CRON = "30 3 * * *"  # daily, after the night's loads


def run_in_progress_on(instance: dg.DagsterInstance) -> Callable[[str], bool]:
    """Whether a Dagster run is in progress. A run this instance does not know has nothing left to do."""

    def in_progress(run_id: str) -> bool:
        run = instance.get_run_by_id(run_id) if run_id else None
        return run is not None and run.status in RUN_IN_PROGRESS

    return in_progress


def vacuum_lake(settings: Settings, instance: dg.DagsterInstance, keep: int | None = None,
                grace_seconds: float | None = None) -> list[str]:
    """Vacuum the lake; defaults ``MEDALLION_KEEP_VERSIONS`` and ``MEDALLION_VACUUM_GRACE_SECONDS``."""
    catalog = open_catalog(settings.resolved_catalog_uri, settings.lake_root)
    return catalog.vacuum(
        Lake(settings.lake_root), lake_files_for(settings.lake_root), keep=keep or settings.keep_versions,
        grace_seconds=settings.vacuum_grace_seconds if grace_seconds is None else grace_seconds,
        run_in_progress=run_in_progress_on(instance),
    )


class VacuumConfig(dg.Config):
    keep: int | None = None  # versions kept per partition; default MEDALLION_KEEP_VERSIONS
    grace_seconds: float | None = None  # default MEDALLION_VACUUM_GRACE_SECONDS


@dg.op(out=dg.Out(dg.Nothing), tags={"kind": "maintenance"})
def vacuum_catalog_and_lake(context: dg.OpExecutionContext, config: VacuumConfig):
    """Delete expired versions and abandoned staged directories (never a referenced or in-progress one)."""
    # Read at run time, like the layer jobs: the run's environment says where the lake is.
    removed = vacuum_lake(Settings.from_env(), context.instance, config.keep, config.grace_seconds)
    context.log.info(f"vacuum removed {len(removed)} locations")
    yield dg.Output(None, metadata={"removed_count": len(removed),
                                    "removed": dg.MetadataValue.json(removed[:200])})


@dg.job(description="Delete expired table versions and abandoned staged writes (`medallion vacuum`).",
        tags={"team": "data-platform"})
def lake_vacuum():
    vacuum_catalog_and_lake()


lake_vacuum_daily = dg.ScheduleDefinition(
    name="lake_vacuum_daily", job=lake_vacuum, cron_schedule=VACUUM_CRON, execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
