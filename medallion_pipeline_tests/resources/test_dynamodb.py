"""What only the AWS catalog does: project each commit into Glue, and repair Glue when that step failed.

The catalog contract itself (publish, rollback, ledger, vacuum, races) runs on both catalogs in
``test_catalog.py``.
"""

from __future__ import annotations

import boto3
import pytest

from medallion_pipeline.cli import main
from medallion_pipeline.resources.catalog import Column, PartitionVersion, open_catalog
from medallion_pipeline.resources.catalog.dynamodb import DynamoCatalog
from medallion_pipeline.resources.catalog.glue import GlueProjection
from medallion_pipeline.resources.lake import Lake, new_version_id
from medallion_pipeline.tables import BRONZE_APP_LOGS, SILVER_APP_LOGS

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


def test_a_new_column_is_appended_to_the_glue_table(catalog):
    catalog.publish(SILVER_APP_LOGS, [version("2024-01-01")])
    catalog.publish(SILVER_APP_LOGS, [version("2024-01-02", (*COLUMNS, Column("region", "string")))])
    table = boto3.client("glue").get_table(DatabaseName="medallion_test", Name="silver_app_logs")["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["event_id", "client_ip", "region"]


def test_bronze_is_not_projected(catalog):
    catalog.publish(BRONZE_APP_LOGS, [version("2024-01-01", table=BRONZE_APP_LOGS)])
    catalog.publish(SILVER_APP_LOGS, [version("2024-01-01")])
    names = [t["Name"] for t in boto3.client("glue").get_tables(DatabaseName="medallion_test")["TableList"]]
    assert names == ["silver_app_logs"]
    assert main(["catalog", "sync", "--table", "bronze.app_logs"]) == 2


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


def test_catalog_sync_needs_the_aws_catalog(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDALLION_LAKE_ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("MEDALLION_PII_KEY", "k")
    assert main(["catalog", "sync"]) == 2
    assert "no Glue projection" in capsys.readouterr().err
