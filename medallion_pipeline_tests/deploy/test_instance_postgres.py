"""The production instance (``deploy/dagster.yaml``) on a real PostgreSQL server, started by the test session
from the ``pgserver`` package (PostgreSQL 16 binaries on PyPI), listening on 127.0.0.1.

The instance is the deployed file with two parts swapped for what exists here: the ECS run launcher becomes
the default launcher (runs as local processes) and S3 compute logs become local files. Storage, the queued run
coordinator, its concurrency limits and pools, run monitoring and retries are the file's own. Runs go through a
real ``dagster dev`` (webserver and daemon) on that instance.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy
import yaml

from medallion_pipeline_tests.dagster_dev import DagsterDev
from medallion_pipeline_tests.defs.test_partition_locks import a_shared_day_waits_and_other_days_do_not

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEPLOYED = PROJECT_ROOT / "deploy" / "dagster.yaml"
LOCATION = Path(__file__).with_name("queue_location.py")
SLOW_DAY_SECONDS = 12  # two runs dequeued one daemon tick (5 s) apart still overlap, with room for a slow start
RUNS_TIMEOUT_S = 300  # bounded wait for three runs
ACTIVE = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
          dg.DagsterRunStatus.STARTED)


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    """A PostgreSQL server on 127.0.0.1 (trust authentication) with an empty ``dagster`` database; its port."""
    import pgserver
    from pgserver._commands import pg_ctl

    data = tmp_path_factory.mktemp("postgres")
    # get_server runs initdb (as a non-root system user when the suite runs as root) and starts the server on
    # a unix socket only; it is restarted listening on 127.0.0.1, as the deployed instance connects by host.
    server = pgserver.get_server(data, cleanup_mode=None)
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data, user=server.system_user, timeout=60)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pg_ctl(["-w", "-o", f"-h 127.0.0.1 -p {port} -k {data}", "-l", str(data / "log"), "start"],
           pgdata=data, user=server.system_user, timeout=60)
    try:
        engine = sqlalchemy.create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres",
                                          isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("CREATE DATABASE dagster"))
        engine.dispose()
        yield port
    finally:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data, user=server.system_user, timeout=60)


@pytest.fixture
def home(tmp_path, postgres, monkeypatch) -> Path:
    """A DAGSTER_HOME with the deployed instance (launcher and compute logs swapped, see the module docstring),
    its connection from the environment as in production."""
    config = yaml.safe_load(DEPLOYED.read_text())
    config["run_launcher"] = {"module": "dagster.core.launcher", "class": "DefaultRunLauncher"}
    config["compute_logs"] = {"module": "dagster.core.storage.local_compute_log_manager",
                              "class": "LocalComputeLogManager", "config": {"base_dir": str(tmp_path / "logs")}}
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    for name, value in {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(postgres), "DAGSTER_PG_DB": "dagster",
                        "DAGSTER_PG_USERNAME": "postgres", "DAGSTER_PG_PASSWORD": "unused-trust-auth"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def pg_rows(port: int, query: str) -> list[tuple]:
    """Straight from PostgreSQL, not through Dagster: what the instance really stored there."""
    engine = sqlalchemy.create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/dagster")
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sqlalchemy.text(query))]
    finally:
        engine.dispose()


def wait_for_location(server: DagsterDev, name: str) -> None:
    """The webserver answers before it has loaded the code location: launching then finds no job."""
    deadline = time.monotonic() + RUNS_TIMEOUT_S
    while True:
        entries = server.graphql("{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                                 "locationOrLoadError { __typename ... on PythonError { message } } } } } }")["workspaceOrError"]["locationEntries"]
        entry = next((e for e in entries if e["name"] == name), None)
        if entry and entry["loadStatus"] == "LOADED":
            assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", (entry, server.log_tail())
            return
        if time.monotonic() > deadline:
            pytest.fail(f"code location {name} not loaded after {RUNS_TIMEOUT_S} s:\n{server.log_tail()}")
        time.sleep(0.5)


def launch(server: DagsterDev, dt: str) -> str:
    launched = server.graphql(
        "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename "
        "... on LaunchRunSuccess { run { runId status } } ... on PythonError { message } "
        "... on RunConfigValidationInvalid { errors { message } } } }",
        {"p": {"selector": {"repositoryLocationName": "deploy_test", "repositoryName": "__repository__",
                            "jobName": "slow_days"},
               "executionMetadata": {"tags": [{"key": "dagster/partition", "value": dt}]}}})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    assert launched["run"]["status"] == "QUEUED"  # the queued coordinator holds every run first
    return launched["run"]["runId"]


def test_partition_runs_are_recorded_in_postgres_and_never_overlap_on_one_partition(home, postgres, tmp_path):
    with dg.DagsterInstance.from_config(str(home)) as instance:  # the schema, before two processes race to make it
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(yaml.safe_dump({"load_from": [{"python_file": {
        "relative_path": str(LOCATION), "location_name": "deploy_test", "working_directory": str(PROJECT_ROOT)}}]}))
    env = {name: value for name, value in os.environ.items() if name.startswith("DAGSTER_PG_")}
    with DagsterDev(home, {**env, "SLOW_DAY_SECONDS": str(SLOW_DAY_SECONDS)}, instance=home / "dagster.yaml",
                    workspace=workspace) as server:
        wait_for_location(server, "deploy_test")
        day, same_day, other_day = launch(server, "2024-01-01"), launch(server, "2024-01-01"), launch(server, "2024-01-02")
        with dg.DagsterInstance.from_config(str(home)) as instance:
            deadline = time.monotonic() + RUNS_TIMEOUT_S
            while instance.get_runs_count(dg.RunsFilter(statuses=list(ACTIVE))):
                if time.monotonic() > deadline:
                    pytest.fail(f"runs still active after {RUNS_TIMEOUT_S} s:\n{server.log_tail()}")
                time.sleep(1)
            records = {r.dagster_run.run_id: r for r in instance.get_run_records(dg.RunsFilter(
                run_ids=[day, same_day, other_day]))}
            materialized = instance.get_materialized_partitions(dg.AssetKey("slow_day"))

    assert {run_id: r.dagster_run.status for run_id, r in records.items()} == {
        run_id: dg.DagsterRunStatus.SUCCESS for run_id in (day, same_day, other_day)}, server.log_tail()
    spans = {run_id: (r.start_time, r.end_time) for run_id, r in records.items()}
    first, second = sorted((spans[day], spans[same_day]))
    assert first[1] <= second[0], f"two runs of 2024-01-01 were in progress at once: {first} {second}"
    start, end = spans[other_day]
    assert any(start < a_end and a_start < end for a_start, a_end in (first, second)), (
        f"the 2024-01-02 run {spans[other_day]} waited for both 2024-01-01 runs {first} {second}")
    assert materialized == {"2024-01-01", "2024-01-02"}

    # In PostgreSQL itself: the three runs and the materialization of each one's partition.
    assert sorted(pg_rows(postgres, "SELECT run_id, status FROM runs")) == sorted(
        (run_id, "SUCCESS") for run_id in (day, same_day, other_day))
    assert sorted(pg_rows(postgres, "SELECT run_id, partition FROM event_logs "
                                    "WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")) == sorted(
        [(day, "2024-01-01"), (same_day, "2024-01-01"), (other_day, "2024-01-02")])


def test_partition_locks_hold_on_the_production_storage(home):
    """The steps' (layer, day) locks are concurrency pools in the instance's storage: PostgreSQL's here."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.event_log_storage.supports_global_concurrency_limits
        a_shared_day_waits_and_other_days_do_not(instance)
