"""``deploy/dagster.yaml``, the production instance: Dagster accepts it, and it says what production needs.

Runs against a real PostgreSQL server with this instance: ``test_instance_postgres``."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster_aws.ecs import EcsRunLauncher
from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
from dagster_postgres.utils import pg_config

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEPLOYED = PROJECT_ROOT / "deploy" / "dagster.yaml"
ENVIRONMENT = {  # what the ECS task definitions set (from Secrets Manager for the password)
    "DAGSTER_PG_HOST": "dagster.cluster-abc.eu-west-1.rds.amazonaws.com", "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_DB": "dagster", "DAGSTER_PG_USERNAME": "dagster", "DAGSTER_PG_PASSWORD": "from-secrets-manager",
    "DAGSTER_RUN_TASK_DEFINITION_ARN": "arn:aws:ecs:eu-west-1:123456789012:task-definition/medallion-run:1",
    "DAGSTER_COMPUTE_LOGS_BUCKET": "medallion-lake",
}


@pytest.fixture
def instance_config(tmp_path, monkeypatch):
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    shutil.copy(DEPLOYED, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))  # Dagster's own schema and consistency checks
    return config


def _accepted(config_type, value) -> dict:
    result = process_config(config_type, value)
    assert result.success, [e.message for e in result.errors]
    return result.value


def test_dagster_accepts_the_production_instance_and_each_of_its_parts(instance_config):
    storage = _accepted(pg_config(), instance_config["storage"]["postgres"])
    assert storage["postgres_db"]["hostname"] == ENVIRONMENT["DAGSTER_PG_HOST"]
    assert storage["postgres_db"]["port"] == 5432
    assert storage["postgres_db"]["scheme"] == "postgresql+psycopg2"  # see the file; test_instance_postgres runs it
    assert instance_config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    _accepted(dg.QueuedRunCoordinator.config_type(), instance_config["run_coordinator"]["config"])
    assert (instance_config["run_launcher"]["module"], instance_config["run_launcher"]["class"]) == (
        "dagster_aws.ecs", "EcsRunLauncher")
    launcher = _accepted(EcsRunLauncher.config_type(), instance_config["run_launcher"]["config"])
    # The launcher reads the variable itself when it starts (dagster_aws.ecs.launcher), failing if it is unset.
    assert launcher["task_definition"] == {"env": "DAGSTER_RUN_TASK_DEFINITION_ARN"}
    _accepted(S3ComputeLogManager.config_type(), instance_config["compute_logs"]["config"])


def test_no_credential_is_written_in_the_file():
    raw = yaml.safe_load(DEPLOYED.read_text())
    db = raw["storage"]["postgres"]["postgres_db"]
    from_environment = {name for name, value in db.items() if isinstance(value, dict) and set(value) == {"env"}}
    assert set(db) - from_environment == {"scheme"}  # every connection field; the driver's name is no secret

    def secrets(node, key=""):  # every value under a credential-like key, anywhere in the file
        if isinstance(node, dict):
            for k, v in node.items():
                yield from secrets(v, k) if k != "env" else ()
                if any(word in k.lower() for word in ("password", "secret", "token", "credential")) and not isinstance(v, dict):
                    yield k, v
        elif isinstance(node, list):
            for item in node:
                yield from secrets(item, key)

    assert [(k, v) for k, v in secrets(raw) if v not in ("", None)] == []


def test_runs_never_write_one_partition_twice_at_once_and_spark_applications_are_capped(instance_config):
    runs = instance_config["concurrency"]["runs"]
    assert 1 <= runs["max_concurrent_runs"] <= 8
    per_value = {limit["key"]: limit["limit"] for limit in runs["tag_concurrency_limits"]
                 if limit.get("value") == {"applyLimitPerUniqueValue": True}}
    assert per_value == {"dagster/partition": 1, "dagster/asset_partition_range_start": 1}
    assert instance_config["concurrency"]["pools"]["default_limit"] == 1  # the steps' partition locks
    assert instance_config["run_monitoring"]["enabled"] is True
    retries = instance_config["run_retries"]
    assert retries["enabled"] and retries["max_retries"] >= 1
    assert retries["retry_on_asset_or_op_failure"] is False  # a failed gate is looked at, not retried
