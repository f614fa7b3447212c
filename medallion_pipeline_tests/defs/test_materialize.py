"""Materializing through Dagster: one ranged run over every layer, with per-partition metadata."""

from __future__ import annotations

from datetime import date

import dagster as dg
from dagster._serdes import serialize_value

from medallion_pipeline.definitions import build_definitions
from medallion_pipeline.jobs.publish import read_published
from medallion_pipeline.sample_data import generate
from medallion_pipeline.tables import ALL_TABLES, GOLD_DAILY_KPIS, SILVER_APP_LOGS
from medallion_pipeline.transforms.pii import hmac_pads
from medallion_pipeline_tests.check_evaluations import check_evaluations, declared_checks
from medallion_pipeline_tests.conftest import TEST_PII_KEY, forbidden_strings

RANGE = {"dagster/asset_partition_range_start": "2024-01-01", "dagster/asset_partition_range_end": "2024-01-02"}


def test_range_run_materializes_every_layer_with_partition_metadata(spark, medallion_env, env):
    generate(medallion_env.landing_root, date(2024, 1, 1), 2, 600, 6, seed=3)
    defs = build_definitions(medallion_env)
    with dg.instance_for_test() as instance:
        result = dg.materialize(list(defs.assets), resources=defs.resources, instance=instance, tags=RANGE)
        assert result.success
        assert len(instance.get_runs()) == 1
        assert set(check_evaluations(instance, result.run_id)) == declared_checks(defs)
        # Neither the PII key nor its HMAC pads in any event or metadata Dagster recorded.
        logged = " ".join(serialize_value(entry) for entry in instance.all_logs(result.run_id)).lower()
        assert "silver_rows" in logged
        assert [s for s in forbidden_strings(TEST_PII_KEY.encode(), *hmac_pads(TEST_PII_KEY.encode())) if s in logged] == []
        for table in ALL_TABLES:
            assert sorted(env.catalog.current(table, ["2024-01-01", "2024-01-02"])) == ["2024-01-01", "2024-01-02"]
        gold_before = sorted(map(tuple, read_published(spark, env, GOLD_DAILY_KPIS, ["2024-01-01", "2024-01-02"]).collect()))
        # The same run again: nothing new in landing, every check still reports, gold is identical.
        again = dg.materialize(list(defs.assets), resources=defs.resources, instance=instance, tags=RANGE)
        assert again.success
        assert set(check_evaluations(instance, again.run_id)) == declared_checks(defs)
        gold_after = sorted(map(tuple, read_published(spark, env, GOLD_DAILY_KPIS, ["2024-01-01", "2024-01-02"]).collect()))
        assert gold_after == gold_before
        records = {
            dt: instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(SILVER_APP_LOGS.asset_path), asset_partitions=[dt]),
                limit=1,
            ).records[0].asset_materialization
            for dt in ("2024-01-01", "2024-01-02")
        }
    published = read_published(spark, env, SILVER_APP_LOGS, ["2024-01-01", "2024-01-02"])
    per_day = {r["dt"]: r["count"] for r in published.groupBy("dt").count().collect()}
    for dt, materialization in records.items():
        metadata = materialization.metadata
        assert metadata["dagster/row_count"].value == per_day[dt]
        assert metadata["silver_rows"].value == per_day[dt]
        assert metadata["published"].value is True
        assert "dagster/column_schema" in metadata
        assert metadata["version_id"].value == env.catalog.current(SILVER_APP_LOGS, [dt])[dt].version_id
    assert read_published(spark, env, GOLD_DAILY_KPIS, ["2024-01-01"]).count() > 0
