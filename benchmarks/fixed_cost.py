"""fixed_cost: what one layer step costs on tiny data once the SparkSession exists, against DuckDB.

A layer's fixed cost (planning, code generation, small Spark jobs, catalog commits) is what a small run,
a landing refresh and the test suite wait for. Workload: ``--days`` days of 1,000 events in 10 files/day
from the project's generator (seed 7, default dirt), generated once into ``benchmarks/.data/``. One
SparkSession (the project's configuration) is created first and not timed; then, day by day, each layer
job (bronze, silver, gold, metrics) runs once on that day in this process, the way one ranged Dagster run
calls them, and the DuckDB reference (``pipeline_throughput``'s silver + gold SQL) runs on the same day.

Printed per layer: the first day's step (a fresh JVM: class loading and the first query of each kind, what
every new run process pays once), the median of the later days' steps (a warm JVM) and the Spark jobs of a
step; the project's warm total per day against the reference's median per day. Times are reported, never
asserted.

    .venv/bin/python benchmarks/fixed_cost.py              # 8 days
    .venv/bin/python benchmarks/fixed_cost.py --days 4
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]

import pipeline_throughput as throughput  # noqa: E402 - the benchmarks share their workload and reference

EVENTS_PER_DAY, FILES_PER_DAY = 1_000, 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=8)
    args = parser.parse_args(argv)
    if args.days < 2:
        parser.error("--days must be at least 2: the first day is the fresh JVM, the others the warm one")
    landing, summary = throughput.ensure_landing(args.days, EVENTS_PER_DAY, FILES_PER_DAY)
    dts = [(date.fromisoformat(throughput.START) + timedelta(days=i)).isoformat() for i in range(args.days)]
    throughput.warm_page_cache(throughput.landing_files(landing, dts))
    print(f"workload: {args.days} days x {EVENTS_PER_DAY:,} events in {FILES_PER_DAY} files/day "
          f"({summary['events']:,} events); load {os.getloadavg()[0]:.1f}")

    work = Path(tempfile.mkdtemp(prefix="fixed-cost-"))
    os.environ.update(throughput._project_env(landing, work))  # the lake, catalog and key of a fresh project
    from medallion_pipeline.jobs import LAYER_JOBS
    from medallion_pipeline.jobs.environment import JobEnvironment
    from medallion_pipeline.resources.spark import build_spark_session
    from medallion_pipeline.settings import Settings

    settings = Settings.from_env()
    spark = build_spark_session(settings)
    env = JobEnvironment.from_settings(settings, run_id="fixed-cost")
    steps: dict[str, list[tuple[float, int]]] = {layer: [] for layer in LAYER_JOBS}
    references: list[float] = []
    try:
        for dt in dts:
            for layer, job in LAYER_JOBS.items():
                started = time.perf_counter()
                report = job(spark, [dt], env)
                steps[layer].append((time.perf_counter() - started, int(report.spark.get("spark_jobs", 0))))
            references.append(throughput.run_reference(landing, [dt], work / f"reference-{dt}")["wall_s"])
            print(f"  {dt}: " + ", ".join(f"{layer} {s[-1][0]:.2f} s" for layer, s in steps.items())
                  + f" | DuckDB reference {references[-1]:.2f} s", flush=True)
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)

    print("== summary ==")
    print(f"  {'layer':<8} {'first day':>10} {'later days, median':>19} {'Spark jobs':>11}")
    warm_total = 0.0
    for layer, runs in steps.items():
        warm = statistics.median(s for s, _ in runs[1:])
        warm_total += warm
        print(f"  {layer:<8} {runs[0][0]:>8.2f} s {warm:>17.2f} s {runs[-1][1]:>11}")
    reference = statistics.median(references[1:])
    print(f"  four layers, warm: {warm_total:.2f} s per day; DuckDB reference (silver + gold) median "
          f"{reference:.2f} s per day; ratio {warm_total / reference:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
