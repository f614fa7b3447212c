"""pipeline_throughput: end-to-end throughput of the medallion pipeline vs a DuckDB reference.

Workload (default): 7 days x 186,000 distinct events/day in 2,860 data files/day (+1 empty file/day),
i.e. ~1.3 M events in ~20,000 small JSON-lines files (10 % gzip), written by the project's own generator
(``medallion_pipeline.sample_data.generate``, seed 7, default ``Dirt``: ~1 % duplicates, ~0.2 % malformed
lines, wrong types, missing fields, PII in messages, a new field from day 2). The landing data is generated
once into ``benchmarks/.data/landing-<params>/`` and reused on later runs (marker ``.complete.json``).

For each repeat (``--repeats``), on the same landing files:

* project:   a fresh lake + catalog + DAGSTER_HOME in a temporary directory, then ONE ranged Dagster run
             over all assets (bronze, silver, gold, metrics) for the whole date range, exactly as
             ``medallion run --from A --to B`` does (``dg.materialize`` with the
             ``dagster/asset_partition_range_start/_end`` tags, ``raise_on_error=True``). It runs in a
             fresh Python process per repeat, so the timed ``materialize`` call includes creating the
             SparkSession (the project creates it lazily inside the run) - like a real ``medallion run``.
             Per-step durations are read from the run's STEP_SUCCESS events.
* reference: the same silver and gold logic in DuckDB SQL (read every landing file as newline-delimited
             JSON objects, type casts, UTC event_ts parsing, the quarantine rules in the project's order,
             dedup on (dt, event_id), PII masking + HMAC-SHA256 of client_ip composed from sha256, the four
             gold tables with exact percentiles), writing silver, quarantine and gold as Parquet. It does
             LESS work than the project: no bronze table, no ingest ledger / MD5 of every file, no catalog,
             no data-quality audits, no metrics table, no Dagster, no schema evolution / rescued data, and
             duplicates are tie-broken on the source file only. The ratio project/reference is therefore an
             upper bound on the project's overhead, not a like-for-like comparison.

The landing files are read once before timing so that both engines start from a warm OS page cache.
After the first repeat the project's published tables (read through its catalog with
``medallion_pipeline.query.run_query``: silver/quarantine row counts, the four gold tables) are compared
with the reference's; mismatches are printed, never raised. Times are reported (median over repeats, plus
the median of back-to-back project/reference ratios), never asserted. The 1-minute load average is printed
around each run: other CPU-heavy processes on the machine inflate both engines' times.

    make bench                                   # full workload, 2 repeats
    .venv/bin/python benchmarks/pipeline_throughput.py --quick          # tiny smoke workload
    .venv/bin/python benchmarks/pipeline_throughput.py --days 3 --events-per-day 50000 --repeats 3
    .venv/bin/python benchmarks/pipeline_throughput.py --scale 1,2,4   # growth: k x the events in k x the files
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / ".data"
MARKER = ".complete.json"
SEED = 7
START = "2024-01-01"
PII_KEY = "benchmark-pii-key-not-a-secret"

FULL = dict(days=7, events_per_day=186_000, files_per_day=2_860)
QUICK = dict(days=2, events_per_day=5_000, files_per_day=50)


# --------------------------------------------------------------------------------------------------- workload


def landing_dir(days: int, events_per_day: int, files_per_day: int) -> Path:
    return DATA_DIR / f"landing-{START}-d{days}-e{events_per_day}-f{files_per_day}-s{SEED}"


def ensure_landing(days: int, events_per_day: int, files_per_day: int) -> tuple[Path, dict]:
    """The workload's landing files, generated once."""
    root = landing_dir(days, events_per_day, files_per_day)
    return root, generate_once(root, START, days, events_per_day, files_per_day)


def generate_once(root: Path, start: str, days: int, events_per_day: int, files_per_day: int, dirt=None) -> dict:
    """Generate landing files into ``root`` once (default ``Dirt``); a marker file makes later runs reuse them.
    Returns what was generated (files, events, lines, bytes, seconds)."""
    from medallion_pipeline.sample_data import Dirt, generate

    marker = root / MARKER
    if marker.exists():
        summary = json.loads(marker.read_text())
        print(f"reusing landing data {root} (generated earlier, {summary['generate_s']:.1f} s)")
        return summary
    if root.exists():  # an interrupted generation: start over
        shutil.rmtree(root)
    print(f"generating landing data into {root} ...", flush=True)
    started = time.perf_counter()
    s = generate(root, date.fromisoformat(start), days, events_per_day, files_per_day, seed=SEED,
                 dirt=dirt if dirt is not None else Dirt())
    summary = dict(days=s.days, files=s.files, events=s.events, lines=s.lines, bytes=s.bytes,
                   generate_s=time.perf_counter() - started)
    marker.write_text(json.dumps(summary, indent=1))
    print(f"generated in {summary['generate_s']:.1f} s")
    return summary


def landing_files(root: Path, dts: list[str]) -> list[str]:
    """Every landing log file for ``dts`` (the project's own file filter), sorted."""
    from medallion_pipeline.resources.landing import is_log_file

    files = []
    for source in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        for dt in dts:
            folder = source / f"dt={dt}"
            if folder.is_dir():
                files += [e.path for e in os.scandir(folder) if e.is_file() and is_log_file(e.name)]
    return sorted(files)


def warm_page_cache(files: list[str]) -> float:
    started = time.perf_counter()
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(1 << 20):
                pass
    return time.perf_counter() - started


# ----------------------------------------------------------------------------------------------- machine


def machine() -> dict:
    mem_kb = 0
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
    except OSError:
        pass

    def v(pkg: str) -> str:
        try:
            return version(pkg)
        except PackageNotFoundError:
            return "-"

    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30).stderr.splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        java = "-"
    return dict(cpus=os.cpu_count(), mem_gib=mem_kb / 2**20, python=platform.python_version(), pyspark=v("pyspark"),
                dagster=v("dagster"), duckdb=v("duckdb"), java=java, platform=platform.platform())


# ---------------------------------------------------------------------------------------------- project run


def _project_env(landing: Path, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDALLION_")}
    env.update(
        MEDALLION_LANDING_ROOT=str(landing),
        MEDALLION_LAKE_ROOT=str(work / "lake"),
        MEDALLION_PII_KEY=PII_KEY,
        MEDALLION_START_DATE=START,
        DAGSTER_HOME=str(work / "dagster_home"),
    )
    return env


def child_project(config: dict) -> dict:
    """Runs in a fresh process: one ranged Dagster run over every asset, like ``medallion run``."""
    started = time.perf_counter()
    import dagster as dg

    from medallion_pipeline.cli import ensure_dagster_home
    from medallion_pipeline.definitions import build_definitions

    import_s = time.perf_counter() - started
    ensure_dagster_home()  # DAGSTER_HOME (fresh, empty) + the project's dagster.yaml
    defs = build_definitions()  # Settings.from_env(); the launcher also re-reads the environment at run time
    tags = {"dagster/asset_partition_range_start": config["start"], "dagster/asset_partition_range_end": config["end"]}
    with dg.DagsterInstance.get() as instance:
        t0 = time.perf_counter()
        result = dg.materialize(
            assets=list(defs.assets), resources=defs.resources, selection=dg.AssetSelection.all(),
            instance=instance, tags=tags, raise_on_error=True,
        )
        wall_s = time.perf_counter() - t0
        steps: dict[str, dict] = {}
        usage: dict[str, dict[str, float]] = {}  # step -> what it cost Spark (the layer_* metadata)
        for entry in instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
            metadata = entry.dagster_event.event_specific_data.materialization.metadata
            usage.setdefault(entry.step_key, {}).update(
                {k[len("layer_"):]: v.value for k, v in metadata.items() if k.startswith("layer_")})
        kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}
        for entry in instance.all_logs(result.run_id, of_type=kinds):
            ev = entry.dagster_event
            if ev.event_type == dg.DagsterEventType.STEP_START:
                steps.setdefault(entry.step_key, {})["start"] = entry.timestamp
            else:
                steps.setdefault(entry.step_key, {})["duration_s"] = ev.event_specific_data.duration_ms / 1000
    ordered = sorted(steps.items(), key=lambda kv: kv[1].get("start", 0))
    return dict(success=result.success, run_id=result.run_id, wall_s=wall_s, import_s=import_s,
                steps=[(k, v.get("duration_s")) for k, v in ordered], usage=usage)


def child_spark_startup(config: dict) -> dict:
    """Cold SparkSession creation with the project's configuration (a separate, informational figure)."""
    from medallion_pipeline.resources.spark import build_spark_session
    from medallion_pipeline.settings import Settings

    t0 = time.perf_counter()
    spark = build_spark_session(Settings.from_env())
    session_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    spark.range(1000).count()
    first_job_s = time.perf_counter() - t1
    spark.stop()
    return dict(session_s=session_s, first_job_s=first_job_s)


class PeakMemory:
    """The peak of the summed resident memory of a process and all its descendants (the run's Python process
    and its Spark JVM), sampled from /proc every ``interval`` seconds while it runs."""

    def __init__(self, pid: int, interval: float = 0.5):
        import threading

        self.pid, self.interval, self.peak_bytes = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    @staticmethod
    def _tree_rss(root: int) -> int:
        parents: dict[int, int] = {}
        rss: dict[int, int] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])  # ppid
                rss[int(entry.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")  # rss in pages
            except (OSError, IndexError, ValueError):
                continue
        tree, frontier = {root}, [root]
        while frontier:
            parent = frontier.pop()
            children = [p for p, pp in parents.items() if pp == parent and p not in tree]
            tree.update(children)
            frontier += children
        return sum(rss.get(p, 0) for p in tree)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._tree_rss(self.pid))
            self._stop.wait(self.interval)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_bytes


def run_child(mode: str, landing: Path, work: Path, config: dict) -> tuple[dict | None, float, Path]:
    """Run this script in ``mode`` in a fresh interpreter; returns (result, process wall seconds, log)."""
    work.mkdir(parents=True, exist_ok=True)
    cfg_path, out_path, log_path = work / f"{mode}.config.json", work / f"{mode}.result.json", work / f"{mode}.log"
    cfg_path.write_text(json.dumps({**config, "result": str(out_path)}))
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--_child", mode, str(cfg_path)],
                                env=_project_env(landing, work), stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
        memory = PeakMemory(proc.pid)
        proc.wait()
        peak_rss = memory.stop()
    process_s = time.perf_counter() - started
    if proc.returncode != 0 or not out_path.exists():
        tail = log_path.read_text(errors="replace").splitlines()[-40:]
        print(f"  !! {mode} process failed (exit {proc.returncode}); last lines of its log:")
        print("\n".join("     " + line for line in tail))
        return None, process_s, log_path
    return {**json.loads(out_path.read_text()), "peak_rss_bytes": peak_rss}, process_s, log_path


# -------------------------------------------------------------------------------------------- DuckDB reference


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


# The project's _ID_SEGMENT uses look-behind/ahead, which RE2 (DuckDB) lacks. Its match is always a whole
# path segment ((?<=/) ... (?=/|$), and no alternative can contain '/'), so a full match per segment is the
# same rule.
ID_SEGMENT_RE2 = (
    r"[0-9]+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{12,}|[A-Za-z]+_[0-9A-Za-z]*[0-9][0-9A-Za-z]*"
)


def _hmac_pads(key: bytes) -> tuple[str, str]:
    import hashlib

    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key).hex(), bytes(b ^ 0x5C for b in key).hex()


def reference_sql(pii_key: str) -> dict[str, str]:
    """The silver and gold logic of the project, as DuckDB SQL (statement name -> SQL)."""
    from medallion_pipeline.schemas.silver import CONTRACT_COLUMNS, LEVELS
    from medallion_pipeline.settings import DEFAULT_EVENT_TYPES
    from medallion_pipeline.transforms.pii import IPV4_PATTERN, IPV6_PATTERN

    # DuckDB's RE2 never backtracks (and has no lookbehind or possessive quantifiers): the plain form of the
    # project's email pattern matches the same text there in linear time.
    EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"  # noqa: N806

    fields = list(CONTRACT_COLUMNS)
    paths = ", ".join(_lit(f"$.{f}") for f in fields)
    v = {f: f"v[{i + 1}]" for i, f in enumerate(fields)}
    in_list = lambda values: ", ".join(_lit(x) for x in values)  # noqa: E731
    ipad, opad = _hmac_pads(pii_key.encode())
    ip = "client_ip"
    hmac = f"CASE WHEN {ip} IS NOT NULL THEN sha256(unhex('{opad}') || unhex(sha256(unhex('{ipad}') || encode({ip})))) END"
    flagged = f"""
CREATE TEMP TABLE flagged AS
WITH src AS (
    SELECT filename, json_extract_string(json, [{paths}]) AS v
    FROM read_json_objects($files, format = 'newline_delimited', ignore_errors = true, filename = true)
    WHERE json_type(json) = 'OBJECT'          -- malformed lines, arrays, bare text: bronze's _corrupt_record
),
typed AS (
    SELECT
        nullif(trim({v['event_id']}), '') AS event_id,
        {v['event_ts']} AS event_ts_raw,
        {v['service']} AS service,
        CASE WHEN upper(trim({v['level']})) IN ({in_list(LEVELS)}) THEN upper(trim({v['level']})) END AS level,
        lower(trim({v['event_type']})) AS event_type,
        {v['user_id']} AS user_id, {v['session_id']} AS session_id,
        upper(trim({v['method']})) AS method, {v['path']} AS path,
        TRY_CAST({v['status']} AS INTEGER) AS status,
        TRY_CAST({v['latency_ms']} AS DOUBLE) AS latency_ms,
        TRY_CAST({v['bytes']} AS BIGINT) AS bytes,
        {v['client_ip']} AS client_ip, {v['user_agent']} AS user_agent, {v['email']} AS email,
        {v['message']} AS message,
        regexp_extract(filename, '([^/]+/dt=\\d{{4}}-\\d{{2}}-\\d{{2}}/[^/]+)$', 1) AS _source_file,
        regexp_extract(filename, '/dt=(\\d{{4}}-\\d{{2}}-\\d{{2}})/', 1) AS dt
    FROM src
),
normalized AS (
    SELECT *,
        -- epoch millis, or ISO-8601 with offset through TIMESTAMPTZ (session TimeZone = UTC)
        CASE WHEN regexp_full_match(trim(event_ts_raw), '-?\\d{{1,16}}')
             THEN epoch_ms(TRY_CAST(trim(event_ts_raw) AS BIGINT))
             ELSE TRY_CAST(TRY_CAST(trim(event_ts_raw) AS TIMESTAMPTZ) AS TIMESTAMP) END AS event_ts
    FROM typed
)
SELECT
    event_id, event_ts, service, level, event_type, user_id, session_id, method, path, status,
    latency_ms, bytes,
    {hmac} AS client_ip,
    user_agent,
    CASE WHEN email IS NULL THEN NULL
         WHEN regexp_full_match(email, {_lit(EMAIL_PATTERN)}) THEN regexp_replace(email, '^[^@]*', '***')
         ELSE '***' END AS email,
    regexp_replace(regexp_replace(regexp_replace(message, {_lit(EMAIL_PATTERN)}, '<email>', 'g'),
                   {_lit(IPV4_PATTERN)}, '<ip>', 'g'), {_lit(IPV6_PATTERN)}, '<ip>', 'g') AS message,
    CASE  -- transforms/silver.quarantine_reason, same rules in the same order
        WHEN event_id IS NULL THEN 'missing_event_id'
        WHEN event_ts IS NULL THEN 'invalid_event_ts'
        WHEN event_type IS NULL OR event_type = '' THEN 'missing_event_type'
        WHEN coalesce(event_type NOT IN ({in_list(DEFAULT_EVENT_TYPES)}), false) THEN 'unknown_event_type'
        WHEN coalesce((event_type = 'http_request' AND coalesce(NOT status BETWEEN 100 AND 599, true))
                      OR NOT status BETWEEN 100 AND 599, false) THEN 'invalid_status'
        WHEN coalesce(latency_ms < 0, false) THEN 'negative_latency'
        WHEN coalesce(bytes < 0, false) THEN 'negative_bytes'
    END AS quarantine_reason,
    event_ts_raw, _source_file, dt
FROM normalized
"""
    contract = ", ".join(fields)
    silver = f"""
CREATE TEMP TABLE silver_app_logs AS
SELECT {contract}, _source_file, dt FROM flagged
WHERE quarantine_reason IS NULL
QUALIFY row_number() OVER (PARTITION BY dt, event_id ORDER BY _source_file) = 1  -- the project: earliest ingest, file, hash
"""
    quarantine = f"""
CREATE TEMP VIEW silver_quarantine AS
SELECT quarantine_reason, {contract}, event_ts_raw, _source_file, dt FROM flagged WHERE quarantine_reason IS NOT NULL
"""
    rate = lambda n, d: f"CASE WHEN {d} > 0 THEN {n} / {d} END"  # noqa: E731
    status_counts = ",\n        ".join(
        f"count(*) FILTER (WHERE status BETWEEN {c}00 AND {c}99) AS status_{c}xx" for c in (2, 3, 4, 5))
    daily_kpis = f"""
CREATE TEMP TABLE gold_daily_kpis AS
WITH vol AS (
    SELECT dt, service, count(*) AS events, sum(bytes) AS bytes,
           count(DISTINCT user_id) AS unique_users, count(DISTINCT session_id) AS sessions
    FROM silver_app_logs GROUP BY dt, service
), req AS (
    SELECT dt, service, count(*) AS requests,
        {status_counts},
        quantile_cont(latency_ms, 0.5) AS latency_p50_ms,
        quantile_cont(latency_ms, 0.95) AS latency_p95_ms,
        quantile_cont(latency_ms, 0.99) AS latency_p99_ms
    FROM silver_app_logs WHERE event_type = 'http_request' GROUP BY dt, service
)
SELECT vol.dt, vol.service, events,
    coalesce(requests, 0) AS requests, coalesce(status_2xx, 0) AS status_2xx, coalesce(status_3xx, 0) AS status_3xx,
    coalesce(status_4xx, 0) AS status_4xx, coalesce(status_5xx, 0) AS status_5xx,
    {rate('(status_2xx + status_3xx)', 'requests')} AS success_rate,
    {rate('status_5xx', 'requests')} AS error_rate,
    {rate('status_4xx', 'requests')} AS client_error_rate,
    latency_p50_ms, latency_p95_ms, latency_p99_ms, unique_users, sessions,
    CAST(coalesce(bytes, 0) AS BIGINT) AS bytes
FROM vol LEFT JOIN req ON vol.dt = req.dt AND vol.service = req.service
"""
    endpoint_stats = f"""
CREATE TEMP TABLE gold_endpoint_stats AS
WITH r AS (
    SELECT dt, method, latency_ms, status,
        array_to_string(list_transform(string_split(regexp_replace(path, '[?#].*$', ''), '/'),
            lambda s: CASE WHEN regexp_full_match(s, {_lit(ID_SEGMENT_RE2)}) THEN '{{id}}' ELSE s END), '/') AS path
    FROM silver_app_logs WHERE event_type = 'http_request'
)
SELECT dt, method, path, count(*) AS requests,
    {rate('count(*) FILTER (WHERE status >= 500)', 'count(*)')} AS error_rate,
    quantile_cont(latency_ms, 0.95) AS latency_p95_ms
FROM r GROUP BY dt, method, path
"""
    sessions = f"""
CREATE TEMP TABLE gold_sessions AS
WITH per_session AS (
    SELECT dt, session_id, count(*) AS events,
           (epoch_us(max(event_ts)) - epoch_us(min(event_ts))) / 1e6 AS duration_s
    FROM silver_app_logs WHERE session_id IS NOT NULL GROUP BY dt, session_id
), days AS (SELECT DISTINCT dt FROM silver_app_logs)
SELECT days.dt, count(session_id) AS sessions, avg(duration_s) AS mean_duration_s,
    quantile_cont(duration_s, 0.5) AS median_duration_s, avg(events) AS events_per_session,
    {rate('count(*) FILTER (WHERE events = 1)', 'count(session_id)')} AS bounce_rate
FROM days LEFT JOIN per_session USING (dt) GROUP BY days.dt
"""
    funnel = f"""
CREATE TEMP TABLE gold_funnel AS
WITH e0 AS (
    SELECT dt, user_id, event_type, event_ts FROM silver_app_logs
    WHERE user_id IS NOT NULL AND event_type IN ('login', 'view_item', 'add_to_cart', 'purchase')
), e1 AS (
    SELECT *, min(event_ts) FILTER (WHERE event_type = 'login') OVER w AS login_at FROM e0
    WINDOW w AS (PARTITION BY dt, user_id)
), e2 AS (
    SELECT *, min(event_ts) FILTER (WHERE event_type = 'view_item' AND event_ts >= login_at) OVER w AS view_item_at
    FROM e1 WINDOW w AS (PARTITION BY dt, user_id)
), e3 AS (
    SELECT *, min(event_ts) FILTER (WHERE event_type = 'add_to_cart' AND event_ts >= view_item_at) OVER w AS add_to_cart_at
    FROM e2 WINDOW w AS (PARTITION BY dt, user_id)
), e4 AS (
    SELECT *, min(event_ts) FILTER (WHERE event_type = 'purchase' AND event_ts >= add_to_cart_at) OVER w AS purchase_at
    FROM e3 WINDOW w AS (PARTITION BY dt, user_id)
), per_user AS (
    SELECT dt, user_id, min(login_at) AS login, min(view_item_at) AS view_item, min(add_to_cart_at) AS add_to_cart,
           min(purchase_at) AS purchase
    FROM e4 GROUP BY dt, user_id
), counts AS (
    SELECT days.dt, count(login) AS login_users, count(view_item) AS view_item_users,
           count(add_to_cart) AS add_to_cart_users, count(purchase) AS purchase_users
    FROM (SELECT DISTINCT dt FROM silver_app_logs) days LEFT JOIN per_user USING (dt) GROUP BY days.dt
)
SELECT *, {rate('view_item_users', 'login_users')} AS login_to_view_item_rate,
    {rate('add_to_cart_users', 'view_item_users')} AS view_item_to_add_to_cart_rate,
    {rate('purchase_users', 'add_to_cart_users')} AS add_to_cart_to_purchase_rate,
    {rate('purchase_users', 'login_users')} AS login_to_purchase_rate
FROM counts
"""
    return dict(flagged=flagged, silver=silver, quarantine=quarantine, daily_kpis=daily_kpis,
                endpoint_stats=endpoint_stats, sessions=sessions, funnel=funnel)


GOLD = ("daily_kpis", "endpoint_stats", "sessions", "funnel")


def run_reference(landing: Path, dts: list[str], out: Path) -> dict:
    """Silver + gold in DuckDB from the landing files; returns timings, row counts and, after the timed part,
    the results of the cross-check queries (same table names as the project's SQL views)."""
    import duckdb

    sql = reference_sql(PII_KEY)
    timings: dict[str, float] = {}
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        files = landing_files(landing, dts)
        con.execute(sql["flagged"], {"files": files})
        con.execute(sql["silver"])
        con.execute(sql["quarantine"])
        timings["read + parse + silver logic"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        for table in ("silver_app_logs", "silver_quarantine"):
            con.execute(f"COPY {table} TO {_lit(str(out / table))} (FORMAT parquet, PARTITION_BY (dt))")
        timings["write silver + quarantine Parquet"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        for name in GOLD:
            con.execute(sql[name])
            con.execute(f"COPY gold_{name} TO {_lit(str(out / name))} (FORMAT parquet, PARTITION_BY (dt))")
        timings["gold (4 tables, computed + written)"] = time.perf_counter() - t2
        wall_s = time.perf_counter() - t0
        # Not timed: figures for the report and the cross-check.
        counts = dict(con.execute(
            "SELECT 'silver', count(*) FROM silver_app_logs "
            "UNION ALL SELECT 'quarantine', count(*) FROM silver_quarantine").fetchall())
        results = {name: con.execute(check_query(name)).fetchall() for name in CHECKS}
    finally:
        con.close()
    return dict(wall_s=wall_s, timings=timings, counts=counts, results=results, files=len(files))


# ------------------------------------------------------------------------------------------------ cross-check

CHECKS = {  # table: (key columns, columns that must match exactly, further columns compared)
    "silver_app_logs": (("dt",), ("count(*)",), ()),
    "silver_quarantine": (("dt", "quarantine_reason"), ("count(*)",), ()),
    "gold_daily_kpis": (("dt", "service"), ("requests", "status_2xx", "status_3xx", "status_4xx", "status_5xx"),
                        ("events", "unique_users", "sessions", "bytes", "success_rate", "error_rate",
                         "latency_p50_ms", "latency_p95_ms", "latency_p99_ms")),
    "gold_endpoint_stats": (("dt", "method", "path"), ("requests",), ("error_rate", "latency_p95_ms")),
    "gold_sessions": (("dt",), ("sessions",),
                      ("mean_duration_s", "median_duration_s", "events_per_session", "bounce_rate")),
    "gold_funnel": (("dt",), ("login_users", "view_item_users", "add_to_cart_users", "purchase_users"), ()),
}


def check_query(table: str) -> str:
    """The same SQL runs on the project's catalog views and on the reference's tables."""
    keys, exact, further = CHECKS[table]
    group = f" GROUP BY {', '.join(keys)}" if any("(" in c for c in exact) else ""
    return f"SELECT {', '.join([*keys, *exact, *further])} FROM {table}{group}"


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def cross_check(catalog_uri: str, reference_results: dict) -> list[str]:
    """Compare the project's published tables (read through its catalog) with the reference's."""
    from medallion_pipeline.query import run_query
    from medallion_pipeline.resources.catalog import open_catalog

    lines = []
    for table, (keys, exact, further) in CHECKS.items():
        cols = [*keys, *exact, *further]
        try:
            _, project_rows = run_query(open_catalog(catalog_uri), check_query(table))
        except Exception as exc:  # noqa: BLE001 - report, do not fail the benchmark
            lines.append(f"{table}: could not read the project's table: {exc}")
            continue
        n = len(keys)
        proj = {tuple(r[:n]): tuple(r) for r in project_rows}
        ref = {tuple(r[:n]): tuple(r) for r in reference_results[table]}
        n_exact = n_all = 0
        problems = []
        for key in sorted(set(proj) | set(ref), key=str):
            p, r = proj.get(key), ref.get(key)
            if p is None or r is None:
                problems.append(f"{key}: only in the {'reference' if p is None else 'project'}")
                continue
            bad = [i for i, c in enumerate(cols) if (c in exact and p[i] != r[i]) or (c in further and not _same(p[i], r[i]))]
            n_exact += not any(cols[i] in exact for i in bad)
            n_all += not bad
            if bad:
                problems.append(f"{key}: " + ", ".join(f"{cols[i]} project={p[i]!r} reference={r[i]!r}" for i in bad))
        total = len(set(proj) | set(ref))
        what = "row counts" if exact == ("count(*)",) else ", ".join(exact)
        lines.append(f"{table}: {n_exact}/{total} rows match on {what}"
                     + (f"; {n_all}/{total} also on the other {len(further)} columns" if further else ""))
        lines += [f"    mismatch {p}" for p in problems[:5]]
        if len(problems) > 5:
            lines.append(f"    ... and {len(problems) - 5} more")
    return lines


# ------------------------------------------------------------------------------------------------------ main


def _load(flag: bool = True) -> str:
    """Load averages; before the run, flagged when other processes already compete for the CPUs."""
    one, five, fifteen = os.getloadavg()
    busy = flag and one > 0.5 * (os.cpu_count() or 1)
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min)" + ("  !! machine busy: times inflated" if busy else "")


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def print_layer_usage(usage_runs: list[dict[str, dict[str, float]]]) -> None:
    """Per layer step: what it cost Spark (``jobs/usage.py``, from the step's materialization metadata), the
    median of each figure over the repeats."""
    print("  per layer (median over repeats; jobs/stages/tasks are Spark's, bytes from its stage metrics):")
    print(f"    {'step':<20} {'jobs':>5} {'stages':>6} {'tasks':>7} {'read MB':>9} {'written MB':>10} "
          f"{'shuffle MB':>10} {'seconds':>8}")
    for step in usage_runs[0]:
        f = {k: _median([run[step][k] for run in usage_runs if step in run and k in run[step]])
             for k in usage_runs[0][step]}
        mb = lambda k: f.get(k, 0) / 1e6  # noqa: E731
        print(f"    {step:<20} {f.get('spark_jobs', 0):5.0f} {f.get('spark_stages', 0):6.0f} {f.get('spark_tasks', 0):7.0f} "
              f"{mb('bytes_read'):9.1f} {mb('bytes_written'):10.1f} {mb('shuffle_bytes'):10.1f} {f.get('seconds', 0):8.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int)
    parser.add_argument("--events-per-day", type=int)
    parser.add_argument("--files-per-day", type=int)
    parser.add_argument("--repeats", type=int, default=2, help="runs per engine; the median is reported (default 2)")
    parser.add_argument("--quick", action="store_true",
                        help=f"tiny smoke workload ({QUICK['days']} days x {QUICK['events_per_day']:,} events x "
                             f"{QUICK['files_per_day']} files)")
    parser.add_argument("--no-spark-startup", action="store_true", help="skip the separate Spark startup probe")
    parser.add_argument("--scale", type=lambda text: [int(k) for k in text.split(",")], metavar="1,2,4",
                        help="run the workload at each of these multiples of its events (and files) per day, then "
                             "print time per million events at each size")
    parser.add_argument("--_child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._child:
        mode, cfg_path = args._child
        config = json.loads(Path(cfg_path).read_text())
        result = {"project": child_project, "spark_startup": child_spark_startup}[mode](config)
        Path(config["result"]).write_text(json.dumps(result))
        return 0

    base = QUICK if args.quick else FULL
    days = args.days or base["days"]
    epd = args.events_per_day if args.events_per_day is not None else base["events_per_day"]
    fpd = args.files_per_day or base["files_per_day"]
    repeats = max(1, args.repeats)
    if not args.scale:
        run_workload(days, epd, fpd, repeats, args.no_spark_startup)
        return 0
    # Scale: the same days with k times the events in k times the files (files keep their size).
    results = [(k, *run_workload(days, epd * k, fpd * k, repeats, args.no_spark_startup or k > 1))
               for k in args.scale]
    print()
    print("== summary: scale ==")
    print(f"  {days} days of k x {epd:,} events/day in k x {fpd:,} files/day; {repeats} repeat(s) per engine, medians")
    print("  scale      events   project s  s/M events  x of 1x | reference s  s/M events  x of 1x | ratio")
    first = results[0]
    for k, events, pm, rm in results:
        if pm is None or rm is None or first[2] is None:
            print(f"  {k:>4}x {events:>11,}   failed")
            continue
        print(f"  {k:>4}x {events:>11,}   {pm:9.1f}  {pm / events * 1e6:10.1f}  {pm / first[2]:7.2f} | "
              f"{rm:11.1f}  {rm / events * 1e6:10.1f}  {rm / first[3]:7.2f} | {pm / rm:5.1f}x")
    return 0


def run_workload(days: int, epd: int, fpd: int, repeats: int, no_spark_startup: bool
                 ) -> tuple[int, float | None, float | None]:
    """One workload, both engines ``repeats`` times, printed; returns (events, project median, reference median)."""
    dts = [(date.fromisoformat(START) + timedelta(days=i)).isoformat() for i in range(days)]
    print("== pipeline_throughput ==")
    landing, summary = ensure_landing(days, epd, fpd)
    files = landing_files(landing, dts)
    warm_s = warm_page_cache(files)
    m = machine()
    workload = (f"{days} days x {epd:,} events/day x {fpd:,} files/day = {summary['events']:,} events, "
                f"{summary['lines']:,} lines, {summary['files']:,} files ({len(files):,} log files read), "
                f"{summary['bytes'] / 1e6:.0f} MB on disk; {dts[0]}..{dts[-1]}, seed {SEED}")
    machine_line = (f"{m['cpus']} CPUs, {m['mem_gib']:.1f} GiB RAM; Python {m['python']}, pyspark {m['pyspark']}, "
                    f"dagster {m['dagster']}, duckdb {m['duckdb']}; {m['java']}")
    print(f"workload  {workload}")
    print(f"machine   {machine_line}")
    print(f"          landing files pre-read into the page cache in {warm_s:.1f} s (both engines start warm)")
    load_before = _load()
    print(f"load      {load_before}")

    scratch = Path(tempfile.mkdtemp(prefix="medallion-bench-"))
    project_walls, project_procs, reference_walls, pair_ratios, peaks = [], [], [], [], []
    step_runs: list[list[tuple[str, float]]] = []
    usage_runs: list[dict[str, dict[str, float]]] = []
    ref_timings: list[dict] = []
    check_lines: list[str] = []
    startup = None
    try:
        if not no_spark_startup:
            res, _, _ = run_child("spark_startup", landing, scratch / "spark_startup", {})
            if res:
                startup = res
                print(f"spark     cold SparkSession with the project's conf: {res['session_s']:.1f} s "
                      f"(+{res['first_job_s']:.1f} s for a first trivial job), separate process")
        for rep in range(1, repeats + 1):
            work = scratch / f"project-{rep}"
            config = {"start": dts[0], "end": dts[-1]}
            print(f"[{rep}/{repeats}] project: one ranged Dagster run {dts[0]}..{dts[-1]} over all assets ...", flush=True)
            load0 = os.getloadavg()[0]
            res, process_s, _ = run_child("project", landing, work, config)
            if res:
                project_walls.append(res["wall_s"])
                project_procs.append(process_s)
                step_runs.append([tuple(s) for s in res["steps"]])
                usage_runs.append(res.get("usage", {}))
                peaks.append(res["peak_rss_bytes"])
                steps = ", ".join(f"{k} {d:.1f} s" for k, d in res["steps"] if d is not None)
                print(f"          materialize {res['wall_s']:.1f} s (process {process_s:.1f} s incl. "
                      f"{res['import_s']:.1f} s imports); peak RSS {res['peak_rss_bytes'] / 2**30:.2f} GiB; "
                      f"steps: {steps}; "
                      f"1-min load {load0:.1f} -> {os.getloadavg()[0]:.1f}", flush=True)
            print(f"[{rep}/{repeats}] reference: DuckDB silver + gold ...", flush=True)
            ref_out = scratch / f"reference-{rep}"
            load0 = os.getloadavg()[0]
            ref = run_reference(landing, dts, ref_out)
            reference_walls.append(ref["wall_s"])
            ref_timings.append(ref["timings"])
            print(f"          {ref['wall_s']:.1f} s; " + ", ".join(f"{k} {v:.1f} s" for k, v in ref["timings"].items())
                  + f"; silver {ref['counts']['silver']:,} rows, quarantine {ref['counts']['quarantine']:,}; "
                  f"1-min load {load0:.1f} -> {os.getloadavg()[0]:.1f}", flush=True)
            if res:
                pair_ratios.append(res["wall_s"] / ref["wall_s"])
            if res and not check_lines:
                check_lines = cross_check(str(work / "lake" / "_catalog" / "catalog.db"), ref["results"])
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(ref_out, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    events = summary["events"]
    print()
    print("== summary: pipeline_throughput ==")
    print(f"workload   {workload}")
    print(f"machine    {machine_line}")
    print(f"load       before: {load_before}; after: {_load(flag=False)} (includes this benchmark's own processes)")
    print(f"repeats    {repeats} per engine; median wall time (all runs in brackets)")
    pm, rm = _median(project_walls), _median(reference_walls)

    def row(label: str, med: float | None, runs: list[float]) -> None:
        if med is None:
            print(f"  {label:<44} failed")
        else:
            print(f"  {label:<44} {med:8.1f} s {events / med:>10,.0f} events/s   [{', '.join(f'{x:.1f}' for x in runs)}]")

    row("project (Dagster + Spark, incl. Spark startup)", pm, project_walls)
    row("  same, whole process (imports, instance)", _median(project_procs), project_procs)
    row("reference (DuckDB SQL, silver + gold)", rm, reference_walls)
    if pm and rm:
        print(f"  ratio project / reference (of the medians)   {pm / rm:8.1f} x   (upper bound on overhead: the reference "
              "does less work - no bronze table, no catalog, no metrics, no Dagster)")
        print(f"  ratio per repeat (back-to-back pairs)        {_median(pair_ratios):8.1f} x   median of "
              f"[{', '.join(f'{x:.1f}' for x in pair_ratios)}]")
    if step_runs:
        names = [k for k, _ in step_runs[0]]
        per_step = {k: _median([d for run in step_runs for kk, d in run if kk == k and d is not None]) for k in names}
        total = sum(v for v in per_step.values() if v)
        print("  project steps (median of each):  " + ", ".join(
            f"{k} {v:.1f} s ({v / total:.0%})" for k, v in per_step.items() if v)
              + "; the first step includes creating the SparkSession")
        outside = [w - sum(d for _, d in run if d) for w, run in zip(project_walls, step_runs)]
        print(f"  run time outside the steps (Dagster run setup/teardown, median): {_median(outside):.1f} s")
    if peaks:
        print(f"  peak memory of the run (its Python process + Spark JVM, RSS sampled every 0.5 s): "
              f"{max(peaks) / 2**30:.2f} GiB at most [{', '.join(f'{p / 2**30:.2f}' for p in peaks)}]")
    if usage_runs:
        print_layer_usage(usage_runs)
    if startup:
        print(f"  cold SparkSession startup (separate probe): {startup['session_s']:.1f} s")
    if ref_timings:
        keys = list(ref_timings[0])
        print("  reference stages (median): " + ", ".join(
            f"{k} {_median([t[k] for t in ref_timings]):.1f} s" for k in keys))
    print("cross-check (first repeat; the same SQL on the project's catalog views and on the reference):")
    for line in check_lines or ["  not available (project run failed)"]:
        print(f"  {line}")
    return events, pm, rm


if __name__ == "__main__":
    sys.exit(main())
