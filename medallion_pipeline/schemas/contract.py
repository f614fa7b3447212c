"""Reading a Pandera model as a column contract: Spark column names and types, and per-row violations.

Pandera's PySpark backend validates a whole DataFrame and reports which checks failed, but not how many
rows failed them, nor per partition. The same model is translated here into Spark conditions, so one
aggregation per layer counts failing rows per ``dt`` — the model stays the single source of the rules.
"""

from __future__ import annotations

from functools import reduce

import pandera.pyspark as pa
from pyspark.sql import Column as SparkColumn
from pyspark.sql import functions as F


def contract_columns(schema: pa.DataFrameSchema) -> dict[str, str]:
    """Column name -> Spark SQL type of every column the model declares, in model order."""
    return {name: column.dtype.type.simpleString() for name, column in schema.columns.items()}


def _check_condition(column: str, check) -> SparkColumn:
    """True where a value breaks the check (NULLs are judged by nullability, not here)."""
    c, stats = F.col(column), check.statistics
    conditions = {
        "greater_than_or_equal_to": lambda: c < stats.get("min_value"),
        "greater_than": lambda: c <= stats.get("min_value"),
        "less_than_or_equal_to": lambda: c > stats.get("max_value"),
        "less_than": lambda: c >= stats.get("max_value"),
        "in_range": lambda: (
            (c < stats["min_value"] if stats.get("include_min", True) else c <= stats["min_value"])
            | (c > stats["max_value"] if stats.get("include_max", True) else c >= stats["max_value"])
        ),
        "isin": lambda: ~c.isin(list(stats["allowed_values"])),
        "notin": lambda: c.isin(list(stats["forbidden_values"])),
        "str_matches": lambda: ~c.rlike(stats["pattern"] if stats["pattern"].startswith("^") else "^" + stats["pattern"]),
    }
    if check.name not in conditions:
        raise NotImplementedError(f"no Spark translation for Pandera check {check.name!r} on {column}")
    return F.coalesce(conditions[check.name](), F.lit(False))


def violations(schema: pa.DataFrameSchema, present: list[str]) -> dict[str, SparkColumn]:
    """One boolean Spark condition per (column, rule) of the model, keyed ``column:rule``.

    A declared column missing from the data violates on every row.
    """
    rules: dict[str, SparkColumn] = {}
    for name, column in schema.columns.items():
        if name not in present:
            rules[f"{name}:missing"] = F.lit(True)
            continue
        if not column.nullable:
            rules[f"{name}:not_nullable"] = F.col(name).isNull()
        for check in column.checks:
            rules[f"{name}:{check.name}"] = _check_condition(name, check)
    return rules


def any_violation(rules: dict[str, SparkColumn]) -> SparkColumn:
    return reduce(lambda a, b: a | b, rules.values(), F.lit(False))


def type_mismatches(schema: pa.DataFrameSchema, actual: dict[str, str]) -> list[str]:
    """Declared columns whose Spark type differs from the model's (``column: expected != actual``)."""
    expected = contract_columns(schema)
    return [
        f"{name}: expected {kind}, got {actual[name]}"
        for name, kind in expected.items()
        if name in actual and actual[name] != kind
    ]
