"""End to end under a real ``dagster dev`` on 127.0.0.1: files dropped into landing flow through bronze
(landing sensor) to silver, gold and metrics (declarative automation) with no clicks; a late file for an
older day refreshes that day only.

Each run is a separate process with its own SparkSession (~15-30 s here): new files take two runs (bronze,
then silver, gold and metrics together). The older day is published before the server starts, by ``medallion
run`` into the same DAGSTER_HOME.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef

from medallion_pipeline.cli import main
from medallion_pipeline.jobs import LAYER_JOBS
from medallion_pipeline.jobs.environment import JobEnvironment
from medallion_pipeline.jobs.publish import read_published
from medallion_pipeline.resources.catalog import open_catalog
from medallion_pipeline.settings import PROJECT_ROOT, Settings
from medallion_pipeline.tables import (
    ALL_TABLES,
    BRONZE_APP_LOGS,
    GOLD_TABLES,
    METRICS_DQ,
    SILVER_APP_LOGS,
    SILVER_QUARANTINE,
)
from medallion_pipeline_tests.conftest import TEST_PII_KEY, TEST_SPARK_CONF, event, write_landing
from medallion_pipeline_tests.dagster_dev import DagsterDev

pytestmark = [pytest.mark.slow, pytest.mark.starts_first]  # ~8 min: see conftest's collection order

# The days are fixed when the module is imported, and the server's clock may pass midnight UTC while it runs
# (~8 min): each day is chosen so that the outcome is the same whether the server's today is TODAY or the day
# after. DAY and OLD stay inside the listing look-back, the backfill days outside it, the start date before all.
LOOKBACK_DAYS, OLD_AGE, BACKFILL_NEWEST_AGE = 3, 2, 5
assert OLD_AGE + 1 <= LOOKBACK_DAYS < BACKFILL_NEWEST_AGE
TODAY = datetime.now(timezone.utc).date()
DAY, OLD = TODAY.isoformat(), (TODAY - timedelta(days=OLD_AGE)).isoformat()
PREVIOUS = (TODAY - timedelta(days=1)).isoformat()  # lands with DAY, between DAY and OLD
REFRESHED = (BRONZE_APP_LOGS, SILVER_APP_LOGS, *GOLD_TABLES, METRICS_DQ)
FLOW_TIMEOUT_S = 420  # bounded wait; the flow takes ~2-3 min on 2 busy cores
TICKS_TIMEOUT_S = 120  # bounded wait for a few 2 s sensor ticks on 2 busy cores
ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
          dg.DagsterRunStatus.STARTED]


class Deployment:
    def __init__(self, root: Path):
        self.settings = Settings(landing_root=str(root / "landing"), lake_root=str(root / "lake"),
                                 start_date=(TODAY - timedelta(days=15)).isoformat(), pii_key=TEST_PII_KEY)
        self.home = root / "dagster_home"
        self.server = DagsterDev(self.home, {
            "MEDALLION_LANDING_ROOT": self.settings.landing_root,
            "MEDALLION_LAKE_ROOT": self.settings.lake_root,
            "MEDALLION_START_DATE": self.settings.start_date,
            "MEDALLION_PII_KEY": TEST_PII_KEY,
            "MEDALLION_SPARK_MASTER": "local[2]",
            "MEDALLION_SPARK_CONF": json.dumps(TEST_SPARK_CONF),  # every run starts its own Spark
            "MEDALLION_LANDING_SENSOR_INTERVAL_SECONDS": "2",
            "MEDALLION_LANDING_LOOKBACK_DAYS": str(LOOKBACK_DAYS),
            "MEDALLION_AUTOMATION_INTERVAL_SECONDS": "2",
            "MEDALLION_LANDING_BATCH_FILES": "2",
            "MEDALLION_LANDING_BATCH_WAIT_MINUTES": "0.1",  # a lone late file goes after 6 s
        })

    def drop(self, dt: str, name: str, events: int, first: int = 0) -> None:
        write_landing(self.settings.landing_root, dt, name,
                      [event(first + i, dt=dt, event_id=f"{name}-{i}") for i in range(events)])

    def drop_at_once(self, source: str, days: list[str], events: int) -> None:
        """Two files for each day under a new source, renamed into landing in one step: one sensor tick
        sees every day's files, whenever it runs."""
        staging = Path(self.settings.landing_root).parent / "staging"
        for dt in days:
            for n, name in enumerate(("a.json", "b.json")):
                write_landing(staging, dt, name, [event(n * events + i, dt=dt, event_id=f"{source}-{name}-{i}")
                                                  for i in range(events)], source=source)
        (staging / source).rename(Path(self.settings.landing_root) / source)

    def cli(self, *args: str) -> int:
        """``medallion`` in this process (warm Spark), against the server's lake and DAGSTER_HOME."""
        with pytest.MonkeyPatch.context() as env:
            for name, value in self.server.env.items():
                if name.startswith("MEDALLION_") or name == "DAGSTER_HOME":
                    env.setenv(name, value)
            return main(list(args))

    def versions(self) -> dict[tuple[str, str], str]:
        """(table, dt) -> the current published version, for every table and day."""
        catalog = open_catalog(self.settings.resolved_catalog_uri)
        return {(str(t), p.dt): p.version_id for t in ALL_TABLES for p in catalog.partitions(t)}

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(self.home)))

    def wait_until(self, done, what: str) -> float:
        """Seconds until ``done(versions)`` holds and no run is active; fails with the server's log tail."""
        started = time.monotonic()
        with self.instance() as instance:
            while time.monotonic() - started < FLOW_TIMEOUT_S:
                if done(self.versions()) and not instance.get_runs(dg.RunsFilter(statuses=ACTIVE)):
                    return time.monotonic() - started
                time.sleep(1)
        pytest.fail(f"{what} not done within {FLOW_TIMEOUT_S} s\n{self.server.log_tail()}")

    def ticks_after(self, sensors: list[str], after: float, count: int = 2) -> dict[str, list[dict]]:
        """Each sensor's finished ticks that started after ``after``, once every sensor has ``count`` of them."""
        query = ("query($s: SensorSelector!, $after: Float) { sensorOrError(sensorSelector: $s) {"
                 " ... on Sensor { sensorState { ticks(afterTimestamp: $after) {"
                 " status runIds requestedAssetMaterializationCount error { message } } } } } }")
        deadline = time.monotonic() + TICKS_TIMEOUT_S
        while time.monotonic() < deadline:
            ticks = {name: [t for t in self.server.graphql(query, {"s": {**LOCATION, "sensorName": name},
                                                                   "after": after})
                            ["sensorOrError"]["sensorState"]["ticks"] if t["status"] != "STARTED"]
                     for name in sensors}
            if all(len(t) >= count for t in ticks.values()):
                return ticks
            time.sleep(1)
        pytest.fail(f"not {count} ticks of each of {sensors} within {TICKS_TIMEOUT_S} s\n{self.server.log_tail()}")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, spark):
    deployment = Deployment(tmp_path_factory.mktemp("deployment"))
    deployment.drop(OLD, "a.json", 40)
    deployment.drop(OLD, "b.json", 40, first=40)
    deployment.home.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "dagster.yaml", deployment.home / "dagster.yaml")
    assert deployment.cli("run", "--from", OLD, "--to", OLD) == 0  # the older day's history
    with deployment.server:
        yield deployment
    assert deployment.server.process.returncode is not None  # stopped by SIGTERM, not left behind


def test_dropped_files_flow_to_gold_and_a_late_file_refreshes_its_day_only(deployment):
    seeded = deployment.versions()
    deployment.drop_at_once("mobile", [PREVIOUS, DAY], 40)
    took = deployment.wait_until(lambda v: all((str(t), dt) in v for t in REFRESHED for dt in (PREVIOUS, DAY)),
                                 f"bronze -> silver -> gold -> metrics for {PREVIOUS} and today ({DAY})")
    print(f"two days' files to metrics: {took:.0f} s")
    before = deployment.versions()
    assert {key: v for key, v in before.items() if key[1] == OLD} == seeded  # the new days' flow left OLD alone
    with deployment.instance() as instance:
        runs_before = {r.run_id for r in instance.get_runs()}
        assert instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])) == []
        # The two days landed together: one ranged bronze run for both, each day with its two files.
        bronze_runs = instance.get_runs(dg.RunsFilter(tags={"dagster/sensor_name": "landing_files"}))
        assert [(r.tags.get("dagster/asset_partition_range_start"), r.tags.get("dagster/asset_partition_range_end"))
                for r in bronze_runs] == [(PREVIOUS, DAY)]
        counts = open_catalog(deployment.settings.resolved_catalog_uri).current(BRONZE_APP_LOGS, [PREVIOUS, DAY])
        assert {dt: p.row_count for dt, p in counts.items()} == {PREVIOUS: 80, DAY: 80}

    deployment.drop(OLD, "late.json", 10, first=80)
    took = deployment.wait_until(lambda v: all(v.get((str(t), OLD)) != before[(str(t), OLD)] for t in REFRESHED),
                                 f"the late file's day {OLD} refreshed in every layer")
    print(f"late file to metrics: {took:.0f} s")
    done_at = time.time()
    with deployment.instance() as instance:
        runs_when_done = {r.run_id for r in instance.get_runs()}
    # Nothing else may follow: the landing sensor's and the automation's next ticks request nothing.
    ticks = deployment.ticks_after(["landing_files", "medallion_automation"], after=done_at)
    assert all(t["status"] in ("SKIPPED", "SUCCESS") and not t["runIds"]
               and t["requestedAssetMaterializationCount"] == 0 for sensor in ticks.values() for t in sensor), ticks
    after = deployment.versions()
    changed = {key for key in after if after[key] != before.get(key)}
    assert {dt for _, dt in changed} == {OLD}
    assert {(str(t), OLD) for t in REFRESHED} <= changed

    with deployment.instance() as instance:
        assert {r.run_id for r in instance.get_runs()} == runs_when_done
        late_runs = [r for r in instance.get_runs() if r.run_id not in runs_before]
        assert late_runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in late_runs)
        for run in late_runs:  # each run targeted the late day alone
            days = {run.tags.get("dagster/partition"), run.tags.get("dagster/asset_partition_range_start"),
                    run.tags.get("dagster/asset_partition_range_end")} - {None}
            assert days == {OLD}, (run.run_id, run.tags)
    bronze = open_catalog(deployment.settings.resolved_catalog_uri).current(BRONZE_APP_LOGS, [OLD])[OLD]
    assert bronze.row_count == 90


# --- range backfills (issue 5): what the UI's "Launch backfill" button sends -----------------------------

BACKFILL_DAYS = [(TODAY - timedelta(days=BACKFILL_NEWEST_AGE + 9 - i)).isoformat() for i in range(10)]
SILVER_AND_GOLD = [SILVER_APP_LOGS, SILVER_QUARANTINE, *GOLD_TABLES]
LOCATION = {"repositoryLocationName": "medallion_pipeline.definitions", "repositoryName": "__repository__"}


def stop_sensor(server: DagsterDev, name: str) -> None:
    """The UI's sensor toggle: an operator pauses automation while backfilling by hand."""
    state = server.graphql(
        "query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) {"
        " __typename ... on Sensor { sensorState { id selectorId } } } }",
        {"s": {**LOCATION, "sensorName": name}})["sensorOrError"]["sensorState"]
    stopped = server.graphql(
        "mutation($o: String, $s: String) { stopSensor(jobOriginId: $o, jobSelectorId: $s) {"
        " __typename ... on StopSensorMutationResult { instigationState { status } } } }",
        {"o": state["id"], "s": state["selectorId"]})["stopSensor"]
    assert stopped["instigationState"]["status"] == "STOPPED", stopped


def launch_backfill(server: DagsterDev, tables, days: list[str]) -> str:
    result = server.graphql(
        "mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {"
        " __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }",
        {"p": {"assetSelection": [{"path": t.asset_path} for t in tables], "partitionNames": days}},
    )["launchPartitionBackfill"]
    assert result["__typename"] == "LaunchBackfillSuccess", result
    return result["backfillId"]


def wait_for_backfill(server: DagsterDev, backfill_id: str) -> list[dict]:
    started = time.monotonic()
    while time.monotonic() - started < FLOW_TIMEOUT_S:
        backfill = server.graphql(
            "query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename"
            " ... on PartitionBackfill { status runs(limit: 50) { runId status tags { key value } } } } }",
            {"id": backfill_id})["partitionBackfillOrError"]
        if backfill["status"] not in ("REQUESTED", "CANCELING", "FAILING") and all(
                r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in backfill["runs"]):
            assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), backfill
            return backfill["runs"]
        time.sleep(2)
    pytest.fail(f"backfill {backfill_id} not done within {FLOW_TIMEOUT_S} s\n{server.log_tail()}")


def published_rows(deployment: Deployment, spark) -> dict[str, list]:
    env = JobEnvironment.from_settings(deployment.settings)
    return {str(t): sorted(map(tuple, read_published(spark, env, t, BACKFILL_DAYS).collect()), key=repr)
            for t in SILVER_AND_GOLD}


def test_a_ten_day_backfill_from_the_ui_is_one_run_per_asset_range_and_equals_per_day_runs(deployment, spark):
    stop_sensor(deployment.server, "medallion_automation")  # else bronze below would trigger silver and gold
    for i, dt in enumerate(BACKFILL_DAYS):
        deployment.drop(dt, "a.json", 20 + i)
    clock = time.monotonic()
    assert deployment.cli("run", "--from", BACKFILL_DAYS[0], "--to", BACKFILL_DAYS[-1], "--select", "bronze") == 0
    print(f"bronze for ten days: {time.monotonic() - clock:.0f} s")

    clock = time.monotonic()
    runs = wait_for_backfill(deployment.server, launch_backfill(deployment.server, SILVER_AND_GOLD, BACKFILL_DAYS))
    print(f"backfill: {time.monotonic() - clock:.0f} s")
    # Silver and gold share the single-run policy and the range: one run, not one per day (nor per asset).
    assert len(runs) == 1 and runs[0]["status"] == "SUCCESS", runs
    tags = {t["key"]: t["value"] for t in runs[0]["tags"]}
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (
        BACKFILL_DAYS[0], BACKFILL_DAYS[-1])
    ranged = published_rows(deployment, spark)
    assert all(ranged[str(t)] for t in (SILVER_APP_LOGS, *GOLD_TABLES))

    # Ten per-day runs over the same bronze: what each one's silver and gold steps execute (the local
    # launcher's call), here on the suite's warm SparkSession instead of twenty Dagster runs.
    env = JobEnvironment.from_settings(deployment.settings, run_id="per-day")
    clock = time.monotonic()
    for dt in BACKFILL_DAYS:
        LAYER_JOBS["silver"](spark, [dt], env)
        LAYER_JOBS["gold"](spark, [dt], env)
    print(f"per-day silver and gold: {time.monotonic() - clock:.0f} s")
    assert published_rows(deployment, spark) == ranged


# --- a rejected day in the UI (issue 12) -------------------------------------------------------------------

# Outside the listing look-back (the landing sensor leaves it alone) and newer than every backfill day.
REJECTED_DAY = (TODAY - timedelta(days=BACKFILL_NEWEST_AGE - 1)).isoformat()
PARTITION_STATUS = (
    "query($k: AssetKeyInput!) { assetNodeOrError(assetKey: $k) { __typename ... on AssetNode {"
    " partitionStats { numMaterialized numFailed }"
    " assetPartitionStatuses { __typename ... on TimePartitionStatuses { ranges { startKey endKey status } } } } } }"
)


def test_a_rejected_day_is_failed_not_materialized_in_the_ui(deployment):
    # Logins without a user: the day fails silver's user_id_null_rate_within_threshold and is not published.
    write_landing(deployment.settings.landing_root, REJECTED_DAY, "bad.json",
                  [event(i, dt=REJECTED_DAY, event_id=f"bad-{i}", event_type="login", user_id=None, method=None,
                         path=None, status=None, latency_ms=None, bytes=None) for i in range(40)])
    assert deployment.cli("run", "--from", REJECTED_DAY, "--to", REJECTED_DAY, "--select", "bronze", "silver") == 1
    assert (str(SILVER_APP_LOGS), REJECTED_DAY) not in deployment.versions()

    node = deployment.server.graphql(PARTITION_STATUS, {"k": {"path": SILVER_APP_LOGS.asset_path}})["assetNodeOrError"]
    ranges = node["assetPartitionStatuses"]["ranges"]
    status = {r["status"] for r in ranges if r["startKey"] <= REJECTED_DAY <= r["endKey"]}
    assert status == {"FAILED"}, ranges  # not MATERIALIZED (green), as a reported materialization would make it
    assert node["partitionStats"]["numFailed"] >= 1, node
