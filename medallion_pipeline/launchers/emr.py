"""The EMR Serverless launcher: the driver entrypoint as an EMR Serverless job run, through Dagster Pipes.

Packaging (default): the job bundle written by ``medallion package-job`` under ``MEDALLION_EMR_JOB_BUNDLE_URI``
holds ``entrypoint.py`` (the entry point), ``medallion_pipeline.zip`` (``--py-files``) and ``pyenv.tar.gz``, a
relocatable Python 3.11 with the driver's dependencies, unpacked by ``spark.archives`` as ``./environment``.
The alternative (``MEDALLION_EMR_PYTHON=image``) is the application's custom image,
``deploy/docker/emr-serverless.Dockerfile``: Python, the package and the entry point are in the image (its
``PYSPARK_PYTHON``), so the request names the image's entry point and carries no archive, zip or Python path.

Messages: the driver writes Pipes messages to stdout, which EMR Serverless ships to CloudWatch Logs. The
stock client starts reading them only once the job has ended; this one points the reader at the driver's
log stream as soon as the job run exists, so logs and results arrive while the job runs.
"""

from __future__ import annotations

import time
from typing import Any

import boto3
import dagster as dg
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._core.pipes.utils import open_pipes_session
from dagster_aws.pipes import PipesCloudWatchMessageReader, PipesEMRServerlessClient

from medallion_pipeline.jobs.report import LayerReport
from medallion_pipeline.launchers.launcher import SparkLauncher, pipes_extras, report_from_pipes
from medallion_pipeline.resources.spark import submit_conf
from medallion_pipeline.settings import Settings

ENVIRONMENT = "./environment"  # where spark.archives unpacks pyenv.tar.gz in the driver and executors
IMAGE_ENTRY_POINT = "local:///opt/medallion/entrypoint.py"  # where the custom image puts the entry point
DRIVER = "SPARK_DRIVER"
RUNNING_STATES = ("SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "QUEUED")
# Local-mode settings that would disable EMR Serverless's own Spark UI and progress reporting.
# The class archive is a file of this machine's virtualenv (resources/class_archive.py).
_LOCAL_ONLY_CONF = ("spark.ui.enabled", "spark.ui.showConsoleProgress", "spark.driver.defaultJavaOptions")


def partition_range(dts: list[str]) -> str:
    return f"{min(dts)}..{max(dts)}"


def start_job_run_request(settings: Settings, layer: str, dts: list[str], run_id: str) -> dict[str, Any]:
    """The complete ``StartJobRun`` request for one layer over a partition range (Pipes adds its own confs)."""
    conf = {k: v for k, v in submit_conf(settings).items() if k not in _LOCAL_ONLY_CONF}
    if settings.emr_python == "image":
        entry_point = IMAGE_ENTRY_POINT
    else:
        bundle, python = settings.emr_job_bundle_uri.rstrip("/"), f"{ENVIRONMENT}/bin/python"
        entry_point = f"{bundle}/entrypoint.py"
        conf.update({
            "spark.archives": f"{bundle}/pyenv.tar.gz#environment",
            "spark.submit.pyFiles": f"{bundle}/medallion_pipeline.zip",
            "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON": python,
            "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": python,
            "spark.executorEnv.PYSPARK_PYTHON": python,
        })
    if any(" " in f"{k}={v}" for k, v in conf.items()):
        raise ValueError("sparkSubmitParameters is split on spaces: a Spark conf value may not contain one")
    return {
        "applicationId": settings.emr_application_id,
        "executionRoleArn": settings.emr_execution_role_arn,
        "name": f"medallion-{layer}-{partition_range(dts)}",
        "executionTimeoutMinutes": settings.emr_timeout_minutes,
        "jobDriver": {"sparkSubmit": {
            "entryPoint": entry_point,
            "entryPointArguments": ["--layer", layer, "--partitions", partition_range(dts)],
            "sparkSubmitParameters": " ".join(f"--conf {k}={v}" for k, v in conf.items()),
        }},
        "configurationOverrides": {"monitoringConfiguration": {"cloudWatchLoggingConfiguration": {
            "enabled": True,
            "logGroupName": settings.emr_log_group,
            "logTypes": {DRIVER: ["STDOUT", "STDERR"], "SPARK_EXECUTOR": ["STDERR"]},
        }}},
        "tags": {
            "dagster/run_id": run_id,
            "medallion/layer": layer,
            "medallion/partition_start": min(dts),
            "medallion/partition_end": max(dts),
        },
    }


class MedallionEMRServerlessClient(PipesEMRServerlessClient):
    """``PipesEMRServerlessClient`` that reads Pipes messages while the job runs, fails with the job run id and
    EMR's state details, and cancels the job run when the Dagster run is terminated."""

    def __init__(self, *, log_dashboard_url: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.log_dashboard_url = log_dashboard_url

    def run(self, *, context, start_job_run_params, extras=None) -> dg.PipesClientCompletedInvocation:
        with open_pipes_session(context=context, message_reader=self.message_reader,
                                context_injector=self.context_injector, extras=extras) as session:
            params = self._enrich_start_params(context, session, start_job_run_params)
            started = self._start(context, params)
            try:
                self._follow_driver_logs(context, session, started, params)
                completed = self._wait_for_completion(context, started)
                return dg.PipesClientCompletedInvocation(session, metadata=self._extract_dagster_metadata(completed))
            except DagsterExecutionInterruptedError:
                if self.forward_termination:
                    context.log.warning(f"[pipes] Dagster run terminated: cancelling EMR Serverless job run "
                                        f"{started['jobRunId']}")
                    self._terminate(context, started)
                raise

    def _follow_driver_logs(self, context, session, started, params) -> None:
        """Point the message reader at the driver's stdout stream now, not after the job has ended.

        The driver's stderr (Spark's own log) is not copied into Dagster: dagster-aws's CloudWatch log reader
        polls an idle stream in a tight loop. Its location is logged instead.
        """
        logging = params["configurationOverrides"]["monitoringConfiguration"]["cloudWatchLoggingConfiguration"]
        stream = f"/applications/{started['applicationId']}/jobs/{started['jobRunId']}/{DRIVER}"
        session.report_launched({"extras": {"log_group": logging["logGroupName"], "log_stream": f"{stream}/stdout"}})
        context.log.info(f"[pipes] reading Pipes messages from CloudWatch Logs {logging['logGroupName']} "
                         f"{stream}/stdout; Spark's driver log is {stream}/stderr")

    def _wait_for_completion(self, context, start_response):
        app, job = start_response["applicationId"], start_response["jobRunId"]
        dashboard_logged = not self.log_dashboard_url
        while True:
            run = self.client.get_job_run(applicationId=app, jobRunId=job)["jobRun"]
            state = run["state"]
            if state == "SUCCESS":
                context.log.info(f"[pipes] EMR Serverless job run {job} succeeded")
                return {"jobRun": run}
            if state in ("FAILED", "CANCELLED", "CANCELLING"):
                raise dg.Failure(
                    description=f"EMR Serverless job run {job} (application {app}) ended {state}: "
                    f"{run.get('stateDetails') or 'no state details'}",
                    metadata={"emr_job_run_id": job, "emr_application_id": app, "emr_state": state,
                              "emr_state_details": run.get("stateDetails") or "-"},
                )
            if state not in RUNNING_STATES:
                raise dg.Failure(f"EMR Serverless job run {job} is in an unexpected state {state!r}")
            if state == "RUNNING" and not dashboard_logged:
                url = self.client.get_dashboard_for_job_run(applicationId=app, jobRunId=job).get("url")
                context.log.info(f"[pipes] EMR Serverless job run {job} is running; Spark UI: {url}")
                dashboard_logged = True
            time.sleep(self.poll_interval)


class EmrServerlessSparkLauncher(SparkLauncher):
    """Runs the layer job on EMR Serverless (``MEDALLION_SPARK_MODE=emr-serverless``). Settings (application,
    role, bundle, logging) are read from ``MEDALLION_EMR_*`` at run time, as the local launcher reads its own."""

    message_poll_interval_seconds: float = 5.0
    log_dashboard_url: bool = True

    def client(self, settings: Settings) -> MedallionEMRServerlessClient:
        region = {"region_name": settings.emr_region} if settings.emr_region else {}
        reader = PipesCloudWatchMessageReader(client=boto3.client("logs", **region))
        reader.interval = self.message_poll_interval_seconds
        return MedallionEMRServerlessClient(
            client=boto3.client("emr-serverless", **region), message_reader=reader,
            poll_interval=settings.emr_poll_interval_seconds, forward_termination=True,
            log_dashboard_url=self.log_dashboard_url,
        )

    def run_layer(self, context, layer, dts, options=None) -> LayerReport:
        settings = Settings.from_env()
        request = start_job_run_request(settings, layer, dts, context.run.run_id)
        invocation = self.client(settings).run(
            context=context, start_job_run_params=request,
            extras=pipes_extras(context, layer, dts, options, settings),
        )
        return report_from_pipes(invocation, layer)
