"""The alert sensors against a real Dagster instance: one alert per incident, resolution, run failures."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import dagster as dg
import pytest

from medallion_pipeline.defs import alerts as alert_defs
from medallion_pipeline.defs.reporting import check_results, check_specs
from medallion_pipeline.jobs.audit import rules_for
from medallion_pipeline.jobs.report import CheckOutcome, PartitionResult, TableReport
from medallion_pipeline.tables import SILVER_APP_LOGS
from medallion_pipeline_tests.conftest import TEST_PII_KEY, write_landing

DT = "2024-01-02"
VERDICT = {"passed": False}


@dg.asset(key=SILVER_APP_LOGS.asset_path, check_specs=check_specs(SILVER_APP_LOGS))
def silver_stub() -> dg.MaterializeResult:
    """Stands in for silver: emits the real check results for a report whose user_id rule passes or not."""
    outcomes = [
        CheckOutcome(rule.name, DT, VERDICT["passed"] or rule.name != "user_id_null_rate_within_threshold",
                     rule.severity, observed=0.2 if not VERDICT["passed"] else 0.01, threshold=0.03,
                     failing_rows=0 if VERDICT["passed"] else 361)
        for rule in rules_for(SILVER_APP_LOGS)
    ]
    report = TableReport(SILVER_APP_LOGS, {DT: PartitionResult(DT, True)}, checks=outcomes)
    return dg.MaterializeResult(check_results=check_results(report))


@pytest.fixture
def slack_env(monkeypatch, webhook, tmp_path):
    monkeypatch.setenv("MEDALLION_ALERT_SLACK_WEBHOOK_URL", webhook.url)
    monkeypatch.setenv("MEDALLION_DAGSTER_URL", "http://dagster.example:3000")
    monkeypatch.setenv("MEDALLION_LANDING_ROOT", str(tmp_path / "landing"))
    monkeypatch.setenv("MEDALLION_LAKE_ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("MEDALLION_PII_KEY", TEST_PII_KEY)  # roots outside the project: the key is required
    return webhook


def tick(instance, sensor, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    sensor(context)
    return context.cursor


def test_ten_ticks_over_the_same_failure_send_one_alert_and_a_pass_one_resolution(slack_env):
    with dg.instance_for_test() as instance:
        cursor = None
        VERDICT["passed"] = False
        for i in range(10):
            if i % 3 == 0:  # the failure is re-evaluated by new runs in between ticks
                assert not dg.materialize([silver_stub], instance=instance, raise_on_error=False).success
            cursor = tick(instance, alert_defs.alert_on_failed_checks, cursor)
        assert len(slack_env.requests) == 1
        text = slack_env.requests[0]["blocks"][1]["text"]["text"]
        assert "*check*: user_id_null_rate_within_threshold" in text and "*partition*: 2024-01-02" in text
        assert "*observed*: 0.2" in text and "*threshold*: 0.03" in text and "*failing_rows*: 361" in text
        assert "*run*: http://dagster.example:3000/runs/" in text

        VERDICT["passed"] = True
        assert dg.materialize([silver_stub], instance=instance).success
        for _ in range(3):
            cursor = tick(instance, alert_defs.alert_on_failed_checks, cursor)
        assert len(slack_env.requests) == 2
        assert slack_env.requests[1]["text"].startswith(":white_check_mark: [RESOLVED] check user_id_null_rate")


def test_failed_run_alerts_once_naming_the_step(slack_env):
    @dg.asset
    def explodes():
        raise ValueError("upstream schema is gone")

    with dg.instance_for_test() as instance:
        result = dg.materialize([explodes], instance=instance, raise_on_error=False)
        assert not result.success
        alert_defs.alert_after_cli_run(instance, result.run_id, logging.getLogger("test"))
        alert_defs.alert_after_cli_run(instance, result.run_id, logging.getLogger("test"))  # seen again: no repeat
        [payload] = slack_env.requests
        assert payload["text"] == f":red_circle: [ERROR] run {result.run_id[:8]} failed"
        assert "*step explodes*: " in payload["blocks"][1]["text"]["text"]
        assert "upstream schema is gone" in payload["blocks"][1]["text"]["text"]


def test_missing_data_sensor_fires_at_the_deadline_and_not_before(slack_env, monkeypatch, tmp_path):
    monkeypatch.setenv("MEDALLION_ALERT_MISSING_DATA_DEADLINE_HOURS", "3")
    now = {"t": datetime(2024, 1, 11, 2, 59, tzinfo=timezone.utc)}
    monkeypatch.setattr(alert_defs, "clock", lambda: now["t"])
    with dg.instance_for_test() as instance:
        tick(instance, alert_defs.alert_on_missing_or_stale_data)
        assert slack_env.requests == []
        now["t"] = datetime(2024, 1, 11, 3, 0, tzinfo=timezone.utc)
        tick(instance, alert_defs.alert_on_missing_or_stale_data)
        tick(instance, alert_defs.alert_on_missing_or_stale_data)
        assert [r["text"] for r in slack_env.requests] == [":red_circle: [ERROR] no landing data for 2024-01-10"]
        write_landing(tmp_path / "landing", "2024-01-10", "late.jsonl", ['{"event_id": "x"}'])
        tick(instance, alert_defs.alert_on_missing_or_stale_data)
        assert slack_env.requests[-1]["text"] == ":white_check_mark: [RESOLVED] landing data arrived for 2024-01-10"
