"""The EMR Serverless launcher against moto on 127.0.0.1.

moto's EMR Serverless runs nothing: a job run is created in the state ``JOB_STATUS``. The tests make it start
``RUNNING`` and play the driver themselves from a thread (FIELD_NOTES): they write the Pipes messages the
entrypoint would write to the driver's CloudWatch stream, then move the job run to its final state in the
in-process moto backend.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import boto3
import dagster as dg
import pytest
from moto.emrserverless import models as emr_models

from medallion_pipeline.defs.metrics import metrics_dq
from medallion_pipeline.jobs.entrypoint import report_payloads
from medallion_pipeline.jobs.report import LayerReport, PartitionResult, TableReport, report_to_json
from medallion_pipeline.launchers.emr import EmrServerlessSparkLauncher
from medallion_pipeline.tables import METRICS_DQ

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/medallion-emr-job"
BUNDLE = "s3://artifacts/medallion/jobs"
LOG_GROUP = "/medallion/emr-serverless"
DTS = ["2024-01-01", "2024-01-02"]
RANGE = {"dagster/asset_partition_range_start": DTS[0], "dagster/asset_partition_range_end": DTS[-1]}
SETTINGS = {
    "MEDALLION_SPARK_MODE": "emr-serverless",
    "MEDALLION_EMR_EXECUTION_ROLE_ARN": ROLE,
    "MEDALLION_EMR_JOB_BUNDLE_URI": BUNDLE,
    "MEDALLION_EMR_LOG_GROUP": LOG_GROUP,
    "MEDALLION_EMR_POLL_INTERVAL_SECONDS": "0.2",
    "MEDALLION_PII_KEY_SECRET_ARN": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:medallion/pii-AbCdEf",
    "MEDALLION_LAKE_ROOT": "s3://lake/root",
    "MEDALLION_LANDING_ROOT": "s3://landing/logs",
    "MEDALLION_CATALOG_URI": "glue://medallion_prod?state_table=medallion-state",
}


@pytest.fixture
def application(aws, monkeypatch, tmp_path) -> str:
    monkeypatch.setattr(emr_models, "JOB_STATUS", "RUNNING")
    app = boto3.client("emr-serverless").create_application(
        name="medallion", releaseLabel="emr-7.5.0", type="SPARK")["applicationId"]
    boto3.client("logs").create_log_group(logGroupName=LOG_GROUP)
    for name, value in {**SETTINGS, "MEDALLION_EMR_APPLICATION_ID": app}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    return app


def job_runs(app: str) -> list:
    return emr_models.emrserverless_backends[ACCOUNT]["us-east-1"].job_runs.get(app, [])


class FakeDriver(threading.Thread):
    """Plays the Spark driver of the first job run of ``app``: ``script(driver, job_run)`` does the acting."""

    def __init__(self, app: str, script):
        super().__init__(daemon=True)
        self.app, self.script, self.error = app, script, None
        self.logs = boto3.client("logs")

    def run(self):
        try:
            deadline = time.monotonic() + 30
            while not job_runs(self.app) and time.monotonic() < deadline:
                time.sleep(0.05)
            job = job_runs(self.app)[0]
            self.stream = f"/applications/{self.app}/jobs/{job.id}/SPARK_DRIVER/stdout"
            self.logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=self.stream)
            self.script(self, job)
        except Exception as exc:  # surfaced by the test
            self.error = exc

    def say(self, method: str, params: dict | None = None) -> None:
        line = json.dumps({"__dagster_pipes_version": "0.1", "method": method, "params": params})
        self.logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=self.stream,
                                 logEvents=[{"timestamp": int(time.time() * 1000), "message": line}])


def metrics_report() -> LayerReport:
    table = TableReport(METRICS_DQ, partitions={
        dt: PartitionResult(dt=dt, published=True, row_count=40 + i, version_id=f"v{i}",
                            location=f"s3://lake/root/metrics/dq/v{i}/dt={dt}") for i, dt in enumerate(DTS)})
    report = LayerReport(layer="metrics", dts=DTS)
    report.add(table)
    return report


def materialize_metrics(instance) -> dg.ExecuteInProcessResult:
    launcher = EmrServerlessSparkLauncher(message_poll_interval_seconds=1, log_dashboard_url=False)
    return dg.materialize([metrics_dq], resources={"spark_launcher": launcher}, instance=instance, tags=RANGE,
                          raise_on_error=False)


def conf_pairs(spark_submit_parameters: str) -> dict[str, str]:
    words = spark_submit_parameters.split()
    assert words[::2] == ["--conf"] * (len(words) // 2)
    return dict(pair.split("=", 1) for pair in words[1::2])


def test_start_job_run_request_and_results_read_while_running(application):
    seen_while_running = threading.Event()

    def script(driver: FakeDriver, job):
        driver.say("opened", {"extras": {}})
        driver.say("log", {"message": "medallion metrics driver is running", "level": "INFO"})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not seen_while_running.is_set():
            runs = instance.get_runs()
            if runs and any("driver is running" in (e.message or "") for e in instance.all_logs(runs[0].run_id)):
                seen_while_running.set()
            time.sleep(0.2)
        for payload in report_payloads(report_to_json(metrics_report())):
            driver.say("report_custom_message", {"payload": payload})
        driver.say("closed", {})
        job.state = "SUCCESS"

    with dg.instance_for_test() as instance:
        driver = FakeDriver(application, script)
        driver.start()
        result = materialize_metrics(instance)
        driver.join(10)
        assert driver.error is None
        assert result.success
        assert seen_while_running.is_set()  # the message reader worked while the job run was RUNNING
        run_id = result.run_id
        record = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(METRICS_DQ.asset_path), asset_partitions=[DTS[1]]), limit=1
        ).records[0]
        assert record.asset_materialization.metadata["dagster/row_count"].value == 41
        assert record.asset_materialization.metadata["version_id"].value == "v1"

    [job] = job_runs(application)
    assert job.execution_role_arn == ROLE
    assert job.name == "medallion-metrics-2024-01-01..2024-01-02"
    assert job.execution_timeout_minutes == 360
    submit = job.job_driver["sparkSubmit"]
    assert submit["entryPoint"] == f"{BUNDLE}/entrypoint.py"
    assert submit["entryPointArguments"] == ["--layer", "metrics", "--partitions", "2024-01-01..2024-01-02"]
    conf = conf_pairs(submit["sparkSubmitParameters"])
    pipes_env = {k for k in conf if k.startswith("spark.emr-serverless.driverEnv.DAGSTER_PIPES_")}
    assert pipes_env == {"spark.emr-serverless.driverEnv.DAGSTER_PIPES_CONTEXT",
                         "spark.emr-serverless.driverEnv.DAGSTER_PIPES_MESSAGES"}
    assert {k: v for k, v in conf.items() if k not in pipes_env} == {
        "spark.archives": f"{BUNDLE}/pyenv.tar.gz#environment",
        "spark.submit.pyFiles": f"{BUNDLE}/medallion_pipeline.zip",
        "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON": "./environment/bin/python",
        "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": "./environment/bin/python",
        "spark.executorEnv.PYSPARK_PYTHON": "./environment/bin/python",
        "spark.app.name": "medallion_pipeline",
        "spark.sql.ansi.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.memory": "4g",
        "spark.sql.shuffle.partitions": "16",
        "spark.sql.files.openCostInBytes": "65536",
        "spark.sql.sources.parallelPartitionDiscovery.threshold": "1000000",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
        "spark.sql.mapKeyDedupPolicy": "LAST_WIN",
    }
    # No PII key travels with the job, only its secret's ARN: every key and every value is checked except the
    # Pipes bootstrap values, random base64 that spells "PII" now and then (it made this test flaky).
    assert not [key for key, value in conf.items()
                if "PII" in f"{key}={'' if key in pipes_env else value}".upper().replace("PII_KEY_SECRET", "")]
    assert job.configuration_overrides == {"monitoringConfiguration": {"cloudWatchLoggingConfiguration": {
        "enabled": True, "logGroupName": LOG_GROUP,
        "logTypes": {"SPARK_DRIVER": ["STDOUT", "STDERR"], "SPARK_EXECUTOR": ["STDERR"]},
    }}}
    assert {k: v for k, v in job.tags.items() if k.startswith("medallion/")} == {
        "medallion/layer": "metrics", "medallion/partition_start": "2024-01-01",
        "medallion/partition_end": "2024-01-02"}
    assert job.tags["dagster/run_id"] == run_id


def materialize_with_driver(application, script):
    """metrics_dq through the EMR launcher while a fake driver plays ``script``; the driver must not error."""
    with dg.instance_for_test() as instance:
        driver = FakeDriver(application, script)
        driver.start()
        result = materialize_metrics(instance)
        driver.join(10)
    assert driver.error is None
    return result


@pytest.mark.parametrize(("state", "details"), [
    ("FAILED", "Job failed, ExitCode: 1. Last few exceptions: ValueError: bad partition"),
    ("CANCELLED", "Job run was cancelled by arn:aws:iam::123456789012:user/ops"),
])
def test_failed_or_cancelled_job_run_fails_with_its_id_and_details(application, state, details):
    def script(driver: FakeDriver, job):
        driver.say("opened", {"extras": {}})
        driver.say("closed", {})
        job.state, job.state_details = state, details

    result = materialize_with_driver(application, script)
    assert not result.success
    [job] = job_runs(application)
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert f"EMR Serverless job run {job.id}" in message and f"ended {state}" in message and details in message


# The run worker of the termination test: metrics_dq through the EMR launcher, recorded in DAGSTER_HOME.
RUN_WORKER = (
    "import json, dagster as dg\n"
    "from medallion_pipeline_tests.launchers.test_emr import materialize_metrics\n"
    "with dg.DagsterInstance.get() as instance:\n"
    "    result = materialize_metrics(instance)\n"
    "print(json.dumps({'success': result.success}))\n"
)
FOLLOWING_THE_DRIVER = "reading Pipes messages from CloudWatch Logs"


def wait_for_log(instance, text: str, worker: subprocess.Popen, timeout_s: float = 120) -> None:
    """Until a run in ``instance`` logged ``text``; fails if the worker exits first or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert worker.poll() is None, worker.communicate()
        if any(text in (e.message or "") for run in instance.get_runs() for e in instance.all_logs(run.run_id)):
            return
        time.sleep(0.2)
    pytest.fail(f"no run logged {text!r} within {timeout_s} s")


def test_terminated_dagster_run_cancels_the_job_run(application):
    # Terminating a run sends SIGINT to its run worker: here a worker process of its own, signalled once it
    # is following the RUNNING job run (never the test process itself).
    worker = subprocess.Popen([sys.executable, "-c", RUN_WORKER], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        with dg.DagsterInstance.get() as instance:
            wait_for_log(instance, FOLLOWING_THE_DRIVER, worker)
            driver = FakeDriver(application, lambda driver, job: driver.say("opened", {"extras": {}}))
            driver.run()  # in this thread: the job run exists, its driver opens the Pipes session
            assert driver.error is None
            worker.send_signal(signal.SIGINT)
            out, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, err
            assert json.loads(out.strip().splitlines()[-1]) == {"success": False}
            [run] = instance.get_runs()
            assert any("cancelling EMR Serverless job run" in (e.message or "") for e in instance.all_logs(run.run_id))
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    [job] = job_runs(application)
    assert job.state == "CANCELLED"
