"""The driver entrypoint's own rules: arguments, the report in parts, where the PII key comes from."""

from __future__ import annotations

import json

import boto3
import pytest

from medallion_pipeline.jobs.entrypoint import REPORT_CHUNK_CHARS, check_arguments, pii_key_for_driver, report_payloads
from medallion_pipeline.jobs.report import (
    CheckOutcome,
    LayerReport,
    PartitionResult,
    TableReport,
    report_from_json,
    report_to_json,
)
from medallion_pipeline.resources.catalog import Column
from medallion_pipeline.tables import SILVER_APP_LOGS

DTS = ["2024-01-01", "2024-01-02"]


def test_arguments_must_match_what_dagster_asked_for():
    check_arguments(["--layer", "silver", "--partitions", "2024-01-01..2024-01-02"], "silver", DTS)
    check_arguments([], "silver", DTS)
    with pytest.raises(ValueError, match="Dagster asked for gold 2024-01-01..2024-01-02"):
        check_arguments(["--layer", "silver", "--partitions", "2024-01-01..2024-01-02"], "gold", DTS)
    with pytest.raises(ValueError, match="arguments name"):
        check_arguments(["--partitions", "2024-01-01..2024-01-05"], "silver", DTS)


def test_report_travels_in_parts_and_round_trips():
    table = TableReport(
        SILVER_APP_LOGS,
        partitions={dt: PartitionResult(dt=dt, published=True, row_count=5, stats={"silver_rows": 5.0}) for dt in DTS},
        columns=(Column("event_id", "string"), Column("client_ip", "string", pii=True, description="HMAC")),
        checks=[CheckOutcome("event_id_not_null", DTS[0], False, "ERROR", observed=2.0, threshold=0.0,
                             failing_rows=2, samples=[{"event_id": None, "note": "x" * 200_000}])],
    )
    report = LayerReport(layer="silver", dts=DTS, duration_s=1.5)
    report.add(table)
    payloads = report_payloads(report_to_json(report))
    assert len(payloads) > 1 and all(len(p["data"]) <= REPORT_CHUNK_CHARS for p in payloads)
    assert all(len(json.dumps(p)) < 256 * 1024 for p in payloads)  # one CloudWatch event each
    assert report_from_json("".join(p["data"] for p in payloads)) == report


def test_pii_key_from_the_environment_or_secrets_manager(aws, monkeypatch):
    arn = boto3.client("secretsmanager").create_secret(Name="medallion/pii", SecretString="from-secrets-manager")["ARN"]
    monkeypatch.delenv("MEDALLION_PII_KEY", raising=False)
    assert pii_key_for_driver(arn) == "from-secrets-manager"
    assert pii_key_for_driver("") == ""
    monkeypatch.setenv("MEDALLION_PII_KEY", "from-env")
    assert pii_key_for_driver(arn) == "from-env"
