"""Bronze's contract: the v1 event fields with the types they are established with, plus lineage columns.

A value that cannot be represented in its field's type is rescued into ``_rescued_data`` rather than
dropped. Fields outside the model become new string columns (as Auto Loader infers JSON by default).
"""

from __future__ import annotations

import pandera.pyspark as pa
import pyspark.sql.types as T

from medallion_pipeline.schemas.contract import contract_columns


class BronzeAppLogs(pa.DataFrameModel):
    """Bronze structure: every v1 field in its established type, all nullable (bronze filters nothing)."""

    event_id: T.StringType() = pa.Field(nullable=True)
    # Kept as the producer sent it (ISO-8601 or epoch millis); silver parses it.
    event_ts: T.StringType() = pa.Field(nullable=True)
    service: T.StringType() = pa.Field(nullable=True)
    level: T.StringType() = pa.Field(nullable=True)
    event_type: T.StringType() = pa.Field(nullable=True)
    user_id: T.StringType() = pa.Field(nullable=True)
    session_id: T.StringType() = pa.Field(nullable=True)
    method: T.StringType() = pa.Field(nullable=True)
    path: T.StringType() = pa.Field(nullable=True)
    status: T.IntegerType() = pa.Field(nullable=True)
    latency_ms: T.DoubleType() = pa.Field(nullable=True)
    bytes: T.LongType() = pa.Field(nullable=True)
    client_ip: T.StringType() = pa.Field(nullable=True)
    user_agent: T.StringType() = pa.Field(nullable=True)
    email: T.StringType() = pa.Field(nullable=True)
    message: T.StringType() = pa.Field(nullable=True)

    class Config:
        strict = False  # new top-level fields become new columns; lineage columns follow


TYPED_FIELDS: dict[str, str] = contract_columns(BronzeAppLogs.to_schema())

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
