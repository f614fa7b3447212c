"""backfill: a 30-day backfill of silver + gold as one ranged run against 30 per-day runs.

Workload (default): 30 days x 5,000 events/day in 20 files/day from the project's generator (seed 7),
ingested into bronze once. Then, on the same bronze, per repeat (``--repeats``):

* project:   ONE run over the whole range - ``medallion run --from D1 --to D30 --select silver gold`` - what
             the single-run backfill policy makes of a UI backfill: one process, one SparkSession;
* reference: 30 runs, one per day - ``medallion run --from D --to D --select silver gold`` for each day -
             what a per-partition backfill (Dagster's default policy, or Glue/DLT-style per-day jobs) does:
             30 processes and 30 SparkSessions.

Same invocation, same data, same machine; each run is a fresh process, so both include Python and JVM
start-up, which is exactly what a per-day backfill pays 30 times. The two take turns within a repeat.
Both publish new versions of the same partitions, so the catalog does the same work. Times are printed
(median over repeats, and the ratio), never asserted.

    .venv/bin/python benchmarks/backfill.py                 # 30 days, 1 repeat (≈35 min on 2 cores)
    .venv/bin/python benchmarks/backfill.py --days 5        # a quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

MEDALLION = str(Path(sys.executable).parent / "medallion")


def run(env: dict[str, str], *args: str) -> float:
    started = time.monotonic()
    subprocess.run([MEDALLION, *args], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--events-per-day", type=int, default=5_000)
    parser.add_argument("--files-per-day", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    start = date(2024, 1, 1)
    days = [(start + timedelta(days=i)).isoformat() for i in range(args.days)]
    print(f"# backfill benchmark: {args.days} days x {args.events_per_day:,} events in {args.files_per_day} "
          f"files/day, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("MEDALLION_", "AWS_"))},
               "MEDALLION_LANDING_ROOT": f"{tmp}/landing", "MEDALLION_LAKE_ROOT": f"{tmp}/lake",
               "MEDALLION_START_DATE": days[0], "MEDALLION_PII_KEY": "benchmark-only-key",
               "DAGSTER_HOME": f"{tmp}/dagster_home"}
        run(env, "generate", "--start", days[0], "--days", str(args.days), "--events-per-day",
            str(args.events_per_day), "--files-per-day", str(args.files_per_day))
        print(f"bronze, one ranged run: {run(env, 'run', '--from', days[0], '--to', days[-1], '--select', 'bronze'):.0f} s",
              flush=True)
        ranged, per_day = [], []
        for repeat in range(args.repeats):
            ranged.append(run(env, "run", "--from", days[0], "--to", days[-1], "--select", "silver", "gold"))
            print(f"  repeat {repeat + 1}: one ranged run {ranged[-1]:.0f} s (load {os.getloadavg()[0]:.1f})",
                  flush=True)
            each = []
            for d in days:
                each.append(run(env, "run", "--from", d, "--to", d, "--select", "silver", "gold"))
                print(f"    {d}: {each[-1]:.0f} s (load {os.getloadavg()[0]:.1f})", flush=True)
            per_day.append(sum(each))
            print(f"  repeat {repeat + 1}: {args.days} per-day runs {per_day[-1]:.0f} s, median "
                  f"{statistics.median(each):.0f} s each (load {os.getloadavg()[0]:.1f})", flush=True)
    r, p = statistics.median(ranged), statistics.median(per_day)
    print(f"one ranged run: median {r:.0f} s | {args.days} per-day runs: median {p:.0f} s "
          f"({p / args.days:.1f} s each) | ratio per-day / ranged: {p / r:.1f}x")


if __name__ == "__main__":
    main()
