"""Raw lines to bronze rows: parse, keep what does not parse, rescue what does not fit.

Each line is parsed once into a ``map<string,string>`` (nested values keep their JSON text), so no field
is lost to a fixed read schema. Known fields are cast to their established type; a value that does not
cast is rescued. Unknown fields become new columns under a sanitized name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from medallion_pipeline.schemas.bronze import CORRUPT, INGESTED_AT, RESCUED, SOURCE_FILE, TYPED_FIELDS

FIELDS = "_fields"
_KEY_OF_PATH = r"([^/]+/dt=\d{4}-\d{2}-\d{2}/[^/]+)$"


def file_path(metadata_path: Column) -> Column:
    """``_metadata.file_path`` decoded: Spark reports a file's path URI-encoded (a space as ``%20``, ``%`` as
    ``%25``) and leaves ``+`` as it is, which ``url_decode`` alone would read as a space."""
    return F.url_decode(F.replace(metadata_path, F.lit("+"), F.lit("%2B")))


def parse_lines(lines: DataFrame) -> DataFrame:
    """Lines (``value``, ``_file_path``: Spark's ``_metadata.file_path``) to a parsed map per line, the landing
    key (``_source_file``, as the ledger spells it) and ``dt``; blank lines go."""
    return (
        lines.where(~F.col("value").rlike(r"^\s*$"))
        .withColumn(FIELDS, F.from_json("value", "map<string,string>"))
        .withColumn(SOURCE_FILE, F.regexp_extract(file_path(F.col("_file_path")), _KEY_OF_PATH, 1))
        .withColumn("dt", F.regexp_extract("_file_path", r"/dt=(\d{4}-\d{2}-\d{2})/", 1))
    )


def column_name_for(key: str) -> str:
    """The column a new JSON field becomes: lower case, ``[a-z0-9_]`` only (Parquet and Athena safe)."""
    return re.sub(r"[^0-9a-z_]", "_", key.strip().lower())


def plan_new_columns(keys: Iterable[str], established: Iterable[str], limit: int) -> dict[str, str]:
    """Map unknown JSON keys to column names.

    A key keeps the column it was established with. A key whose column name would collide with another
    key's, is reserved (leading ``_``), is not a valid identifier, or would exceed ``limit`` new columns
    stays in ``_rescued_data`` instead.
    """
    established = {c.lower() for c in established} - set(TYPED_FIELDS)
    plan: dict[str, str] = {}
    added = 0
    # Keys spelled exactly as an established column go first, so a new variant spelling never takes it.
    for key in sorted(set(keys) - set(TYPED_FIELDS), key=lambda k: (k not in established, k)):
        name = column_name_for(key)
        if not name or name[0] in "_0123456789" or name in TYPED_FIELDS or name in plan.values():
            continue
        if name not in established:
            if added >= limit:
                continue
            added += 1
        plan[key] = name
    return plan


def to_bronze(parsed: DataFrame, new_columns: dict[str, str], ingested_at: Column) -> DataFrame:
    """Parsed lines to bronze rows: typed known fields, new columns, rescued and corrupt values."""
    fields = F.col(FIELDS)
    typed = [F.expr(f"try_cast({FIELDS}['{k}'] AS {t})").alias(k) for k, t in TYPED_FIELDS.items()]
    extras = [fields[key].alias(name) for key, name in sorted(new_columns.items(), key=lambda kv: kv[1])]
    return parsed.select(
        *typed,
        *extras,
        _rescued(fields, set(new_columns)).alias(RESCUED),
        F.when(fields.isNull(), F.col("value")).alias(CORRUPT),
        F.col(SOURCE_FILE),
        ingested_at.alias(INGESTED_AT),
        F.col("dt"),
    )


def _rescued(fields: Column, mapped_keys: set[str]) -> Column:
    """JSON object of the values that did not fit: type conflicts plus unmapped unknown keys."""
    conflicts = F.filter(
        F.array(*[
            F.when(
                fields[k].isNotNull() & F.expr(f"try_cast({FIELDS}['{k}'] AS {t})").isNull(),
                F.struct(F.lit(k).alias("key"), fields[k].alias("value")),
            )
            for k, t in TYPED_FIELDS.items()
            if t != "string"
        ]),
        lambda entry: entry.isNotNull(),
    )
    known = F.array(*[F.lit(k) for k in sorted(set(TYPED_FIELDS) | mapped_keys)])
    unmapped = F.map_filter(fields, lambda k, v: ~F.array_contains(known, k))
    rescued = F.map_concat(F.map_from_entries(conflicts), unmapped)
    return F.when(F.size(rescued) > 0, F.to_json(rescued))


def unknown_keys(lines: DataFrame) -> list[str]:
    """The distinct top-level keys in a batch of JSON lines (``value``) that are not established v1 fields.

    ``json_object_keys`` tokenizes each line without building its map, so this first pass over a batch is
    cheaper than parsing it; lines that are not JSON objects have no keys.
    """
    known = list(TYPED_FIELDS)
    rows = (
        lines.select(F.explode(F.expr("json_object_keys(value)")).alias("key"))
        .where(~F.col("key").isin(known))
        .distinct()
        .collect()
    )
    return sorted(r["key"] for r in rows)
