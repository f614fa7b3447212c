"""Publishing survives the process being killed between writing a version and moving the pointer, and every
layer's publish is a compare-and-swap on what was current when the job started reading."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from medallion_pipeline.jobs import gold as gold_job
from medallion_pipeline.jobs import metrics as metrics_job
from medallion_pipeline.jobs import silver as silver_job
from medallion_pipeline.jobs.bronze import run_bronze
from medallion_pipeline.jobs.environment import JobEnvironment
from medallion_pipeline.jobs.gold import run_gold
from medallion_pipeline.jobs.metrics import run_metrics
from medallion_pipeline.jobs.publish import read_published
from medallion_pipeline.jobs.silver import run_silver
from medallion_pipeline.resources.catalog import PartitionVersion, PublishConflict
from medallion_pipeline.resources.lake import new_version_id
from medallion_pipeline.tables import (
    BRONZE_APP_LOGS,
    GOLD_TABLES,
    METRICS_DQ,
    SILVER_APP_LOGS,
    SILVER_QUARANTINE,
    TableId,
)
from medallion_pipeline_tests.conftest import event, write_landing

DT = "2024-01-01"

KILLED_BEFORE_POINTER_SWITCH = textwrap.dedent(
    """
    import os, signal, sys
    from medallion_pipeline.jobs.bronze import run_bronze
    from medallion_pipeline.jobs.environment import JobEnvironment
    from medallion_pipeline.resources.catalog import SqliteCatalog
    from medallion_pipeline.resources.catalog.dynamodb import DynamoCatalog
    from medallion_pipeline.resources.spark import build_spark_session
    from medallion_pipeline.settings import Settings

    def killed(*args, **kwargs):  # the version is fully written; die before the catalog transaction
        os.kill(os.getpid(), signal.SIGKILL)

    SqliteCatalog.publish_many = DynamoCatalog.publish_many = killed
    settings = Settings.from_json(sys.argv[1])
    spark = build_spark_session(settings, {"spark.sql.shuffle.partitions": "1"})
    run_bronze(spark, [sys.argv[2]], JobEnvironment.from_settings(settings, run_id="doomed"))
    """
)


@pytest.mark.parametrize("catalog", ["embedded", "aws"])
def test_kill_before_pointer_switch_keeps_previous_version(spark, settings, catalog, request):
    if catalog == "aws":  # DynamoDB and Glue on the moto server; the killed child talks to them over HTTP
        from medallion_pipeline.resources.catalog.dynamodb import DynamoCatalog

        request.getfixturevalue("aws")
        DynamoCatalog("medallion-kill").create_table()
        settings = dataclasses.replace(settings, catalog_uri="glue://medallion_kill?state_table=medallion-kill")
    env = JobEnvironment.from_settings(settings, run_id="test-run")
    write_landing(settings.landing_root, DT, "a.jsonl", [event(i) for i in range(5)])
    run_bronze(spark, [DT], env)
    v1 = env.catalog.current(BRONZE_APP_LOGS, [DT])[DT]

    write_landing(settings.landing_root, DT, "b.jsonl", [event(i) for i in range(5, 12)])
    child = subprocess.run(
        [sys.executable, "-c", KILLED_BEFORE_POINTER_SWITCH, settings.to_json(), DT],
        capture_output=True, timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]

    # The previous version is still current and readable; the new one exists only as an orphan.
    assert env.catalog.current(BRONZE_APP_LOGS, [DT])[DT].version_id == v1.version_id
    assert read_published(spark, env, BRONZE_APP_LOGS, [DT]).count() == 5
    if catalog == "aws":  # bronze is not projected to Glue (raw PII, versions made of segments)
        assert env.catalog.projection.partition_locations(BRONZE_APP_LOGS) == {}
    table_root = env.lake.table_root(BRONZE_APP_LOGS)
    orphans = [d for d in os.listdir(table_root) if d != v1.version_id]
    assert len(orphans) == 1 and os.listdir(os.path.join(table_root, orphans[0]))

    # The killed run's staged version is leased to it; the run is over, so vacuum may remove it.
    removed = env.catalog.vacuum(env.lake, env.files, keep=5, grace_seconds=0, run_in_progress=lambda run_id: False)
    assert removed == [os.path.join(table_root, orphans[0])]
    assert os.listdir(table_root) == [v1.version_id]

    # Nothing was lost: the ledger never recorded b.jsonl, so the next run ingests it.
    report = run_bronze(spark, [DT], env)
    assert report.table(BRONZE_APP_LOGS).partitions[DT].stats["files_new"] == 1
    assert read_published(spark, env, BRONZE_APP_LOGS, [DT]).count() == 12
    assert env.catalog.current(BRONZE_APP_LOGS, [DT])[DT].segments == (v1.location,)


def published_day(spark, env, settings) -> None:
    write_landing(settings.landing_root, DT, "a.jsonl", [event(i) for i in range(8)])
    run_bronze(spark, [DT], env)
    run_silver(spark, [DT], env)
    run_gold(spark, [DT], env)


def publish_meanwhile(env, table: TableId, dt: str = DT) -> PartitionVersion:
    """Another run publishes ``table`` ``dt``: what a job sees when it happens between its read and its publish."""
    competitor = PartitionVersion(table, dt, new_version_id(), f"/elsewhere/{table.name}", 0, run_id="other-run")
    env.catalog.publish(table, [competitor])
    return competitor


def current_ids(env, tables) -> dict[str, str]:
    return {t.qualified: env.catalog.current(t, [DT])[DT].version_id for t in tables}


def test_partitions_record_the_upstream_versions_they_were_built_from(spark, env, settings):
    published_day(spark, env, settings)
    run_metrics(spark, [DT], env)
    bronze = env.catalog.current(BRONZE_APP_LOGS, [DT])[DT].version_id
    silver = env.catalog.current(SILVER_APP_LOGS, [DT])[DT].version_id
    for table in (SILVER_APP_LOGS, SILVER_QUARANTINE):
        assert env.catalog.current(table, [DT])[DT].built_from == {"bronze.app_logs": {DT: bronze}}
    for table in GOLD_TABLES:
        assert env.catalog.current(table, [DT])[DT].built_from == {"silver.app_logs": {DT: silver}}
    inputs = (BRONZE_APP_LOGS, SILVER_APP_LOGS, SILVER_QUARANTINE, *GOLD_TABLES)
    assert env.catalog.current(METRICS_DQ, [DT])[DT].built_from == {
        table: {DT: version_id} for table, version_id in current_ids(env, inputs).items()}
    assert env.catalog.staging_leases() == []  # every staged version was published: no lease left


def test_silver_and_quarantine_publish_together_or_not_at_all(spark, env, settings, monkeypatch):
    published_day(spark, env, settings)
    before = current_ids(env, [SILVER_APP_LOGS])
    record = silver_job.record

    def record_then_competing_publish(*args, **kwargs):  # after silver read bronze, before it publishes
        record(*args, **kwargs)
        publish_meanwhile(env, SILVER_QUARANTINE)

    monkeypatch.setattr(silver_job, "record", record_then_competing_publish)
    with pytest.raises(PublishConflict, match="silver.quarantine 2024-01-01"):
        run_silver(spark, [DT], env)
    # Neither half of the pair moved: silver is the version from before, quarantine the other run's.
    assert current_ids(env, [SILVER_APP_LOGS]) == before
    assert env.catalog.current(SILVER_QUARANTINE, [DT])[DT].run_id == "other-run"
    assert [h.action for h in env.catalog.history(SILVER_APP_LOGS, DT)] == ["publish"]

    # The refused versions stay leased to this run: vacuum keeps them while it runs, removes them after.
    leased = {(lease.table, lease.run_id) for lease in env.catalog.staging_leases()}
    assert leased == {(SILVER_APP_LOGS, "test-run"), (SILVER_QUARANTINE, "test-run")}
    roots = sorted(env.lake.version_root(lease.table, lease.version_id) for lease in env.catalog.staging_leases())
    assert env.catalog.vacuum(env.lake, env.files, keep=5, grace_seconds=0,
                              run_in_progress=lambda run_id: run_id == "test-run") == []
    assert all(os.path.isdir(root) for root in roots)
    assert sorted(env.catalog.vacuum(env.lake, env.files, keep=5, grace_seconds=0,
                                     run_in_progress=lambda run_id: False)) == roots


def test_the_four_gold_tables_publish_together_or_not_at_all(spark, env, settings, monkeypatch):
    published_day(spark, env, settings)
    before = current_ids(env, GOLD_TABLES)
    record, raced = gold_job.record, []

    def record_then_competing_publish(env_, table, checks):
        record(env_, table, checks)
        if not raced:  # the first gold table is audited: another run publishes the last one
            raced.append(publish_meanwhile(env, GOLD_TABLES[-1]))

    monkeypatch.setattr(gold_job, "record", record_then_competing_publish)
    with pytest.raises(PublishConflict, match=str(GOLD_TABLES[-1])):
        run_gold(spark, [DT], env)
    after = current_ids(env, GOLD_TABLES)
    assert after == {**before, GOLD_TABLES[-1].qualified: raced[0].version_id}


def test_metrics_publish_refuses_a_partition_that_moved_meanwhile(spark, env, settings, monkeypatch):
    published_day(spark, env, settings)
    run_metrics(spark, [DT], env)
    collect = metrics_job.collect_figures

    def collect_then_competing_publish(*args, **kwargs):
        figures = collect(*args, **kwargs)
        publish_meanwhile(env, METRICS_DQ)
        return figures

    monkeypatch.setattr(metrics_job, "collect_figures", collect_then_competing_publish)
    with pytest.raises(PublishConflict, match="metrics.dq 2024-01-01"):
        run_metrics(spark, [DT], env)
    assert env.catalog.current(METRICS_DQ, [DT])[DT].run_id == "other-run"
