"""The local landing store: layout, suffixes, fingerprints, unreadable gzip."""

from __future__ import annotations

import gzip
import hashlib

import pytest

from medallion_pipeline.resources.landing import LocalLandingStore, is_log_file
from medallion_pipeline_tests.conftest import write_landing


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.json", True), ("a.jsonl", True), ("a.ndjson", True), ("a.jsonl.gz", True),
        ("a.csv", False), ("a.json.tmp", False), (".a.json.tmp", False), ("_SUCCESS", False), ("a.gz", False),
        (".hidden.json", False),
    ],
)
def test_is_log_file(name, expected):
    assert is_log_file(name) is expected


def test_lists_one_partition_across_sources(tmp_path):
    a = write_landing(tmp_path, "2024-01-01", "a.json", ['{"x":1}'], source="web")
    write_landing(tmp_path, "2024-01-01", "b.jsonl.gz", ['{"x":2}'], source="api", gz=True)
    write_landing(tmp_path, "2024-01-02", "c.json", ['{"x":3}'], source="web")
    write_landing(tmp_path, "2024-01-01", "notes.txt", ["not a log"], source="web")
    store = LocalLandingStore(tmp_path)
    files = store.list_partition("2024-01-01")
    assert [f.key for f in files] == ["api/dt=2024-01-01/b.jsonl.gz", "web/dt=2024-01-01/a.json"]
    assert files[1].etag == hashlib.md5(a.read_bytes()).hexdigest()
    assert files[1].size == a.stat().st_size and files[1].source == "web"
    assert store.sources() == ["api", "web"]
    assert store.list_partition("2023-12-31") == []


def test_unreadable_reason_spots_truncated_and_corrupt_gzip(tmp_path):
    payload = b"".join(b'{"event_id":"e%d"}\n' % i for i in range(2000))
    folder = tmp_path / "web" / "dt=2024-01-01"
    folder.mkdir(parents=True)
    (folder / "ok.json.gz").write_bytes(gzip.compress(payload))
    (folder / "multi.json.gz").write_bytes(gzip.compress(payload) + gzip.compress(payload))
    (folder / "truncated.json.gz").write_bytes(gzip.compress(payload)[:200])
    (folder / "garbage.json.gz").write_bytes(b"this is not gzip at all")
    (folder / "plain.json").write_bytes(payload)
    store = LocalLandingStore(tmp_path)
    reasons = {f.key.rsplit("/", 1)[-1]: store.unreadable_reason(f) for f in store.list_partition("2024-01-01")}
    assert reasons["ok.json.gz"] is None and reasons["multi.json.gz"] is None and reasons["plain.json"] is None
    assert reasons["truncated.json.gz"] == "truncated gzip stream"
    assert reasons["garbage.json.gz"].startswith("corrupt gzip")
