"""Unit tests for raw lines -> bronze rows (transforms/bronze.py)."""

from __future__ import annotations

import json

from pyspark.sql import functions as F

from medallion_pipeline.schemas.bronze import TYPED_FIELDS
from medallion_pipeline.transforms.bronze import (
    column_name_for,
    parse_lines,
    plan_new_columns,
    to_bronze,
    unknown_keys,
)
from medallion_pipeline_tests.conftest import event

FILE_PATH = "file:///x/landing/web/dt=2024-01-01/a.jsonl"
INGESTED_AT = "2024-01-02 03:04:05"


def _lines(spark, lines, path=FILE_PATH):
    """A ``read_lines``-shaped frame; dict lines are JSON-encoded, strings are used as they are."""
    rows = [(line if isinstance(line, str) else json.dumps(line), path) for line in lines]
    return spark.createDataFrame(rows, "value string, _file_path string")


def _bronze(spark, lines, new_columns=None):
    parsed = parse_lines(_lines(spark, lines))
    return to_bronze(parsed, new_columns or {}, F.lit(INGESTED_AT).cast("timestamp"))


def _rescued(row) -> dict:
    return json.loads(row["_rescued_data"]) if row["_rescued_data"] is not None else {}


# --- parse_lines / to_bronze: parsing and lineage -------------------------------------------------------------


def test_valid_line_becomes_typed_columns_with_lineage(spark):
    df = _bronze(spark, [event(7, status=404, latency_ms=12.5, bytes=2048)])
    rows = df.select(*df.columns, F.date_format("_ingested_at", "yyyy-MM-dd HH:mm:ss").alias("ing")).collect()

    assert len(rows) == 1
    row = rows[0]
    assert dict(df.dtypes)["status"] == "int"
    assert dict(df.dtypes)["latency_ms"] == "double"
    assert dict(df.dtypes)["bytes"] == "bigint"
    assert row["event_id"] == "e7"
    assert row["event_ts"] == "2024-01-01T10:00:07Z"
    assert row["service"] == "gateway"
    assert row["path"] == "/api/items/7"
    assert row["status"] == 404
    assert row["latency_ms"] == 12.5
    assert row["bytes"] == 2048
    assert row["client_ip"] == "203.0.113.7"
    assert row["_source_file"] == "web/dt=2024-01-01/a.jsonl"
    assert row["dt"] == "2024-01-01"
    assert row["ing"] == INGESTED_AT
    assert row["_rescued_data"] is None
    assert row["_corrupt_record"] is None


def test_bronze_columns_are_typed_fields_then_new_columns_then_metadata(spark):
    df = _bronze(spark, [event(1)], {"zone": "zone", "Region": "region"})
    assert df.columns == [
        *TYPED_FIELDS, "region", "zone", "_rescued_data", "_corrupt_record", "_source_file", "_ingested_at", "dt"
    ]


def test_malformed_lines_keep_their_text_in_corrupt_record(spark):
    malformed = ["garbage", '{"a":', "[1,2]", '"x"']
    rows = _bronze(spark, [*malformed, event(1)]).collect()

    by_corrupt = {r["_corrupt_record"]: r for r in rows}
    assert set(by_corrupt) == {*malformed, None}
    for line in malformed:
        row = by_corrupt[line]
        assert all(row[f] is None for f in TYPED_FIELDS), line
        assert row["_rescued_data"] is None
        assert row["_source_file"] == "web/dt=2024-01-01/a.jsonl"
        assert row["dt"] == "2024-01-01"
    assert by_corrupt[None]["event_id"] == "e1"


def test_blank_lines_are_dropped(spark):
    rows = _bronze(spark, ["", "   ", event(1), "      "]).collect()
    assert [(r["event_id"], r["_corrupt_record"]) for r in rows] == [("e1", None)]


def test_whitespace_only_lines_with_tabs_are_dropped(spark):
    # A line of only whitespace is blank whatever the whitespace character; it must not become a corrupt record.
    rows = _bronze(spark, ["\t", " \t ", "\r", "\x0b\f", event(1)]).collect()
    assert [(r["event_id"], r["_corrupt_record"]) for r in rows] == [("e1", None)]


def test_a_line_starting_with_whitespace_is_parsed_and_other_space_is_not_blank(spark):
    rows = _bronze(spark, [" \t" + json.dumps(event(2)), "\u00a0"]).collect()
    assert [(r["event_id"], r["_corrupt_record"]) for r in rows] == [("e2", None), (None, "\u00a0")]


def test_values_that_do_not_cast_are_rescued(spark):
    rows = _bronze(spark, [
        event(1, status="abc"),
        event(2, latency_ms="fast"),
        event(3, bytes=12.7),
        event(4, status=200.5),
        event(5, status="200"),
        event(6, status=503, latency_ms=7, bytes="42"),
    ]).collect()
    by_id = {r["event_id"]: r for r in rows}

    assert by_id["e1"]["status"] is None
    assert _rescued(by_id["e1"]) == {"status": "abc"}
    assert by_id["e2"]["latency_ms"] is None
    assert _rescued(by_id["e2"]) == {"latency_ms": "fast"}
    assert by_id["e3"]["bytes"] is None
    assert _rescued(by_id["e3"]) == {"bytes": "12.7"}
    assert by_id["e4"]["status"] is None
    assert _rescued(by_id["e4"]) == {"status": "200.5"}
    # Passing examples: a numeric string and ints for double / bigint fields cast without loss.
    assert by_id["e5"]["status"] == 200
    assert by_id["e5"]["_rescued_data"] is None
    assert (by_id["e6"]["status"], by_id["e6"]["latency_ms"], by_id["e6"]["bytes"]) == (503, 7.0, 42)
    assert by_id["e6"]["_rescued_data"] is None
    # The other typed fields of a row with a conflict are unaffected.
    assert by_id["e1"]["latency_ms"] == 10.0 and by_id["e1"]["bytes"] == 100


def test_unknown_field_becomes_a_new_string_column(spark):
    lines = [
        event(1, region="eu-west-1", geo={"lat": 1.5, "tags": ["a"]}),
        event(2),
    ]
    parsed = parse_lines(_lines(spark, lines))
    plan = plan_new_columns(unknown_keys(parsed), established=[], limit=10)
    df = to_bronze(parsed, plan, F.lit(INGESTED_AT).cast("timestamp"))
    rows = {r["event_id"]: r for r in df.collect()}

    assert plan == {"geo": "geo", "region": "region"}
    assert dict(df.dtypes)["region"] == "string"
    assert rows["e1"]["region"] == "eu-west-1"
    assert json.loads(rows["e1"]["geo"]) == {"lat": 1.5, "tags": ["a"]}
    assert rows["e1"]["_rescued_data"] is None
    assert rows["e2"]["region"] is None and rows["e2"]["geo"] is None


def test_unknown_field_without_a_column_is_rescued_with_its_json_text(spark):
    rows = _bronze(spark, [event(1, region="eu", geo={"lat": 1.5})], {"region": "region"}).collect()
    assert rows[0]["region"] == "eu"
    assert set(_rescued(rows[0])) == {"geo"}
    assert json.loads(_rescued(rows[0])["geo"]) == {"lat": 1.5}


def test_sanitized_column_takes_the_value_of_its_key(spark):
    rows = _bronze(spark, [event(1, **{"User Agent.v2": "curl/8"})], {"User Agent.v2": "user_agent_v2"}).collect()
    assert rows[0]["user_agent_v2"] == "curl/8"
    assert rows[0]["_rescued_data"] is None


def test_colliding_reserved_and_over_limit_keys_are_rescued(spark):
    line = event(1, **{"Region": "EU", "region": "eu", "_private": "p", "1st": "one", "alpha": "a", "beta": "b"})
    parsed = parse_lines(_lines(spark, [line]))
    keys = unknown_keys(parsed)
    plan = plan_new_columns(keys, established=[], limit=2)
    row = to_bronze(parsed, plan, F.lit(INGESTED_AT).cast("timestamp")).collect()[0]

    assert keys == ["1st", "Region", "_private", "alpha", "beta", "region"]
    # Keys are planned in sorted order, so of two spellings of a new column the first in code-point order
    # ("Region" < "region") takes it, on every run.
    assert plan == {"Region": "region", "alpha": "alpha"}
    assert row["region"] == "EU" and row["alpha"] == "a"
    assert _rescued(row) == {"region": "eu", "_private": "p", "1st": "one", "beta": "b"}


def test_duplicate_unknown_key_keeps_the_last_value_without_failing_the_batch(spark):
    # One line with a repeated key (legal enough for most JSON parsers) must not abort to_bronze for the batch.
    # The session's spark.sql.mapKeyDedupPolicy=LAST_WIN (resources/spark.py) makes the last value win, as
    # most JSON parsers do: the line parses, and the unknown key is rescued with its last value.
    line = '{"event_id": "e1", "foo": 1, "foo": 2}'
    rows = _bronze(spark, [line, event(2)]).collect()

    by_id = {r["event_id"]: r for r in rows}
    assert sorted(by_id) == ["e1", "e2"]
    assert by_id["e2"]["_corrupt_record"] is None
    assert by_id["e1"]["_corrupt_record"] is None
    assert _rescued(by_id["e1"]) == {"foo": "2"}


# --- unknown_keys ---------------------------------------------------------------------------------------------


def test_unknown_keys_returns_only_non_v1_keys(spark):
    parsed = parse_lines(_lines(spark, [event(1, region="eu"), event(2, Zone="z", region="us"), event(3), "garbage"]))
    assert unknown_keys(parsed) == ["Zone", "region"]


# --- column_name_for / plan_new_columns (pure Python) ---------------------------------------------------------


def test_column_name_for_sanitizes():
    assert column_name_for("User Agent.v2") == "user_agent_v2"
    assert column_name_for("  Region ") == "region"
    assert column_name_for("geo-hash") == "geo_hash"
    assert column_name_for("region") == "region"


def test_plan_new_columns_sanitizes_names():
    assert plan_new_columns(["User Agent.v2", "region"], established=[], limit=10) == {
        "User Agent.v2": "user_agent_v2",
        "region": "region",
    }


def test_plan_new_columns_ignores_v1_fields():
    assert plan_new_columns(["status", "event_id", "zone"], established=[], limit=10) == {"zone": "zone"}


def test_plan_new_columns_collision_gives_one_column():
    plan = plan_new_columns(["Region", "region"], established=[], limit=10)
    assert len(plan) == 1
    assert list(plan.values()) == ["region"]
    assert set(plan) <= {"Region", "region"}


def test_plan_new_columns_key_named_like_a_v1_field_is_rescued():
    assert plan_new_columns(["Status", "STATUS ", "zone"], established=[], limit=10) == {"zone": "zone"}


def test_plan_new_columns_rescues_reserved_and_leading_digit_names():
    plan = plan_new_columns(["_private", "_rescued_data", "1st", "9lives", " ", "ok1"], established=[], limit=10)
    assert plan == {"ok1": "ok1"}


def test_plan_new_columns_limit_counts_only_new_columns():
    assert plan_new_columns(["a", "b", "c"], established=[], limit=2) == {"a": "a", "b": "b"}
    assert plan_new_columns(["a", "b", "c"], established=[], limit=0) == {}
    # An established column is still mapped when the limit is already reached, and does not use up the limit.
    assert plan_new_columns(["a", "b", "zeta"], established=["zeta"], limit=1) == {"a": "a", "zeta": "zeta"}
    assert plan_new_columns(["Zeta"], established=["ZETA"], limit=0) == {"Zeta": "zeta"}


def test_plan_new_columns_established_key_keeps_its_column():
    # "region" established the column "region"; when a variant "Region" shows up in a later batch, the
    # established key keeps its column (docstring: "A key keeps the column it was established with") and the
    # newcomer is rescued.
    assert plan_new_columns(["Region", "region"], established=["region"], limit=10) == {"region": "region"}
