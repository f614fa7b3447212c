"""Spark launchers: where a layer job runs. Code above this interface never asks which one it has.

Every launcher runs the same ``LAYER_JOBS`` function and returns the same ``LayerReport``: in-process
(``local``), or in a Spark driver started elsewhere that reports back through Dagster Pipes
(``subprocess`` here, ``emr-serverless`` in ``launchers/emr.py``).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_pyspark import LazyPySparkResource

from medallion_pipeline.jobs.environment import JobEnvironment
from medallion_pipeline.jobs.report import LayerReport, report_from_json
from medallion_pipeline.settings import Settings

Context = dg.AssetExecutionContext


class SparkLauncher(dg.ConfigurableResource):
    """Runs one layer job over a set of partitions and returns its report."""

    def run_layer(self, context: Context, layer: str, dts: list[str], options: dict[str, Any] | None = None) -> LayerReport:
        raise NotImplementedError


class LocalSparkLauncher(SparkLauncher):
    """In-process PySpark inside the Dagster run (``dagster-pyspark``): the embedded default."""

    pyspark: LazyPySparkResource

    def run_layer(self, context, layer, dts, options=None):
        from medallion_pipeline.jobs import LAYER_JOBS

        # Settings are read from the environment at run time: resource config is visible in the UI,
        # and settings include the PII key.
        env = JobEnvironment.from_settings(Settings.from_env(), run_id=context.run.run_id)
        return LAYER_JOBS[layer](self.pyspark.spark_session, sorted(dts), env, **(options or {}))


def pipes_extras(context: Context, layer: str, dts: list[str], options: dict[str, Any] | None,
                 settings: Settings) -> dict[str, Any]:
    """What the driver entrypoint needs, as Pipes extras: never the PII key."""
    return {
        "layer": layer,
        "dts": sorted(dts),
        "run_id": context.run.run_id,
        "options": options or {},
        "settings": settings.without_secrets().to_json(),
    }


def report_from_pipes(invocation: dg.PipesClientCompletedInvocation, layer: str) -> LayerReport:
    """The ``LayerReport`` the driver sent back in chunks; a driver that ended without all of them is a failure."""
    from medallion_pipeline.jobs.entrypoint import REPORT_MESSAGE

    chunks = [m for m in invocation.get_custom_messages() if isinstance(m, dict) and m.get("type") == REPORT_MESSAGE]
    parts = {m["part"]: m["data"] for m in chunks}
    if not chunks or sorted(parts) != list(range(chunks[0]["parts"])):
        raise dg.Failure(f"the {layer} Spark driver finished without reporting its results through Dagster Pipes "
                         f"({len(parts)} of {chunks[0]['parts'] if chunks else '?'} report parts received)")
    return report_from_json("".join(parts[i] for i in sorted(parts)))


class PipesCompleteLineFileMessageReader(dg.PipesFileMessageReader):
    """``PipesFileMessageReader`` that only parses complete lines: the stock reader can catch a large message
    (a layer report) half-written at the end of the file and fail on the fragment."""

    def _reader_thread(self, handler, is_resource_complete) -> None:
        try:
            with open(self._path, encoding="utf-8") as messages:
                pending = ""
                while True:
                    done = is_resource_complete.is_set()  # read before reading, so nothing written after is lost
                    pending += messages.read()
                    *lines, pending = pending.split("\n")
                    for line in lines:
                        if line.strip():
                            handler.handle_message(json.loads(line))
                    if done:
                        if pending.strip():
                            raise ValueError(f"truncated Pipes message: {pending[:200]!r}")
                        return
                    if not lines:
                        time.sleep(0.05)
        except Exception:
            handler.report_pipes_framework_exception(f"{self.__class__.__name__} reader thread", sys.exc_info())
            raise


def entrypoint_path() -> str:
    from medallion_pipeline.jobs import entrypoint

    return entrypoint.__file__


class SubprocessSparkLauncher(SparkLauncher):
    """The driver entrypoint run by ``spark-submit`` as a separate process, through ``PipesSubprocessClient``:
    the same contract as EMR Serverless, on this machine. Empty fields use this environment's pyspark,
    Python and entrypoint; the packaging test points them at an unpacked job bundle instead."""

    spark_submit: str = ""
    python: str = ""
    entry_point: str = ""
    py_files: str = ""
    spark_conf: dict[str, str] = {}
    env: dict[str, str] = {}

    def command(self, settings: Settings, layer: str, dts: list[str]) -> list[str]:
        from medallion_pipeline.resources.spark import submit_conf

        import pyspark

        spark_submit = self.spark_submit or str(Path(pyspark.__file__).parent / "bin" / "spark-submit")
        confs = [arg for key, value in {**submit_conf(settings), **self.spark_conf}.items()
                 for arg in ("--conf", f"{key}={value}")]
        py_files = ["--py-files", self.py_files] if self.py_files else []
        return [spark_submit, "--master", settings.spark_master, *py_files, *confs,
                self.entry_point or entrypoint_path(), "--layer", layer, "--partitions", f"{min(dts)}..{max(dts)}"]

    def run_layer(self, context, layer, dts, options=None):
        settings = Settings.from_env()
        python = self.python or sys.executable
        with tempfile.TemporaryDirectory(prefix="medallion-pipes-") as messages:
            client = dg.PipesSubprocessClient(
                env={"PYSPARK_PYTHON": python, "PYSPARK_DRIVER_PYTHON": python, **self.env},
                message_reader=PipesCompleteLineFileMessageReader(str(Path(messages) / "messages.jsonl")),
            )
            invocation = client.run(
                command=self.command(settings, layer, dts), context=context,
                extras=pipes_extras(context, layer, dts, options, settings),
            )
        return report_from_pipes(invocation, layer)
