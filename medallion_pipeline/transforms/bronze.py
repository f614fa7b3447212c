"""Raw lines to bronze rows: parse, keep what does not parse, rescue what does not fit.

Each line is parsed once into a ``map<string,string>`` (nested values keep their JSON text), so no field
is lost to a fixed read schema. Known fields are cast to their established type; a value that does not
cast is rescued. Unknown fields become new columns under a sanitized name.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from medallion_pipeline.schemas.bronze import CORRUPT, INGESTED_AT, RESCUED, SOURCE_FILE, TYPED_FIELDS

FIELDS = "_fields"


# What the regex ``\s`` matches: a blank line is empty or only these.
_WHITESPACE = (" ", "\t", "\n", "\x0b", "\f", "\r")


def file_path(metadata_path: Column) -> Column:
    """``_metadata.file_path`` decoded: Spark reports a file's path URI-encoded (a space as ``%20``, ``%`` as
    ``%25``) and leaves ``+`` as it is, which ``url_decode`` alone would read as a space. Only a path holding
    a ``%`` is decoded."""
    return F.when(metadata_path.contains("%"), F.url_decode(F.replace(metadata_path, F.lit("+"), F.lit("%2B")))
                  ).otherwise(metadata_path)


def parse_lines(lines: DataFrame) -> DataFrame:
    """Lines (``value``, ``_file_path``: Spark's ``_metadata.file_path``) to a parsed map per line, the landing
    key (``_source_file``, as the ledger spells it) and ``dt``; blank lines go.

    Per line this is one JSON parse and a few string functions: the landing key is the path's last three
    segments (bronze reads only files listed as ``<source>/dt=YYYY-MM-DD/<name>``), and the blank-line regex
    runs only on a line that starts with whitespace (a JSON line starts with ``{``).
    """
    value = F.col("value")
    blank = (F.length(value) == 0) | (F.substring(value, 1, 1).isin(*_WHITESPACE) & value.rlike(r"^\s*$"))
    path = file_path(F.col("_file_path"))
    return (
        lines.where(~blank)
        .withColumn(FIELDS, F.from_json("value", "map<string,string>"))
        .withColumn(SOURCE_FILE, F.substring_index(path, "/", -3))
        .withColumn("dt", F.substring(F.substring_index(path, "/", -2), len("dt=") + 1, len("YYYY-MM-DD")))
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
    """JSON object of the values that did not fit: type conflicts plus unmapped unknown keys.

    Built only for a row that has one (a few map lookups find out): a clean row, the usual one, skips the
    higher-order functions, which Spark evaluates without code generation.
    """
    casts = {k: (fields[k].isNotNull() & F.expr(f"try_cast({FIELDS}['{k}'] AS {t})").isNull())
             for k, t in TYPED_FIELDS.items() if t != "string"}
    conflicts = F.filter(
        F.array(*[
            F.when(conflict, F.struct(F.lit(k).alias("key"), fields[k].alias("value")))
            for k, conflict in casts.items()
        ]),
        lambda entry: entry.isNotNull(),
    )
    known = sorted(set(TYPED_FIELDS) | mapped_keys)
    known_array = F.array(*[F.lit(name) for name in known])
    unmapped = F.map_filter(fields, lambda key, value: ~F.array_contains(known_array, key))
    rescued = F.map_concat(F.map_from_entries(conflicts), unmapped)
    # A key counts once in a map, so the map holds an unmapped key exactly when it has more keys than known ones.
    known_present = sum((F.map_contains_key(fields, k).cast("int") for k in known), F.lit(0))
    has_any = functools.reduce(Column.__or__, casts.values(), F.size(fields) > known_present)
    return F.when(F.coalesce(has_any, F.lit(False)) & (F.size(rescued) > 0), F.to_json(rescued))


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
