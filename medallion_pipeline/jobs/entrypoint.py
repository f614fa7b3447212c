"""The Spark driver for a remote launcher: ``spark-submit entrypoint.py`` locally or on EMR Serverless.

It opens Dagster Pipes, reads what to run from the Pipes extras (layer, partition keys, run id, options,
settings without secrets), runs the same ``LAYER_JOBS`` function the local launcher runs, and sends the
``LayerReport`` back as one custom Pipes message. The Dagster side turns that report into the same
materializations and check results as an in-process run. Only ``dagster-pipes`` is imported, never
``dagster``: the job bundle ships without it.

The PII key never travels in the extras: the driver takes it from ``MEDALLION_PII_KEY`` in its own
environment or reads the Secrets Manager secret ``pii_key_secret_arn`` names (EMR Serverless).
"""

from __future__ import annotations

import os
import sys

# Run as a file, this script's folder (medallion_pipeline/jobs) would come first on sys.path and its
# modules (bronze, gold, report, ...) would shadow top-level packages of the same name.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

from dagster_pipes import PipesContext, open_dagster_pipes  # noqa: E402

REPORT_MESSAGE = "medallion_layer_report"
# The report travels in parts: one CloudWatch log event (how EMR Serverless returns Pipes messages) holds
# at most 256 KB.
REPORT_CHUNK_CHARS = 64 * 1024


def pii_key_for_driver(settings_secret_arn: str, region: str = "") -> str:
    """The PII key from the driver's environment, else from Secrets Manager, else empty: the driver's settings
    then refuse to start (a separate driver never uses the public development key)."""
    if os.environ.get("MEDALLION_PII_KEY"):
        return os.environ["MEDALLION_PII_KEY"]
    if settings_secret_arn:
        import boto3

        client = boto3.client("secretsmanager", **({"region_name": region} if region else {}))
        return client.get_secret_value(SecretId=settings_secret_arn)["SecretString"]
    return ""


def report_payloads(report_json: str) -> list[dict]:
    """The serialized report as custom-message payloads of at most ``REPORT_CHUNK_CHARS`` each."""
    chunks = [report_json[i:i + REPORT_CHUNK_CHARS] for i in range(0, len(report_json), REPORT_CHUNK_CHARS)] or [""]
    return [{"type": REPORT_MESSAGE, "part": part, "parts": len(chunks), "data": chunk}
            for part, chunk in enumerate(chunks)]


def check_arguments(argv: list[str], layer: str, dts: list[str]) -> None:
    """``--layer L --partitions A..B`` name the job run in the Spark/EMR console; they must agree with what
    Dagster sent through Pipes (a mismatch means a stale or foreign bundle)."""
    import argparse

    parser = argparse.ArgumentParser(prog="entrypoint.py")
    parser.add_argument("--layer")
    parser.add_argument("--partitions")
    args = parser.parse_args(argv)
    expected = f"{min(dts)}..{max(dts)}"
    if (args.layer or layer) != layer or (args.partitions or expected) != expected:
        raise ValueError(f"arguments name {args.layer} {args.partitions}, Dagster asked for {layer} {expected}")


def run_from_pipes(pipes: PipesContext, argv: list[str]) -> None:
    from dataclasses import replace

    from pyspark.sql import SparkSession

    from medallion_pipeline.jobs import LAYER_JOBS
    from medallion_pipeline.jobs.environment import JobEnvironment
    from medallion_pipeline.jobs.report import report_to_json
    from medallion_pipeline.resources.spark import submit_conf
    from medallion_pipeline.settings import Settings

    layer, dts = pipes.get_extra("layer"), sorted(pipes.get_extra("dts"))
    check_arguments(argv, layer, dts)
    settings = Settings.from_json(pipes.get_extra("settings"))
    settings = replace(settings, pii_key=pii_key_for_driver(settings.pii_key_secret_arn, settings.emr_region))
    builder = SparkSession.builder
    for key, value in submit_conf(settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    pipes.log.info(f"medallion {layer} over {dts[0]}..{dts[-1]} ({len(dts)} days) on {spark.sparkContext.master}")
    env = JobEnvironment.from_settings(settings, run_id=pipes.get_extra("run_id"))
    report = LAYER_JOBS[layer](spark, dts, env, **(pipes.get_extra("options") or {}))
    for payload in report_payloads(report_to_json(report)):
        pipes.report_custom_message(payload)


def main() -> None:
    with open_dagster_pipes() as pipes:
        run_from_pipes(pipes, sys.argv[1:])


if __name__ == "__main__":
    main()
