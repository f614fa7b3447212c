"""One Spark configuration for every launcher, with MEDALLION_SPARK_CONF applied last."""

from __future__ import annotations

from medallion_pipeline.launchers.emr import IMAGE_ENTRY_POINT, start_job_run_request
from medallion_pipeline.resources import class_archive
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


def test_on_the_custom_image_the_request_carries_no_bundle_and_needs_none():
    """MEDALLION_EMR_PYTHON=image: Python, package and entry point come from the application's image
    (deploy/docker/emr-serverless.Dockerfile, whose test checks it puts the entry point there)."""
    image = Settings.from_env({**{k: v for k, v in EMR.items() if k != "MEDALLION_EMR_JOB_BUNDLE_URI"},
                               "MEDALLION_EMR_PYTHON": "image"})
    submit = start_job_run_request(image, "silver", ["2024-01-01"], "run-1")["jobDriver"]["sparkSubmit"]
    assert submit["entryPoint"] == IMAGE_ENTRY_POINT == "local:///opt/medallion/entrypoint.py"
    assert submit["entryPointArguments"] == ["--layer", "silver", "--partitions", "2024-01-01..2024-01-01"]
    keys = {pair.split("=", 1)[0] for pair in submit["sparkSubmitParameters"].split(" ")[1::2]}
    assert not keys & {"spark.archives", "spark.submit.pyFiles", "spark.executorEnv.PYSPARK_PYTHON",
                       "spark.emr-serverless.driverEnv.PYSPARK_PYTHON",
                       "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON"}
    assert "spark.sql.session.timeZone" in keys  # the project's own Spark configuration still travels

    bundled = start_job_run_request(Settings.from_env(EMR), "silver", ["2024-01-01"], "run-1")
    assert "spark.archives=" in bundled["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"]


def test_local_spark_maps_the_class_archive_and_remote_spark_never_carries_it(tmp_path, monkeypatch):
    archive = tmp_path / "spark-classes.jsa"
    monkeypatch.setattr(class_archive, "CLASS_ARCHIVE", archive)
    local = Settings(spark_master="local[2]")
    assert "spark.driver.defaultJavaOptions" not in spark_conf(local)  # not built: the JVM starts as before
    archive.write_bytes(b"archive")
    assert "spark.driver.defaultJavaOptions" not in spark_conf(local)  # no verified size: never mapped
    class_archive._size_file(archive).write_text("7")
    assert spark_conf(local)["spark.driver.defaultJavaOptions"] == f"-XX:SharedArchiveFile={archive}"
    assert submit_conf(local)["spark.driver.defaultJavaOptions"] == f"-XX:SharedArchiveFile={archive}"
    # A deployment's own JVM options are spark.driver.extraJavaOptions, which Spark appends: both apply.
    tuned = Settings(spark_master="local[2]", spark_conf='{"spark.driver.extraJavaOptions": "-XX:+UseSerialGC"}')
    assert {"spark.driver.defaultJavaOptions", "spark.driver.extraJavaOptions"} <= set(spark_conf(tuned))
    assert "spark.driver.defaultJavaOptions" not in spark_conf(Settings(spark_master="spark://cluster:7077"))
    archive.write_bytes(b"arch")  # truncated since it was verified: a JVM mapping it would crash
    assert "spark.driver.defaultJavaOptions" not in spark_conf(local)
    archive.write_bytes(b"archive")
    # A file of this machine never travels to EMR Serverless.
    request = start_job_run_request(Settings.from_env(EMR), "silver", ["2024-01-01"], "run-1")
    assert "defaultJavaOptions" not in request["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"]


def test_the_class_archive_make_install_built_is_one_the_jvm_maps(tmp_path):
    """The build's own check (``--verify``: a JVM under -Xshare:on, which refuses to start unless it maps the
    archive, runs one job) passes on the archive make install built, and fails on one that is not there."""
    archive = class_archive.CLASS_ARCHIVE
    assert class_archive.usable(archive), f"{archive}: make install builds it (resources/class_archive.py)"
    accepted = class_archive.child("--verify", archive)
    assert accepted.returncode == 0, accepted.stderr[-2000:]
    refused = class_archive.child("--verify", tmp_path / "none.jsa")
    assert refused.returncode != 0 and "Specified shared archive not found" in refused.stderr
