"""What a layer job cost Spark: its jobs, the bytes its stages read and wrote, and its wall time.

Without a ``SparkListener``: the job runs under its own Spark job group, so the status tracker names the
jobs it started, and Spark's status store (the data behind the Spark UI, kept even with the UI off) gives
each of their stages' input, output and shuffle bytes. The figures travel in the layer's report, so a
remote driver measures itself the same way.

``side_by_side`` runs a layer's independent writes from threads: on small data a Spark action's time is
mostly the driver's (planning, code generation, scheduling), so the driver prepares one while the executors
run another; the threads inherit the job group, so their jobs are counted with the layer's.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from pyspark.sql import SparkSession
from pyspark.util import inheritable_thread_target

from medallion_pipeline.jobs.report import LayerReport

K, V = TypeVar("K"), TypeVar("V")

# The keys of ``LayerReport.spark``, in the order reports and the benchmark print them.
FIGURES = ("spark_jobs", "spark_stages", "spark_tasks", "bytes_read", "bytes_written", "shuffle_bytes", "seconds")


def spark_usage(spark: SparkSession, group: str) -> dict[str, float]:
    """Jobs, stages, tasks, input/output/shuffle bytes of every Spark job started under ``group``."""
    sc = spark.sparkContext
    tracker = sc.statusTracker()
    job_ids = tracker.getJobIdsForGroup(group)
    stage_ids = sorted({s for j in job_ids if (info := tracker.getJobInfo(j)) for s in info.stageIds})
    figures = dict.fromkeys(FIGURES, 0.0)
    figures["spark_jobs"] = float(len(job_ids))
    store = sc._jsc.sc().statusStore()  # noqa: SLF001 - the status store has no Python API
    for stage_id in stage_ids:
        try:
            stage = store.lastStageAttempt(stage_id)
        except Exception:  # noqa: BLE001 - a stage skipped because its shuffle output was reused never ran
            continue
        if stage.numCompleteTasks() == 0 and stage.numFailedTasks() == 0:
            continue
        figures["spark_stages"] += 1
        figures["spark_tasks"] += stage.numCompleteTasks() + stage.numFailedTasks()
        figures["bytes_read"] += stage.inputBytes()
        figures["bytes_written"] += stage.outputBytes()
        figures["shuffle_bytes"] += stage.shuffleWriteBytes()
    return figures


def measured(layer_job: Callable[..., LayerReport]) -> Callable[..., LayerReport]:
    """Runs a layer job ``(spark, dts, env, **options)`` under a job group of its own and records on its report
    what it cost (``LayerReport.spark``) and how long it took (``duration_s``)."""

    @functools.wraps(layer_job)
    def run(spark: SparkSession, *args, **kwargs) -> LayerReport:
        sc = spark.sparkContext
        group = f"medallion-{layer_job.__name__}-{uuid.uuid4().hex[:12]}"
        previous = sc.getLocalProperty("spark.jobGroup.id")
        sc.setJobGroup(group, layer_job.__name__, interruptOnCancel=False)
        started = time.monotonic()
        try:
            report = layer_job(spark, *args, **kwargs)
        finally:
            seconds = time.monotonic() - started
            sc.setLocalProperty("spark.jobGroup.id", previous)  # None removes it
        report.duration_s = seconds
        report.spark = {**spark_usage(spark, group), "seconds": seconds}
        return report

    return run


def side_by_side(tasks: Mapping[K, Callable[[], V]]) -> dict[K, V]:
    """Each task's result, the tasks run at once in threads that carry the caller's Spark job group.

    Every task runs to its end before this returns, and then the first failure (in ``tasks`` order) is
    raised: no thread is left writing after a failure is reported.
    """
    with ThreadPoolExecutor(max_workers=max(len(tasks), 1), thread_name_prefix="medallion-spark") as pool:
        futures = {key: pool.submit(inheritable_thread_target(task)) for key, task in tasks.items()}
    return {key: future.result() for key, future in futures.items()}
