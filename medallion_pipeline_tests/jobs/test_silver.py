"""The silver job on hostile input: multi-megabyte lines, PII in new fields and rescued values, a PII key that
must stay out of every plan and log, and the gates that block a publish (jobs/silver.py)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from medallion_pipeline.jobs.bronze import run_bronze
from medallion_pipeline.jobs.environment import JobEnvironment
from medallion_pipeline.jobs.publish import read_published
from medallion_pipeline.jobs.report import report_to_json
from medallion_pipeline.jobs.silver import run_silver
from medallion_pipeline.tables import BRONZE_APP_LOGS, SILVER_APP_LOGS, SILVER_QUARANTINE
from medallion_pipeline.transforms.pii import hmac_pads
from medallion_pipeline.transforms.silver import normalize, protect_pii
from medallion_pipeline_tests.conftest import event, forbidden_strings, hostile_long_lines, write_landing

DT = "2024-01-01"
LONG_LINES = hostile_long_lines()
RAW_PII = ("jane.doe@example.com", "203.0.113.7", "x@y.io", "198.51.100.23")


def checks_of(report, table=SILVER_APP_LOGS):
    return {(c.dt, c.check): c for c in report.table(table).checks}


def silver_rows(spark, env, table=SILVER_APP_LOGS):
    df = read_published(spark, env, table, [DT, "2024-01-02"])
    return {} if df is None else {r["event_id"]: r.asDict() for r in df.collect()}


@pytest.mark.timeout(900)
def test_multi_megabyte_lines_pass_through_bronze_and_silver(spark, env, settings):
    """One 2 MB line of each hostile shape (plus an email and an IP after it) reaches silver with exact row
    accounting and its PII masked; the timeout is a guard against backtracking, not a speed assertion."""
    lines = [event(i, message=f"{blob} mail jane.doe@example.com from 203.0.113.7")
             for i, blob in enumerate(LONG_LINES.values())]
    write_landing(settings.landing_root, DT, "long.json", [*lines, event(9, message="short x@y.io")])

    bronze = run_bronze(spark, [DT], env)
    silver = run_silver(spark, [DT], env)

    assert bronze.table(BRONZE_APP_LOGS).partitions[DT].row_count == 5
    stats = silver.table(SILVER_APP_LOGS).partitions[DT].stats
    assert (stats["bronze_rows"], stats["silver_rows"], stats["quarantined_rows"], stats["duplicates_removed"]) == (
        5, 5, 0, 0)
    rows = silver_rows(spark, env)
    for i, (shape, blob) in enumerate(LONG_LINES.items()):
        message = rows[f"e{i}"]["message"]
        assert message.endswith(" mail <email> from <ip>"), shape
        if shape != "hex_and_colons":  # runs of IPv6-shaped groups are masked, as in any text
            assert message == f"{blob} mail <email> from <ip>", shape
    assert rows["e9"]["message"] == "short <email>"
    assert all(checks_of(silver)[(DT, name)].passed for name in ("no_raw_pii", "schema_conforms"))


def _event_log_text(directory: Path, marker: str, deadline_s: float = 60) -> str:
    """The suite session's Spark event log once it holds ``marker`` (the listener bus writes asynchronously)."""
    deadline = time.monotonic() + deadline_s
    while True:
        text = "".join(p.read_text(errors="replace") for p in directory.iterdir() if p.is_file())
        if marker in text or time.monotonic() > deadline:
            return text
        time.sleep(0.5)


def test_the_pii_key_is_in_no_plan_event_log_or_report(spark, spark_event_log, env, settings):
    key = "Plan-Visible-Key-0123"
    env = replace(env, settings=replace(settings, pii_key=key))
    inner, outer = hmac_pads(key.encode())
    forbidden = forbidden_strings(key.encode(), inner, outer)
    write_landing(settings.landing_root, DT, "a.json", [event(i) for i in range(5)])

    run_bronze(spark, [DT], env)
    report = run_silver(spark, [DT], env)

    bronze = read_published(spark, env, BRONZE_APP_LOGS, [DT])
    plan = protect_pii(normalize(bronze), key.encode())._jdf.queryExecution().toString().lower()
    version = report.table(SILVER_APP_LOGS).partitions[DT].version_id
    event_log = _event_log_text(spark_event_log, version)
    assert version in event_log and "sha2" in event_log  # the log holds the silver job's own plans
    for text, where in ((plan, "explain(extended)"), (event_log.lower(), "Spark event log"),
                        (report_to_json(report).lower(), "the job's report (Dagster metadata)")):
        assert [s for s in forbidden if s in text] == [], where


def test_new_fields_and_rescued_values_are_masked_and_tagged(spark, env, settings):
    rows = [
        event(1, debug_email="jane.doe@example.com", client_addr="203.0.113.7"),
        event(2, Email="x@y.io", EMAIL="x@y.io"),  # a differently-cased known field: rescued as JSON
        event(3, event_type="system", status="abc", message="ok"),  # a type conflict: rescued
        event(4, path="/users/jane.doe@example.com/orders", user_agent="bot (ops 198.51.100.23)"),
    ]
    write_landing(settings.landing_root, DT, "a.json", rows)

    run_bronze(spark, [DT], env)
    report = run_silver(spark, [DT], env)

    silver = silver_rows(spark, env)
    assert silver["e1"]["debug_email"] == "<email>" and silver["e1"]["client_addr"] == "<ip>"
    assert "x@y.io" not in (silver["e2"]["_rescued_data"] or "") and "<email>" in silver["e2"]["_rescued_data"]
    assert silver["e4"]["path"] == "/users/<email>/orders" and silver["e4"]["user_agent"] == "bot (ops <ip>)"
    assert not [v for r in silver.values() for v in r.values() if isinstance(v, str) and any(p in v for p in RAW_PII)]
    _, _, columns = next(t for t in env.catalog.tables() if t[0] == SILVER_APP_LOGS)
    tagged = {c.name for c in columns if c.pii}
    assert {"debug_email", "client_addr", "_rescued_data", "client_ip", "email", "message"} <= tagged
    assert checks_of(report)[(DT, "no_raw_pii")].passed


def test_raw_pii_left_in_silver_blocks_the_publish_and_names_the_column(spark, env, settings):
    write_landing(settings.landing_root, DT, "a.json", [event(i) for i in range(20)])
    write_landing(settings.landing_root, "2024-01-02", "b.json",
                  [event(i, "2024-01-02", session_id="jane.doe@example.com" if i == 3 else "s") for i in range(20)])

    run_bronze(spark, [DT, "2024-01-02"], env)
    report = run_silver(spark, [DT, "2024-01-02"], env)

    checks = checks_of(report)
    assert checks[(DT, "no_raw_pii")].passed
    failed = checks[("2024-01-02", "no_raw_pii")]
    assert not failed.passed and failed.severity == "ERROR" and failed.failing_rows == 1
    assert failed.detail == "session_id: email in 1 rows"
    partitions = report.table(SILVER_APP_LOGS).partitions
    assert partitions[DT].published and not partitions["2024-01-02"].published
    assert not report.table(SILVER_QUARANTINE).partitions["2024-01-02"].published
    assert set(env.catalog.current(SILVER_APP_LOGS, [DT, "2024-01-02"])) == {DT}


def test_quarantine_rate_just_inside_passes_just_outside_fails(spark, env, settings):
    # 40 parsed rows a day; the default threshold is 5 %: 2 quarantined pass, 3 fail.
    write_landing(settings.landing_root, DT, "a.json",
                  [event(i, event_type="teleport" if i < 2 else "http_request") for i in range(40)])
    write_landing(settings.landing_root, "2024-01-02", "b.json",
                  [event(i, "2024-01-02", event_type="teleport" if i < 3 else "http_request") for i in range(40)])

    run_bronze(spark, [DT, "2024-01-02"], env)
    report = run_silver(spark, [DT, "2024-01-02"], env)

    checks = checks_of(report)
    inside, outside = checks[(DT, "quarantine_rate_within_threshold")], checks[("2024-01-02", "quarantine_rate_within_threshold")]
    assert inside.passed and inside.observed == pytest.approx(0.05)
    assert not outside.passed and outside.observed == pytest.approx(0.075) and outside.failing_rows == 3
    assert outside.threshold == 0.05 and outside.severity == "ERROR"
    assert set(env.catalog.current(SILVER_APP_LOGS, [DT, "2024-01-02"])) == {DT}
    assert set(env.catalog.current(SILVER_QUARANTINE, [DT, "2024-01-02"])) == {DT}


def test_quarantine_rate_threshold_is_configurable(spark, settings):
    settings = replace(settings, dq_quarantine_rate_max=0.1)
    env = JobEnvironment.from_settings(settings, run_id="test-run")
    write_landing(settings.landing_root, DT, "a.json",
                  [event(i, event_type="teleport" if i < 3 else "http_request") for i in range(40)])

    run_bronze(spark, [DT], env)
    report = run_silver(spark, [DT], env)

    assert checks_of(report)[(DT, "quarantine_rate_within_threshold")].passed
    assert report.table(SILVER_APP_LOGS).partitions[DT].published
