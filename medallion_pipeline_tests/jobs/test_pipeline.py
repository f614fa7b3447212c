"""The layer jobs end to end on generated data: accounting, idempotence, PII, schema evolution."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from medallion_pipeline.jobs.publish import read_published
from medallion_pipeline.tables import (
    BRONZE_APP_LOGS,
    GOLD_TABLES,
    METRICS_DQ,
    SILVER_APP_LOGS,
    SILVER_QUARANTINE,
)
from medallion_pipeline.transforms.pii import EMAIL_PATTERN
from medallion_pipeline_tests.jobs.conftest import DAYS, run_all


def landing_lines(root: str, dt: str) -> list[bytes]:
    lines = []
    for path in sorted(Path(root).glob(f"*/dt={dt}/*")):
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        lines += [line for line in data.split(b"\n") if line.strip()]
    return lines


def parses_as_object(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line.decode("utf-8")), dict)
    except (UnicodeDecodeError, ValueError):
        return False


def counts_by_dt(df) -> dict[str, int]:
    return {r["dt"]: r["count"] for r in df.groupBy("dt").count().collect()}


def test_row_accounting_per_partition(spark, generated):
    env, reports, _ = generated
    bronze = read_published(spark, env, BRONZE_APP_LOGS, DAYS)
    parsed = counts_by_dt(bronze.where(F.col("_corrupt_record").isNull()))
    corrupt = counts_by_dt(bronze.where(F.col("_corrupt_record").isNotNull()))
    silver = counts_by_dt(read_published(spark, env, SILVER_APP_LOGS, DAYS))
    quarantined = counts_by_dt(read_published(spark, env, SILVER_QUARANTINE, DAYS))
    for dt in DAYS:
        lines = landing_lines(env.settings.landing_root, dt)
        expected_parsed = sum(parses_as_object(line) for line in lines)
        # Every landed line is in bronze: parsed, or kept whole in _corrupt_record.
        assert parsed[dt] == expected_parsed
        assert corrupt[dt] == len(lines) - expected_parsed > 0
        stats = reports["silver"].table(SILVER_APP_LOGS).partitions[dt].stats
        assert stats["silver_rows"] == silver[dt]
        assert stats["quarantined_rows"] == quarantined.get(dt, 0)
        assert stats["duplicates_removed"] > 0
        assert silver[dt] + quarantined.get(dt, 0) + stats["duplicates_removed"] == parsed[dt]


def test_silver_has_one_row_per_event_id(spark, generated):
    env, _, _ = generated
    silver = read_published(spark, env, SILVER_APP_LOGS, DAYS)
    assert silver.count() == silver.select("dt", "event_id").distinct().count()


def test_no_raw_pii_leaves_bronze(spark, generated):
    env, _, _ = generated
    raw = set()
    for dt in DAYS:
        for line in landing_lines(env.settings.landing_root, dt):
            if not parses_as_object(line):
                continue
            record = json.loads(line)
            raw.update(v for k in ("email", "client_ip") if isinstance(v := record.get(k), str) and v)
            raw.update(re.findall(EMAIL_PATTERN, str(record.get("message", ""))))
            raw.update(re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", str(record.get("message", ""))))
    assert len(raw) > 50
    for table in (SILVER_APP_LOGS, SILVER_QUARANTINE, *GOLD_TABLES):
        df = read_published(spark, env, table, DAYS)
        strings = [f.name for f in df.schema.fields if f.dataType.simpleString() == "string"]
        text = "\n".join("\t".join(str(v) for v in row) for row in df.select(*strings).collect())
        leaked = [value for value in raw if value in text]
        assert leaked == [], f"{table}: raw PII {leaked[:5]}"


def test_new_field_on_day_two_is_a_column_without_any_change(spark, generated):
    env, reports, _ = generated
    for table in (BRONZE_APP_LOGS, SILVER_APP_LOGS):
        df = read_published(spark, env, table, DAYS)
        present = {r["dt"]: r["n"] for r in df.groupBy("dt").agg(F.count("region").alias("n")).collect()}
        assert present["2024-01-01"] == 0 and present["2024-01-02"] > 0 and present["2024-01-03"] > 0
        history = {c.column: c.first_dt for c in env.catalog.schema_history(table)}
        assert history["region"] == "2024-01-02"
    assert reports["bronze"].table(BRONZE_APP_LOGS).partitions["2024-01-02"].new_columns == ["region"]


def test_rescued_values_are_kept_not_dropped(spark, generated):
    env, _, _ = generated
    bronze = read_published(spark, env, BRONZE_APP_LOGS, DAYS)
    rescued = {
        (r["event_id"], r["_rescued_data"])
        for r in bronze.where(F.col("_rescued_data").isNotNull()).select("event_id", "_rescued_data").collect()
    }
    assert rescued, "the generator's wrong types must be rescued"
    assert all(set(json.loads(value)) <= {"status", "latency_ms", "bytes"} for _, value in rescued)
    downstream = set()
    for table in (SILVER_APP_LOGS, SILVER_QUARANTINE):
        df = read_published(spark, env, table, DAYS).where(F.col("_rescued_data").isNotNull())
        downstream |= {(r["event_id"], r["_rescued_data"]) for r in df.select("event_id", "_rescued_data").collect()}
    assert downstream == rescued


def test_gold_and_metrics_cover_every_day(spark, generated):
    env, reports, _ = generated
    for table in (*GOLD_TABLES, METRICS_DQ):
        assert sorted(env.catalog.current(table, DAYS)) == DAYS, table
    kpis = read_published(spark, env, GOLD_TABLES[0], DAYS).collect()
    assert all(r["status_2xx"] + r["status_3xx"] + r["status_4xx"] + r["status_5xx"] == r["requests"] for r in kpis)
    metrics = read_published(spark, env, METRICS_DQ, DAYS)
    names = {r["metric"] for r in metrics.where(F.col("layer") == "silver").collect()}
    assert {"silver_rows", "duplicates_removed", "quarantined_rows", "null_rate:user_id"} <= names
    assert {"check_passed:user_id_null_rate_within_threshold", "check_observed:duplicate_rate_within_threshold"} <= names
    drift = metrics.where((F.col("metric") == "new_column:region") & (F.col("table_name") == "app_logs"))
    assert sorted((r["layer"], r["dt"]) for r in drift.collect()) == [("bronze", "2024-01-02"), ("silver", "2024-01-02")]


def snapshot(spark, env, tables) -> dict:
    out = {}
    for table in tables:
        df = read_published(spark, env, table, DAYS)
        keep = [c for c in df.columns if c not in ("_ingested_at",)]
        out[table] = sorted(tuple(str(v) for v in r) for r in df.select(*keep).collect())
    return out


def test_redelivery_changes_nothing(spark, generated, tmp_path):
    env, _, _ = generated
    before = snapshot(spark, env, (SILVER_APP_LOGS, *GOLD_TABLES))
    bronze_before = read_published(spark, env, BRONZE_APP_LOGS, DAYS).count()
    first = sorted(Path(env.settings.landing_root).glob("web/dt=2024-01-02/*.jsonl"))[0]
    shutil.copy(first, first.with_name("redelivered-" + first.name))  # same bytes, new key
    first.write_bytes(first.read_bytes())  # same key delivered again
    reports = run_all(spark, env)
    bronze = reports["bronze"].table(BRONZE_APP_LOGS).partitions["2024-01-02"]
    assert bronze.stats["files_duplicate_content"] == 1 and bronze.stats["files_new"] == 0
    assert read_published(spark, env, BRONZE_APP_LOGS, DAYS).count() == bronze_before
    assert snapshot(spark, env, (SILVER_APP_LOGS, *GOLD_TABLES)) == before


def test_every_layer_reports_what_it_cost_spark(generated):
    _, reports, _ = generated
    for layer, report in reports.items():
        figures = report.spark
        assert figures["spark_jobs"] >= 1 and figures["spark_tasks"] >= figures["spark_stages"] >= 1, layer
        assert figures["seconds"] == report.duration_s > 0, layer
    # Each layer reads its input; metrics reads none: its figures are the ones the layers counted.
    assert all(reports[layer].spark["bytes_read"] > 0 for layer in ("bronze", "silver", "gold"))
    assert reports["metrics"].spark["bytes_read"] == 0
    # Bronze and silver write Parquet through Spark; the figures are Spark's own output metrics.
    assert reports["bronze"].spark["bytes_written"] > 0 and reports["silver"].spark["bytes_written"] > 0


def test_metrics_counted_while_writing_equal_a_rescan_of_the_published_data(spark, generated):
    """Null rates and malformed/rescued totals come from figures the layers counted while writing; a partition
    written before they were counted (no such stats) is measured from its files, with the same result."""
    from dataclasses import replace

    from medallion_pipeline.jobs.metrics import INPUT_TABLES, collect_figures

    env, _, _ = generated
    bronze = read_published(spark, env, BRONZE_APP_LOGS, DAYS)
    silver = read_published(spark, env, SILVER_APP_LOGS, DAYS)
    rescanned = {}
    for r in bronze.groupBy("dt").agg(F.count("_corrupt_record").alias("m"), F.count("_rescued_data").alias("r"),
                                      F.count(F.lit(1)).alias("n")).collect():
        rescanned[(r["dt"], "bronze", "malformed_lines_total")] = r["m"]
        rescanned[(r["dt"], "bronze", "rescued_rows_total")] = r["r"]
        rescanned[(r["dt"], "bronze", "malformed_rate")] = r["m"] / r["n"]
    for r in silver.groupBy("dt").agg(F.count(F.lit(1)).alias("n"), F.count("user_id").alias("u"),
                                      F.count("session_id").alias("s")).collect():
        rescanned[(r["dt"], "silver", "null_rate:user_id")] = 1 - r["u"] / r["n"]
        rescanned[(r["dt"], "silver", "null_rate:session_id")] = 1 - r["s"] / r["n"]
    assert any(v for (_, _, m), v in rescanned.items() if m == "malformed_lines_total")
    assert any(v for (_, _, m), v in rescanned.items() if m == "null_rate:user_id")

    def figures(inputs=None) -> dict:
        return {(dt, layer, metric): value for dt, layer, _, metric, value in collect_figures(spark, DAYS, env, inputs)
                if (dt, layer, metric) in rescanned}

    assert figures() == pytest.approx(rescanned)
    current = {table: env.catalog.current(table, DAYS) for table in INPUT_TABLES}
    unmeasured = {table: {dt: replace(v, stats={}) for dt, v in versions.items()} for table, versions in current.items()}
    assert figures(unmeasured) == pytest.approx(rescanned)


def test_silvers_row_count_baseline_reads_what_the_metrics_partitions_recorded(generated):
    """The row-count anomaly check's history comes from the metrics partitions' catalog stats, no scan: the
    key metrics writes is the key silver reads (a misspelt key would leave the check without history)."""
    from datetime import date, timedelta

    from medallion_pipeline.jobs.silver import _trailing_silver_rows

    env, reports, _ = generated
    next_day = (date.fromisoformat(max(DAYS)) + timedelta(days=1)).isoformat()
    silver_rows = {dt: p.row_count for dt, p in reports["silver"].table(SILVER_APP_LOGS).partitions.items()}
    assert _trailing_silver_rows(env, [next_day]) == {dt: float(n) for dt, n in silver_rows.items()}
