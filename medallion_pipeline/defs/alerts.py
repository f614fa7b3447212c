"""Alert sensors: failed checks, failed runs, missing landing data, stale gold — one alert per incident.

Open incidents live in the Dagster instance's key-value store, shared by the sensors and by
``medallion run`` (which alerts on its own run without a daemon), so the same failure is never announced
twice, whoever saw it first.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime, timezone

import dagster as dg

from medallion_pipeline.incidents import CheckVerdict, check_alerts, missing_data_alert, stale_gold_alert
from medallion_pipeline.jobs.audit import RULES
from medallion_pipeline.resources.alerts import Alert, Alerter, build_alerter
from medallion_pipeline.resources.catalog import open_catalog
from medallion_pipeline.resources.landing import landing_store_for
from medallion_pipeline.settings import Settings
from medallion_pipeline.tables import GOLD_DAILY_KPIS

INCIDENTS_KEY = "medallion/alerts/incidents"
MAX_REMEMBERED = 2000  # incidents kept; the oldest are forgotten first


def clock() -> datetime:
    """Now, in UTC (tests replace it: time is injected, never slept)."""
    return datetime.now(timezone.utc)


def load_incidents(instance: dg.DagsterInstance) -> dict[str, str]:
    raw = instance.run_storage.get_cursor_values({INCIDENTS_KEY}).get(INCIDENTS_KEY)
    return json.loads(raw) if raw else {}


def save_incidents(instance: dg.DagsterInstance, incidents: dict[str, str]) -> None:
    kept = dict(list(incidents.items())[-MAX_REMEMBERED:])
    instance.run_storage.set_cursor_values({INCIDENTS_KEY: json.dumps(kept)})


def verdicts(evaluations: Iterable[tuple[object, str]]) -> list[CheckVerdict]:
    """Per-partition verdicts from (check evaluation, run id) pairs (our ``per_partition`` metadata)."""
    out = []
    for evaluation, run_id in evaluations:
        asset = evaluation.asset_key.to_user_string()
        per_partition = evaluation.metadata.get("per_partition")
        days = per_partition.value if per_partition else {
            "-": {"passed": evaluation.passed, "severity": evaluation.severity.value}}
        for dt, v in sorted(days.items()):
            out.append(CheckVerdict(asset, evaluation.check_name, dt, v["passed"], v["severity"], run_id,
                                    v.get("observed"), v.get("threshold"), v.get("failing_rows", 0),
                                    v.get("detail", "")))
    return out


def new_evaluations(instance: dg.DagsterInstance, seen: dict[str, int]) -> tuple[list[tuple[object, str]], dict[str, int]]:
    """Check evaluations completed since ``seen`` (check key -> last execution id), oldest first.

    Reads each known check's execution history, which every event log storage supports (a global
    event-id cursor does not work on the default run-sharded SQLite storage).
    """
    seen = dict(seen)
    found: list[tuple[int, object, str]] = []
    for rule in RULES:
        key = dg.AssetCheckKey(dg.AssetKey(rule.table.asset_path), rule.name)
        history = instance.event_log_storage.get_asset_check_execution_history(key, limit=200)
        newer = sorted((r for r in history if r.id > seen.get(key.to_user_string(), 0)), key=lambda r: r.id)
        for record in newer:
            if record.event is None or record.event.dagster_event.event_type != dg.DagsterEventType.ASSET_CHECK_EVALUATION:
                break  # still running: pick it up once it has a result
            found.append((record.id, record.event.dagster_event.event_specific_data, record.run_id))
            seen[key.to_user_string()] = record.id
    return [(evaluation, run_id) for _, evaluation, run_id in sorted(found, key=lambda f: f[0])], seen


def alert_on_checks(instance: dg.DagsterInstance, evaluations: list, alerter: Alerter, settings: Settings) -> int:
    """Send the alerts these (check evaluation, run id) pairs call for; returns how many were sent."""
    def run_url(run_id: str) -> str:
        return f"{settings.dagster_url.rstrip('/')}/runs/{run_id}"

    alerts, incidents = check_alerts(verdicts(evaluations), load_incidents(instance), alerter.wants, run_url)
    for alert in alerts:
        alerter.send(alert)
    save_incidents(instance, incidents)
    return len(alerts)


def alert_on_run_failure(instance: dg.DagsterInstance, run: dg.DagsterRun, step_failures: list, alerter: Alerter,
                         settings: Settings) -> bool:
    """One alert per failed run, naming the failing steps and their errors."""
    incidents = load_incidents(instance)
    key = f"run:{run.run_id}"
    if key in incidents:
        return False
    fields = {"run": f"{settings.dagster_url.rstrip('/')}/runs/{run.run_id}", "job": run.job_name,
              "partitions": f"{run.tags.get('dagster/asset_partition_range_start', run.tags.get('dagster/partition', '-'))}"
                            f"..{run.tags.get('dagster/asset_partition_range_end', '')}".rstrip(".")}
    for event in step_failures:
        error = event.step_failure_data.error
        while error.cause is not None:  # the user's exception, not Dagster's wrapper
            error = error.cause
        message = error.message.strip()
        if message.startswith("dagster."):  # "dagster._core...Failure: <what the step said>"
            message = message.split(": ", 1)[-1]
        fields[f"step {event.step_key}"] = message.splitlines()[0][:500]
    alerter.send(Alert(title=f"[ERROR] run {run.run_id[:8]} failed", severity="ERROR", kind="run_failed",
                       partition=fields["partitions"], fields=fields))
    incidents[key] = clock().isoformat()
    save_incidents(instance, incidents)
    return True


@dg.sensor(name="alert_on_failed_checks", minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Alerts on every failed asset check (ERROR, and WARN unless MEDALLION_ALERT_MIN_SEVERITY=ERROR).")
def alert_on_failed_checks(context: dg.SensorEvaluationContext):
    settings = Settings.from_env()
    evaluations, seen = new_evaluations(context.instance, json.loads(context.cursor) if context.cursor else {})
    context.update_cursor(json.dumps(seen, sort_keys=True))  # one id per check: stays small
    if not evaluations:
        return dg.SkipReason("no new check evaluations")
    sent = alert_on_checks(context.instance, evaluations, build_alerter(settings, context.log), settings)
    return dg.SkipReason(f"{len(evaluations)} evaluations, {sent} alerts")


@dg.run_failure_sensor(name="alert_on_failed_runs", default_status=dg.DefaultSensorStatus.RUNNING,
                       monitor_all_code_locations=True)
def alert_on_failed_runs(context: dg.RunFailureSensorContext):
    settings = Settings.from_env()
    alert_on_run_failure(context.instance, context.dagster_run, context.get_step_failure_events(),
                         build_alerter(settings, context.log), settings)


@dg.sensor(name="alert_on_missing_or_stale_data", minimum_interval_seconds=300,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Alerts when yesterday has no landing files by the deadline, or gold is stale.")
def alert_on_missing_or_stale_data(context: dg.SensorEvaluationContext):
    settings = Settings.from_env()
    now = clock()
    alerter = build_alerter(settings, context.log)
    landing = landing_store_for(settings.landing_root)
    incidents = load_incidents(context.instance)
    missing, incidents = missing_data_alert(lambda dt: bool(landing.list_partition(dt)), now,
                                            settings.alert_missing_data_deadline_hours, incidents)
    gold = open_catalog(settings.resolved_catalog_uri, settings.lake_root).partitions(GOLD_DAILY_KPIS)
    stale, incidents = stale_gold_alert(gold[-1].dt if gold else None, now, settings.alert_gold_max_age_hours,
                                        incidents)
    for alert in missing + stale:
        alerter.send(alert)
    save_incidents(context.instance, incidents)
    return dg.SkipReason(f"{len(missing) + len(stale)} alerts")


ALERT_SENSORS = [alert_on_failed_checks, alert_on_failed_runs, alert_on_missing_or_stale_data]


def alert_after_cli_run(instance: dg.DagsterInstance, run_id: str, logger: logging.Logger) -> None:
    """``medallion run`` has no daemon: alert on its own run's failed checks and failure right away."""
    settings = Settings.from_env()
    alerter = build_alerter(settings, logger)
    records = instance.event_log_storage.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=1000).records
    evaluations = [(r.event_log_entry.dagster_event.event_specific_data, run_id) for r in records]
    alert_on_checks(instance, evaluations, alerter, settings)
    run = instance.get_run_by_id(run_id)
    if run is not None and run.status == dg.DagsterRunStatus.FAILURE:
        failures = [r.event_log_entry.dagster_event for r in instance.event_log_storage.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records]
        alert_on_run_failure(instance, run, failures, alerter, settings)
