"""Publishing survives the process being killed between writing a version and moving the pointer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from medallion_pipeline.jobs.bronze import run_bronze
from medallion_pipeline.jobs.publish import read_published
from medallion_pipeline.tables import BRONZE_APP_LOGS
from medallion_pipeline_tests.conftest import event, write_landing

DT = "2024-01-01"

KILLED_BEFORE_POINTER_SWITCH = textwrap.dedent(
    """
    import os, signal, sys
    from medallion_pipeline.jobs.bronze import run_bronze
    from medallion_pipeline.jobs.environment import JobEnvironment
    from medallion_pipeline.resources.catalog import SqliteCatalog
    from medallion_pipeline.resources.spark import build_spark_session
    from medallion_pipeline.settings import Settings

    def killed(*args, **kwargs):  # the version is fully written; die before the catalog transaction
        os.kill(os.getpid(), signal.SIGKILL)

    SqliteCatalog.publish = killed
    settings = Settings.from_json(sys.argv[1])
    spark = build_spark_session(settings, {"spark.sql.shuffle.partitions": "1"})
    run_bronze(spark, [sys.argv[2]], JobEnvironment.from_settings(settings, run_id="doomed"))
    """
)


def test_kill_before_pointer_switch_keeps_previous_version(spark, env, settings):
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
    table_root = env.lake.table_root(BRONZE_APP_LOGS)
    orphans = [d for d in os.listdir(table_root) if d != v1.version_id]
    assert len(orphans) == 1 and os.listdir(os.path.join(table_root, orphans[0]))

    removed = env.catalog.vacuum(env.lake, env.files, keep=5, grace_seconds=0)
    assert removed == [os.path.join(table_root, orphans[0])]
    assert os.listdir(table_root) == [v1.version_id]

    # Nothing was lost: the ledger never recorded b.jsonl, so the next run ingests it.
    report = run_bronze(spark, [DT], env)
    assert report.table(BRONZE_APP_LOGS).partitions[DT].stats["files_new"] == 1
    assert read_published(spark, env, BRONZE_APP_LOGS, [DT]).count() == 12
