"""The subprocess launcher (spark-submit + Dagster Pipes) against the local launcher: same rows, checks, metadata."""

from __future__ import annotations

import time
from datetime import date

import dagster as dg
import pytest
from dagster_pyspark import LazyPySparkResource

from medallion_pipeline.definitions import build_definitions
from medallion_pipeline.jobs.environment import JobEnvironment
from medallion_pipeline.jobs.publish import read_published
from medallion_pipeline.launchers.launcher import LocalSparkLauncher, SubprocessSparkLauncher
from medallion_pipeline.resources.spark import spark_conf
from medallion_pipeline.sample_data import Dirt, generate
from medallion_pipeline.settings import Settings
from medallion_pipeline.tables import ALL_TABLES, BRONZE_APP_LOGS, GLUE_TABLES
from medallion_pipeline_tests.conftest import TEST_SPARK_CONF

DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]
RANGE = {"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[-1]}
# Figures of the run itself rather than of the data: when, how long, which version directory.
VOLATILE_COLUMNS = {"_ingested_at", "computed_at", "run_id"}
VOLATILE_METADATA = {"version_id", "location", "staged_locations"}
# The test suite's Spark tuning (FIELD_NOTES), the same for both launchers so their outputs are comparable.
FAST_DRIVER = {**TEST_SPARK_CONF, "spark.log.level": "WARN"}


def run_pipeline(monkeypatch, tmp_path, settings: Settings, lake: str, launcher=None, catalog_uri: str = ""):
    """One ranged run of every asset into its own lake (and catalog, if given); returns what Dagster
    recorded and the lake's env."""
    monkeypatch.setenv("MEDALLION_LAKE_ROOT", str(tmp_path / lake))
    monkeypatch.setenv("MEDALLION_CATALOG_URI", catalog_uri)
    defs = build_definitions(Settings.from_env())
    resources = {**defs.resources, **({"spark_launcher": launcher} if launcher else {})}
    with dg.instance_for_test() as instance:
        result = dg.materialize(list(defs.assets), resources=resources, instance=instance, tags=RANGE)
        assert result.success
        recorded = {
            "materializations": {
                (record.asset_key.to_user_string(), record.partition_key): _stable(record.asset_materialization.metadata)
                for key in _keys(defs)
                for record in instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=100).records
            },
            "checks": sorted(
                (c.asset_key.to_user_string(), c.check_name, c.passed, c.severity.value, repr(_stable(c.metadata)))
                for c in result.get_asset_check_evaluations()
            ),
        }
    return recorded, JobEnvironment.from_settings(Settings.from_env(), run_id="compare")


def _keys(defs):
    return [key for asset in defs.assets for key in asset.keys]


def volatile(name: str) -> bool:
    """Durations and ingestion lags (``*_s``) measure the run, not the data."""
    # What a step cost Spark (layer_*: jobs, bytes, shuffle) depends on the run, not on its result.
    return name in VOLATILE_METADATA or name.endswith(("_s", "_seconds")) or name.startswith("layer_")


def rounded(value):
    """Floating-point sums depend on the order Spark adds rows in: compare them to 9 significant digits."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return [rounded(v) for v in value]
    return value


def _stable(metadata) -> dict:
    return {k: rounded(getattr(v, "value", v)) for k, v in metadata.items() if not volatile(k)}


def published_rows(spark, env, table) -> list[tuple]:
    df = read_published(spark, env, table, DAYS)
    df = df.select(*sorted(c for c in df.columns if c not in VOLATILE_COLUMNS))
    rows = [row.asDict() for row in df.collect()]
    return sorted(repr(rounded(row)) for row in rows if not volatile(row.get("metric") or ""))


AWS_CATALOG = "glue://medallion_e2e?state_table=medallion-e2e"


@pytest.mark.slow
def test_subprocess_launcher_on_the_aws_catalog_matches_local_launcher_on_the_embedded_one(
        spark, medallion_env, monkeypatch, tmp_path, aws):
    """The driver is a separate process that resolves and publishes through DynamoDB and Glue over HTTP,
    as an EMR Serverless driver does; the reference run is in-process on the embedded catalog."""
    from medallion_pipeline.resources.catalog.dynamodb import DynamoCatalog

    DynamoCatalog("medallion-e2e").create_table()
    generate(medallion_env.landing_root, date(2024, 1, 1), 3, 300, 4, seed=5,
             dirt=Dirt(malformed_rate=0.01, duplicate_rate=0.015))
    started = time.monotonic()
    local_launcher = LocalSparkLauncher(pyspark=LazyPySparkResource(
        spark_config={**spark_conf(medallion_env), **TEST_SPARK_CONF}))
    local, local_env = run_pipeline(monkeypatch, tmp_path, medallion_env, "lake_local", local_launcher)
    local_s = time.monotonic() - started
    remote, remote_env = run_pipeline(monkeypatch, tmp_path, medallion_env, "lake_subprocess",
                                      SubprocessSparkLauncher(spark_conf=FAST_DRIVER), catalog_uri=AWS_CATALOG)
    print(f"local launcher {local_s:.1f} s, subprocess launcher {time.monotonic() - started - local_s:.1f} s")

    assert remote_env.catalog.current(ALL_TABLES[0], DAYS)  # the subprocess published into its own lake
    for table in ALL_TABLES:
        assert published_rows(spark, remote_env, table) == published_rows(spark, local_env, table), table
    assert remote["checks"] == local["checks"] and len(local["checks"]) > 10
    assert remote["materializations"].keys() == local["materializations"].keys()
    for key, metadata in local["materializations"].items():
        assert remote["materializations"][key] == metadata, key
    assert_glue_projects_the_catalog(remote_env.catalog)


def assert_glue_projects_the_catalog(catalog) -> None:
    """Every table but bronze in Glue as Athena needs it, each partition at the catalog's current version."""
    import boto3

    from medallion_pipeline.resources.catalog.glue import glue_type
    from medallion_pipeline.schemas.silver import SilverAppLogs

    glue = boto3.client("glue")
    assert [t for t in ALL_TABLES if t not in GLUE_TABLES] == [BRONZE_APP_LOGS]
    with pytest.raises(glue.exceptions.EntityNotFoundException):  # raw PII, made of segments: not projected
        glue.get_table(DatabaseName="medallion_e2e", Name="bronze_app_logs")
    for table in GLUE_TABLES:
        described = glue.get_table(DatabaseName="medallion_e2e", Name=table.sql_name)["Table"]
        storage = described["StorageDescriptor"]
        assert described["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
        assert storage["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
        [(_, _, columns)] = [t for t in catalog.tables() if t[0] == table]
        assert [(c["Name"], c["Type"], c["Parameters"]["pii"]) for c in storage["Columns"]] == [
            (c.name, glue_type(c.type), str(c.pii).lower()) for c in columns if c.name != "dt"], table
        assert [c.get("Comment", "") for c in storage["Columns"]] == [
            c.description[:255] for c in columns if c.name != "dt"], table
        partitions = glue.get_partitions(DatabaseName="medallion_e2e", TableName=table.sql_name)["Partitions"]
        assert {p["Values"][0]: p["StorageDescriptor"]["Location"] for p in partitions} == {
            p.dt: p.location for p in catalog.partitions(table)}, table
    # "region" first arrives on day 2 (the generator's default dirt); the three days were published at once,
    # so Glue's table was created with it (appending on a later day: test_dynamodb.py).
    silver = glue.get_table(DatabaseName="medallion_e2e", Name="silver_app_logs")["Table"]
    names = [c["Name"] for c in silver["StorageDescriptor"]["Columns"]]
    assert names.count("region") == 1 and set(names) - {"region"} >= set(SilverAppLogs.to_schema().columns) - {"dt"}


@pytest.mark.parametrize(("mode", "launcher"), [
    ("local", "LocalSparkLauncher"), ("subprocess", "SubprocessSparkLauncher"),
    ("emr-serverless", "EmrServerlessSparkLauncher"),
])
def test_launcher_is_chosen_by_spark_mode(mode, launcher):
    from medallion_pipeline.definitions import spark_launcher_for

    assert type(spark_launcher_for(Settings(spark_mode=mode))).__name__ == launcher
