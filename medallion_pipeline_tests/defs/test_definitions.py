"""The code location loads, and its graph is what we meant it to be."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg

from medallion_pipeline.definitions import build_definitions
from medallion_pipeline.settings import PROJECT_ROOT, Settings

ASSET_KEYS = [
    "bronze/app_logs",
    "gold/daily_kpis",
    "gold/endpoint_stats",
    "gold/funnel",
    "gold/sessions",
    "metrics/dq",
    "silver/app_logs",
    "silver/quarantine",
]
ASSET_CHECKS = [
    "bronze/app_logs:malformed_rate_within_threshold",
    "bronze/app_logs:no_new_columns",
    "bronze/app_logs:no_untagged_pii",
    "gold/daily_kpis:schema_conforms",
    "gold/daily_kpis:status_counts_sum_to_requests",
    "gold/endpoint_stats:schema_conforms",
    "gold/funnel:funnel_steps_non_increasing",
    "gold/funnel:schema_conforms",
    "gold/sessions:schema_conforms",
    "silver/app_logs:duplicate_rate_within_threshold",
    "silver/app_logs:event_id_not_null",
    "silver/app_logs:event_type_allowed",
    "silver/app_logs:no_raw_pii",
    "silver/app_logs:quarantine_rate_within_threshold",
    "silver/app_logs:row_count_within_trailing_median",
    "silver/app_logs:schema_conforms",
    "silver/app_logs:total_rows_positive",
    "silver/app_logs:user_id_null_rate_within_threshold",
]
BLOCKING = {c for c in ASSET_CHECKS if not c.startswith("bronze") and "row_count_within" not in c}


def test_definitions_snapshot():
    defs = build_definitions(Settings())
    graph = defs.resolve_asset_graph()
    assert sorted(k.to_user_string() for k in graph.get_all_asset_keys()) == ASSET_KEYS
    assert sorted(c.to_user_string() for c in graph.asset_check_keys) == ASSET_CHECKS
    blocking = {k.to_user_string() for k in graph.asset_check_keys if graph.get_check_spec(k).blocking}
    assert blocking == BLOCKING
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.partitions_def is not None and node.backfill_policy == dg.BackfillPolicy.single_run()
        assert node.group_name == key.path[0]
        assert node.owners == ["team:data-platform"]
    sensors = {s.name: s.default_status for s in defs.sensors}
    assert sensors == {
        "landing_files": dg.DefaultSensorStatus.RUNNING,
        "alert_on_failed_checks": dg.DefaultSensorStatus.RUNNING,
        "alert_on_failed_runs": dg.DefaultSensorStatus.RUNNING,
        "alert_on_missing_or_stale_data": dg.DefaultSensorStatus.RUNNING,
        "downstream_of_published_days": dg.DefaultSensorStatus.RUNNING,
        "medallion_automation": dg.DefaultSensorStatus.RUNNING,
    }
    # Vacuum runs daily on its own (no Spark), so the lake does not grow without bound.
    assert {s.name: (s.default_status, s.job_name) for s in defs.schedules} == {
        "lake_vacuum_daily": (dg.DefaultScheduleStatus.RUNNING, "lake_vacuum")}
    assert [node.name for node in defs.resolve_job_def("lake_vacuum").nodes] == ["vacuum_catalog_and_lake"]
    # Column schemas come from the Pandera models, with PII tags.
    silver_schema = graph.get(dg.AssetKey(["silver", "app_logs"])).metadata["dagster/column_schema"]
    columns = {c.name: c for c in silver_schema.columns}
    assert list(columns)[:3] == ["event_id", "event_ts", "service"] and columns["event_ts"].type == "timestamp"
    assert columns["client_ip"].tags == {"pii": ""} and not columns["event_id"].tags
    assert columns["status"].constraints.other == [
        "greater_than_or_equal_to {'min_value': 100}", "less_than_or_equal_to {'max_value': 599}"]
    assert graph.get(dg.AssetKey(["gold", "daily_kpis"])).parent_keys == {dg.AssetKey(["silver", "app_logs"])}
    assert graph.get(dg.AssetKey(["silver", "quarantine"])).parent_keys == {dg.AssetKey(["bronze", "app_logs"])}


def test_dagster_definitions_validate_passes(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "medallion_pipeline.definitions"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
        env={"DAGSTER_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Validation successful" in result.stderr + result.stdout
