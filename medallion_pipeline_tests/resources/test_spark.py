"""One Spark configuration for every launcher, with MEDALLION_SPARK_CONF applied last."""

from __future__ import annotations

import subprocess
import sys

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


def first_job_with(options: str, cwd) -> subprocess.CompletedProcess:
    """A fresh Python + JVM in ``cwd``: a local SparkSession with these driver JVM options, and one job."""
    code = ("from medallion_pipeline.resources.spark import build_spark_session\n"
            "from medallion_pipeline.settings import Settings\n"
            "spark = build_spark_session(Settings(spark_master='local[1]'), "
            f"extra={{'spark.driver.defaultJavaOptions': {options!r}}})\n"
            "print(spark.range(7).count())\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_the_class_archive_make_install_built_is_one_the_jvm_maps(tmp_path):
    """-Xshare:on makes a JVM refuse to start unless it maps the archive: the one make install built is
    accepted by the JDK and Spark jars here, and an archive that is not there is refused (the check can fail)."""
    archive = class_archive.CLASS_ARCHIVE
    assert class_archive.usable(archive), f"{archive}: make install builds it (resources/class_archive.py)"
    started = first_job_with(f"-XX:SharedArchiveFile={archive} -Xshare:on", tmp_path)
    assert started.returncode == 0 and started.stdout.strip().endswith("7"), started.stderr[-2000:]
    refused = first_job_with(f"-XX:SharedArchiveFile={tmp_path / 'none.jsa'} -Xshare:on", tmp_path)
    assert refused.returncode != 0 and "Specified shared archive not found" in refused.stdout + refused.stderr
