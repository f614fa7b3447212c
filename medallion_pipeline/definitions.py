"""The Dagster code location: every asset under ``defs/``, with resources chosen for the environment."""

import dagster as dg
from dagster_pyspark import LazyPySparkResource

from medallion_pipeline.defs import bronze, gold, metrics, silver
from medallion_pipeline.defs.alerts import ALERT_SENSORS
from medallion_pipeline.defs.automation import downstream_of_published_days
from medallion_pipeline.defs.landing import landing_sensor
from medallion_pipeline.defs.maintenance import lake_vacuum, lake_vacuum_daily
from medallion_pipeline.launchers.launcher import LocalSparkLauncher, SparkLauncher, SubprocessSparkLauncher
from medallion_pipeline.resources.spark import spark_conf
from medallion_pipeline.settings import Settings


def spark_launcher_for(settings: Settings) -> SparkLauncher:
    """The one place a launcher is chosen (``MEDALLION_SPARK_MODE``)."""
    if settings.spark_mode == "subprocess":
        return SubprocessSparkLauncher()
    if settings.spark_mode == "emr-serverless":
        from medallion_pipeline.launchers.emr import EmrServerlessSparkLauncher

        return EmrServerlessSparkLauncher()
    return LocalSparkLauncher(pyspark=LazyPySparkResource(spark_config=spark_conf(settings)))


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """The definitions, with resources chosen from ``settings``. Jobs read their settings (lake, landing,
    PII key) from the environment at run time, as a remote Spark driver will: set MEDALLION_* variables,
    not just this argument."""
    settings = settings or Settings.from_env()
    return dg.Definitions(
        assets=dg.load_assets_from_modules([bronze, silver, gold, metrics]),
        resources={"spark_launcher": spark_launcher_for(settings)},
        jobs=[lake_vacuum],
        schedules=[lake_vacuum_daily],  # RUNNING by default: the lake does not grow without bound
        sensors=[
            landing_sensor(settings),
            *ALERT_SENSORS,
            downstream_of_published_days,
            # Declarative automation on by default, so dropping files into landing needs no clicks.
            dg.AutomationConditionSensorDefinition(
                "medallion_automation", target=dg.AssetSelection.all(),
                default_status=dg.DefaultSensorStatus.RUNNING,
                minimum_interval_seconds=settings.automation_interval_seconds,
            ),
        ],
        # One process per run: local Spark shares one JVM between the run's steps instead of one per step.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
