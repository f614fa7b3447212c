"""Spark launchers: where a layer job runs. Code above this interface never asks which one it has."""

from __future__ import annotations

from typing import Any

import dagster as dg
from dagster_pyspark import LazyPySparkResource

from medallion_pipeline.jobs.environment import JobEnvironment
from medallion_pipeline.jobs.report import LayerReport
from medallion_pipeline.settings import Settings


class SparkLauncher(dg.ConfigurableResource):
    """Runs one layer job over a set of partitions and returns its report."""

    def run_layer(self, layer: str, dts: list[str], run_id: str, options: dict[str, Any] | None = None) -> LayerReport:
        raise NotImplementedError


class LocalSparkLauncher(SparkLauncher):
    """In-process PySpark inside the Dagster run (``dagster-pyspark``): the embedded default."""

    pyspark: LazyPySparkResource

    def run_layer(self, layer, dts, run_id, options=None):
        from medallion_pipeline.jobs import LAYER_JOBS

        # Settings are read from the environment at run time: resource config is visible in the UI,
        # and settings include the PII key.
        env = JobEnvironment.from_settings(Settings.from_env(), run_id=run_id)
        return LAYER_JOBS[layer](self.pyspark.spark_session, sorted(dts), env, **(options or {}))
