"""Silver columns: the typed, PII-safe contract of ``silver.app_logs`` and ``silver.quarantine``."""

from __future__ import annotations

CONTRACT_COLUMNS: dict[str, str] = {
    "event_id": "string",
    "event_ts": "timestamp",
    "service": "string",
    "level": "string",
    "event_type": "string",
    "user_id": "string",
    "session_id": "string",
    "method": "string",
    "path": "string",
    "status": "int",
    "latency_ms": "double",
    "bytes": "bigint",
    "client_ip": "string",
    "user_agent": "string",
    "email": "string",
    "message": "string",
}
LINEAGE_COLUMNS = ("_rescued_data", "_source_file", "_ingested_at")
QUARANTINE_REASON = "quarantine_reason"
EVENT_TS_RAW = "event_ts_raw"

PII_COLUMNS = {
    "client_ip": "PII, pseudonymized: keyed HMAC-SHA256 of the client IP",
    "email": "PII, masked: local part replaced, domain kept",
    "user_id": "personal data: pseudonymous user identifier, kept as the join key",
    "message": "free text; emails and IP addresses masked",
}

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

LEVELS = ("DEBUG", "INFO", "WARN", "ERROR", "FATAL")
