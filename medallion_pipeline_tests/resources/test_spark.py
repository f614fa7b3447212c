"""One Spark configuration for every launcher, with MEDALLION_SPARK_CONF applied last."""

from __future__ import annotations

from medallion_pipeline.launchers.emr import start_job_run_request
from medallion_pipeline.resources.spark import spark_conf, submit_conf
from medallion_pipeline.settings import Settings
from medallion_pipeline_tests.test_settings import EMR

TUNING = '{"spark.sql.shuffle.partitions": 200, "spark.executor.memory": "8g"}'


def test_extra_conf_overrides_the_defaults_in_every_launcher():
    plain, tuned = Settings(), Settings(spark_conf=TUNING)
    assert spark_conf(plain)["spark.sql.shuffle.partitions"] == "16"
    assert spark_conf(tuned)["spark.sql.shuffle.partitions"] == "200"  # local launcher and tests
    assert submit_conf(tuned)["spark.executor.memory"] == "8g"  # spark-submit (subprocess launcher)
    assert "spark.master" not in submit_conf(tuned)

    emr = Settings.from_env({**EMR, "MEDALLION_SPARK_CONF": TUNING})
    request = start_job_run_request(emr, "silver", ["2024-01-01"], "run-1")
    parameters = request["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"].split(" ")
    assert "spark.sql.shuffle.partitions=200" in parameters and "spark.executor.memory=8g" in parameters
    assert "spark.sql.shuffle.partitions=16" not in parameters
