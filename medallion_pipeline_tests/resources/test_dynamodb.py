"""What only the AWS catalog does: project each commit into Glue, and repair Glue when that step failed.

The catalog contract itself (publish, rollback, ledger, vacuum, races) runs on both catalogs in
``test_catalog.py``.
"""

from __future__ import annotations

from dataclasses import replace

import boto3
import pytest

from medallion_pipeline.cli import main
from medallion_pipeline.resources.catalog import Column, PartitionVersion, open_catalog
from medallion_pipeline.resources.catalog.dynamodb import DynamoCatalog
from medallion_pipeline.resources.catalog.glue import GlueProjection
from medallion_pipeline.resources.lake import Lake, new_version_id
from medallion_pipeline.tables import (
    BRONZE_APP_LOGS,
    SILVER_APP_LOGS,
    SILVER_QUARANTINE,
)

LAKE_ROOT = "s3://lake/root"
URI = "glue://medallion_test?state_table=medallion-state"
COLUMNS = (Column("event_id", "string"), Column("client_ip", "string", pii=True, description="HMAC of the IP"))


@pytest.fixture
def catalog(aws) -> DynamoCatalog:
    catalog = open_catalog(URI, LAKE_ROOT)
    catalog.create_table()
    return catalog


def version(dt: str, columns=COLUMNS, table=SILVER_APP_LOGS) -> PartitionVersion:
    version_id = new_version_id()
    return PartitionVersion(table, dt, version_id, Lake(LAKE_ROOT).partition_location(table, version_id, dt), 1, columns)


def glue_partitions(table=SILVER_APP_LOGS) -> dict[str, str]:
    return GlueProjection("medallion_test", LAKE_ROOT).partition_locations(table)


def test_every_publish_and_rollback_moves_the_glue_partition_to_the_current_version(catalog):
    v1, v2 = version("2024-01-01"), version("2024-01-01")
    catalog.publish(SILVER_APP_LOGS, [v1, version("2024-01-02")], description="silver events")
    catalog.publish(SILVER_APP_LOGS, [v2], expected={"2024-01-01": v1.version_id})
    assert glue_partitions()["2024-01-01"] == v2.location
    catalog.rollback(SILVER_APP_LOGS, "2024-01-01", reason="bad publish")
    assert glue_partitions() == {dt: p.location for dt, p in
                                 catalog.current(SILVER_APP_LOGS, ["2024-01-01", "2024-01-02"]).items()}
    table = boto3.client("glue").get_table(DatabaseName="medallion_test", Name="silver_app_logs")["Table"]
    columns = {c["Name"]: c for c in table["StorageDescriptor"]["Columns"]}
    assert columns["client_ip"]["Parameters"] == {"pii": "true"} and columns["event_id"]["Parameters"] == {"pii": "false"}
    assert table["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]


def test_a_field_first_seen_on_day_2_adds_one_column_at_the_end_of_the_glue_table(catalog):
    glue = boto3.client("glue")
    day1 = (Column("event_id", "string"), Column("email", "string", pii=True), Column("_ingested_at", "timestamp"))
    catalog.publish(SILVER_QUARANTINE, [version("2024-01-01", day1, SILVER_QUARANTINE)])
    before = glue.get_table(DatabaseName="medallion_test", Name="silver_quarantine")["Table"]["StorageDescriptor"]
    day1_partition = glue.get_partition(DatabaseName="medallion_test", TableName="silver_quarantine",
                                        PartitionValues=["2024-01-01"])["Partition"]["StorageDescriptor"]
    # Spark puts the new field before the lineage columns; Glue never reorders: it goes last.
    day2 = (*day1[:2], Column("region", "string"), day1[2])
    catalog.publish(SILVER_QUARANTINE, [version("2024-01-02", day2, SILVER_QUARANTINE)])
    after = glue.get_table(DatabaseName="medallion_test", Name="silver_quarantine")["Table"]["StorageDescriptor"]
    assert after["Columns"][:-1] == before["Columns"]
    assert after["Columns"][-1] == {"Name": "region", "Type": "string", "Parameters": {"pii": "false"}}
    assert glue.get_partition(DatabaseName="medallion_test", TableName="silver_quarantine",
                              PartitionValues=["2024-01-01"])["Partition"]["StorageDescriptor"] == day1_partition


def test_bronze_is_not_projected_and_catalog_sync_removes_a_bronze_table_an_earlier_release_made(
        catalog, monkeypatch, capsys):
    glue = boto3.client("glue")
    first = version("2024-01-01", COLUMNS, BRONZE_APP_LOGS)
    catalog.publish(BRONZE_APP_LOGS, [first])
    segmented = replace(version("2024-01-01", COLUMNS, BRONZE_APP_LOGS), segments=first.locations)
    catalog.publish(BRONZE_APP_LOGS, [segmented])
    assert glue_partitions(BRONZE_APP_LOGS) == {}
    earlier_release = GlueProjection("medallion_test", LAKE_ROOT)  # one that projected bronze
    earlier_release.ensure_database()
    earlier_release.sync_table(BRONZE_APP_LOGS, "raw", COLUMNS, {"2024-01-01": first.location})
    for name, value in {"MEDALLION_CATALOG_URI": URI, "MEDALLION_LAKE_ROOT": LAKE_ROOT,
                        "MEDALLION_LANDING_ROOT": "s3://landing/logs", "MEDALLION_PII_KEY": "k"}.items():
        monkeypatch.setenv(name, value)
    assert main(["catalog", "sync"]) == 0
    assert "bronze_app_logs: not projected to Glue" in capsys.readouterr().out
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_table(DatabaseName="medallion_test", Name="bronze_app_logs")


class FailingProjection(GlueProjection):
    """Glue unreachable right after the DynamoDB commit (throttled, a network error, the process killed)."""

    def sync_table(self, *args, **kwargs):
        raise ConnectionError("glue.us-east-1.amazonaws.com unreachable")


def test_a_glue_failure_after_the_commit_is_logged_and_catalog_sync_repairs_it(catalog, monkeypatch, caplog, capsys):
    failing = DynamoCatalog(catalog.table_name, projection=FailingProjection("medallion_test", LAKE_ROOT))
    v1 = version("2024-01-01")
    catalog.publish(SILVER_APP_LOGS, [v1])
    v2 = version("2024-01-01", (*COLUMNS, Column("region", "string")))
    failing.publish(SILVER_APP_LOGS, [v2], expected={"2024-01-01": v1.version_id})  # committed; Glue is stale
    assert catalog.current(SILVER_APP_LOGS, ["2024-01-01"])["2024-01-01"].version_id == v2.version_id
    assert glue_partitions() == {"2024-01-01": v1.location}
    assert "medallion catalog sync --table silver.app_logs" in caplog.text
    for name, value in {"MEDALLION_CATALOG_URI": URI, "MEDALLION_LAKE_ROOT": LAKE_ROOT,
                        "MEDALLION_LANDING_ROOT": "s3://landing/logs", "MEDALLION_PII_KEY": "k"}.items():
        monkeypatch.setenv(name, value)
    assert main(["catalog", "sync"]) == 0
    assert "silver_app_logs: 0 partitions created, 1 moved" in capsys.readouterr().out
    assert glue_partitions() == {"2024-01-01": v2.location}
    assert main(["catalog", "sync", "--table", "silver.app_logs"]) == 0
    assert "0 moved, 0 deleted, 1 unchanged" in capsys.readouterr().out


def test_the_next_publish_of_a_day_repairs_its_stale_glue_partition(catalog):
    failing = DynamoCatalog(catalog.table_name, projection=FailingProjection("medallion_test", LAKE_ROOT))
    v1 = version("2024-01-01")
    catalog.publish(SILVER_APP_LOGS, [v1])
    stale = version("2024-01-01")
    failing.publish(SILVER_APP_LOGS, [stale], expected={"2024-01-01": v1.version_id})
    assert glue_partitions() == {"2024-01-01": v1.location}
    v3 = version("2024-01-01")
    catalog.publish(SILVER_APP_LOGS, [v3], expected={"2024-01-01": stale.version_id})
    assert glue_partitions() == {"2024-01-01": v3.location}


def test_catalog_sync_needs_the_aws_catalog(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDALLION_LAKE_ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("MEDALLION_PII_KEY", "k")
    assert main(["catalog", "sync"]) == 2
    assert "no Glue projection" in capsys.readouterr().err


def test_query_catalog_and_governance_work_in_aws_mode(aws, monkeypatch, capsys):
    """An s3:// lake on the moto server, the DynamoDB catalog, its Glue projection: the three read commands."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from medallion_pipeline.schemas.governance import policy_for, table_columns
    from medallion_pipeline.tables import GOLD_DAILY_KPIS

    lake_root = "s3://medallion-lake/prod"
    for name, value in {"MEDALLION_CATALOG_URI": URI, "MEDALLION_LAKE_ROOT": lake_root,
                        "MEDALLION_LANDING_ROOT": "s3://medallion-landing/logs", "MEDALLION_PII_KEY": "k"}.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="medallion-lake")
    catalog = open_catalog(URI, lake_root)
    catalog.create_table()
    def tagged_columns(table):
        return tuple(Column(name, kind, pii=policy_for(table, name).pii_class != "none")
                     for name, kind in table_columns(table).items())

    columns = tagged_columns(GOLD_DAILY_KPIS)
    versions = []
    for day, events in (("2024-01-01", 120), ("2024-01-02", 80)):
        v = version(day, columns, GOLD_DAILY_KPIS)
        v = PartitionVersion(**{**v.__dict__, "location": Lake(lake_root).partition_location(
            GOLD_DAILY_KPIS, v.version_id, day)})
        buffer = io.BytesIO()
        pq.write_table(pa.table({"events": pa.array([events], pa.int64())}), buffer)
        s3.put_object(Bucket="medallion-lake", Key=f"{v.location.removeprefix('s3://medallion-lake/')}/part-0.parquet",
                      Body=buffer.getvalue())
        versions.append(v)
    catalog.publish(GOLD_DAILY_KPIS, versions, description="daily KPIs")
    # A silver partition with no files: loading it would fail, and a gold query must not load it.
    catalog.publish(SILVER_APP_LOGS, [PartitionVersion(SILVER_APP_LOGS, "2024-01-01", new_version_id(),
                                                       f"{lake_root}/silver/app_logs/empty/dt=2024-01-01", 0,
                                                       tagged_columns(SILVER_APP_LOGS))])

    assert main(["query", "select count(*) as days, sum(events) as events from gold_daily_kpis", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "2,200"
    assert main(["catalog"]) == 0
    out = capsys.readouterr().out
    assert "gold.daily_kpis (gold_daily_kpis): daily KPIs" in out and "dt=2024-01-02" in out
    assert main(["governance"]) == 0  # the Glue database from MEDALLION_CATALOG_URI, every PII column tagged
    assert "gold_daily_kpis" in capsys.readouterr().out


def test_the_moto_server_isolates_concurrent_transactions_as_dynamodb_does(aws):
    """The catalog's race tests need DynamoDB's isolation from the emulator. Unserialized, moto 5.2.5 loses
    committed writes when a concurrent transaction fails (it restores the table as it was when that one
    began): 1-3 of these 160 puts went missing in each of five probe runs (conftest.serialize_dynamodb_backend)."""
    import threading

    boto3.client("dynamodb").create_table(
        TableName="race", BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    failures: list[BaseException] = []
    doomed = {"ConditionCheck": {"TableName": "race", "Key": {"pk": {"S": "absent"}},
                                 "ConditionExpression": "attribute_exists(pk)"}}

    def writer(name: str, fail: bool) -> None:
        client = boto3.client("dynamodb")
        try:
            for n in range(40):
                items = [{"Put": {"TableName": "race", "Item": {"pk": {"S": f"{name}-{n}"}}}}]
                try:
                    client.transact_write_items(TransactItems=items + [doomed] if fail else items)
                except client.exceptions.TransactionCanceledException:
                    assert fail
        except BaseException as e:  # noqa: BLE001 — a thread's exception would be lost; reported below
            failures.append(e)

    threads = [threading.Thread(target=writer, args=(f"{kind}{i}", kind == "loser"))
               for i in range(4) for kind in ("winner", "loser")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName="race")
    assert failures == []
    assert {i["pk"]["S"] for page in pages for i in page["Items"]} == {f"winner{i}-{n}" for i in range(4) for n in range(40)}
