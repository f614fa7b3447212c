"""Shared fixtures: one SparkSession for the whole suite, and an isolated lake per test."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from medallion_pipeline.jobs.environment import JobEnvironment
from medallion_pipeline.resources.spark import build_spark_session
from medallion_pipeline.settings import Settings

TEST_PII_KEY = "test-pii-key-not-a-secret"
# Small data, two cores (FIELD_NOTES: ~30 % faster with these JVM options). Every Spark the suite starts uses
# it: the suite's session below, and spark-submit drivers and dagster dev's runs (as MEDALLION_SPARK_CONF).
TEST_SPARK_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    "spark.sql.adaptive.enabled": "false",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules marked ``starts_first`` are collected before the rest, which keep their order.

    ``make test`` runs two xdist workers, a module at a time, in collection order (``--dist loadfile
    --no-loadscope-reorder``; xdist's default reorder would put the largest modules by test count first). The
    dagster dev module takes ~8 min: started first, it runs on one worker while the other works through the
    rest; started last, it would run alone at the end.
    """
    items.sort(key=lambda item: item.get_closest_marker("starts_first") is None)


@pytest.fixture(scope="session")
def spark_event_log(tmp_path_factory) -> Path:
    """Where the suite's session writes its Spark event log (the plans a Spark history server shows)."""
    return tmp_path_factory.mktemp("spark-events")


@pytest.fixture(scope="session")
def spark(spark_event_log):
    """One local session for every test, with an event log so tests can read what Spark recorded."""
    event_log = {"spark.eventLog.enabled": "true", "spark.eventLog.dir": spark_event_log.as_uri()}
    session = build_spark_session(Settings(spark_master="local[2]"), extra={**TEST_SPARK_CONF, **event_log})
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        landing_root=str(tmp_path / "landing"),
        lake_root=str(tmp_path / "lake"),
        spark_master="local[2]",
        spark_conf=json.dumps(TEST_SPARK_CONF),
        pii_key=TEST_PII_KEY,
    )


@pytest.fixture
def env(settings: Settings) -> JobEnvironment:
    return JobEnvironment.from_settings(settings, run_id="test-run")


@pytest.fixture
def medallion_env(monkeypatch: pytest.MonkeyPatch, settings: Settings, tmp_path: Path) -> Settings:
    """The same settings exported as MEDALLION_* variables, for code that reads the environment."""
    monkeypatch.setenv("MEDALLION_LANDING_ROOT", settings.landing_root)
    monkeypatch.setenv("MEDALLION_LAKE_ROOT", settings.lake_root)
    monkeypatch.setenv("MEDALLION_PII_KEY", settings.pii_key)
    monkeypatch.setenv("MEDALLION_SPARK_MASTER", settings.spark_master)
    monkeypatch.setenv("MEDALLION_SPARK_CONF", settings.spark_conf)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir(exist_ok=True)
    return settings


def forbidden_strings(*secrets: bytes) -> list[str]:
    """How a secret could show up in a plan, a log or metadata, lower-cased: its hex, and its text where it
    decodes (compare against lower-cased haystacks)."""
    found = []
    for secret in secrets:
        found.append(secret.hex())
        text = secret.decode("latin-1")
        if text.isprintable():
            found.append(text.lower())
    return found


def hostile_long_lines(length: int = 2_000_000) -> dict[str, str]:
    """Lines that make a backtracking regex quadratic: letters, digits and dots, hex and colons, ``a@a@…``."""
    return {
        "letters": "x" * length,
        "digits_and_dots": ("1234567890." * (length // 11 + 1))[:length],
        "hex_and_colons": ("abcd:" * (length // 5 + 1))[:length],
        "a_at": "a@" * (length // 2),
    }


DROP = object()


def event(i: int, dt: str = "2024-01-01", **fields) -> dict:
    """A valid v1 http_request event; keyword arguments override or add fields (``DROP`` removes one)."""
    base = {
        "event_id": f"e{i}",
        "event_ts": f"{dt}T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "service": "gateway",
        "level": "INFO",
        "event_type": "http_request",
        "user_id": "u_1",
        "session_id": "s_1",
        "method": "GET",
        "path": f"/api/items/{i}",
        "status": 200,
        "latency_ms": 10.0,
        "bytes": 100,
        "client_ip": "203.0.113.7",
        "user_agent": "pytest",
        "email": "jane.doe@example.com",
        "message": "ok",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not DROP}


def write_landing(root: str | Path, dt: str, name: str, lines: list, source: str = "web", gz: bool = False) -> Path:
    """Write one landing file; dict lines are JSON-encoded, str/bytes lines are written as they are."""
    folder = Path(root) / source / f"dt={dt}"
    folder.mkdir(parents=True, exist_ok=True)
    payload = b"".join(
        (line if isinstance(line, bytes) else (line if isinstance(line, str) else json.dumps(line)).encode()) + b"\n"
        for line in lines
    )
    path = folder / name
    path.write_bytes(gzip.compress(payload, mtime=0) if gz else payload)
    return path


def serialize_dynamodb_backend() -> None:
    """Make the in-process moto server apply DynamoDB requests one at a time, as DynamoDB isolates them.

    moto (5.2.5) runs each request on its own thread and applies a ``TransactWriteItems`` item by item;
    when a condition fails, it restores a copy of the table taken when the transaction began — erasing
    whatever another thread committed meanwhile (a concurrent winner's pointer kept, its version item
    gone), and the copy itself can fail with "dictionary changed size during iteration". Real DynamoDB
    serializes transactions against other writes, which is what the catalog's races rely on and test. One
    lock around the backend's operations gives the emulator that isolation (``resources/test_dynamodb``
    shows writes lost without it)."""
    import functools
    import inspect
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend, "_medallion_serialized", False):
        return
    lock = threading.RLock()

    def serialized(method):
        @functools.wraps(method)
        def call(*args, **kwargs):
            with lock:
                return method(*args, **kwargs)
        return call

    for name, value in list(vars(DynamoDBBackend).items()):
        if inspect.isfunction(value) and not name.startswith("_"):
            setattr(DynamoDBBackend, name, serialized(value))
    DynamoDBBackend._medallion_serialized = True


@pytest.fixture(scope="session")
def moto_server():
    """A real moto server on 127.0.0.1 (AWS APIs over HTTP), for the whole session; its DynamoDB isolates
    concurrent requests as the real service does (``serialize_dynamodb_backend``)."""
    import socket

    from moto.server import ThreadedMotoServer

    serialize_dynamodb_backend()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws(moto_server, monkeypatch):
    """boto3 pointed at the moto server with dummy credentials; state reset for each test."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=10)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return moto_server


class RecordingWebhook:
    """A local HTTP endpoint that records POSTed JSON and answers with scripted status codes."""

    def __init__(self, statuses: list[int] | None = None):
        import http.server
        import threading

        self.requests: list[dict] = []
        self.statuses = list(statuses or [])
        webhook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                webhook.requests.append(json.loads(body))
                status = webhook.statuses.pop(0) if webhook.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"error")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/XXXX"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    hook = RecordingWebhook()
    yield hook
    hook.close()
