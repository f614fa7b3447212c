"""The Glue projection against a moto server on 127.0.0.1 (the ``aws`` fixture): tables, columns, partitions.

Which calls the projection sends is read through botocore's own event hooks on the client under test
(``provide-client-params``), so "nothing was written" is observed, not inferred; nothing is patched.
"""

from __future__ import annotations

import copy
import logging
from datetime import date, timedelta

import boto3
import pytest
from pyspark.sql import types as T

from medallion_pipeline.resources.catalog.base import Column
from medallion_pipeline.resources.catalog.glue import GlueProjection, glue_type
from medallion_pipeline.resources.lake import Lake
from medallion_pipeline.tables import BRONZE_APP_LOGS, SILVER_APP_LOGS

DB = "medallion_test"
LAKE = "s3://lake/root"
TABLE = SILVER_APP_LOGS
DESCRIPTION = "Cleaned, typed application log events"
COLUMNS = (
    Column("event_id", "string", False, "Unique id of the event"),
    Column("event_ts", "timestamp", False, "When the event happened (UTC)"),
    Column("client_ip", "string", True, "HMAC of the client IP"),
    Column("status", "int"),
    Column("dt", "string", False, "partition day"),
)
D1, D2, D3, D4 = "2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"
WRITES = ("CreateTable", "UpdateTable", "BatchCreatePartition", "BatchUpdatePartition", "BatchDeletePartition")


def loc(dt: str, version: str = "v1", table=TABLE) -> str:
    return Lake(LAKE).partition_location(table, version, dt)


def days(n: int) -> list[str]:
    return [(date(2024, 1, 1) + timedelta(days=i)).isoformat() for i in range(n)]


class GlueCalls:
    """Every operation the client sends, with its parameters."""

    def __init__(self, client):
        self.log: list[tuple[str, dict]] = []
        client.meta.events.register("provide-client-params.glue", self._record)

    def _record(self, params, model, **_):
        self.log.append((model.name, copy.deepcopy(params)))

    def names(self) -> list[str]:
        return [name for name, _ in self.log]

    def writes(self) -> list[str]:
        return [name for name in self.names() if name in WRITES]

    def params(self, operation: str) -> list[dict]:
        return [params for name, params in self.log if name == operation]


@pytest.fixture
def glue(aws):
    return boto3.client("glue")


@pytest.fixture
def calls(glue) -> GlueCalls:
    return GlueCalls(glue)


@pytest.fixture
def projection(glue) -> GlueProjection:
    projection = GlueProjection(DB, LAKE, glue)
    projection.ensure_database()
    return projection


def glue_table(glue, table=TABLE) -> dict:
    return glue.get_table(DatabaseName=DB, Name=table.sql_name)["Table"]


def glue_columns(glue, table=TABLE) -> list[tuple]:
    return [(c["Name"], c["Type"], c.get("Comment", ""), c.get("Parameters"))
            for c in glue_table(glue, table)["StorageDescriptor"]["Columns"]]


def glue_partitions(glue, table=TABLE) -> dict[str, dict]:
    partitions = glue.get_partitions(DatabaseName=DB, TableName=table.sql_name)["Partitions"]
    return {p["Values"][0]: p for p in partitions}


# ---- database and table ---------------------------------------------------------------------------------------

def test_ensure_database_creates_it_once(glue):
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_database(Name=DB)
    projection = GlueProjection(DB, LAKE, glue)
    projection.ensure_database()
    projection.ensure_database()
    assert glue.get_database(Name=DB)["Database"]["Name"] == DB


def test_a_missing_table_is_created_as_external_parquet_partitioned_by_dt(projection, glue):
    report = projection.sync_table(TABLE, DESCRIPTION, COLUMNS, {D1: loc(D1)})

    table = glue_table(glue)
    storage = table["StorageDescriptor"]
    assert (table["Name"], table["TableType"]) == ("silver_app_logs", "EXTERNAL_TABLE")
    assert table["Description"] == DESCRIPTION
    assert table["Parameters"] == {"classification": "parquet", "EXTERNAL": "TRUE"}
    assert table["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    assert storage["Location"] == Lake(LAKE).table_root(TABLE) == "s3://lake/root/silver/app_logs"
    assert storage["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    assert storage["OutputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    assert storage["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert glue_columns(glue) == [  # dt is the partition key, never a data column
        ("event_id", "string", "Unique id of the event", {"pii": "false"}),
        ("event_ts", "timestamp", "When the event happened (UTC)", {"pii": "false"}),
        ("client_ip", "string", "HMAC of the client IP", {"pii": "true"}),
        ("status", "int", "", {"pii": "false"}),
    ]
    assert report.created_table and report.added_columns == ["event_id", "event_ts", "client_ip", "status"]
    assert report.partitions_created == 1


def test_column_comments_are_one_line_of_at_most_255_bytes(projection, glue):
    long = "Masked e-mail — " + "x" * 300 + "\nsecond line"
    short = "short\ncomment"
    projection.sync_table(TABLE, DESCRIPTION, [Column("email", "string", True, long),
                                               Column("path", "string", False, short)], {})
    comments = {name: comment for name, _, comment, _ in glue_columns(glue)}
    assert len(comments["email"].encode()) == 255 and comments["email"].startswith("Masked e-mail — xxx")
    assert "\n" not in comments["email"]
    assert comments["path"] == "short comment"


def test_an_unknown_type_fails_before_anything_is_written(projection, glue, calls):
    with pytest.raises(ValueError, match="void"):
        projection.sync_table(TABLE, DESCRIPTION, [*COLUMNS, Column("nothing", "void")], {D1: loc(D1)})
    assert calls.writes() == []
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue_table(glue)


# ---- idempotence and schema evolution ------------------------------------------------------------------------

def test_a_second_sync_with_the_same_input_writes_nothing(projection, calls):
    projection.sync_table(TABLE, DESCRIPTION, COLUMNS, {D1: loc(D1), D2: loc(D2)})
    calls.log.clear()

    report = projection.sync_table(TABLE, DESCRIPTION, COLUMNS, {D1: loc(D1), D2: loc(D2)})

    assert calls.writes() == []
    assert not report.created_table and report.added_columns == [] and report.kept_types == {}
    assert (report.partitions_created, report.partitions_updated, report.partitions_deleted) == (0, 0, 0)
    assert report.partitions_unchanged == 2


def test_a_changed_comment_or_pii_tag_is_one_update_table_with_skip_archive(projection, glue, calls):
    projection.sync_table(TABLE, DESCRIPTION, COLUMNS, {D1: loc(D1)})
    calls.log.clear()
    changed = [Column("event_id", "string", False, "The event's id"), *COLUMNS[1:3], Column("status", "int", True)]

    report = projection.sync_table(TABLE, DESCRIPTION, changed, {D1: loc(D1)})

    assert calls.writes() == ["UpdateTable"]
    assert calls.params("UpdateTable")[0]["SkipArchive"] is True
    assert glue_columns(glue)[0] == ("event_id", "string", "The event's id", {"pii": "false"})
    assert glue_columns(glue)[3] == ("status", "int", "", {"pii": "true"})
    assert report.added_columns == [] and report.partitions_unchanged == 1


def test_new_columns_are_appended_and_existing_ones_keep_their_order(projection, glue):
    projection.sync_table(TABLE, DESCRIPTION, COLUMNS, {D1: loc(D1)})
    day1_before = glue_partitions(glue)[D1]["StorageDescriptor"]["Columns"]
    reordered = [Column("region", "string", False, "New on day 2"), COLUMNS[3], COLUMNS[0], Column("zone", "int"),
                 *COLUMNS[1:3]]

    report = projection.sync_table(TABLE, DESCRIPTION, reordered, {D1: loc(D1), D2: loc(D2)})

    assert [c[0] for c in glue_columns(glue)] == ["event_id", "event_ts", "client_ip", "status", "region", "zone"]
    assert report.added_columns == ["region", "zone"]
    partitions = glue_partitions(glue)
    assert partitions[D1]["StorageDescriptor"]["Columns"] == day1_before  # day 1 untouched
    assert [c["Name"] for c in partitions[D2]["StorageDescriptor"]["Columns"]][-2:] == ["region", "zone"]


def test_columns_missing_from_the_input_are_never_removed(projection, glue):
    projection.sync_table(TABLE, DESCRIPTION, COLUMNS, {})
    report = projection.sync_table(TABLE, DESCRIPTION, COLUMNS[:1], {})
    assert [c[0] for c in glue_columns(glue)] == ["event_id", "event_ts", "client_ip", "status"]
    assert report.added_columns == []


def test_a_type_change_is_refused_reported_and_logged(projection, glue, caplog):
    projection.sync_table(TABLE, DESCRIPTION, COLUMNS, {})
    retyped = [*COLUMNS[:3], Column("status", "bigint")]

    with caplog.at_level(logging.WARNING, logger="medallion_pipeline.resources.catalog.glue"):
        report = projection.sync_table(TABLE, DESCRIPTION, retyped, {})

    assert report.kept_types == {"status": ("int", "bigint")}
    assert glue_columns(glue)[3][:2] == ("status", "int")
    assert any("status" in r.getMessage() and "bigint" in r.getMessage() for r in caplog.records)


def test_the_same_type_spelled_differently_is_not_a_type_change(projection, calls):
    projection.sync_table(TABLE, DESCRIPTION, COLUMNS, {})
    calls.log.clear()
    report = projection.sync_table(TABLE, DESCRIPTION, [*COLUMNS[:3], Column("status", "integer")], {})
    assert report.kept_types == {} and calls.writes() == []


def test_table_parameters_set_by_others_survive_a_schema_update(projection, glue):
    projection.sync_table(TABLE, DESCRIPTION, COLUMNS, {})
    table = glue_table(glue)
    glue.update_table(DatabaseName=DB, TableInput={
        "Name": table["Name"], "TableType": table["TableType"], "StorageDescriptor": table["StorageDescriptor"],
        "PartitionKeys": table["PartitionKeys"], "Parameters": {**table["Parameters"], "owner_team": "data"}})

    projection.sync_table(TABLE, DESCRIPTION, [*COLUMNS, Column("region", "string")], {})

    table = glue_table(glue)
    assert table["Parameters"] == {"classification": "parquet", "EXTERNAL": "TRUE", "owner_team": "data"}
    assert table["Description"] == DESCRIPTION  # restored: this module owns it


# ---- partitions ----------------------------------------------------------------------------------------------

def test_partitions_point_at_their_version_and_copy_the_table_storage(projection, glue):
    projection.sync_table(TABLE, DESCRIPTION, COLUMNS, {D1: loc(D1), D2: loc(D2, "v7")})

    table_storage = glue_table(glue)["StorageDescriptor"]
    partitions = glue_partitions(glue)
    assert {dt: p["StorageDescriptor"]["Location"] for dt, p in partitions.items()} == {
        D1: "s3://lake/root/silver/app_logs/v1/dt=2024-01-01", D2: "s3://lake/root/silver/app_logs/v7/dt=2024-01-02"}
    for partition in partitions.values():
        storage = partition["StorageDescriptor"]
        assert storage["Columns"] == table_storage["Columns"]
        for key in ("SerdeInfo", "InputFormat", "OutputFormat"):
            assert storage[key] == table_storage[key]
    assert projection.partition_locations(TABLE) == {D1: loc(D1), D2: loc(D2, "v7")}


def test_a_new_version_moves_only_that_partitions_location(projection, glue):
    projection.sync_table(TABLE, DESCRIPTION, COLUMNS, {D1: loc(D1), D2: loc(D2)})

    report = projection.sync_table(TABLE, DESCRIPTION, COLUMNS, {D1: loc(D1), D2: loc(D2, "v2")})

    assert projection.partition_locations(TABLE) == {D1: loc(D1), D2: loc(D2, "v2")}
    assert (report.partitions_updated, report.partitions_unchanged, report.partitions_created) == (1, 1, 0)


def test_a_full_sync_deletes_partitions_the_catalog_no_longer_has(projection):
    projection.sync_table(TABLE, DESCRIPTION, COLUMNS, {D1: loc(D1), D2: loc(D2), D3: loc(D3)})

    report = projection.sync_table(TABLE, DESCRIPTION, COLUMNS, {D1: loc(D1), D2: loc(D2)})

    assert projection.partition_locations(TABLE) == {D1: loc(D1), D2: loc(D2)}
    assert (report.partitions_deleted, report.partitions_unchanged) == (1, 2)


def test_only_limits_what_is_read_and_changed_to_those_dts(projection, calls):
    projection.sync_table(TABLE, DESCRIPTION, COLUMNS, {D1: loc(D1), D2: loc(D2), D3: loc(D3)})
    calls.log.clear()
    # D1 differs and D3 is stale, but only D2 (moved) and D3 (in scope, gone from the catalog) and D4
    # (in scope, new) are the publish's business.
    catalog = {D1: loc(D1, "v2"), D2: loc(D2, "v2"), D4: loc(D4)}

    report = projection.sync_table(TABLE, DESCRIPTION, COLUMNS, catalog, only=[D2, D3, D4, "2024-01-09"])

    assert "GetPartitions" not in calls.names()  # no listing of the whole table
    assert projection.partition_locations(TABLE) == {D1: loc(D1), D2: loc(D2, "v2"), D4: loc(D4)}
    assert (report.partitions_created, report.partitions_updated, report.partitions_deleted) == (1, 1, 1)
    assert report.partitions_unchanged == 0
    asked = [p["Values"][0] for call in calls.params("BatchGetPartition") for p in call["PartitionsToGet"]]
    assert sorted(asked) == [D2, D3, D4, "2024-01-09"]


def test_a_full_sync_repairs_what_only_left_alone(projection):
    projection.sync_table(TABLE, DESCRIPTION, COLUMNS, {D1: loc(D1), D2: loc(D2)})
    projection.sync_table(TABLE, DESCRIPTION, COLUMNS, {D2: loc(D2, "v2")}, only=[D2])
    assert projection.partition_locations(TABLE) == {D1: loc(D1), D2: loc(D2, "v2")}

    report = projection.sync_table(TABLE, DESCRIPTION, COLUMNS, {D2: loc(D2, "v2")})

    assert projection.partition_locations(TABLE) == {D2: loc(D2, "v2")}
    assert report.partitions_deleted == 1


def test_130_days_go_through_in_batches_within_glue_limits(projection, glue, calls):
    dts = days(130)

    created = projection.sync_table(BRONZE_APP_LOGS, "raw", COLUMNS, {dt: loc(dt, table=BRONZE_APP_LOGS) for dt in dts})
    updated = projection.sync_table(BRONZE_APP_LOGS, "raw", COLUMNS,
                                    {dt: loc(dt, "v2", BRONZE_APP_LOGS) for dt in dts})
    assert projection.partition_locations(BRONZE_APP_LOGS) == {dt: loc(dt, "v2", BRONZE_APP_LOGS) for dt in dts}
    deleted = projection.sync_table(BRONZE_APP_LOGS, "raw", COLUMNS, {})

    assert (created.partitions_created, updated.partitions_updated, deleted.partitions_deleted) == (130, 130, 130)
    assert [len(c["PartitionInputList"]) for c in calls.params("BatchCreatePartition")] == [100, 30]
    assert [len(c["Entries"]) for c in calls.params("BatchUpdatePartition")] == [100, 30]
    assert [len(c["PartitionsToDelete"]) for c in calls.params("BatchDeletePartition")] == [25] * 5 + [5]
    assert projection.partition_locations(BRONZE_APP_LOGS) == {}


def test_a_partition_created_concurrently_fails_the_sync_with_the_dt(projection, glue):
    projection.sync_table(TABLE, DESCRIPTION, COLUMNS, {})
    other = boto3.client("glue")

    def another_writer_creates_d2(**_):  # between our read and our batch create; None: the call goes ahead
        other.create_partition(DatabaseName=DB, TableName=TABLE.sql_name, PartitionInput={"Values": [D2]})

    glue.meta.events.register("before-call.glue.BatchCreatePartition", another_writer_creates_d2)

    with pytest.raises(RuntimeError, match=r"create 1 partition.*dt=2024-01-02: AlreadyExistsException"):
        projection.sync_table(TABLE, DESCRIPTION, COLUMNS, {D1: loc(D1), D2: loc(D2)})


def test_a_partition_deleted_concurrently_fails_the_sync_with_the_dt(projection, glue):
    projection.sync_table(TABLE, DESCRIPTION, COLUMNS, {D1: loc(D1), D2: loc(D2)})
    other = boto3.client("glue")

    def another_writer_deletes_d2(**_):
        other.delete_partition(DatabaseName=DB, TableName=TABLE.sql_name, PartitionValues=[D2])

    glue.meta.events.register("before-call.glue.BatchDeletePartition", another_writer_deletes_d2)

    with pytest.raises(RuntimeError, match=r"delete 1 partition.*dt=2024-01-02: EntityNotFoundException"):
        projection.sync_table(TABLE, DESCRIPTION, COLUMNS, {D1: loc(D1)})


def test_partition_locations_of_a_missing_table_is_empty(projection):
    assert projection.partition_locations(TABLE) == {}


# ---- glue_type -----------------------------------------------------------------------------------------------

NESTED = T.StructType([T.StructField("a", T.IntegerType()),
                       T.StructField("b", T.ArrayType(T.StructType([T.StructField("c", T.DecimalType(5, 2))]))),
                       T.StructField("m", T.MapType(T.StringType(), T.LongType()))])


@pytest.mark.parametrize(("spark", "glue"), [
    (T.BooleanType(), "boolean"), (T.ByteType(), "tinyint"), (T.ShortType(), "smallint"), (T.IntegerType(), "int"),
    (T.LongType(), "bigint"), (T.FloatType(), "float"), (T.DoubleType(), "double"), (T.StringType(), "string"),
    (T.BinaryType(), "binary"), (T.DateType(), "date"), (T.TimestampType(), "timestamp"),
    (T.TimestampNTZType(), "timestamp"), (T.DecimalType(12, 3), "decimal(12,3)"), (T.DecimalType(), "decimal(10,0)"),
    (T.CharType(3), "char(3)"), (T.VarcharType(5), "varchar(5)"),
    (T.ArrayType(T.StringType()), "array<string>"), (T.MapType(T.StringType(), T.StringType()), "map<string,string>"),
    (NESTED, "struct<a:int,b:array<struct<c:decimal(5,2)>>,m:map<string,bigint>>"),
])
def test_glue_type_of_every_spark_simple_string(spark, glue):
    assert glue_type(spark.simpleString()) == glue


@pytest.mark.parametrize(("spark", "glue"), [
    ("integer", "int"), ("long", "bigint"), ("short", "smallint"), ("byte", "tinyint"), (" INT ", "int"),
    ("array<long>", "array<bigint>"), ("map<string, integer>", "map<string,int>"),
    ("struct<Ab:long>", "struct<Ab:bigint>"),
])
def test_glue_type_accepts_type_name_aliases(spark, glue):
    assert glue_type(spark) == glue


@pytest.mark.parametrize(("spark", "named"), [
    (T.NullType().simpleString(), "void"), (T.DayTimeIntervalType().simpleString(), "interval day to second"),
    ("geometry", "geometry"), ("array<void>", "void"), ("map<string,uuid>", "uuid"), ("struct<a:int,b:blob>", "blob"),
    ("map<string>", "map<string>"), ("struct<a:int", "struct<a:int"), ("struct<>", "struct<>"), ("struct<int>", "int"),
    ("array<map<string,int>", "array<map<string,int>"),
])
def test_glue_type_names_what_it_cannot_map(spark, named):
    with pytest.raises(ValueError, match="no Glue type") as raised:
        glue_type(spark)
    assert named in str(raised.value)
