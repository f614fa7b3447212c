"""One job per layer: ``(SparkSession, partition keys, JobEnvironment, **options) -> LayerReport``.

A job reads published inputs through the catalog, transforms, writes a new version and publishes it. It
knows nothing of Dagster, so the same function runs in-process or as a remote Spark driver.
"""

from medallion_pipeline.jobs.bronze import run_bronze
from medallion_pipeline.jobs.gold import run_gold
from medallion_pipeline.jobs.metrics import run_metrics
from medallion_pipeline.jobs.silver import run_silver

LAYER_JOBS = {"bronze": run_bronze, "silver": run_silver, "gold": run_gold, "metrics": run_metrics}
