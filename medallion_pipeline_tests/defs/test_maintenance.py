"""The daily vacuum schedule: on by default, and its run vacuums with the run states of this instance."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone

import dagster as dg

from medallion_pipeline.definitions import build_definitions
from medallion_pipeline.resources.catalog import open_catalog
from medallion_pipeline.resources.lake import Lake, new_version_id
from medallion_pipeline.settings import Settings
from medallion_pipeline.tables import SILVER_APP_LOGS


def staged_directory(settings: Settings, run_id: str | None) -> str:
    """A version directory older than any grace: leased to ``run_id``, or never leased (None)."""
    lake, version_id = Lake(settings.lake_root), new_version_id()
    if run_id is not None:
        open_catalog(settings.resolved_catalog_uri).begin_staging(SILVER_APP_LOGS, version_id, run_id)
    os.makedirs(lake.partition_location(SILVER_APP_LOGS, version_id, "2024-01-01"))
    root = lake.version_root(SILVER_APP_LOGS, version_id)
    old = time.time() - 3 * 86400
    os.utime(root, (old, old))
    return root


def test_vacuum_schedule_is_running_by_default_and_its_run_vacuums(medallion_env, monkeypatch):
    monkeypatch.setenv("MEDALLION_VACUUM_GRACE_SECONDS", "86400")
    defs = build_definitions(Settings.from_env())
    schedule = defs.resolve_schedule_def("lake_vacuum_daily")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.cron_schedule == "30 3 * * *" and schedule.job_name == "lake_vacuum"

    with dg.instance_for_test() as instance:
        job = defs.resolve_job_def("lake_vacuum")
        running = instance.create_run_for_job(job, status=dg.DagsterRunStatus.STARTED)
        finished = instance.create_run_for_job(job, status=dg.DagsterRunStatus.FAILURE)
        in_progress_dir = staged_directory(medallion_env, running.run_id)
        finished_dir = staged_directory(medallion_env, finished.run_id)
        orphan_dir = staged_directory(medallion_env, None)

        context = dg.build_schedule_context(instance=instance,
                                            scheduled_execution_time=datetime(2024, 1, 2, 3, 30, tzinfo=timezone.utc))
        [request] = schedule.evaluate_tick(context).run_requests
        result = job.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags)

    assert result.success
    assert os.path.isdir(in_progress_dir)  # three days old, but its run is still in progress
    assert not os.path.exists(finished_dir) and not os.path.exists(orphan_dir)
    [materialized] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    assert materialized.step_output_data.metadata["removed_count"].value == 2


def test_vacuum_run_config_overrides_the_grace(medallion_env, monkeypatch):
    monkeypatch.setenv("MEDALLION_VACUUM_GRACE_SECONDS", str(30 * 86400))
    orphan_dir = staged_directory(medallion_env, None)
    with dg.instance_for_test() as instance:
        # Resolved inside the test instance: resolving reads the current instance, which an earlier test's
        # temporary one may have left pointing at a deleted directory.
        job = build_definitions(Settings.from_env()).resolve_job_def("lake_vacuum")
        assert job.execute_in_process(instance=instance).success
        assert os.path.isdir(orphan_dir)  # younger than the 30-day grace from the environment
        config = {"ops": {"vacuum_catalog_and_lake": {"config": {"grace_seconds": 86400}}}}
        assert job.execute_in_process(run_config=config, instance=instance).success
    assert not os.path.exists(orphan_dir)
