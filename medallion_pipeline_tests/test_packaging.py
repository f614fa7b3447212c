"""The job bundle from ``medallion package-job``: uploaded to S3 (moto), then run from a clean directory."""

from __future__ import annotations

import os
import subprocess
import tarfile
from datetime import date
from pathlib import Path

import boto3
import dagster as dg
import pytest

from medallion_pipeline.cli import main
from medallion_pipeline.defs.bronze import bronze_app_logs
from medallion_pipeline.defs.silver import silver
from medallion_pipeline.jobs.environment import JobEnvironment
from medallion_pipeline.packaging import BUNDLE_FILES
from medallion_pipeline.launchers.launcher import SubprocessSparkLauncher
from medallion_pipeline.sample_data import generate
from medallion_pipeline.settings import Settings
from medallion_pipeline.tables import SILVER_APP_LOGS
from medallion_pipeline_tests.conftest import TEST_SPARK_CONF

DAY = "2024-01-01"
FAST_DRIVER = {**TEST_SPARK_CONF, "spark.log.level": "WARN"}


def spark_runtime(directory: Path) -> Path:
    """What EMR's Spark puts on the driver's path: pyspark and py4j, and nothing else of this environment."""
    import py4j
    import pyspark

    directory.mkdir()
    for module in (pyspark, py4j):
        (directory / module.__name__).symlink_to(Path(module.__file__).parent)
    return directory


@pytest.mark.slow
def test_uploaded_bundle_runs_the_entrypoint_from_a_clean_directory(aws, medallion_env, tmp_path, capsys):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="artifacts")
    assert main(["package-job", "--to", "s3://artifacts/medallion/jobs"]) == 0
    assert "uploaded s3://artifacts/medallion/jobs/pyenv.tar.gz" in capsys.readouterr().out

    clean = tmp_path / "clean"
    clean.mkdir()
    for name in BUNDLE_FILES:
        s3.download_file("artifacts", f"medallion/jobs/{name}", str(clean / name))
    with tarfile.open(clean / "pyenv.tar.gz") as archive:
        archive.extractall(clean / "environment", filter="tar")
    python = clean / "environment" / "bin" / "python"
    runtime = spark_runtime(tmp_path / "spark_runtime")
    driver_env = {"PYTHONPATH": str(runtime), "PYTHONNOUSERSITE": "1"}

    # The unpacked interpreter is self-contained: its own prefix and libpython, and no Dagster.
    probe = subprocess.run(
        [str(python), "-c", "import sys, pandera.pyspark, dagster_pipes; print(sys.prefix); "
         "print(next(l.split()[-1] for l in open('/proc/self/maps') if 'libpython' in l)); import dagster"],
        env={"PATH": "/usr/bin:/bin", **driver_env}, capture_output=True, text=True,
    )
    prefix, libpython = probe.stdout.split()[:2]
    assert prefix == str(clean / "environment") and libpython.startswith(str(clean / "environment"))
    assert "No module named 'dagster'" in probe.stderr

    generate(medallion_env.landing_root, date.fromisoformat(DAY), 1, 200, 3, seed=9)
    launcher = SubprocessSparkLauncher(python=str(python), entry_point=str(clean / "entrypoint.py"),
                                       py_files=str(clean / "medallion_pipeline.zip"), env=driver_env,
                                       spark_conf=FAST_DRIVER)
    with dg.instance_for_test() as instance:
        result = dg.materialize([bronze_app_logs, silver], resources={"spark_launcher": launcher},
                                instance=instance, partition_key=DAY)
    assert result.success
    assert all(c.passed for c in result.get_asset_check_evaluations())
    published = JobEnvironment.from_settings(Settings.from_env()).catalog.current(SILVER_APP_LOGS, [DAY])
    assert published[DAY].row_count > 150
    assert os.path.exists(published[DAY].location)


def test_driver_environment_leaves_out_spark_and_dagster():
    from medallion_pipeline.packaging import driver_distributions

    names = {d.metadata["Name"].lower() for d in driver_distributions()}
    assert {"dagster-pipes", "pandera", "pandas", "pyarrow", "numpy", "boto3", "botocore"} <= names
    assert not names & {"pyspark", "py4j", "dagster", "dagster-aws", "dagster-webserver"}


def test_package_job_needs_an_s3_destination(capsys, monkeypatch):
    monkeypatch.delenv("MEDALLION_EMR_JOB_BUNDLE_URI", raising=False)
    assert main(["package-job", "--to", "/tmp/bundle"]) == 2
    assert "needs --to s3://" in capsys.readouterr().err
