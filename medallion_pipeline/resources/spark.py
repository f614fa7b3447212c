"""How a SparkSession is configured, identically for the local launcher, tests and the EMR driver."""

from __future__ import annotations

from pyspark.sql import SparkSession

from medallion_pipeline.resources import class_archive
from medallion_pipeline.settings import Settings


def spark_conf(settings: Settings) -> dict[str, str]:
    """Session configuration that makes local Spark behave like EMR Serverless (Spark 3.5) in production."""
    return {
        "spark.master": settings.spark_master,
        "spark.app.name": "medallion_pipeline",
        # Explicit on both Spark 3.5 and 4.x so casts and timestamp parsing behave the same everywhere.
        "spark.sql.ansi.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": "4g",
        "spark.sql.shuffle.partitions": "16",
        # Small landing files: pack many per task instead of one task per 2-50 KB file.
        "spark.sql.files.openCostInBytes": str(64 * 1024),
        # Reading an explicit list of new files must not start a distributed listing job.
        "spark.sql.sources.parallelPartitionDiscovery.threshold": "1000000",
        # Athena and DuckDB read microsecond timestamps; INT96 is legacy.
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        # `dt` stays a string when a written version is read back for its audit.
        "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
        # A JSON object repeating a key keeps the last value (as most JSON parsers do) instead of failing the job.
        "spark.sql.mapKeyDedupPolicy": "LAST_WIN",
        **_class_sharing(settings),
        # MEDALLION_SPARK_CONF, last: tuning for a deployment (memory, executors) without a code change.
        **settings.extra_spark_conf,
    }


def _class_sharing(settings: Settings) -> dict[str, str]:
    """Local Spark's driver JVM maps the class archive ``make install`` built (``resources/class_archive``).
    ``defaultJavaOptions`` comes before any ``spark.driver.extraJavaOptions`` a deployment sets, so both apply."""
    archive = class_archive.CLASS_ARCHIVE
    if not settings.spark_master.startswith("local") or not class_archive.usable(archive):
        return {}
    return {"spark.driver.defaultJavaOptions": f"-XX:SharedArchiveFile={archive}"}


def submit_conf(settings: Settings) -> dict[str, str]:
    """The same configuration for a driver started by ``spark-submit`` (locally or on EMR Serverless): the
    master is the launcher's business, not the job's."""
    return {key: value for key, value in spark_conf(settings).items() if key != "spark.master"}


def build_spark_session(settings: Settings, extra: dict[str, str] | None = None) -> SparkSession:
    builder = SparkSession.builder
    for key, value in {**spark_conf(settings), **(extra or {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
