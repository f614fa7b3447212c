"""landing: what a listing tick costs as the bucket grows, and how long a landed file takes to reach gold.

Part 1 - S3 calls per listing tick against bucket size (``--sizes``). A moto server on 127.0.0.1 holds a
landing bucket with N old objects (2023, outside the look-back window; seeded straight into moto's backend)
plus 2 new files for today under 2 sources. Counted with a botocore ``before-call`` hook, over HTTP:

* project:   one ``landing_tick`` in listing mode (default look-back: today and 3 previous days);
* reference: ``dagster_aws.s3.sensor.get_objects(bucket, prefix, since_key=...)``, the S3 sensor helper
             Dagster ships, which lists the whole prefix on every call and filters in Python.

Calls are deterministic; the wall time per tick (median of ``--repeats``) is printed for scale.

Part 2 - landing to gold under ``dagster dev`` (``--trials``; skip with ``--trials 0``). A real webserver +
daemon on 127.0.0.1 with the project's defaults except ``MEDALLION_LANDING_BATCH_FILES=2``: each trial drops
2 small files for today (``--days-at-once K``: for each of the newest K days) and waits until
``gold.daily_kpis`` for each of those days has a new version. The sensor and the
automation tick at their defaults (``--interval``, 30 s). The reference is the same drop processed by one
``medallion run`` for today in a fresh process (no sensors, no daemon): the ratio is what the event-driven
path costs over running the day by hand.

    .venv/bin/python benchmarks/landing.py                      # both parts
    .venv/bin/python benchmarks/landing.py --trials 0           # S3 calls only (≈1 min)
    .venv/bin/python benchmarks/landing.py --sizes 0 --trials 2 --days-at-once 3   # three days land at once
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


# --- part 1 ---------------------------------------------------------------------------------------------


def s3_calls(sizes: list[int], repeats: int) -> None:
    import boto3
    import dagster as dg
    from dagster_aws.s3.sensor import get_objects
    from moto.backends import get_backend
    from moto.server import ThreadedMotoServer

    from medallion_pipeline.defs.landing import landing_tick
    from medallion_pipeline.resources.landing import S3LandingStore
    from medallion_pipeline.settings import Settings
    from medallion_pipeline_tests.dagster_dev import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench",
                      AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    now = datetime.now(timezone.utc)
    today = now.date().isoformat()
    client = boto3.client("s3")
    calls: list[str] = []
    client.meta.events.register("before-call.s3.*", lambda model, **kw: calls.append(model.name))
    client.create_bucket(Bucket="landing")
    for source in ("web", "api"):
        client.put_object(Bucket="landing", Key=f"logs/{source}/dt={today}/new.json", Body=b'{"event_id": "1"}\n')
    backend = get_backend("s3")["123456789012"]["aws"]
    seeded = 0
    print(f"{'objects in bucket':>18} | {'project calls':>13} | {'reference calls':>15} | {'ratio':>6} | "
          f"{'project tick':>12} | {'reference':>9}")
    with tempfile.TemporaryDirectory() as tmp, dg.instance_for_test() as instance:
        settings = replace(Settings(lake_root=f"{tmp}/lake"), landing_root="s3://landing/logs",
                           landing_batch_files=100)
        store = S3LandingStore(settings.landing_root, client=client)
        for size in sizes:
            for i in range(seeded, size):
                backend.put_object("landing", f"logs/{('web', 'api')[i % 2]}/dt=2023-{1 + i % 12:02d}-"
                                              f"{1 + i % 28:02d}/o{i}.json", b"{}", disable_notification=True)
            seeded = max(seeded, size)
            project_times, reference_times = [], []
            for _ in range(repeats):
                calls.clear()
                started = time.perf_counter()
                landing_tick(instance, settings, now, landing=store)
                project_times.append(time.perf_counter() - started)
                project = len(calls)
                calls.clear()
                started = time.perf_counter()
                get_objects("landing", "logs/", since_key=f"logs/web/dt={today}/new.json", client=client)
                reference_times.append(time.perf_counter() - started)
                reference = len(calls)
            print(f"{size + 2:>18,} | {project:>13} | {reference:>15} | {reference / project:>5.1f}x | "
                  f"{statistics.median(project_times) * 1000:>9.0f} ms | "
                  f"{statistics.median(reference_times) * 1000:>6.0f} ms")
    server.stop()


# --- part 2 ---------------------------------------------------------------------------------------------


def latency(trials: int, interval: int, days_at_once: int = 1) -> None:
    from datetime import timedelta

    from medallion_pipeline.resources.catalog import open_catalog
    from medallion_pipeline.settings import Settings
    from medallion_pipeline.tables import GOLD_DAILY_KPIS
    from medallion_pipeline_tests.conftest import TEST_PII_KEY, event, write_landing
    from medallion_pipeline_tests.dagster_dev import DagsterDev

    today = datetime.now(timezone.utc).date()
    # The newest days, oldest first: the landing sensor looks back 3 days by default.
    days = [(today - timedelta(days=k)).isoformat() for k in reversed(range(days_at_once))]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(landing_root=f"{tmp}/landing", lake_root=f"{tmp}/lake", pii_key=TEST_PII_KEY)
        env = {"MEDALLION_LANDING_ROOT": settings.landing_root, "MEDALLION_LAKE_ROOT": settings.lake_root,
               "MEDALLION_PII_KEY": TEST_PII_KEY, "MEDALLION_START_DATE": days[0],
               "MEDALLION_LANDING_BATCH_FILES": "2",
               "MEDALLION_LANDING_SENSOR_INTERVAL_SECONDS": str(interval),
               "MEDALLION_AUTOMATION_INTERVAL_SECONDS": str(interval)}

        def gold_versions() -> dict[str, str]:
            current = open_catalog(settings.resolved_catalog_uri).current(GOLD_DAILY_KPIS, days)
            return {dt: v.version_id for dt, v in current.items()}

        def drop(trial: int) -> None:
            for dt in days:
                for name in ("a", "b"):
                    write_landing(settings.landing_root, dt, f"t{trial}-{name}.json",
                                  [event(i, dt=dt, event_id=f"t{trial}-{name}-{i}") for i in range(200)])

        server_times, first_times = [], []
        with DagsterDev(Path(tmp) / "dagster_home", env):
            for trial in range(trials):
                before = gold_versions()
                drop(trial)
                started = time.monotonic()
                reached: dict[str, float] = {}  # dt -> seconds until its gold had a new version
                while len(reached) < len(days) and time.monotonic() - started < 1800:
                    now = gold_versions()
                    reached.update({dt: time.monotonic() - started for dt in days
                                    if dt not in reached and now.get(dt) != before.get(dt)})
                    time.sleep(0.5)
                server_times.append(max(reached.values(), default=float("nan")))
                first_times.append(min(reached.values(), default=float("nan")))
                each = ", ".join(f"{dt} {reached[dt]:.0f} s" for dt in days if dt in reached)
                print(f"  trial {trial + 1}: files -> gold {each} ({load()})", flush=True)

        reference_times = []
        for trial in range(trials):
            drop(100 + trial)
            started = time.monotonic()
            subprocess.run([str(Path(sys.executable).parent / "medallion"), "run", "--from", days[0], "--to", days[-1]],
                           env={**os.environ, **env, "DAGSTER_HOME": f"{tmp}/cli_home"}, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            reference_times.append(time.monotonic() - started)
            print(f"  reference {trial + 1}: medallion run {reference_times[-1]:.0f} s ({load()})", flush=True)

    def summary(times: list[float]) -> str:
        return f"median {statistics.median(times):.0f} s, worst {max(times):.0f} s"

    label = "files -> gold" if days_at_once == 1 else f"{days_at_once} days at once, files -> gold of the last day"
    print(f"dagster dev, {label} ({interval} s sensor/automation interval): {summary(server_times)}")
    if days_at_once > 1:
        print(f"dagster dev, ... of the first day to reach gold:  {summary(first_times)}")
    print(f"medallion run, the same days by hand:            {summary(reference_times)}")
    print(f"ratio (medians): {statistics.median(server_times) / statistics.median(reference_times):.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 1_000, 10_000, 50_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--interval", type=int, default=30, help="sensor and automation interval, seconds")
    parser.add_argument("--days-at-once", type=int, default=1,
                        help="each trial lands files for this many of the newest days at once (at most 4: the "
                             "sensor's look-back)")
    args = parser.parse_args()
    print(f"# landing benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, {load()}")
    s3_calls(args.sizes, args.repeats)
    if args.trials:
        latency(args.trials, args.interval, args.days_at_once)


if __name__ == "__main__":
    main()
