"""A small generated landing and the whole job chain run over it once per module."""

from __future__ import annotations

from datetime import date

import pytest

from medallion_pipeline.jobs import LAYER_JOBS
from medallion_pipeline.jobs.environment import JobEnvironment
from medallion_pipeline.sample_data import Dirt, generate
from medallion_pipeline.settings import Settings
from medallion_pipeline_tests.conftest import TEST_PII_KEY

DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]


def run_all(spark, env: JobEnvironment, dts=DAYS) -> dict:
    return {layer: job(spark, list(dts), env) for layer, job in LAYER_JOBS.items()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory, spark):
    """Three generated days (with the default dirt) run through bronze, silver, gold and metrics."""
    root = tmp_path_factory.mktemp("pipeline")
    settings = Settings(landing_root=str(root / "landing"), lake_root=str(root / "lake"), pii_key=TEST_PII_KEY)
    summary = generate(settings.landing_root, date(2024, 1, 1), 3, 1500, 12, seed=11,
                       dirt=Dirt(malformed_rate=0.01, duplicate_rate=0.015))
    env = JobEnvironment.from_settings(settings, run_id="module-run")
    reports = run_all(spark, env)
    return env, reports, summary
