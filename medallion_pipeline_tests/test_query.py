"""``run_query``: SQL over exactly the catalog's current partitions, from a local lake or an S3 one (moto)."""

from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path

import boto3
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medallion_pipeline.query import hive_dt, run_query, s3_filesystem
from medallion_pipeline.resources.catalog import Column, PartitionVersion, SqliteCatalog
from medallion_pipeline.resources.lake import Lake, new_version_id
from medallion_pipeline.tables import GOLD_DAILY_KPIS, GOLD_FUNNEL

BUCKET = "lake-bucket"
KPI_COLUMNS = (Column("service", "string"), Column("requests", "bigint"), Column("computed_at", "timestamp"))
AT = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def kpis(service: str, requests: int, **extra) -> pa.Table:
    """One gold row as Spark writes it: no ``dt`` in the file (it is the directory), UTC microsecond times."""
    columns = {"service": [service], "requests": [requests], "computed_at": pa.array([AT], pa.timestamp("us", "UTC"))}
    return pa.table({**columns, **{name: [value] for name, value in extra.items()}})


class LakeWriter:
    """Writes Parquet files into a local or an S3 lake (S3 through boto3, independent of the code under test)."""

    def __init__(self, root: str):
        self.lake = Lake(root)
        self.s3 = boto3.client("s3") if root.startswith("s3://") else None

    def write(self, dt: str, *tables: pa.Table) -> str:
        """A new version of ``dt`` with one file per table; returns its location."""
        location = self.lake.partition_location(GOLD_DAILY_KPIS, new_version_id(), dt)
        for i, table in enumerate(tables):
            buffer = io.BytesIO()
            pq.write_table(table, buffer)
            if self.s3:
                key = f"{location.removeprefix(f's3://{BUCKET}/')}/part-{i}.parquet"
                self.s3.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())
            else:
                Path(location).mkdir(parents=True, exist_ok=True)
                Path(location, f"part-{i}.parquet").write_bytes(buffer.getvalue())
        return location


def publish(catalog: SqliteCatalog, dt: str, location: str, columns=KPI_COLUMNS) -> None:
    version_id = location.rstrip("/").split("/")[-2]
    catalog.publish(GOLD_DAILY_KPIS, [PartitionVersion(GOLD_DAILY_KPIS, dt, version_id, location, 1, columns)])


@pytest.fixture
def catalog(tmp_path: Path) -> SqliteCatalog:
    return SqliteCatalog(tmp_path / "catalog.db")


@pytest.fixture
def s3_lake(aws) -> LakeWriter:
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    return LakeWriter(f"s3://{BUCKET}/lake")


@pytest.fixture(params=["local", "s3"])
def any_lake(request, tmp_path: Path) -> LakeWriter:
    if request.param == "local":
        return LakeWriter(str(tmp_path / "lake"))
    return request.getfixturevalue("s3_lake")


def fill(lake: LakeWriter, catalog: SqliteCatalog) -> None:
    """Day 1 published twice (the first version superseded), day 2 with a new column, day 3 written only."""
    publish(catalog, "2024-01-01", lake.write("2024-01-01", kpis("gateway", 1)))
    publish(catalog, "2024-01-01", lake.write("2024-01-01", kpis("gateway", 10), kpis("search", 20)))
    region = (*KPI_COLUMNS, Column("region", "string"))
    publish(catalog, "2024-01-02", lake.write("2024-01-02", kpis("gateway", 30, region="eu")), columns=region)
    lake.write("2024-01-03", kpis("gateway", 99))  # staged, never published: readers must not see it


def test_s3_query_reads_only_the_current_versions(s3_lake, catalog):
    fill(s3_lake, catalog)
    columns, rows = run_query(
        catalog, "SELECT dt, service, requests, region, typeof(dt) FROM gold_daily_kpis ORDER BY dt, service")
    assert columns == ["dt", "service", "requests", "region", "typeof(dt)"]
    assert rows == [
        ("2024-01-01", "gateway", 10, None, "VARCHAR"),  # not 1: that version was superseded
        ("2024-01-01", "search", 20, None, "VARCHAR"),  # a column added later is null in the older partition
        ("2024-01-02", "gateway", 30, "eu", "VARCHAR"),
    ]  # and no 2024-01-03: written to the lake but not in the catalog


def test_local_and_s3_lakes_answer_alike(tmp_path, s3_lake, catalog):
    """The same files through DuckDB's reader and through pyarrow's: same columns, order, types and rows."""
    fill(s3_lake, catalog)
    local = LakeWriter(str(tmp_path / "lake"))
    local_catalog = SqliteCatalog(tmp_path / "local-catalog.db")
    fill(local, local_catalog)
    for sql in ("DESCRIBE SELECT * FROM gold_daily_kpis",
                "SELECT * FROM gold_daily_kpis ORDER BY dt, service",
                "SELECT dt, sum(requests) FROM gold_daily_kpis GROUP BY dt ORDER BY dt"):
        assert run_query(catalog, sql) == run_query(local_catalog, sql), sql
    columns, _ = run_query(catalog, "SELECT * FROM gold_daily_kpis")
    assert columns == ["service", "requests", "computed_at", "region", "dt"]
    _, [(kind,)] = run_query(catalog, "SELECT DISTINCT typeof(computed_at) FROM gold_daily_kpis")
    assert kind == "TIMESTAMP WITH TIME ZONE"


def test_a_table_without_partitions_has_no_view(any_lake, catalog):
    publish(catalog, "2024-01-01", any_lake.write("2024-01-01", kpis("gateway", 1)))
    assert run_query(catalog, "SELECT count(*) FROM gold_daily_kpis") == (["count_star()"], [(1,)])
    with pytest.raises(duckdb.CatalogException, match=GOLD_FUNNEL.sql_name):
        run_query(catalog, f"SELECT * FROM {GOLD_FUNNEL.sql_name}")


def test_a_published_partition_without_files_fails_the_same_way_on_both_lakes(any_lake, catalog):
    """A catalog pointing at files that are gone is an error (the CLI reports ``duckdb.Error``), not no rows."""
    publish(catalog, "2024-01-01", any_lake.write("2024-01-01", kpis("gateway", 1)))
    gone = any_lake.lake.partition_location(GOLD_DAILY_KPIS, new_version_id(), "2024-01-02")
    publish(catalog, "2024-01-02", gone)
    with pytest.raises(duckdb.IOException, match="No files found"):
        run_query(catalog, "SELECT count(*) FROM gold_daily_kpis")


def test_s3_endpoint_and_region_come_from_the_environment(s3_lake, catalog, monkeypatch, aws):
    publish(catalog, "2024-01-01", s3_lake.write("2024-01-01", kpis("gateway", 1)))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(OSError, match="NETWORK_CONNECTION"):
        run_query(catalog, "SELECT requests FROM gold_daily_kpis")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", aws)  # the S3-specific variable wins, as for boto3
    assert run_query(catalog, "SELECT requests FROM gold_daily_kpis")[1] == [(1,)]

    assert s3_filesystem().region == "us-east-1"
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert s3_filesystem().region == "eu-west-1"


def test_dt_comes_from_the_hive_segment_of_the_location():
    assert hive_dt("s3://b/lake/gold/daily_kpis/v20240101T000000000Z-abc/dt=2024-01-01") == "2024-01-01"
    assert hive_dt("s3://b/lake/gold/daily_kpis/v1/dt=2024-01-01/") == "2024-01-01"
    with pytest.raises(ValueError, match="no dt="):
        hive_dt("s3://b/lake/gold/daily_kpis/v1/day=2024-01-01")


def test_a_table_with_partitions_on_two_lakes_is_refused(tmp_path, catalog):
    local = LakeWriter(str(tmp_path / "lake"))
    publish(catalog, "2024-01-01", local.write("2024-01-01", kpis("gateway", 1)))
    assert run_query(catalog, "SELECT count(*) FROM gold_daily_kpis")[1] == [(1,)]
    publish(catalog, "2024-01-02", Lake(f"s3://{BUCKET}/lake").partition_location(GOLD_DAILY_KPIS, "v1", "2024-01-02"))
    with pytest.raises(ValueError, match="both on S3 and elsewhere"):
        run_query(catalog, "SELECT count(*) FROM gold_daily_kpis")
