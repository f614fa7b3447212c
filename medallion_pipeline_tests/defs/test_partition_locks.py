"""Partition locks: two runs writing the same (layer, day) serialize, different days do not wait.

The first tests drive the locks directly against a Dagster instance (no Spark); the last runs two and three
concurrent ``medallion run`` processes on one DAGSTER_HOME and lake.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.test_utils import create_run_for_test

from medallion_pipeline.defs.partition_locks import ACQUIRED, RELEASED, WAITING, hold_partitions, pool_name
from medallion_pipeline.settings import PROJECT_ROOT
from medallion_pipeline_tests.conftest import TEST_PII_KEY, TEST_SPARK_CONF

DEADLINE_S = 60


class Recorder(logging.Handler):
    """The lock's log lines, to observe waiting without timing."""

    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def waited(self) -> bool:
        return any(line.startswith(WAITING) for line in self.lines)


def recorder(name: str) -> tuple[logging.Logger, Recorder]:
    log = logging.getLogger(f"partition-locks-test.{name}")
    log.setLevel(logging.INFO)
    handler = Recorder()
    log.handlers = [handler]
    return log, handler


def poll(done, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within {DEADLINE_S} s")
        time.sleep(0.05)


class Holder(threading.Thread):
    """Holds a range's locks in a thread until ``release`` is set (or, a safety net, ``hold_s`` have passed)."""

    def __init__(self, instance, run_id: str, layer: str, dts: list[str], hold_s: float = DEADLINE_S):
        super().__init__(daemon=True)
        self.instance, self.run_id, self.layer, self.dts, self.hold_s = instance, run_id, layer, dts, hold_s
        self.log, self.record = recorder(run_id)
        self.acquired, self.release = threading.Event(), threading.Event()

    def run(self) -> None:
        with hold_partitions(self.instance, self.run_id, self.layer, self.layer, self.dts, self.log,
                             poll_seconds=0.05):
            self.acquired.set()
            self.release.wait(self.hold_s)


def test_a_shared_day_waits_and_other_days_or_layers_do_not():
    with dg.instance_for_test() as instance:
        a_shared_day_waits_and_other_days_do_not(instance)


def a_shared_day_waits_and_other_days_do_not(instance: dg.DagsterInstance) -> None:
    """Also run on the production instance's PostgreSQL storage (deploy/test_instance_postgres)."""
    first = Holder(instance, "run-a", "silver", ["2024-01-01", "2024-01-02"])
    first.start()
    first.acquired.wait(DEADLINE_S)
    overlapping = Holder(instance, "run-b", "silver", ["2024-01-02", "2024-01-03"])
    overlapping.start()
    poll(overlapping.record.waited, "run-b waiting for silver 2024-01-02")
    assert "held by run run-a" in overlapping.record.lines[0]
    assert pool_name("silver", "2024-01-02") in overlapping.record.lines[0]

    # Another day of the same layer, and the same day of another layer, go ahead while run-a holds its days.
    others = [Holder(instance, "run-c", "silver", ["2024-01-04"]),
              Holder(instance, "run-d", "gold", ["2024-01-01", "2024-01-02"])]
    for holder in others:
        holder.start()
        holder.acquired.wait(DEADLINE_S)
        assert holder.acquired.is_set() and not holder.record.waited()
        holder.release.set()
    assert not overlapping.acquired.is_set()

    first.release.set()
    overlapping.acquired.wait(DEADLINE_S)
    assert overlapping.acquired.is_set()
    overlapping.release.set()
    for holder in (first, overlapping, *others):
        holder.join(DEADLINE_S)
    assert instance.event_log_storage.get_concurrency_info(pool_name("silver", "2024-01-02")).claimed_slots == []


def test_a_lock_left_by_a_finished_run_is_freed():
    with dg.instance_for_test() as instance:
        dead = create_run_for_test(instance, job_name="crashed", status=dg.DagsterRunStatus.FAILURE)
        pool = pool_name("silver", "2024-01-01")
        instance.event_log_storage.set_concurrency_slots(pool, 1)
        assert instance.event_log_storage.claim_concurrency_slot(pool, dead.run_id, "silver").is_claimed
        log, record = recorder("successor")
        with hold_partitions(instance, "successor", "silver", "silver", ["2024-01-01"], log, poll_seconds=0.05):
            assert [s.run_id for s in instance.event_log_storage.get_concurrency_info(pool).claimed_slots] == [
                "successor"]
        assert record.waited()  # it did wait for the dead run's slot, then freed it


def test_an_interrupted_wait_withdraws_its_claim():
    with dg.instance_for_test() as instance:
        holder = Holder(instance, "run-a", "bronze", ["2024-01-01"])
        holder.start()
        holder.acquired.wait(DEADLINE_S)
        log, _ = recorder("interrupted")

        def give_up(*_):
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt), ExitStack() as stack:
            stack.enter_context(pytest.MonkeyPatch.context()).setattr(
                "medallion_pipeline.defs.partition_locks.time.sleep", give_up)
            stack.enter_context(hold_partitions(instance, "interrupted", "bronze", "bronze", ["2024-01-01"], log))
        info = instance.event_log_storage.get_concurrency_info(pool_name("bronze", "2024-01-01"))
        assert [s.run_id for s in info.claimed_slots] == ["run-a"]
        assert [p.run_id for p in info.pending_steps] == ["run-a"]  # the holder's claim; none left queued
        holder.release.set()
        holder.join(DEADLINE_S)


# --- two and three concurrent `medallion run` processes on one DAGSTER_HOME and lake ---------------------

RUN_TIMEOUT_S = 600  # bounded wait: three Spark runs side by side on 2 cores take ~1-3 min
DAY, OTHER_DAY = "2024-01-01", "2024-01-02"


def start_run(env: dict[str, str], dt: str, log_path: Path) -> subprocess.Popen:
    command = [str(Path(sys.executable).parent / "medallion"), "run", "--from", dt, "--to", dt,
               "--select", "bronze", "silver"]
    with open(log_path, "wb") as log:
        return subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)


def lock_events(instance: dg.DagsterInstance, run_id: str, pool: str) -> list[tuple[str, float]]:
    """(what, when) for the run's lock log lines naming ``pool``, in order."""
    events = []
    for entry in instance.all_logs(run_id):
        message = entry.user_message or ""
        for what in (WAITING, ACQUIRED, RELEASED):
            if message.startswith(what) and pool in message:
                events.append((what, entry.timestamp))
    return events


def held(events: list[tuple[str, float]]) -> tuple[float, float]:
    [acquired] = [t for what, t in events if what == ACQUIRED]
    [released] = [t for what, t in events if what == RELEASED]
    return acquired, released


@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT_S + 120)
def test_concurrent_medallion_runs_serialize_on_a_shared_day_and_not_across_days(tmp_path):
    from dagster._core.instance.ref import InstanceRef

    from medallion_pipeline.sample_data import Dirt, generate

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_bytes((PROJECT_ROOT / "dagster.yaml").read_bytes())
    generate(str(tmp_path / "landing"), date(2024, 1, 1), 2, 200, 2, seed=3,
             dirt=Dirt(new_field_from_day=None))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MEDALLION_", "DAGSTER_", "AWS_"))}
    env = {**base, "DAGSTER_HOME": str(home), "MEDALLION_LANDING_ROOT": str(tmp_path / "landing"),
           "MEDALLION_LAKE_ROOT": str(tmp_path / "lake"), "MEDALLION_START_DATE": DAY,
           "MEDALLION_PII_KEY": TEST_PII_KEY, "MEDALLION_SPARK_MASTER": "local[1]",
           "MEDALLION_SPARK_CONF": json.dumps(TEST_SPARK_CONF)}
    silver_day = pool_name("silver", DAY)
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        # The test holds silver's lock on DAY, so both runs of DAY are certain to meet it; for as long as the runs
        # may take to get there (on a loaded machine their bronze steps alone took over a minute).
        blocker = Holder(instance, "test-holder", "silver", [DAY], hold_s=RUN_TIMEOUT_S)
        blocker.start()
        blocker.acquired.wait(DEADLINE_S)
        runs = {name: start_run(env, dt, tmp_path / f"{name}.log")
                for name, dt in (("first", DAY), ("other_day", OTHER_DAY), ("second", DAY))}
        try:
            def waiting_on_day() -> set[str]:
                info = instance.event_log_storage.get_concurrency_info(silver_day)
                return {p.run_id for p in info.pending_steps if p.assigned_timestamp is None}

            deadline = time.monotonic() + RUN_TIMEOUT_S
            while not (runs["other_day"].poll() is not None and len(waiting_on_day()) == 2):
                assert time.monotonic() < deadline, "runs did not reach the lock in time"
                assert runs["first"].poll() is None and runs["second"].poll() is None, "a DAY run ended early"
                time.sleep(0.5)
            # OTHER_DAY finished while DAY's lock was held and both DAY runs waited for it: days do not serialize.
            assert runs["other_day"].returncode == 0, (tmp_path / "other_day.log").read_text()[-3000:]
            [other_run] = instance.get_runs(dg.RunsFilter(tags={"dagster/asset_partition_range_start": OTHER_DAY}))
            assert other_run.status == dg.DagsterRunStatus.SUCCESS
            assert not any(what == WAITING for layer in ("bronze", "silver")
                           for what, _ in lock_events(instance, other_run.run_id, pool_name(layer, OTHER_DAY)))

            blocker.release.set()
            for name in ("first", "second"):
                runs[name].wait(max(1.0, deadline - time.monotonic()))
                assert runs[name].returncode == 0, (tmp_path / f"{name}.log").read_text()[-3000:]
        finally:
            blocker.release.set()
            for process in runs.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()

        day_runs = instance.get_runs(dg.RunsFilter(tags={"dagster/asset_partition_range_start": DAY}))
        assert len(day_runs) == 2 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in day_runs)
        for layer in ("bronze", "silver"):
            pool = pool_name(layer, DAY)
            a, b = sorted((held(lock_events(instance, r.run_id, pool)) for r in day_runs))
            assert a[1] <= b[0], f"{pool} held by both runs at once: {a} {b}"
        # Both met the test's hold of silver DAY: the non-overlap above is the lock's doing, not luck.
        assert all(WAITING in [w for w, _ in lock_events(instance, r.run_id, silver_day)] for r in day_runs)
