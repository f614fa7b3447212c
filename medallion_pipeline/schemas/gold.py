"""Gold contracts: one Pandera model per KPI table (types, non-negative counts, rates within [0, 1])."""

from __future__ import annotations

import pandera.pyspark as pa
import pyspark.sql.types as T

UNIT = {"min_value": 0, "max_value": 1}


class DailyKpis(pa.DataFrameModel):
    service: T.StringType() = pa.Field(nullable=True)
    events: T.LongType() = pa.Field(ge=0)
    requests: T.LongType() = pa.Field(ge=0)
    status_2xx: T.LongType() = pa.Field(ge=0)
    status_3xx: T.LongType() = pa.Field(ge=0)
    status_4xx: T.LongType() = pa.Field(ge=0)
    status_5xx: T.LongType() = pa.Field(ge=0)
    success_rate: T.DoubleType() = pa.Field(nullable=True, in_range=UNIT)
    error_rate: T.DoubleType() = pa.Field(nullable=True, in_range=UNIT)
    client_error_rate: T.DoubleType() = pa.Field(nullable=True, in_range=UNIT)
    latency_p50_ms: T.DoubleType() = pa.Field(nullable=True, ge=0)
    latency_p95_ms: T.DoubleType() = pa.Field(nullable=True, ge=0)
    latency_p99_ms: T.DoubleType() = pa.Field(nullable=True, ge=0)
    unique_users: T.LongType() = pa.Field(ge=0)
    sessions: T.LongType() = pa.Field(ge=0)
    bytes: T.LongType() = pa.Field(nullable=True, ge=0)


class EndpointStats(pa.DataFrameModel):
    method: T.StringType() = pa.Field(nullable=True)
    path: T.StringType() = pa.Field(nullable=True)
    requests: T.LongType() = pa.Field(ge=0)
    error_rate: T.DoubleType() = pa.Field(nullable=True, in_range=UNIT)
    latency_p95_ms: T.DoubleType() = pa.Field(nullable=True, ge=0)


class Sessions(pa.DataFrameModel):
    sessions: T.LongType() = pa.Field(ge=0)
    mean_duration_s: T.DoubleType() = pa.Field(nullable=True, ge=0)
    median_duration_s: T.DoubleType() = pa.Field(nullable=True, ge=0)
    events_per_session: T.DoubleType() = pa.Field(nullable=True, ge=0)
    bounce_rate: T.DoubleType() = pa.Field(nullable=True, in_range=UNIT)


class Funnel(pa.DataFrameModel):
    login_users: T.LongType() = pa.Field(ge=0)
    view_item_users: T.LongType() = pa.Field(ge=0)
    add_to_cart_users: T.LongType() = pa.Field(ge=0)
    purchase_users: T.LongType() = pa.Field(ge=0)
    login_to_view_item_rate: T.DoubleType() = pa.Field(nullable=True, in_range=UNIT)
    view_item_to_add_to_cart_rate: T.DoubleType() = pa.Field(nullable=True, in_range=UNIT)
    add_to_cart_to_purchase_rate: T.DoubleType() = pa.Field(nullable=True, in_range=UNIT)
    login_to_purchase_rate: T.DoubleType() = pa.Field(nullable=True, in_range=UNIT)
