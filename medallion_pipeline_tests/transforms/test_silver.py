"""Unit tests for bronze rows -> silver rows (transforms/silver.py)."""

from __future__ import annotations

import hashlib
import hmac
import json

from pyspark.sql import functions as F

from medallion_pipeline.schemas.silver import CONTRACT_COLUMNS, LINEAGE_COLUMNS, QUARANTINE_REASONS
from medallion_pipeline.settings import DEFAULT_EVENT_TYPES
from medallion_pipeline.transforms.bronze import parse_lines, to_bronze
from medallion_pipeline.transforms.silver import (
    flag_rows,
    normalize,
    parse_event_ts,
    protect_pii,
    quarantine_reason,
    select_quarantine,
    select_silver,
)
from medallion_pipeline_tests.conftest import DROP, event

PII_KEY = b"unit-test-key"


def _bronze(spark, lines, ingested="2024-01-02 00:00:00", file="a.jsonl", dt="2024-01-01", new_columns=None):
    """Bronze rows built the way the bronze job builds them: lines -> parse_lines -> to_bronze."""
    path = f"file:///x/landing/web/dt={dt}/{file}"
    rows = [(line if isinstance(line, str) else json.dumps(line), path) for line in lines]
    parsed = parse_lines(spark.createDataFrame(rows, "value string, _file_path string"))
    return to_bronze(parsed, new_columns or {}, F.lit(ingested).cast("timestamp"))


# --- parse_event_ts -------------------------------------------------------------------------------------------


def test_parse_event_ts(spark):
    cases = {
        "2024-01-01T10:00:00Z": 1704103200000,
        "2024-01-01T12:00:00+02:00": 1704103200000,  # converted to UTC
        "2024-01-01T10:00:00.250Z": 1704103200250,
        "1704067200123": 1704067200123,  # epoch millis
        " 1704067200123 ": 1704067200123,
        "junk": None,
        "2024-13-45T10:00:00Z": None,
        "": None,
        None: None,
    }
    df = spark.createDataFrame([(k,) for k in cases], "raw string")
    rows = df.select(
        "raw",
        F.unix_millis(parse_event_ts(F.col("raw"))).alias("ms"),
        F.date_format(parse_event_ts(F.col("raw")), "yyyy-MM-dd HH:mm:ss.SSS").alias("utc"),
    ).collect()

    assert {r["raw"]: r["ms"] for r in rows} == cases
    utc = {r["raw"]: r["utc"] for r in rows}
    assert utc["2024-01-01T12:00:00+02:00"] == "2024-01-01 10:00:00.000"
    assert utc["1704067200123"] == "2024-01-01 00:00:00.123"


# --- normalize ------------------------------------------------------------------------------------------------


def test_normalize_drops_corrupt_rows_and_normalizes_enums(spark):
    bronze = _bronze(spark, [
        "garbage",
        event(1, level="warn", method="post", event_type=" HTTP_Request "),
        event(2, level=" error ", method="Get"),
        event(3, level="verbose"),
        event(4, level=DROP, event_id="  "),
        event(5, event_ts="1704067200123"),
    ])
    df = normalize(bronze)
    rows = df.select(
        "event_id", "level", "method", "event_type", "event_ts_raw", "_corrupt_record",
        F.unix_millis("event_ts").alias("ms"), "path",
    ).collect()
    by_path = {r["path"]: r for r in rows}

    assert dict(df.dtypes)["event_ts"] == "timestamp"
    assert len(rows) == 5
    assert all(r["_corrupt_record"] is None for r in rows)
    assert (by_path["/api/items/1"]["level"], by_path["/api/items/1"]["method"]) == ("WARN", "POST")
    assert by_path["/api/items/1"]["event_type"] == "http_request"
    assert (by_path["/api/items/2"]["level"], by_path["/api/items/2"]["method"]) == ("ERROR", "GET")
    assert by_path["/api/items/3"]["level"] is None  # not one of LEVELS
    assert by_path["/api/items/4"]["level"] is None
    assert by_path["/api/items/4"]["event_id"] is None  # blank id -> NULL
    assert by_path["/api/items/2"]["event_id"] == "e2"
    assert by_path["/api/items/2"]["event_ts_raw"] == "2024-01-01T10:00:02Z"
    assert by_path["/api/items/2"]["ms"] == 1704103202000
    assert by_path["/api/items/5"]["event_ts_raw"] == "1704067200123"
    assert by_path["/api/items/5"]["ms"] == 1704067200123


# --- quarantine_reason ----------------------------------------------------------------------------------------

# message (used as a label) -> (event overrides, expected reason)
REASON_CASES = {
    "ok": ({}, None),
    "no_id": ({"event_id": DROP}, "missing_event_id"),
    "blank_id": ({"event_id": "   "}, "missing_event_id"),
    "junk_ts": ({"event_ts": "yesterday"}, "invalid_event_ts"),
    "no_ts": ({"event_ts": DROP}, "invalid_event_ts"),
    "epoch_ts": ({"event_ts": "1704067200123"}, None),
    "no_type": ({"event_type": DROP}, "missing_event_type"),
    "blank_type": ({"event_type": "  "}, "missing_event_type"),
    "unknown_type": ({"event_type": "teleport"}, "unknown_event_type"),
    "upper_type": ({"event_type": "LOGIN", "status": DROP}, None),
    "http_no_status": ({"status": DROP}, "invalid_status"),
    "http_bad_status_text": ({"status": "abc"}, "invalid_status"),
    "http_99": ({"status": 99}, "invalid_status"),
    "http_600": ({"status": 600}, "invalid_status"),
    "http_100": ({"status": 100}, None),
    "http_599": ({"status": 599}, None),
    "login_no_status": ({"event_type": "login", "status": DROP, "method": DROP, "path": DROP}, None),
    "neg_latency": ({"latency_ms": -0.5}, "negative_latency"),
    "zero_latency": ({"latency_ms": 0}, None),
    "no_latency": ({"latency_ms": DROP}, None),
    "neg_bytes": ({"bytes": -1}, "negative_bytes"),
    "zero_bytes": ({"bytes": 0}, None),
    "no_bytes": ({"bytes": DROP}, None),
    # Precedence: the first failing rule in QUARANTINE_REASONS order wins.
    "p_id_ts_bytes": ({"event_id": DROP, "event_ts": "junk", "bytes": -1}, "missing_event_id"),
    "p_ts_type": ({"event_ts": "junk", "event_type": DROP}, "invalid_event_ts"),
    "p_type_status": ({"event_type": DROP, "status": DROP}, "missing_event_type"),
    "p_unknown_status": ({"event_type": "teleport", "status": 600}, "unknown_event_type"),
    "p_status_latency": ({"status": 600, "latency_ms": -1}, "invalid_status"),
    "p_latency_bytes": ({"latency_ms": -1, "bytes": -1}, "negative_latency"),
}


def test_quarantine_reason_rules_and_precedence(spark):
    lines = [event(i, message=label, **fields) for i, (label, (fields, _)) in enumerate(REASON_CASES.items())]
    df = normalize(_bronze(spark, lines)).withColumn("reason", quarantine_reason(DEFAULT_EVENT_TYPES))
    got = {r["message"]: r["reason"] for r in df.select("message", "reason").collect()}

    assert got == {label: reason for label, (_, reason) in REASON_CASES.items()}
    # Every rule has at least one failing example here (and each passing counterpart above).
    assert {reason for _, reason in REASON_CASES.values()} - {None} == set(QUARANTINE_REASONS)


def test_quarantine_reason_uses_the_allowed_event_types(spark):
    lines = [event(1, event_type="login", status=DROP), event(2, event_type="audit", status=DROP)]
    df = normalize(_bronze(spark, lines)).withColumn("reason", quarantine_reason(["login", "audit"]))
    got = {r["event_id"]: r["reason"] for r in df.select("event_id", "reason").collect()}
    assert got == {"e1": None, "e2": None}


# --- flag_rows ------------------------------------------------------------------------------------------------


def test_flag_rows_keeps_the_earliest_ingested_copy(spark):
    late = _bronze(spark, [
        event(1, message="late"),
        event(2, message="only"),
        event(3, message="late-bad", bytes=-1),
        event(4, message="late-good"),
    ], ingested="2024-01-02 05:00:00", file="late.jsonl")
    early = _bronze(spark, [
        event(1, message="early"),
        event(3, message="early-bad", bytes=-1),
        event(4, message="early-bad", bytes=-1),
    ], ingested="2024-01-02 01:00:00", file="z-early.jsonl")
    flagged = flag_rows(normalize(late.unionByName(early)), DEFAULT_EVENT_TYPES)
    got = {(r["event_id"], r["message"]): (r["quarantine_reason"], r["_duplicate_rank"]) for r in flagged.collect()}

    assert got == {
        ("e1", "early"): (None, 1),
        ("e1", "late"): (None, 2),
        ("e2", "only"): (None, 1),
        # Quarantined rows are not ranked.
        ("e3", "late-bad"): ("negative_bytes", None),
        ("e3", "early-bad"): ("negative_bytes", None),
        # A quarantined earlier copy does not shadow a good later one.
        ("e4", "early-bad"): ("negative_bytes", None),
        ("e4", "late-good"): (None, 1),
    }


def test_flag_rows_breaks_ingestion_ties_on_source_file(spark):
    a = _bronze(spark, [event(1, message="from-a")], file="a.jsonl")
    b = _bronze(spark, [event(1, message="from-b")], file="b.jsonl")
    first = flag_rows(normalize(b.unionByName(a)), DEFAULT_EVENT_TYPES)
    second = flag_rows(normalize(a.unionByName(b)), DEFAULT_EVENT_TYPES)
    both = first.withColumn("order", F.lit(1)).unionByName(second.withColumn("order", F.lit(2)))
    got = {(r["order"], r["_source_file"]): r["_duplicate_rank"] for r in both.collect()}

    assert got == {
        (1, "web/dt=2024-01-01/a.jsonl"): 1,
        (1, "web/dt=2024-01-01/b.jsonl"): 2,
        (2, "web/dt=2024-01-01/a.jsonl"): 1,
        (2, "web/dt=2024-01-01/b.jsonl"): 2,
    }


def test_flag_rows_ranks_per_dt(spark):
    day1 = _bronze(spark, [event(1, message="d1")], dt="2024-01-01")
    day2 = _bronze(spark, [event(1, message="d2")], dt="2024-01-02", ingested="2024-01-03 00:00:00")
    flagged = flag_rows(normalize(day1.unionByName(day2)), DEFAULT_EVENT_TYPES)
    got = {(r["dt"], r["message"]): r["_duplicate_rank"] for r in flagged.collect()}
    assert got == {("2024-01-01", "d1"): 1, ("2024-01-02", "d2"): 1}


# --- protect_pii ----------------------------------------------------------------------------------------------


def test_protect_pii(spark):
    bronze = _bronze(spark, [
        event(1, client_ip="203.0.113.7", email="jane.doe@example.com", message="jane.doe@example.com from 10.0.0.1"),
        event(2, client_ip=DROP, email="nope", message="all good"),
    ])
    rows = {r["event_id"]: r for r in protect_pii(normalize(bronze), PII_KEY).collect()}

    assert rows["e1"]["client_ip"] == hmac.new(PII_KEY, b"203.0.113.7", hashlib.sha256).hexdigest()
    assert rows["e1"]["email"] == "***@example.com"
    assert rows["e1"]["message"] == "<email> from <ip>"
    assert rows["e2"]["client_ip"] is None
    assert rows["e2"]["email"] == "***"
    assert rows["e2"]["message"] == "all good"
    assert rows["e1"]["user_id"] == "u_1"  # the pseudonymous join key is kept


# --- select_silver / select_quarantine ------------------------------------------------------------------------


def test_select_silver_and_quarantine_split_rows_and_order_columns(spark):
    lines = [
        event(1, region="eu"),
        event(2, region=DROP),
        event(3, region="us", status=600),
        event(4, event_ts="junk"),
        event(5, event_ts="jane@example.com at 10.0.0.1"),
        "garbage",
    ]
    # Same event_id, ingested later: the duplicate (rank 2); the earliest-ingested copy wins.
    late_copy = _bronze(spark, [event(1, region="eu-dup")], ingested="2024-01-02 05:00:00", file="b.jsonl",
                        new_columns={"region": "region"})
    bronze = late_copy.unionByName(_bronze(spark, lines, new_columns={"region": "region"}))
    flagged = flag_rows(protect_pii(normalize(bronze), PII_KEY), DEFAULT_EVENT_TYPES)
    silver, quarantine = select_silver(flagged), select_quarantine(flagged)
    silver_rows = silver.collect()
    quarantine_rows = {r["event_id"]: r for r in quarantine.collect()}

    assert silver.columns == [*CONTRACT_COLUMNS, "region", *LINEAGE_COLUMNS, "dt"]
    assert quarantine.columns == [
        "quarantine_reason", *CONTRACT_COLUMNS, "event_ts_raw", "region", *LINEAGE_COLUMNS, "dt"
    ]
    assert silver.dtypes[: len(CONTRACT_COLUMNS)] == list(CONTRACT_COLUMNS.items())

    assert sorted(r["event_id"] for r in silver_rows) == ["e1", "e2"]
    silver_by_id = {r["event_id"]: r for r in silver_rows}
    assert silver_by_id["e1"]["region"] == "eu"
    assert silver_by_id["e2"]["region"] is None
    assert silver_by_id["e1"]["email"] == "***@example.com"
    assert silver_by_id["e1"]["_source_file"] == "web/dt=2024-01-01/a.jsonl"
    assert silver_by_id["e1"]["dt"] == "2024-01-01"

    assert set(quarantine_rows) == {"e3", "e4", "e5"}
    assert quarantine_rows["e3"]["quarantine_reason"] == "invalid_status"
    assert quarantine_rows["e3"]["region"] == "us"
    assert quarantine_rows["e4"]["quarantine_reason"] == "invalid_event_ts"
    assert quarantine_rows["e4"]["event_ts"] is None
    assert quarantine_rows["e4"]["event_ts_raw"] == "junk"
    assert quarantine_rows["e4"]["client_ip"] != "203.0.113.7"  # PII-safe as well
    assert quarantine_rows["e5"]["event_ts_raw"] == "<email> at <ip>"  # the raw text is free text


def test_copies_differing_only_in_a_new_column_rank_the_same_whatever_the_input_order(spark):
    """Same event_id, file and ingestion time: the content hash (over every column) breaks the tie."""
    copies = [_bronze(spark, [event(1, region=region)], new_columns={"region": "region"}) for region in ("eu", "us")]
    winners = set()
    for first, second in (copies, copies[::-1]):
        flagged = flag_rows(protect_pii(normalize(first.unionByName(second)), PII_KEY), DEFAULT_EVENT_TYPES)
        (row,) = select_silver(flagged).collect()
        winners.add(row["region"])
    assert len(winners) == 1
