"""Unit tests for silver -> gold KPI tables (transforms/gold.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from pyspark.sql import functions as F

from medallion_pipeline.transforms.gold import daily_kpis, endpoint_stats, funnel, normalize_path, sessions

SILVER_SCHEMA = (
    "event_id string, event_ts timestamp, service string, event_type string, user_id string, session_id string, "
    "method string, path string, status int, latency_ms double, bytes bigint, dt string"
)
_ids = iter(range(1_000_000))


def ev(ts, event_type="http_request", service="web", user="u1", session="s1", method="GET", path="/x",
       status=200, latency=10.0, nbytes=100):
    """One silver row; non-http events default to no method/path/status/latency/bytes."""
    if event_type != "http_request":
        method = path = status = latency = nbytes = None
    return (f"e{next(_ids)}", ts, service, event_type, user, session, method, path, status, latency, nbytes,
            ts.strftime("%Y-%m-%d"))


def _silver(spark, rows):
    return spark.createDataFrame(rows, SILVER_SCHEMA)


D1 = datetime(2024, 1, 1, 10, 0, 0)
D2 = datetime(2024, 1, 2, 10, 0, 0)
D3 = datetime(2024, 1, 3, 10, 0, 0)


def at(day: datetime, seconds: float) -> datetime:
    return day + timedelta(seconds=seconds)


# --- daily_kpis -----------------------------------------------------------------------------------------------


def test_daily_kpis(spark):
    web_d1 = [(200, 10.0, "u1", "s1"), (201, 20.0, "u1", "s1"), (304, 30.0, "u2", "s2"), (404, 40.0, None, None),
              (500, 50.0, "u2", "s2"), (503, 1000.0, "u1", "s1")]
    rows = [ev(at(D1, i), status=s, latency=lat, user=u, session=sid, nbytes=100 * (i + 1))
            for i, (s, lat, u, sid) in enumerate(web_d1)]
    rows += [
        ev(at(D1, 60), event_type="login", user="u3", session="s3"),  # counts for users/sessions, not requests
        ev(at(D1, 0), service="api", status=200, latency=5.0, user="u1", nbytes=7),
        ev(at(D1, 1), service="api", status=302, latency=7.0, user="u1", nbytes=None),
        ev(at(D2, 0), status=500, latency=100.0, user=None, session=None, nbytes=10),
        # api on day 2: events but no http_request.
        ev(at(D2, 0), service="api", event_type="system", user=None, session=None),
        ev(at(D2, 5), service="api", event_type="login", user="u9", session="s9"),
    ]
    got = {(r["dt"], r["service"]): r.asDict() for r in daily_kpis(_silver(spark, rows)).collect()}

    assert set(got) == {("2024-01-01", "web"), ("2024-01-01", "api"), ("2024-01-02", "web"), ("2024-01-02", "api")}

    web = got[("2024-01-01", "web")]
    latencies = [lat for _, lat, _, _ in web_d1]
    assert (web["events"], web["requests"]) == (7, 6)
    assert (web["status_2xx"], web["status_3xx"], web["status_4xx"], web["status_5xx"]) == (2, 1, 1, 2)
    assert web["success_rate"] == pytest.approx(3 / 6)
    assert web["error_rate"] == pytest.approx(2 / 6)
    assert web["client_error_rate"] == pytest.approx(1 / 6)
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
    assert web["latency_p50_ms"] == pytest.approx(p50)
    assert web["latency_p95_ms"] == pytest.approx(p95)
    assert web["latency_p99_ms"] == pytest.approx(p99)
    assert web["unique_users"] == 3  # u1, u2 and the login's u3; NULL not counted
    assert web["sessions"] == 3  # s1, s2, s3
    assert web["bytes"] == 100 + 200 + 300 + 400 + 500 + 600

    api = got[("2024-01-01", "api")]
    assert (api["requests"], api["status_2xx"], api["status_3xx"], api["status_5xx"]) == (2, 1, 1, 0)
    assert (api["success_rate"], api["error_rate"], api["client_error_rate"]) == (1.0, 0.0, 0.0)
    assert api["latency_p50_ms"] == pytest.approx(6.0)
    assert (api["unique_users"], api["sessions"], api["bytes"]) == (1, 1, 7)

    web2 = got[("2024-01-02", "web")]
    assert (web2["requests"], web2["status_5xx"], web2["error_rate"]) == (1, 1, 1.0)
    assert (web2["unique_users"], web2["sessions"], web2["bytes"]) == (0, 0, 10)
    assert web2["latency_p99_ms"] == pytest.approx(100.0)

    idle = got[("2024-01-02", "api")]
    assert (idle["events"], idle["requests"], idle["status_2xx"], idle["status_5xx"]) == (2, 0, 0, 0)
    assert (idle["success_rate"], idle["error_rate"], idle["client_error_rate"]) == (None, None, None)
    assert idle["latency_p50_ms"] is None
    assert (idle["unique_users"], idle["sessions"], idle["bytes"]) == (1, 1, 0)


# --- normalize_path -------------------------------------------------------------------------------------------


def test_normalize_path(spark):
    cases = {
        "/api/items/123?page=2": "/api/items/{id}",
        "/api/items/123#top": "/api/items/{id}",
        "/api/items/550e8400-e29b-41d4-a716-446655440000": "/api/items/{id}",
        "/api/items/DEADBEEFCAFE1234": "/api/items/{id}",
        "/api/users/u_000123": "/api/users/{id}",
        "/api/users/u_000123/orders/456": "/api/users/{id}/orders/{id}",
        # Not ids: stay as they are.
        "/health": "/health",
        "/api/v2/items": "/api/v2/items",
        "/api_v2/items": "/api_v2/items",
        "/api/sessions/s_9f3a2b": "/api/sessions/{id}",
        "/oauth2/token": "/oauth2/token",
        "/api/items/deadbeef": "/api/items/deadbeef",  # too short for a hex id
        "/api/items/abc123": "/api/items/abc123",
        "/api/search?q=123": "/api/search",
        None: None,
    }
    df = spark.createDataFrame([(p,) for p in cases], "path string")
    got = {r["path"]: r["n"] for r in df.select("path", normalize_path(F.col("path")).alias("n")).collect()}
    assert got == cases


# --- endpoint_stats -------------------------------------------------------------------------------------------


def test_endpoint_stats(spark):
    items = [(200, 10.0), (200, 20.0), (500, 30.0), (503, 40.0)]
    rows = [ev(at(D1, i), path=f"/api/items/{100 + i}?v=1", status=s, latency=lat) for i, (s, lat) in enumerate(items)]
    rows += [
        ev(at(D1, 10), method="POST", path="/api/items", status=404, latency=5.0),
        ev(at(D1, 11), path="/health", status=200, latency=1.0),
        ev(at(D1, 12), event_type="view_item"),  # not a request
        ev(at(D2, 0), path="/api/items/7", status=599, latency=2.0),
    ]
    got = {(r["dt"], r["method"], r["path"]): r for r in endpoint_stats(_silver(spark, rows)).collect()}

    assert set(got) == {
        ("2024-01-01", "GET", "/api/items/{id}"),
        ("2024-01-01", "POST", "/api/items"),
        ("2024-01-01", "GET", "/health"),
        ("2024-01-02", "GET", "/api/items/{id}"),
    }
    item = got[("2024-01-01", "GET", "/api/items/{id}")]
    assert item["requests"] == 4
    assert item["error_rate"] == pytest.approx(0.5)
    assert item["latency_p95_ms"] == pytest.approx(np.percentile([lat for _, lat in items], 95))
    post = got[("2024-01-01", "POST", "/api/items")]
    assert (post["requests"], post["error_rate"], post["latency_p95_ms"]) == (1, 0.0, 5.0)  # 4xx is not an error
    assert got[("2024-01-01", "GET", "/health")]["error_rate"] == 0.0
    assert got[("2024-01-02", "GET", "/api/items/{id}")]["error_rate"] == 1.0


# --- sessions -------------------------------------------------------------------------------------------------


def test_sessions(spark):
    rows = [
        ev(at(D1, 0), session="s1"), ev(at(D1, 30), session="s1", event_type="view_item"), ev(at(D1, 120), session="s1"),
        ev(at(D1, 50), session="s2"),  # bounce: one event, 0 s
        ev(at(D1, 0), session="s3"), ev(at(D1, 10.5), session="s3"),
        ev(at(D1, 500), session=None),  # not in a session
        ev(at(D2, 0), session=None), ev(at(D2, 9), session=None),  # a day with events but no sessions
    ]
    got = {r["dt"]: r for r in sessions(_silver(spark, rows)).collect()}

    day = got["2024-01-01"]
    durations = [120.0, 0.0, 10.5]
    assert day["sessions"] == 3
    assert day["mean_duration_s"] == pytest.approx(np.mean(durations))
    assert day["median_duration_s"] == pytest.approx(10.5)
    assert day["events_per_session"] == pytest.approx(6 / 3)
    assert day["bounce_rate"] == pytest.approx(1 / 3)

    empty = got["2024-01-02"]
    assert empty["sessions"] == 0
    assert (empty["mean_duration_s"], empty["median_duration_s"], empty["events_per_session"]) == (None, None, None)
    assert empty["bounce_rate"] is None


# --- funnel ---------------------------------------------------------------------------------------------------


def test_funnel(spark):
    def step(user, event_type, seconds, day=D1):
        return ev(at(day, seconds), event_type=event_type, user=user)

    rows = [
        # u1: the whole funnel in order.
        step("u1", "login", 0), step("u1", "view_item", 10), step("u1", "add_to_cart", 20), step("u1", "purchase", 30),
        # u2: viewed before logging in and never after; its later add_to_cart does not count either.
        step("u2", "view_item", -60), step("u2", "login", 0), step("u2", "add_to_cart", 20),
        # u3: a view at the same instant as the login counts; a purchase without a cart does not.
        step("u3", "login", 0), step("u3", "view_item", 0), step("u3", "purchase", 40),
        # u4: never logs in.
        step("u4", "view_item", 0), step("u4", "add_to_cart", 10), step("u4", "purchase", 20),
        # u5: purchase before the cart step.
        step("u5", "login", 0), step("u5", "view_item", 10), step("u5", "purchase", 15), step("u5", "add_to_cart", 20),
        # anonymous events are not users.
        step(None, "login", 0), step(None, "view_item", 5),
        ev(at(D1, 3), user="u1"),  # unrelated event type
        # Day 2: no funnel events at all. Day 3: a login only.
        ev(at(D2, 0), user="u1"),
        step("u1", "login", 0, day=D3),
    ]
    got = {r["dt"]: r.asDict() for r in funnel(_silver(spark, rows)).collect()}

    assert got["2024-01-01"] == {
        "dt": "2024-01-01",
        "login_users": 4,  # u1, u2, u3, u5
        "view_item_users": 3,  # u1, u3, u5
        "add_to_cart_users": 2,  # u1, u5
        "purchase_users": 1,  # u1
        "login_to_view_item_rate": pytest.approx(3 / 4),
        "view_item_to_add_to_cart_rate": pytest.approx(2 / 3),
        "add_to_cart_to_purchase_rate": pytest.approx(1 / 2),
        "login_to_purchase_rate": pytest.approx(1 / 4),
    }
    assert got["2024-01-02"] == {
        "dt": "2024-01-02", "login_users": 0, "view_item_users": 0, "add_to_cart_users": 0, "purchase_users": 0,
        "login_to_view_item_rate": None, "view_item_to_add_to_cart_rate": None,
        "add_to_cart_to_purchase_rate": None, "login_to_purchase_rate": None,
    }
    assert got["2024-01-03"] == {
        "dt": "2024-01-03", "login_users": 1, "view_item_users": 0, "add_to_cart_users": 0, "purchase_users": 0,
        "login_to_view_item_rate": 0.0, "view_item_to_add_to_cart_rate": None,
        "add_to_cart_to_purchase_rate": None, "login_to_purchase_rate": 0.0,
    }


def test_daily_kpis_counts_events_without_a_service_under_unknown(spark):
    rows = [ev(D1, service=None, status=200), ev(D1, service=None, status=500), ev(D1, service="web")]
    kpis = {r["service"]: r for r in daily_kpis(_silver(spark, rows)).collect()}
    assert set(kpis) == {"unknown", "web"}
    assert kpis["unknown"]["requests"] == 2 and kpis["unknown"]["status_5xx"] == 1
    assert kpis["unknown"]["error_rate"] == 0.5 and kpis["unknown"]["unique_users"] == 1
