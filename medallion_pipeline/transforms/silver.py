"""Bronze rows to silver: typed, UTC, PII-safe, checked row by row, deduplicated on ``event_id``.

Every function is ``DataFrame -> DataFrame`` (or builds one) so they chain with ``df.transform``.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from medallion_pipeline.schemas.bronze import CORRUPT, INGESTED_AT, RESCUED, SOURCE_FILE
from medallion_pipeline.schemas.silver import (
    CONTRACT_COLUMNS,
    EVENT_TS_RAW,
    LEVELS,
    LINEAGE_COLUMNS,
    QUARANTINE_REASON,
)
from medallion_pipeline.transforms.pii import mask_email, mask_free_text_columns, pseudonymize

DUPLICATE_RANK = "_duplicate_rank"


def parse_event_ts(raw: Column) -> Column:
    """ISO-8601 with offset, or epoch milliseconds, to a UTC timestamp; anything else to NULL."""
    trimmed = F.trim(raw)
    return (
        F.when(trimmed.rlike(r"^-?\d{1,16}$"), F.timestamp_millis(trimmed.cast("bigint")))
        .otherwise(F.try_to_timestamp(trimmed))
    )


def normalize(bronze: DataFrame) -> DataFrame:
    """Parsed rows only, with typed and normalized fields (``event_ts`` in UTC, upper-case enums)."""
    return (
        bronze.where(F.col(CORRUPT).isNull())
        .withColumn(EVENT_TS_RAW, F.col("event_ts"))
        .withColumn("event_ts", parse_event_ts(F.col("event_ts")))
        .withColumn("event_id", F.nullif(F.trim("event_id"), F.lit("")))
        .withColumn("event_type", F.lower(F.trim("event_type")))
        .withColumn("level", F.upper(F.trim("level")))
        .withColumn("method", F.upper(F.trim("method")))
        .withColumn("level", F.when(F.col("level").isin(*LEVELS), F.col("level")))
    )


def quarantine_reason(allowed_event_types: Iterable[str]) -> Column:
    """The first row-level rule a row breaks, or NULL for a good row."""
    allowed = list(allowed_event_types)
    rules = [
        (F.col("event_id").isNull(), "missing_event_id"),
        (F.col("event_ts").isNull(), "invalid_event_ts"),
        (F.col("event_type").isNull() | (F.col("event_type") == ""), "missing_event_type"),
        (~F.col("event_type").isin(*allowed), "unknown_event_type"),
        (
            (F.col("event_type") == "http_request") & F.coalesce(~F.col("status").between(100, 599), F.lit(True))
            | ~F.col("status").between(100, 599),
            "invalid_status",
        ),
        (F.col("latency_ms") < 0, "negative_latency"),
        (F.col("bytes") < 0, "negative_bytes"),
    ]
    reason = F.lit(None).cast("string")
    for condition, name in reversed(rules):
        reason = F.when(F.coalesce(condition, F.lit(False)), F.lit(name)).otherwise(reason)
    return reason


def flag_rows(normalized: DataFrame, allowed_event_types: Iterable[str]) -> DataFrame:
    """Adds the quarantine reason and, among good rows, a duplicate rank (1 = the copy that is kept).

    The earliest-ingested copy wins; ties break on the source file and then the row content, so the
    choice is deterministic across reruns.
    """
    flagged = normalized.withColumn(QUARANTINE_REASON, quarantine_reason(allowed_event_types))
    # Every column, by name: copies that differ only in a new column or in _rescued_data still rank the
    # same way whatever order the input arrives in.
    content_hash = F.xxhash64(*sorted(c for c in normalized.columns if c != INGESTED_AT))
    window = Window.partitionBy("dt", "event_id", F.col(QUARANTINE_REASON).isNull()).orderBy(
        F.col(INGESTED_AT).asc_nulls_last(), F.col(SOURCE_FILE), content_hash
    )
    return flagged.withColumn(
        DUPLICATE_RANK, F.when(F.col(QUARANTINE_REASON).isNull(), F.row_number().over(window))
    )


def free_text_columns(df: DataFrame) -> list[str]:
    """String columns masked as free text: ``message``, ``path``, ``user_agent``, ``_rescued_data``, the raw
    ``event_ts`` text and every string column that arrived after v1 — a new field (``debug_email``) or a
    differently-cased known one rescued as JSON can hold anything."""
    strings = {f.name for f in df.schema.fields if f.dataType.simpleString() == "string"}
    named = [c for c in ("message", "path", "user_agent", RESCUED, EVENT_TS_RAW) if c in strings]
    return named + [c for c in extra_columns(df) if c in strings]


def protect_pii(df: DataFrame, pii_key: bytes) -> DataFrame:
    """Masks ``email`` and PII in every free-text column; pseudonymizes ``client_ip`` with a keyed HMAC.

    The raw ``event_ts`` text is published only with quarantined rows: ``select_quarantine`` masks it there,
    on those rows alone (on every row it was a third of silver's masking).
    """
    protected = pseudonymize(df, ["client_ip"], pii_key).withColumn("email", mask_email(F.col("email")))
    return mask_free_text_columns(protected, [c for c in free_text_columns(df) if c != EVENT_TS_RAW])


def extra_columns(df: DataFrame) -> list[str]:
    """Columns that arrived after v1 (schema evolution), carried through silver as-is."""
    fixed = {*CONTRACT_COLUMNS, *LINEAGE_COLUMNS, CORRUPT, EVENT_TS_RAW, QUARANTINE_REASON, DUPLICATE_RANK, "dt"}
    return sorted(c for c in df.columns if c not in fixed)


def select_silver(flagged: DataFrame) -> DataFrame:
    """The published silver rows: good rows, first copy of each ``event_id``, in contract order."""
    return flagged.where(F.col(QUARANTINE_REASON).isNull() & (F.col(DUPLICATE_RANK) == 1)).select(
        *CONTRACT_COLUMNS, *extra_columns(flagged), *LINEAGE_COLUMNS, "dt"
    )


def select_quarantine(flagged: DataFrame) -> DataFrame:
    """Rows that broke a row-level rule, with the reason and the original ``event_ts`` text (PII masked)."""
    quarantined = flagged.where(F.col(QUARANTINE_REASON).isNotNull())
    return mask_free_text_columns(quarantined, [EVENT_TS_RAW]).select(
        QUARANTINE_REASON, *CONTRACT_COLUMNS, EVENT_TS_RAW, *extra_columns(flagged), *LINEAGE_COLUMNS, "dt"
    )
