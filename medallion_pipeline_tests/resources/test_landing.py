"""The local landing store: layout, suffixes, fingerprints, unreadable gzip."""

from __future__ import annotations

import gzip
import hashlib

import pytest

from medallion_pipeline.resources.landing import LandingReadError, LocalLandingStore, is_log_file, partition_of
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


class FlakyLandingStore(LocalLandingStore):
    """A store whose reads fail as a dropped connection does: the bytes were never seen."""

    def open_bytes(self, file):
        raise TimeoutError("timed out reading")


def test_a_read_error_is_not_unreadable_content(tmp_path):
    write_landing(tmp_path, "2024-01-01", "ok.json.gz", ['{"x":1}'], gz=True)
    vanished = write_landing(tmp_path, "2024-01-01", "gone.json.gz", ['{"x":2}'], gz=True)
    files = {f.key.rsplit("/", 1)[-1]: f for f in LocalLandingStore(tmp_path).list_partition("2024-01-01")}
    ok, gone = files["ok.json.gz"], files["gone.json.gz"]
    with pytest.raises(LandingReadError, match=r"web/dt=2024-01-01/ok\.json\.gz.*TimeoutError.*retry"):
        FlakyLandingStore(tmp_path).unreadable_reason(ok)
    vanished.unlink()  # deleted between listing and checking
    with pytest.raises(LandingReadError, match="gone.json.gz"):
        LocalLandingStore(tmp_path).unreadable_reason(gone)


def s3_landing(aws):
    import boto3

    from medallion_pipeline.resources.landing import landing_store_for

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="landing")
    return s3, landing_store_for("s3://landing/logs")


def test_s3_landing_lists_one_partition_across_sources(aws):
    s3, store = s3_landing(aws)
    body = b'{"event_id":"e1"}\n'
    s3.put_object(Bucket="landing", Key="logs/web/dt=2024-01-01/a.json", Body=body)
    s3.put_object(Bucket="landing", Key="logs/api/dt=2024-01-01/b.jsonl.gz", Body=gzip.compress(body)[:10])
    s3.put_object(Bucket="landing", Key="logs/web/dt=2024-01-01/", Body=b"")  # a directory marker
    s3.put_object(Bucket="landing", Key="logs/web/dt=2024-01-01/notes.txt", Body=b"x")
    s3.put_object(Bucket="landing", Key="logs/web/dt=2024-01-02/c.json", Body=body)
    files = store.list_partition("2024-01-01")
    assert [f.key for f in files] == ["api/dt=2024-01-01/b.jsonl.gz", "web/dt=2024-01-01/a.json"]
    assert files[1].uri == "s3://landing/logs/web/dt=2024-01-01/a.json"
    assert files[1].etag == hashlib.md5(body).hexdigest() and files[1].size == len(body)
    assert store.unreadable_reason(files[0]) == "truncated gzip stream"
    assert store.unreadable_reason(files[1]) is None and store.sources() == ["api", "web"]


def test_s3_read_errors_are_retryable_not_unreadable(aws):
    s3, store = s3_landing(aws)
    s3.put_object(Bucket="landing", Key="logs/web/dt=2024-01-01/a.json.gz", Body=gzip.compress(b"{}\n"))
    [listed] = store.list_partition("2024-01-01")
    s3.delete_object(Bucket="landing", Key="logs/web/dt=2024-01-01/a.json.gz")  # gone after the listing
    with pytest.raises(LandingReadError, match="web/dt=2024-01-01/a.json.gz.*NoSuchKey"):
        store.unreadable_reason(listed)


def test_s3_listing_cost_does_not_grow_with_other_partitions(aws):
    s3, store = s3_landing(aws)
    calls = []
    store.client.meta.events.register("before-parameter-build.s3.ListObjectsV2", lambda **kw: calls.append(dict(kw["params"])))
    s3.put_object(Bucket="landing", Key="logs/web/dt=2024-01-02/a.json", Body=b"{}\n")
    store.list_partition("2024-01-02")
    baseline = len(calls)
    for i in range(200):  # old partitions pile up
        s3.put_object(Bucket="landing", Key=f"logs/web/dt=2023-{i % 12 + 1:02d}-01/f{i}.json", Body=b"{}\n")
    calls.clear()
    assert [f.key for f in store.list_partition("2024-01-02")] == ["web/dt=2024-01-02/a.json"]
    assert len(calls) == baseline == 2  # the sources, then the one partition prefix
    assert calls[1]["Prefix"] == "logs/web/dt=2024-01-02/"


@pytest.mark.parametrize(
    ("key", "dt"),
    [
        ("web/dt=2024-01-01/a.json", "2024-01-01"), ("api/dt=2024-02-29/b c.jsonl.gz", "2024-02-29"),
        ("web/dt=2024-01-01/", None), ("web/dt=2024-01-01/a.csv", None), ("web/dt=2023-02-29/a.json", None),
        ("web/2024-01-01/a.json", None), ("web/dt=2024-01-01/sub/a.json", None), ("a.json", None),
        ("web/dt=2024-01-01/.a.json.tmp", None), ("_tmp/dt=2024-01-01/a.json", None),
    ],
)
def test_partition_of_a_landing_key(key, dt):
    assert partition_of(key) == dt


def test_local_fingerprint_follows_content_changes(tmp_path):
    store = LocalLandingStore(tmp_path)
    path = write_landing(tmp_path, "2024-01-01", "a.json", ['{"x":1}'])
    first = store.list_partition("2024-01-01")[0].etag
    assert store.list_partition("2024-01-01")[0].etag == first
    path.write_bytes(b'{"x":22}\n')
    assert store.list_partition("2024-01-01")[0].etag == hashlib.md5(b'{"x":22}\n').hexdigest() != first
