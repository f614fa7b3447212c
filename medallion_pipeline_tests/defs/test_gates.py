"""Blocking gates through Dagster: write–audit–publish, range runs with a bad day, rollback."""

from __future__ import annotations

import hashlib
import os
from datetime import date

import dagster as dg

from medallion_pipeline.cli import main
from medallion_pipeline.defs.automation import DOWNSTREAM_OF_SILVER, downstream_of_published_days
from medallion_pipeline.definitions import build_definitions
from medallion_pipeline.jobs.publish import read_published
from medallion_pipeline.sample_data import Dirt, generate
from medallion_pipeline.tables import GOLD_DAILY_KPIS, SILVER_APP_LOGS, SILVER_QUARANTINE
from medallion_pipeline_tests.check_evaluations import check_evaluations, declared_checks
from medallion_pipeline_tests.conftest import event, write_landing

SILVER = dg.AssetKey(SILVER_APP_LOGS.asset_path)


def range_tags(start: str, end: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


def run(defs, instance, start: str, end: str | None = None) -> dg.ExecuteInProcessResult:
    return dg.materialize(list(defs.assets), resources=defs.resources, instance=instance,
                          tags=range_tags(start, end or start), raise_on_error=False)


def fingerprint(location: str) -> dict[str, str]:
    return {name: hashlib.sha256(open(os.path.join(location, name), "rb").read()).hexdigest()
            for name in sorted(os.listdir(location))}


def check_evaluation(instance, run_id: str, name: str):
    records = instance.event_log_storage.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    [evaluation] = [r.event_log_entry.dagster_event.event_specific_data for r in records
                    if r.event_log_entry.dagster_event.event_specific_data.check_name == name]
    return evaluation


def user_scoped(i: int, dt: str, user: str | None) -> dict:
    return event(i, dt, event_type="login", user_id=user, method=None, path=None, status=None,
                 latency_ms=None, bytes=None)


def test_failing_partition_keeps_published_data_and_blocks_downstream(spark, medallion_env, env):
    dt = "2024-01-01"
    write_landing(medallion_env.landing_root, dt, "good.jsonl", [user_scoped(i, dt, f"u{i}") for i in range(100)])
    defs = build_definitions(medallion_env)
    with dg.instance_for_test() as instance:
        assert run(defs, instance, dt).success
        published = env.catalog.current(SILVER_APP_LOGS, [dt])[dt]
        gold_before = env.catalog.current(GOLD_DAILY_KPIS, [dt])[dt]
        before = fingerprint(published.location)

        # 20 more logins without a user_id: 20 / 120 = 16.7 % > 3 %.
        write_landing(medallion_env.landing_root, dt, "bad.jsonl", [user_scoped(i, dt, None) for i in range(100, 120)])
        result = run(defs, instance, dt)
        assert not result.success
        failure = result.failure_data_for_node("silver").error.message
        assert "2024-01-01 user_id_null_rate_within_threshold" in failure
        assert "observed 0.166667, threshold 0.03" in failure

        # Silver is exactly as it was; gold did not run.
        assert env.catalog.current(SILVER_APP_LOGS, [dt])[dt].version_id == published.version_id
        assert fingerprint(published.location) == before
        assert env.catalog.current(GOLD_DAILY_KPIS, [dt])[dt].version_id == gold_before.version_id
        materialized = {e.asset_key.path[0] for e in result.get_asset_materialization_events()}
        assert materialized == {"bronze"}  # the rejected silver day is not reported; gold and metrics never ran

        evaluation = check_evaluation(instance, result.run_id, "user_id_null_rate_within_threshold")
        assert evaluation.passed is False
        metadata = {k: v.value for k, v in evaluation.metadata.items()}
        assert metadata["threshold"] == 0.03 and abs(metadata["observed_value"] - 20 / 120) < 1e-9
        assert metadata["failing_rows"] == 20 and metadata["partitions_failed"] == dt
        assert len(metadata["sample_rows"]) == 20 and all(r["user_id"] is None for r in metadata["sample_rows"])
        rejected = env.catalog.versions(SILVER_APP_LOGS, dt)[0]
        assert rejected.state == "rejected" and metadata["staged_locations"] == {dt: rejected.location}
        assert os.listdir(rejected.location)  # the staged data is kept for inspection


def test_range_run_publishes_good_days_and_reports_the_bad_one(spark, medallion_env, env):
    days = [f"2024-01-0{d}" for d in range(1, 6)]
    generate(medallion_env.landing_root, date(2024, 1, 1), 5, 400, 4, seed=5, dirt=Dirt(bad_day=3))
    defs = build_definitions(medallion_env)
    with dg.instance_for_test() as instance:
        result = run(defs, instance, days[0], days[-1])
        assert not result.success
        assert sorted(env.catalog.current(SILVER_APP_LOGS, days)) == [d for d in days if d != "2024-01-03"]
        assert sorted(env.catalog.current(SILVER_QUARANTINE, days)) == [d for d in days if d != "2024-01-03"]
        evaluation = check_evaluation(instance, result.run_id, "user_id_null_rate_within_threshold")
        metadata = {k: v.value for k, v in evaluation.metadata.items()}
        assert metadata["partitions_failed"] == "2024-01-03"
        assert metadata["partitions_passed"] == "2024-01-01, 2024-01-02, 2024-01-04, 2024-01-05"
        assert "| 2024-01-03 | **FAIL (ERROR)** |" in metadata["verdicts"]
        # The rejected day is not materialized (the UI would show it green otherwise), in either silver table;
        # the published days are, each with its own figures.
        published = {d for d in days if d != "2024-01-03"}
        assert instance.get_materialized_partitions(SILVER) == published
        assert instance.get_materialized_partitions(dg.AssetKey(SILVER_QUARANTINE.asset_path)) == published
        for dt in sorted(published):
            record = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=SILVER, asset_partitions=[dt]), limit=1).records[0]
            meta = record.asset_materialization.metadata
            assert meta["dq_passed"].value is True and meta["published"].value is True
            assert meta["dagster/row_count"].value == env.catalog.current(SILVER_APP_LOGS, [dt])[dt].row_count
        # Its verdicts are in the check evaluation (above), the run's failure, and an observation of the day.
        assert "2024-01-03 user_id_null_rate_within_threshold" in result.failure_data_for_node("silver").error.message
        observation = instance.fetch_observations(
            dg.AssetRecordsFilter(asset_key=SILVER, asset_partitions=["2024-01-03"]), limit=1).records[0]
        meta = observation.asset_observation.metadata
        assert meta["published"].value is False and "user_id_null_rate_within_threshold" in meta["dq_failed_checks"].value
        assert env.catalog.current(GOLD_DAILY_KPIS, days) == {}

        # The good days' gold and metrics: requested from the catalog, one ranged run per stretch of days.
        context = dg.build_sensor_context(instance=instance, definitions=defs)
        requests = list(downstream_of_published_days(context))
        ranges = [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
                  for r in requests]
        assert ranges == [("2024-01-01", "2024-01-02"), ("2024-01-04", "2024-01-05")]
        for start, end in ranges:
            result = dg.materialize(list(defs.assets), resources=defs.resources, instance=instance,
                                    selection=DOWNSTREAM_OF_SILVER, tags=range_tags(start, end))
            assert result.success
        assert sorted(env.catalog.current(GOLD_DAILY_KPIS, days)) == [d for d in days if d != "2024-01-03"]
        assert list(downstream_of_published_days(dg.build_sensor_context(instance=instance, definitions=defs))) == []


def test_warnings_never_block(spark, medallion_env, env):
    dt = "2024-01-01"
    lines = [event(i, dt) for i in range(50)] + ["not json"] * 5  # 9 % malformed: WARN
    # PII in a column bronze does not tag: a WARN there; silver masks it, so its no_raw_pii gate passes.
    lines.append(event(99, dt, user_agent="mail jane.doe@example.com"))
    write_landing(medallion_env.landing_root, dt, "a.jsonl", lines)
    defs = build_definitions(medallion_env)
    with dg.instance_for_test() as instance:
        result = run(defs, instance, dt)
        assert result.success
        evaluations = check_evaluations(instance, result.run_id)
        assert set(evaluations) == declared_checks(defs)
        failed = {key: e.severity for key, e in evaluations.items() if not e.passed}
        assert failed == {
            ("bronze/app_logs", "malformed_rate_within_threshold"): dg.AssetCheckSeverity.WARN,
            ("bronze/app_logs", "no_untagged_pii"): dg.AssetCheckSeverity.WARN,
        }
        untagged = evaluations[("bronze/app_logs", "no_untagged_pii")]
        assert "user_agent: email in 1 rows" in untagged.metadata["failed"].value[0]
        assert env.catalog.current(GOLD_DAILY_KPIS, [dt])


def test_rollback_round_trip(spark, medallion_env, env, capsys):
    dt = "2024-01-01"
    write_landing(medallion_env.landing_root, dt, "a.jsonl", [event(i, dt) for i in range(10)])
    defs = build_definitions(medallion_env)
    with dg.instance_for_test() as instance:
        assert run(defs, instance, dt).success
        v1 = env.catalog.current(SILVER_APP_LOGS, [dt])[dt]
        write_landing(medallion_env.landing_root, dt, "b.jsonl", [event(i, dt) for i in range(10, 15)])
        assert run(defs, instance, dt).success
        assert read_published(spark, env, SILVER_APP_LOGS, [dt]).count() == 15
    assert main(["rollback", "silver.app_logs", dt, "--reason", "bad deploy"]) == 0
    assert read_published(spark, env, SILVER_APP_LOGS, [dt]).count() == 10
    assert env.catalog.current(SILVER_APP_LOGS, [dt])[dt].version_id == v1.version_id
    actions = [(h.action, h.reason) for h in env.catalog.history(SILVER_APP_LOGS, dt)]
    assert actions == [("publish", ""), ("publish", ""), ("rollback", "bad deploy")]
    with dg.DagsterInstance.get() as instance:  # the CLI records into DAGSTER_HOME
        record = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=SILVER, asset_partitions=[dt]), limit=1).records[0]
        metadata = record.asset_materialization.metadata
        assert metadata["rollback"].value is True and metadata["reason"].value == "bad deploy"
        assert metadata["version_id"].value == v1.version_id


def requested(defs, instance, cursor=None):
    """Gold's partitions declarative automation would request now, and the cursor for the next tick."""
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    return result.get_requested_partitions(dg.AssetKey(GOLD_DAILY_KPIS.asset_path)), result.cursor


def test_automation_does_not_consume_a_partition_whose_gate_failed(spark, medallion_env, env):
    dt = "2024-01-01"
    write_landing(medallion_env.landing_root, dt, "bad.jsonl", [user_scoped(i, dt, None) for i in range(10)])
    defs = build_definitions(medallion_env)
    with dg.instance_for_test() as instance:
        _, cursor = requested(defs, instance)
        result = dg.materialize(list(defs.assets), resources=defs.resources, instance=instance,
                                selection=[dg.AssetKey(["bronze", "app_logs"]), SILVER,
                                           dg.AssetKey(SILVER_QUARANTINE.asset_path)],
                                tags=range_tags(dt, dt), raise_on_error=False)
        assert not result.success
        partitions, cursor = requested(defs, instance, cursor)
        assert partitions == set()  # silver updated, but its blocking check failed

        write_landing(medallion_env.landing_root, dt, "fix.jsonl", [user_scoped(i, dt, f"u{i}") for i in range(10, 400)])
        result = dg.materialize(list(defs.assets), resources=defs.resources, instance=instance,
                                selection=[dg.AssetKey(["bronze", "app_logs"]), SILVER,
                                           dg.AssetKey(SILVER_QUARANTINE.asset_path)],
                                tags=range_tags(dt, dt))
        assert result.success
        partitions, _ = requested(defs, instance, cursor)
        assert partitions == {dt}
