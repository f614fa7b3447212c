"""Silver to the gold KPI tables. Pure aggregations; every rate is NULL when its denominator is 0.

Exact distinct counts are computed as separate ``distinct`` passes joined back (FIELD_NOTES: several
``countDistinct`` in one aggregation is an order of magnitude slower); percentiles are exact.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

FUNNEL_STEPS = ("login", "view_item", "add_to_cart", "purchase")
UNKNOWN_SERVICE = "unknown"
ID_PLACEHOLDER = "{id}"
_ID_SEGMENT = (
    r"(?<=/)(?:[0-9]+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{12,}|[A-Za-z]{1,4}_[0-9A-Fa-f]{4,})(?=/|$)"
)


def rate(numerator: Column, denominator: Column) -> Column:
    return F.when(denominator > 0, numerator / denominator)


def _requests(silver: DataFrame) -> DataFrame:
    return silver.where(F.col("event_type") == "http_request")


def _distinct_count(silver: DataFrame, keys: list[str], column: str, alias: str) -> DataFrame:
    return (
        silver.where(F.col(column).isNotNull())
        .select(*keys, column)
        .distinct()
        .groupBy(*keys)
        .agg(F.count(F.lit(1)).alias(alias))
    )


def daily_kpis(silver: DataFrame) -> DataFrame:
    """Per (dt, service): request volume and outcome rates, latency percentiles, users, sessions, bytes.

    Events without a service are counted under ``unknown`` (a NULL key would not join across the passes).
    """
    keys = ["dt", "service"]
    silver = silver.withColumn("service", F.coalesce(F.col("service"), F.lit(UNKNOWN_SERVICE)))
    status = F.col("status")
    requests = _requests(silver).groupBy(*keys).agg(
        F.count(F.lit(1)).alias("requests"),
        *[F.count(F.when(status.between(c * 100, c * 100 + 99), 1)).alias(f"status_{c}xx") for c in (2, 3, 4, 5)],
        F.percentile(F.col("latency_ms"), 0.5).alias("latency_p50_ms"),
        F.percentile(F.col("latency_ms"), 0.95).alias("latency_p95_ms"),
        F.percentile(F.col("latency_ms"), 0.99).alias("latency_p99_ms"),
    )
    volume = silver.groupBy(*keys).agg(F.count(F.lit(1)).alias("events"), F.sum("bytes").alias("bytes"))
    users = _distinct_count(silver, keys, "user_id", "unique_users")
    sessions = _distinct_count(silver, keys, "session_id", "sessions")
    joined = (
        volume.join(requests, on=keys, how="left")
        .join(users, on=keys, how="left")
        .join(sessions, on=keys, how="left")
        .fillna(0, subset=["requests", "status_2xx", "status_3xx", "status_4xx", "status_5xx", "unique_users",
                           "sessions", "bytes"])
    )
    return joined.select(
        "dt", "service", "events", "requests", "status_2xx", "status_3xx", "status_4xx", "status_5xx",
        rate(F.col("status_2xx") + F.col("status_3xx"), F.col("requests")).alias("success_rate"),
        rate(F.col("status_5xx"), F.col("requests")).alias("error_rate"),
        rate(F.col("status_4xx"), F.col("requests")).alias("client_error_rate"),
        "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "unique_users", "sessions",
        F.col("bytes").cast("bigint").alias("bytes"),
    )


def normalize_path(path: Column) -> Column:
    """``/api/items/123?page=2`` -> ``/api/items/{id}``: ids (numbers, UUIDs, long hex, ``u_123``) and query
    strings removed so endpoints group."""
    without_query = F.regexp_replace(path, r"[?#].*$", "")
    return F.regexp_replace(without_query, _ID_SEGMENT, ID_PLACEHOLDER)


def endpoint_stats(silver: DataFrame) -> DataFrame:
    """Per (dt, method, normalized path): requests, 5xx error rate, p95 latency."""
    return (
        _requests(silver)
        .withColumn("path", normalize_path(F.col("path")))
        .groupBy("dt", "method", "path")
        .agg(
            F.count(F.lit(1)).alias("requests"),
            F.count(F.when(F.col("status") >= 500, 1)).alias("errors"),
            F.percentile(F.col("latency_ms"), 0.95).alias("latency_p95_ms"),
        )
        .select("dt", "method", "path", "requests", rate(F.col("errors"), F.col("requests")).alias("error_rate"),
                "latency_p95_ms")
    )


def sessions(silver: DataFrame) -> DataFrame:
    """Per dt: sessions, mean/median duration (s), mean events per session, bounce rate (1-event sessions)."""
    per_session = (
        silver.where(F.col("session_id").isNotNull())
        .groupBy("dt", "session_id")
        .agg(
            F.count(F.lit(1)).alias("events"),
            (F.unix_micros(F.max("event_ts")) - F.unix_micros(F.min("event_ts"))).alias("duration_us"),
        )
        .withColumn("duration_s", F.col("duration_us") / 1e6)
    )
    days = silver.select("dt").distinct()
    return days.join(per_session, on="dt", how="left").groupBy("dt").agg(
        F.count("session_id").alias("sessions"),
        F.avg("duration_s").alias("mean_duration_s"),
        F.percentile(F.col("duration_s"), 0.5).alias("median_duration_s"),
        F.avg("events").alias("events_per_session"),
        rate(F.count(F.when(F.col("events") == 1, 1)), F.count("session_id")).alias("bounce_rate"),
    )


def funnel(silver: DataFrame) -> DataFrame:
    """Per dt: users reaching login -> view_item -> add_to_cart -> purchase, in that order in time.

    A user reaches a step when it happens at or after the time they reached the previous step.
    """
    window = Window.partitionBy("dt", "user_id")
    events = silver.where(F.col("user_id").isNotNull() & F.col("event_type").isin(*FUNNEL_STEPS))
    reached = None
    for step in FUNNEL_STEPS:
        condition = F.col("event_type") == step
        if reached is not None:
            condition = condition & (F.col("event_ts") >= F.col(f"_{reached}_at"))
        events = events.withColumn(f"_{step}_at", F.min(F.when(condition, F.col("event_ts"))).over(window))
        reached = step
    per_user = events.groupBy("dt", "user_id").agg(*[F.min(f"_{s}_at").alias(s) for s in FUNNEL_STEPS])
    days = silver.select("dt").distinct()
    counts = days.join(per_user, on="dt", how="left").groupBy("dt").agg(*[F.count(s).alias(f"{s}_users") for s in FUNNEL_STEPS])
    steps = [F.col(f"{s}_users") for s in FUNNEL_STEPS]
    return counts.select(
        "dt",
        *steps,
        rate(steps[1], steps[0]).alias("login_to_view_item_rate"),
        rate(steps[2], steps[1]).alias("view_item_to_add_to_cart_rate"),
        rate(steps[3], steps[2]).alias("add_to_cart_to_purchase_rate"),
        rate(steps[3], steps[0]).alias("login_to_purchase_rate"),
    )
