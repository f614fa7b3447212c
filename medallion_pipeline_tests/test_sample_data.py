"""Tests for the synthetic log generator (pure Python, no Spark)."""
from __future__ import annotations

import gzip
import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from medallion_pipeline.sample_data import HTTP_FIELDS, USER_SCOPED, Dirt, generate

START = date(2024, 1, 1)
DAYS, EVENTS, FILES = 3, 2000, 20
NAME_RE = re.compile(r"^(web|api)/dt=\d{4}-\d{2}-\d{2}/part-\d{5}-[0-9a-f]{8}\.(json|jsonl|ndjson)(\.gz)?$")
CLEAN = Dirt(malformed_rate=0, duplicate_rate=0, null_user_rate=0, wrong_type_rate=0, missing_field_rate=0,
             pii_in_message_rate=0, new_field_from_day=None, empty_files=0)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _lines(rel: str, raw: bytes) -> list[bytes]:
    data = gzip.decompress(raw) if rel.endswith(".gz") else raw
    assert not data or data.endswith(b"\n")
    return data.split(b"\n")[:-1]


def _parse(line: bytes) -> dict | None:
    try:
        obj = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def _records(root: Path) -> list[tuple[str, str, bytes, dict | None]]:
    """(dt, relative file, raw line, parsed object or None) for every line under root."""
    out = []
    for rel, raw in _files(root).items():
        dt = rel.split("/")[1][3:]
        out += [(dt, rel, line, _parse(line)) for line in _lines(rel, raw)]
    return out


def _gen(tmp_path_factory, name: str, **kw):
    root = tmp_path_factory.mktemp(name)
    args = dict(start=START, days=DAYS, events_per_day=EVENTS, files_per_day=FILES) | kw
    return root, generate(root, **args)


@pytest.fixture(scope="module")
def dirty(tmp_path_factory):
    return _gen(tmp_path_factory, "dirty")


@pytest.fixture(scope="module")
def dirty_records(dirty):
    return _records(dirty[0])


def test_same_seed_is_byte_identical_and_other_seed_differs(tmp_path_factory, dirty):
    again, summary = _gen(tmp_path_factory, "again")
    other, _ = _gen(tmp_path_factory, "other", seed=8)
    assert _files(again) == _files(dirty[0])
    assert summary == dirty[1]
    assert set(_files(other)) != set(_files(again))
    assert sorted(_files(other).values()) != sorted(_files(again).values())


def test_layout_names_sizes_and_summary(dirty):
    root, summary = dirty
    files = _files(root)
    assert all(NAME_RE.match(rel) for rel in files), [rel for rel in files if not NAME_RE.match(rel)]
    assert not [p for p in root.rglob(".*")], "temp files left behind"
    per_day = Counter(rel.split("/")[1] for rel in files)
    assert summary.days == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert sorted(per_day) == [f"dt={d}" for d in summary.days]
    assert all(n >= FILES for n in per_day.values())
    assert {rel.split("/")[0] for rel in files} == {"web", "api"}
    assert summary.files == len(files)
    assert summary.bytes == sum(map(len, files.values()))
    assert sum(1 for raw in files.values() if not raw) == Dirt().empty_files * DAYS
    assert {rel.split(".")[1] for rel in files} == {"json", "jsonl", "ndjson"}
    sizes = [len(raw) for rel, raw in files.items() if raw and not rel.endswith(".gz")]
    assert max(sizes) > 1.5 * min(sizes)


def test_some_files_are_gzip_with_deterministic_header(dirty):
    gz = {rel: raw for rel, raw in _files(dirty[0]).items() if rel.endswith(".gz")}
    assert len(gz) >= DAYS
    for rel, raw in gz.items():
        assert raw[4:8] == b"\0\0\0\0" and not raw[3] & 0x08  # mtime 0, no FNAME
        assert _lines(rel, raw)


def test_exact_event_and_line_counts(dirty, dirty_records):
    summary = dirty[1]
    assert summary.events == DAYS * EVENTS
    assert summary.lines == len(dirty_records)
    for dt in summary.days:
        objs = [o for d, _, _, o in dirty_records if d == dt and o is not None]
        ids = {o["event_id"] for o in objs if "event_id" in o}
        assert len(ids) + sum("event_id" not in o for o in objs) == EVENTS


def test_clean_run_has_exact_ids_and_no_dirt(tmp_path_factory):
    root, summary = _gen(tmp_path_factory, "clean", dirt=CLEAN)
    records = _records(root)
    assert all(o is not None for _, _, _, o in records)
    assert summary.lines == summary.events == len(records)
    for dt in summary.days:
        assert len({o["event_id"] for d, _, _, o in records if d == dt}) == EVENTS
    assert all("region" not in o and o.get("user_id", "x") is not None for *_, o in records
               if o["event_type"] in USER_SCOPED)


def test_malformed_lines_present(dirty_records):
    bad = [line for _, _, line, o in dirty_records if o is None]
    assert 0.0005 < len(bad) / len(dirty_records) < 0.005
    assert any(b"\xff\xfe" in line for line in bad)


def test_duplicates_are_verbatim_and_in_another_file(dirty_records):
    seen = defaultdict(list)
    for dt, rel, line, o in dirty_records:
        if o is not None and "event_id" in o:
            seen[(dt, o["event_id"])].append((rel, line))
    dups = {k: v for k, v in seen.items() if len(v) > 1}
    assert 0.005 * DAYS * EVENTS < len(dups) < 0.02 * DAYS * EVENTS
    for copies in dups.values():
        assert len({line for _, line in copies}) == 1
        assert len({rel for rel, _ in copies}) == len(copies)


def test_region_appears_from_day_two(dirty_records):
    by_day = defaultdict(list)
    for dt, _, _, o in dirty_records:
        if o is not None:
            by_day[dt].append("region" in o)
    assert not any(by_day["2024-01-01"])
    assert all(by_day["2024-01-02"]) and all(by_day["2024-01-03"])


def _null_user_rate(records, dt=None) -> float:
    scoped = [o for d, _, _, o in records if o is not None and o["event_type"] in USER_SCOPED and dt in (None, d)]
    assert all("user_id" in o for o in scoped)
    return sum(o["user_id"] is None for o in scoped) / len(scoped)


def test_user_scoped_events_have_user_except_null_fraction(dirty_records):
    assert 0.003 < _null_user_rate(dirty_records) < 0.025


def test_bad_day_has_many_null_users_and_duplicates(tmp_path_factory):
    root, _ = _gen(tmp_path_factory, "bad", days=2, dirt=Dirt(bad_day=2))
    records = _records(root)
    assert _null_user_rate(records, "2024-01-01") < 0.03
    assert 0.15 < _null_user_rate(records, "2024-01-02") < 0.25
    lines = Counter(d for d, *_ in records)
    assert lines["2024-01-02"] > lines["2024-01-01"] + 0.07 * EVENTS


def _instant(ts) -> datetime:
    if isinstance(ts, int):
        return datetime.fromtimestamp(ts / 1000, timezone.utc)
    return datetime.fromisoformat(ts).astimezone(timezone.utc)


def test_event_ts_within_dt_day_in_utc(dirty_records):
    kinds = Counter()
    for dt, _, _, o in dirty_records:
        ts = None if o is None else o.get("event_ts")
        if ts is None or ts == "not-a-date":
            continue
        assert _instant(ts).date().isoformat() == dt, (dt, ts)
        kinds["epoch" if isinstance(ts, int) else ts[23:]] += 1
    total = sum(kinds.values())
    assert 0.15 < kinds["epoch"] / total < 0.25
    assert 0.04 < sum(v for k, v in kinds.items() if k not in ("epoch", "Z", "+00:00")) / total < 0.12


def test_event_shape_matches_type(dirty_records):
    objs = [o for *_, o in dirty_records if o is not None and "event_id" in o]
    types = Counter(o["event_type"] for o in objs)
    assert 0.45 < types["http_request"] / len(objs) < 0.65
    assert set(types) == USER_SCOPED | {"http_request", "logout", "system"}
    services = {"login": "auth", "logout": "auth", "view_item": "catalog", "add_to_cart": "cart",
                "purchase": "checkout"}
    for o in objs:
        is_http = o["event_type"] == "http_request"
        assert all((f in o) == is_http for f in HTTP_FIELDS), o
        assert o["event_type"] not in services or o["service"] == services[o["event_type"]]
        assert o["event_type"] != "system" or "user_id" not in o
    http = [o for o in objs if o["event_type"] == "http_request" and isinstance(o["status"], int)]
    assert all(o["level"] == "ERROR" for o in http if o["status"] >= 500)
    assert 0.02 < sum(400 <= o["status"] < 500 for o in http) / len(http) < 0.07
    assert any(isinstance(o["status"], str) or isinstance(o["bytes"], str) or isinstance(o["latency_ms"], str)
               for o in objs if o["event_type"] == "http_request")
    assert all("@" in o["email"] for o in objs if o["event_type"] == "login")


def test_sessions_walk_the_funnel_in_time_order(dirty_records):
    sessions = defaultdict(list)
    for *_, o in dirty_records:
        if o is not None and o.get("session_id") and isinstance(o.get("event_ts"), (int, str)) \
                and o["event_ts"] != "not-a-date" and o["event_type"] != "http_request":
            sessions[o["session_id"]].append((_instant(o["event_ts"]), o["event_type"]))
    order = {"login": 0, "view_item": 1, "add_to_cart": 2, "purchase": 3, "logout": 4}
    for steps in sessions.values():
        ranks = [order[t] for _, t in sorted(set(steps))]
        assert ranks == sorted(ranks), steps
    assert any(len(s) > 3 for s in sessions.values())
