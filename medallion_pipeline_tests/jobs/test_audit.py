"""Every data-quality rule with a passing and a failing example, thresholds tested just inside and outside."""

from __future__ import annotations

from datetime import datetime

import pytest
from pyspark.sql import functions as F

from medallion_pipeline.jobs.audit import audit_bronze, audit_gold, audit_silver, gold_counts, row_count_anomalies
from medallion_pipeline.jobs.publish import stage_table
from medallion_pipeline.jobs.bronze import run_bronze
from medallion_pipeline.jobs.silver import run_silver
from medallion_pipeline.schemas.gold import DailyKpis, Funnel
from medallion_pipeline.settings import Settings
from medallion_pipeline.tables import GOLD_DAILY_KPIS, GOLD_FUNNEL, SILVER_APP_LOGS
from medallion_pipeline_tests.conftest import event, write_landing

SILVER_SCHEMA = (
    "event_id string, event_ts timestamp, service string, level string, event_type string, user_id string, "
    "session_id string, method string, path string, status int, latency_ms double, bytes bigint, "
    "client_ip string, user_agent string, email string, message string, dt string"
)
TS = datetime(2024, 1, 1, 10)
SETTINGS = Settings()


def silver_row(i, dt, event_type="login", user_id="u1", status=None, **overrides):
    row = dict(event_id=f"e{i}", event_ts=TS, service="auth", level="INFO", event_type=event_type, user_id=user_id,
               session_id="s1", method=None, path=None, status=status, latency_ms=None, bytes=None,
               client_ip="a" * 64, user_agent="ua", email="***@example.com", message="m", dt=dt)
    row.update(overrides)
    return row


def outcomes_by(outcomes):
    return {(o.dt, o.check): o for o in outcomes}


def test_user_id_null_rate_just_inside_passes_just_outside_fails(spark):
    rows = [silver_row(i, "2024-01-01", user_id=None if i < 29 else "u") for i in range(1000)]
    rows += [silver_row(i, "2024-01-02", user_id=None if i < 31 else "u") for i in range(1000)]
    rows += [silver_row(9999, "2024-01-02", event_type="system", user_id=None)]  # not user-scoped: ignored
    df = spark.createDataFrame(rows, SILVER_SCHEMA)
    got = outcomes_by(audit_silver(df, ["2024-01-01", "2024-01-02"], {}, SETTINGS))
    inside, outside = got[("2024-01-01", "user_id_null_rate_within_threshold")], got[("2024-01-02", "user_id_null_rate_within_threshold")]
    assert inside.passed and inside.observed == pytest.approx(0.029)
    assert not outside.passed and outside.observed == pytest.approx(0.031) and outside.failing_rows == 31
    assert len(outside.samples) == 20 and {s["user_id"] for s in outside.samples} == {None}
    assert all(got[(dt, "schema_conforms")].passed for dt in ("2024-01-01", "2024-01-02"))


def test_row_rules_and_schema_conformance(spark):
    good = [silver_row(1, "2024-01-01"), silver_row(2, "2024-01-01", event_type="http_request", status=200)]
    bad = [silver_row(3, "2024-01-02", event_id=None), silver_row(4, "2024-01-02", event_type="teleport"),
           silver_row(5, "2024-01-02", event_type="http_request", status=700)]
    df = spark.createDataFrame(good + bad, SILVER_SCHEMA)
    got = outcomes_by(audit_silver(df, ["2024-01-01", "2024-01-02", "2024-01-03"], {}, SETTINGS))
    for check in ("event_id_not_null", "event_type_allowed", "schema_conforms", "total_rows_positive"):
        assert got[("2024-01-01", check)].passed, check
    assert not got[("2024-01-02", "event_id_not_null")].passed
    assert got[("2024-01-02", "event_type_allowed")].failing_rows == 1
    conformance = got[("2024-01-02", "schema_conforms")]
    assert not conformance.passed and conformance.failing_rows == 3
    assert "status:less_than_or_equal_to: 1 rows" in conformance.detail
    assert "event_type:isin: 1 rows" in conformance.detail and "event_id:not_nullable: 1 rows" in conformance.detail
    pandera_checks = {e["check"] for group in conformance.report.values() for errors in group.values() for e in errors}
    assert {"less_than_or_equal_to(599)", "not_nullable"} <= pandera_checks
    assert got[("2024-01-01", "schema_conforms")].report == {}
    empty = got[("2024-01-03", "total_rows_positive")]
    assert not empty.passed and empty.observed == 0


def test_schema_conformance_catches_a_type_change(spark):
    df = spark.createDataFrame([silver_row(1, "2024-01-01")], SILVER_SCHEMA.replace("status int", "status string"))
    outcome = outcomes_by(audit_silver(df, ["2024-01-01"], {}, SETTINGS))[("2024-01-01", "schema_conforms")]
    assert not outcome.passed and "status: expected int, got string" in outcome.detail


def logins(first: int, count: int, dt: str) -> list[dict]:
    return [event(i, dt, event_type="login", status=None, method=None, path=None) for i in range(first, first + count)]


def test_duplicate_rate_and_zero_rows_through_the_job(spark, env, settings):
    # 981 events + 19 re-delivered copies = 1.9 %; 979 + 21 = 2.1 %; a day of only malformed lines = 0 rows.
    write_landing(settings.landing_root, "2024-01-01", "a.jsonl", logins(0, 981, "2024-01-01"))
    write_landing(settings.landing_root, "2024-01-01", "retry.jsonl", logins(0, 19, "2024-01-01"))
    write_landing(settings.landing_root, "2024-01-02", "a.jsonl", logins(0, 979, "2024-01-02"))
    write_landing(settings.landing_root, "2024-01-02", "retry.jsonl", logins(0, 21, "2024-01-02"))
    write_landing(settings.landing_root, "2024-01-03", "a.jsonl", ["garbage", "{broken"])
    dts = ["2024-01-01", "2024-01-02", "2024-01-03"]
    run_bronze(spark, dts, env)
    report = run_silver(spark, dts, env).table(SILVER_APP_LOGS)
    got = outcomes_by(report.checks)
    assert got[("2024-01-01", "duplicate_rate_within_threshold")].passed
    assert got[("2024-01-01", "duplicate_rate_within_threshold")].observed == pytest.approx(0.019)
    failed = got[("2024-01-02", "duplicate_rate_within_threshold")]
    assert not failed.passed and failed.observed == pytest.approx(0.021) and failed.failing_rows == 21
    assert {s["event_id"] for s in failed.samples} <= {f"e{i}" for i in range(21)} and failed.samples
    assert not got[("2024-01-03", "total_rows_positive")].passed
    assert [dt for dt, p in report.partitions.items() if p.published] == ["2024-01-01"]
    assert sorted(env.catalog.current(SILVER_APP_LOGS, dts)) == ["2024-01-01"]
    assert "2024-01-02 duplicate_rate_within_threshold: observed 0.021, threshold 0.02" in report.partitions["2024-01-02"].note


def test_row_count_warning_against_trailing_median():
    history = {f"2024-01-{d:02d}": 100.0 for d in range(1, 8)}
    got = outcomes_by(row_count_anomalies({"2024-01-08": 149, "2024-01-09": 151}, {**history, "2024-01-08": 100.0}, SETTINGS))
    assert got[("2024-01-08", "row_count_within_trailing_median")].passed
    low = row_count_anomalies({"2024-01-08": 49}, history, SETTINGS)[0]
    high = got[("2024-01-09", "row_count_within_trailing_median")]
    assert not high.passed and high.severity == "WARN" and high.observed == pytest.approx(0.51)
    assert not low.passed and low.observed == pytest.approx(0.51)
    sparse = row_count_anomalies({"2024-01-03": 1}, {"2024-01-02": 100.0}, SETTINGS)[0]
    assert sparse.passed and "insufficient history" in sparse.detail


BRONZE_SCHEMA = "service string, path string, _corrupt_record string, _source_file string, dt string"


def test_bronze_warnings(spark):
    def rows(dt, n, malformed, service="gateway"):
        return [(service if i == 0 else "gateway", "/x", "junk" if i < malformed else None, "f", dt) for i in range(n)]

    data = rows("2024-01-01", 1000, 9) + rows("2024-01-02", 1000, 11)
    data += [("card 4111 1111 1111 1111", "/y", None, "f", "2024-01-03"),
             ("key AKIAABCDEFGHIJKLMNOP", "Authorization: Bearer abcdefghijklmnopqrstuvwx", None, "f", "2024-01-03")]
    df = spark.createDataFrame(data, BRONZE_SCHEMA)
    dts = ["2024-01-01", "2024-01-02", "2024-01-03"]
    got = outcomes_by(audit_bronze(df, dts, {"2024-01-02": ["region"]}, SETTINGS, ["service", "path"]))
    assert got[("2024-01-01", "malformed_rate_within_threshold")].passed
    assert not got[("2024-01-02", "malformed_rate_within_threshold")].passed
    assert got[("2024-01-01", "no_new_columns")].passed
    drift = got[("2024-01-02", "no_new_columns")]
    assert not drift.passed and drift.detail == "region" and drift.severity == "WARN"
    assert got[("2024-01-01", "no_untagged_pii")].passed
    pii = got[("2024-01-03", "no_untagged_pii")]
    assert not pii.passed and pii.failing_rows == 3
    assert pii.detail == "path: bearer_token in 1 rows; service: aws_access_key in 1 rows; service: card_number in 1 rows"


GOLD_KPI_SCHEMA = ", ".join(f"{name} {column.dtype.type.simpleString()}" for name, column in DailyKpis.to_schema().columns.items()) + ", dt string"
FUNNEL_SCHEMA = ", ".join(f"{name} {column.dtype.type.simpleString()}" for name, column in Funnel.to_schema().columns.items()) + ", dt string"


def test_gold_consistency(spark):
    def kpi(dt, s5, success_rate):
        return ("svc", 10, 10, 8, 0, 1, s5, success_rate, 0.1, 0.1, 1.0, 2.0, 3.0, 2, 2, 100, dt)

    kpis = spark.createDataFrame([kpi("2024-01-01", 1, 0.8), kpi("2024-01-02", 2, 1.2)], GOLD_KPI_SCHEMA)
    got = outcomes_by(audit_gold(GOLD_DAILY_KPIS, kpis, DailyKpis.to_schema(), ["2024-01-01", "2024-01-02"]))
    assert got[("2024-01-01", "status_counts_sum_to_requests")].passed and got[("2024-01-01", "schema_conforms")].passed
    assert not got[("2024-01-02", "status_counts_sum_to_requests")].passed
    assert "success_rate:in_range: 1 rows" in got[("2024-01-02", "schema_conforms")].detail

    funnel = spark.createDataFrame([(10, 8, 4, 2, 0.8, 0.5, 0.5, 0.2, "2024-01-01"),
                                    (10, 8, 9, 2, 0.8, 1.0, 0.2, 0.2, "2024-01-02")], FUNNEL_SCHEMA)
    got = outcomes_by(audit_gold(GOLD_FUNNEL, funnel, Funnel.to_schema(), ["2024-01-01", "2024-01-02"]))
    assert got[("2024-01-01", "funnel_steps_non_increasing")].passed
    assert not got[("2024-01-02", "funnel_steps_non_increasing")].passed


def test_gold_figures_counted_while_writing_give_the_verdicts_of_the_aggregation(spark, env):
    def kpi(dt, s5, success_rate):
        return ("svc", 10, 10, 8, 0, 1, s5, success_rate, 0.1, 0.1, 1.0, 2.0, 3.0, 2, 2, 100, dt)

    dts = ["2024-01-01", "2024-01-02"]
    # Day 2 breaks the invariant only (a schema failure would add Pandera's slow report to both paths).
    kpis = spark.createDataFrame([kpi("2024-01-01", 1, 0.8), kpi("2024-01-02", 2, 0.8)], GOLD_KPI_SCHEMA)
    schema = DailyKpis.to_schema()
    counts = {name: F.when(broken, 1) for name, broken in gold_counts(GOLD_DAILY_KPIS, kpis.columns, schema).items()}
    staged = stage_table(kpis, env, GOLD_DAILY_KPIS, dts, layout="one_task", observed=counts)
    written = audit_gold(GOLD_DAILY_KPIS, kpis, schema, dts, counted=staged.observed)
    aggregated = audit_gold(GOLD_DAILY_KPIS, kpis, schema, dts)

    def verdicts(outcomes):
        return [(o.check, o.dt, o.passed, o.observed, o.detail, len(o.samples)) for o in outcomes]

    assert verdicts(written) == verdicts(aggregated)
    assert [o.passed for o in written] == [True, True, True, False]  # schema_conforms x 2, then the invariant
    assert written[-1].samples  # read from the cache only for the failing day
    assert not any(name in v.stats for v in staged.versions.values() for name in counts)  # observed, not recorded


def test_ids_timestamps_and_uuids_are_not_card_numbers(spark):
    values = ["1704067200123", "e3a1b2c4-4111-1111-1111-111111111111", "/api/items/4111111111111111x",
              "u_4111111111111111", "2024-01-01T10:00:00.123+02:00"]
    df = spark.createDataFrame([(v, None, "f", "2024-01-01") for v in values],
                               "service string, _corrupt_record string, _source_file string, dt string")
    [*_, pii] = audit_bronze(df, ["2024-01-01"], {}, SETTINGS, ["service"])
    assert pii.passed, pii.detail


def test_silver_without_any_bronze_fails_total_rows(spark, env):
    report = run_silver(spark, ["2024-01-05"], env).table(SILVER_APP_LOGS)
    got = outcomes_by(report.checks)
    assert not got[("2024-01-05", "total_rows_positive")].passed
    assert "upstream data missing" in got[("2024-01-05", "total_rows_positive")].detail
    assert report.partitions["2024-01-05"].published is False
    assert env.catalog.current(SILVER_APP_LOGS, ["2024-01-05"]) == {}


def test_samples_are_pii_safe_in_every_column_on_every_layer(spark):
    """Raw bronze values, a new column and ``_rescued_data`` all reach sample metadata masked and cut short."""
    df = spark.createDataFrame(
        [("jane.doe@example.com", "203.0.113.7", '{"Email":"x@y.io"}', "card 4111 1111 1111 1111 " + "z" * 500,
          7, "2024-01-01")],
        "email string, client_ip string, _rescued_data string, debug_note string, status int, dt string",
    )
    from medallion_pipeline.jobs.audit import SAMPLE_VALUE_CHARS, sample

    (row,) = sample(df, "2024-01-01", F.lit(True))

    assert row["email"] == "<email>" and row["client_ip"] == "<ip>"
    assert row["_rescued_data"] == '{"Email":"<email>"}'
    assert row["debug_note"].startswith("card <card> z") and len(row["debug_note"]) == SAMPLE_VALUE_CHARS
    assert row["status"] == "7"
