"""The ``medallion`` command: generate, run, query, catalog, vacuum."""

from __future__ import annotations

import json
import logging
import os

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from medallion_pipeline.cli import main
from medallion_pipeline.resources.catalog import Column, PartitionVersion, SqliteCatalog
from medallion_pipeline.resources.lake import Lake, new_version_id
from medallion_pipeline.tables import BRONZE_APP_LOGS, GOLD_DAILY_KPIS
from medallion_pipeline_tests.conftest import event, write_landing


def publish_parquet(settings, dt: str, rows: list[dict]) -> PartitionVersion:
    lake, catalog = Lake(settings.lake_root), SqliteCatalog(settings.resolved_catalog_uri)
    version_id = new_version_id()
    location = lake.partition_location(GOLD_DAILY_KPIS, version_id, dt)
    os.makedirs(location)
    pq.write_table(pa.Table.from_pylist(rows), f"{location}/part-0.parquet")
    version = PartitionVersion(GOLD_DAILY_KPIS, dt, version_id, location, len(rows),
                               (Column("service", "string"), Column("requests", "bigint")))
    catalog.publish(GOLD_DAILY_KPIS, [version], description="kpis")
    return version


def test_query_resolves_current_versions_in_every_format(medallion_env, capsys):
    publish_parquet(medallion_env, "2024-01-01", [{"service": "a", "requests": 1}])
    publish_parquet(medallion_env, "2024-01-01", [{"service": "a", "requests": 5}])  # replaces the first
    publish_parquet(medallion_env, "2024-01-02", [{"service": "b", "requests": 7}])
    sql = "SELECT dt, service, requests FROM gold_daily_kpis ORDER BY dt"
    assert main(["query", sql, "--format", "json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows == [{"dt": "2024-01-01", "service": "a", "requests": 5}, {"dt": "2024-01-02", "service": "b", "requests": 7}]
    assert main(["query", sql, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["dt,service,requests", "2024-01-01,a,5", "2024-01-02,b,7"]
    assert main(["query", sql]) == 0
    table = capsys.readouterr().out
    assert "(2 rows)" in table and "2024-01-02  b" in table


def test_catalog_lists_partitions_and_history(medallion_env, capsys):
    first = publish_parquet(medallion_env, "2024-01-01", [{"service": "a", "requests": 1}])
    second = publish_parquet(medallion_env, "2024-01-01", [{"service": "a", "requests": 2}])
    assert main(["catalog", "--history"]) == 0
    out = capsys.readouterr().out
    assert "gold.daily_kpis (gold_daily_kpis): kpis" in out
    assert "dt=2024-01-01" in out and second.version_id in out and first.version_id in out
    assert "2 events, 2 versions kept" in out


def test_vacuum_command_keeps_the_newest(medallion_env, capsys):
    old = publish_parquet(medallion_env, "2024-01-01", [{"service": "a", "requests": 1}])
    publish_parquet(medallion_env, "2024-01-01", [{"service": "a", "requests": 2}])
    # Replaced a moment ago: readers may still hold it for the grace period.
    assert main(["vacuum", "--keep", "1"]) == 0
    assert "0 locations removed" in capsys.readouterr().out and os.path.exists(old.location)
    assert main(["vacuum", "--keep", "1", "--grace-seconds", "0"]) == 0
    assert f"removed {old.location}" in capsys.readouterr().out
    assert not os.path.exists(old.location)


def test_generate_writes_landing(medallion_env, capsys):
    args = ["generate", "--start", "2024-02-01", "--days", "2", "--events-per-day", "300", "--files-per-day", "3"]
    assert main(args) == 0
    assert "generated 600 events" in capsys.readouterr().out
    assert sorted(os.listdir(os.path.join(medallion_env.landing_root, "web"))) == ["dt=2024-02-01", "dt=2024-02-02"]


def test_run_records_the_run_in_dagster_home(spark, medallion_env, env, capsys):
    write_landing(medallion_env.landing_root, "2024-01-01", "a.jsonl", [event(1), event(2)])
    assert main(["run", "--from", "2024-01-01", "--select", "bronze"]) == 0
    assert "SUCCESS for 2024-01-01..2024-01-01" in capsys.readouterr().out
    assert env.catalog.current(BRONZE_APP_LOGS, ["2024-01-01"])["2024-01-01"].row_count == 2
    with dg.DagsterInstance.get() as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/asset_partition_range_start"] == "2024-01-01"


def test_invalid_settings_exit_with_a_message(monkeypatch, capsys):
    monkeypatch.setenv("MEDALLION_START_DATE", "yesterday")
    assert main(["catalog"]) == 2
    assert "MEDALLION_START_DATE" in capsys.readouterr().err


def test_query_errors_are_reported_not_raised(medallion_env, capsys):
    assert main(["query", "SELECT * FROM gold_daily_kpis"]) == 1
    assert "gold_daily_kpis does not exist" in capsys.readouterr().err


def test_run_with_a_bad_day_alerts_and_still_builds_the_good_days(spark, medallion_env, env, capsys, caplog):
    from datetime import date

    from medallion_pipeline.sample_data import Dirt, generate

    generate(medallion_env.landing_root, date(2024, 1, 1), 3, 400, 4, seed=9, dirt=Dirt(bad_day=2))
    with caplog.at_level(logging.WARNING, logger="medallion.alerts"):
        assert main(["run", "--from", "2024-01-01", "--to", "2024-01-03"]) == 1
    out = capsys.readouterr().out
    assert "building gold and metrics for the published days 2024-01-01..2024-01-01" in out
    assert "building gold and metrics for the published days 2024-01-03..2024-01-03" in out
    assert sorted(env.catalog.current(GOLD_DAILY_KPIS, ["2024-01-01", "2024-01-02", "2024-01-03"])) == [
        "2024-01-01", "2024-01-03"]
    alerts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ALERT")]
    assert any("check user_id_null_rate_within_threshold failed on silver/app_logs for 2024-01-02" in a for a in alerts)
    assert any(a.startswith("ALERT [ERROR] run ") and "step silver" in a for a in alerts)
