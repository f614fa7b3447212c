"""Bronze columns: the v1 event fields with the types they are established with, plus lineage columns.

A value that cannot be represented in its field's type is rescued into ``_rescued_data`` rather than
dropped. Fields outside this list become new string columns (as Auto Loader infers JSON by default).
"""

from __future__ import annotations

TYPED_FIELDS: dict[str, str] = {
    "event_id": "string",
    # Kept as the producer sent it (ISO-8601 or epoch millis); silver parses it.
    "event_ts": "string",
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

RESCUED = "_rescued_data"
CORRUPT = "_corrupt_record"
SOURCE_FILE = "_source_file"
INGESTED_AT = "_ingested_at"
METADATA_COLUMNS = (RESCUED, CORRUPT, SOURCE_FILE, INGESTED_AT)

PII_COLUMNS = {
    "email": "PII: raw email address (bronze only)",
    "client_ip": "PII: raw client IP address (bronze only)",
    "user_id": "personal data: user identifier",
    "message": "may contain PII in free text",
    CORRUPT: "raw line; may contain PII",
}
