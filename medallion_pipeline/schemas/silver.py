"""Silver's contract: the Pandera model of ``silver.app_logs`` (types, ranges, allowed values, nullability).

The model is the single source of silver's columns: ``CONTRACT_COLUMNS``, the Dagster column schema and
the schema-conformance gate are all derived from it.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandera.pyspark as pa
import pyspark.sql.types as T

from medallion_pipeline.schemas.contract import contract_columns
from medallion_pipeline.settings import DEFAULT_EVENT_TYPES

LEVELS = ("DEBUG", "INFO", "WARN", "ERROR", "FATAL")
HMAC_HEX = r"^[0-9a-f]{64}$"
MASKED_EMAIL = r"^\*\*\*(@.+)?$"

PII_COLUMNS = {
    "client_ip": "PII, pseudonymized: keyed HMAC-SHA256 of the client IP",
    "email": "PII, masked: local part replaced, domain kept",
    "user_id": "personal data: pseudonymous user identifier, kept as the join key",
    "message": "free text; emails and IP addresses masked",
}


class SilverAppLogs(pa.DataFrameModel):
    """One row per distinct event: typed, UTC, PII-safe."""

    event_id: T.StringType() = pa.Field(nullable=False)
    event_ts: T.TimestampType() = pa.Field(nullable=False, description="event time, UTC")
    service: T.StringType() = pa.Field(nullable=True)
    level: T.StringType() = pa.Field(nullable=True, isin=list(LEVELS))
    event_type: T.StringType() = pa.Field(nullable=False, isin=list(DEFAULT_EVENT_TYPES))
    user_id: T.StringType() = pa.Field(nullable=True, description=PII_COLUMNS["user_id"])
    session_id: T.StringType() = pa.Field(nullable=True)
    method: T.StringType() = pa.Field(nullable=True)
    path: T.StringType() = pa.Field(nullable=True)
    status: T.IntegerType() = pa.Field(nullable=True, ge=100, le=599)
    latency_ms: T.DoubleType() = pa.Field(nullable=True, ge=0)
    bytes: T.LongType() = pa.Field(nullable=True, ge=0)
    client_ip: T.StringType() = pa.Field(nullable=True, str_matches=HMAC_HEX, description=PII_COLUMNS["client_ip"])
    user_agent: T.StringType() = pa.Field(nullable=True)
    email: T.StringType() = pa.Field(nullable=True, str_matches=MASKED_EMAIL, description=PII_COLUMNS["email"])
    message: T.StringType() = pa.Field(nullable=True, description=PII_COLUMNS["message"])

    class Config:
        strict = False  # schema-evolved columns and lineage columns are allowed


def silver_schema(allowed_event_types: Iterable[str] = DEFAULT_EVENT_TYPES) -> pa.DataFrameSchema:
    """The silver model with the configured set of allowed event types."""
    return SilverAppLogs.to_schema().update_column(
        "event_type", checks=[pa.Check.isin(list(allowed_event_types))]
    )


CONTRACT_COLUMNS: dict[str, str] = contract_columns(SilverAppLogs.to_schema())
# Per contract column, the silver rows where it is set: a partition stat counted while silver is written
# (``non_null:<column>``), from which the metrics job computes null rates.
NON_NULL = "non_null:"
LINEAGE_COLUMNS = ("_rescued_data", "_source_file", "_ingested_at")
QUARANTINE_REASON = "quarantine_reason"
EVENT_TS_RAW = "event_ts_raw"

# Row-level rules, in the order they are evaluated: a row is quarantined with the first that fails.
# invalid_status: an http_request without a status in 100-599, or any event with a status outside it.
QUARANTINE_REASONS = (
    "missing_event_id",
    "invalid_event_ts",
    "missing_event_type",
    "unknown_event_type",
    "invalid_status",
    "negative_latency",
    "negative_bytes",
)
