"""What a layer job cost Spark, and the threads a layer runs its independent writes in."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from medallion_pipeline.jobs.usage import side_by_side, spark_usage


def in_group(spark, group: str, work):
    sc = spark.sparkContext
    sc.setJobGroup(group, "test", interruptOnCancel=False)
    try:
        return work()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)


def test_jobs_run_side_by_side_are_counted_in_the_callers_job_group(spark):
    group = f"test-{uuid.uuid4().hex[:8]}"
    results = in_group(spark, group, lambda: side_by_side({n: (lambda n=n: spark.range(n).count()) for n in (3, 5, 7)}))
    assert results == {3: 3, 5: 5, 7: 7}
    assert spark_usage(spark, group)["spark_jobs"] >= 3


def test_a_plain_thread_loses_the_job_group_which_is_why_side_by_side_carries_it(spark):
    group = f"test-{uuid.uuid4().hex[:8]}"

    def plain():
        thread = threading.Thread(target=lambda: spark.range(4).count())
        thread.start()
        thread.join()

    in_group(spark, group, plain)
    assert spark_usage(spark, group)["spark_jobs"] == 0


def test_a_failing_task_is_raised_after_every_other_task_has_finished():
    finished = []

    def slow():
        time.sleep(0.3)
        finished.append("slow")
        return "slow"

    def failing():
        raise ValueError("table b failed")

    with pytest.raises(ValueError, match="table b failed"):
        side_by_side({"a": slow, "b": failing, "c": lambda: finished.append("c")})
    assert sorted(finished) == ["c", "slow"]  # nothing still running when the failure is reported
