"""incremental_bronze: 50 incremental bronze ingests into one day, as segments vs rewriting the whole day.

Workload (default): one day (2024-01-01) of 150,000 distinct events in 1,000 JSON-lines files of ~150 events each
(10 % gzip), written by the project's own generator (``medallion_pipeline.sample_data.generate``, seed 7, default
``Dirt`` without the empty file: ~1 % duplicates, ~0.2 % malformed lines, wrong types, missing fields, PII in
messages). The files are generated once into ``benchmarks/.data/bronze-day-<params>/`` and reused on later runs
(marker ``.complete.json``). They land in 50 batches of 20: copy the next 20 files into the landing day directory
(``<source>/dt=2024-01-01/``), then ONE incremental bronze ingest of that day -
``medallion_pipeline.jobs.bronze.run_bronze(spark, [dt], env)`` - timed; 50 times, in a fresh lake + catalog per
configuration:

* project:   ``MEDALLION_BRONZE_MAX_SEGMENTS`` at its default (16; ``--max-segments`` overrides it): an ingest into
             a day that already has rows writes only the new files' rows as a new segment, and the catalog version
             references the earlier segments; when the count would exceed the maximum the day is compacted
             (rewritten into one segment).
* reference: ``MEDALLION_BRONZE_MAX_SEGMENTS=1``: every ingest rewrites the whole day, previous rows plus the new
             ones - bronze's behaviour before segments. Its ingests grow with the day's size.

Issue 14's acceptance reads "the last ingest takes <= 1.5x the first": both last/first and the ratio of the medians
of the last 5 and the first 5 ingests (less sensitive to one noisy run) are printed, never asserted. Both
configurations share one SparkSession (the project's builder, ``local[*]``) and take turns ingest by ingest, the one
going first alternating, so that changes in the machine's load and the JVM's warm-up affect both alike; two untimed
warm-up ingests into a throwaway lake come first, so the first timed ingest does not pay for a cold JVM. After every
ingest the published row count, the day's segments (``len(version.segments) + 1``; 1 before the setting exists) and
what Spark wrote are recorded; the two configurations' row counts are compared, mismatches printed. The 1-minute
load average is printed around the run: other CPU-heavy processes on the machine inflate both configurations' times.

    .venv/bin/python benchmarks/incremental_bronze.py                                   # 50 ingests x 20 files
    .venv/bin/python benchmarks/incremental_bronze.py --ingests 6 --files-per-ingest 5  # a quick look
    .venv/bin/python benchmarks/incremental_bronze.py --only project --max-segments 8
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline_throughput import (  # benchmarks/ is the script's directory
    DATA_DIR,
    SEED,
    generate_once,
)
from pyspark.sql import SparkSession

from medallion_pipeline.jobs.bronze import run_bronze
from medallion_pipeline.jobs.environment import JobEnvironment
from medallion_pipeline.resources.landing import is_log_file
from medallion_pipeline.resources.spark import build_spark_session
from medallion_pipeline.sample_data import Dirt
from medallion_pipeline.settings import Settings
from medallion_pipeline.tables import BRONZE_APP_LOGS

DT = "2024-01-01"
PII_KEY = "benchmark-pii-key-not-a-secret"
CONFIGURATIONS = ("project", "reference")
WARMUP_INGESTS = 2


# --------------------------------------------------------------------------------------------------- workload


def ensure_day(events_per_file: int, files: int) -> tuple[Path, dict]:
    """The day's files, generated once; no empty file, so every batch holds the same number of data files."""
    root = DATA_DIR / f"bronze-day-{DT}-e{events_per_file}-f{files}-s{SEED}"
    return root, generate_once(root, DT, 1, events_per_file * files, files, Dirt(empty_files=0))


def day_files(root: Path) -> list[Path]:
    """The day's log files (the project's own file filter), in landing order: by part number, sources interleaved."""
    files = [p for p in root.glob(f"*/dt={DT}/*") if p.is_file() and is_log_file(p.name)]
    return sorted(files, key=lambda p: (p.name, p.parent.parent.name))


def land(files: list[Path], landing: Path) -> None:
    """Copy files into ``landing`` under the same ``<source>/dt=<dt>/<name>`` keys."""
    for f in files:
        target = landing / f.parent.parent.name / f.parent.name / f.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)


# ------------------------------------------------------------------------------------------------ ingesting


@dataclass
class Ingest:
    seconds: float
    rows: int
    published: bool
    segments: int
    compacted: bool
    spark: dict[str, float] = field(default_factory=dict)


@dataclass
class Run:
    """One configuration: its own landing, lake and catalog, and its ingests so far."""

    name: str
    landing: Path
    env: JobEnvironment
    ingests: list[Ingest] = field(default_factory=list)

    @property
    def seconds(self) -> list[float]:
        return [i.seconds for i in self.ingests]


def settings_env(work: Path, max_segments: int | None) -> dict[str, str]:
    """The ``MEDALLION_*`` environment of one configuration; ``max_segments`` None keeps the project's default."""
    env = {
        "MEDALLION_LANDING_ROOT": str(work / "landing"),
        "MEDALLION_LAKE_ROOT": str(work / "lake"),
        "MEDALLION_PII_KEY": PII_KEY,
        "MEDALLION_START_DATE": DT,
    }
    if max_segments is not None:
        env["MEDALLION_BRONZE_MAX_SEGMENTS"] = str(max_segments)
    return env


def new_run(name: str, work: Path, max_segments: int | None) -> Run:
    settings = Settings.from_env(settings_env(work, max_segments))
    return Run(name, Path(settings.landing_root), JobEnvironment.from_settings(settings))


def max_segments_of(run: Run) -> str:
    """The configuration's ``bronze_max_segments``, which older versions of the package do not have."""
    value = getattr(run.env.settings, "bronze_max_segments", None)
    return "- (not a setting yet)" if value is None else str(value)


def ingest(spark: SparkSession, run: Run, batch: list[Path]) -> Ingest:
    """Land one batch, then one timed incremental bronze ingest of the day."""
    land(batch, run.landing)
    started = time.perf_counter()
    report = run_bronze(spark, [DT], run.env)
    seconds = time.perf_counter() - started
    partition = report.table(BRONZE_APP_LOGS).partitions[DT]
    version = run.env.catalog.current(BRONZE_APP_LOGS, [DT]).get(DT)
    segments = len(getattr(version, "segments", ())) + 1 if version else 0
    previous = run.ingests[-1].segments if run.ingests else 0
    done = Ingest(seconds, version.row_count if version else 0, partition.published, segments, segments < previous,
                  dict(getattr(report, "spark", {}) or {}))
    run.ingests.append(done)
    return done


# ---------------------------------------------------------------------------------------------------- output


def load_average(flag: bool = True) -> str:
    """Load averages; before the run, flagged when other processes already compete for the CPUs."""
    one, five, fifteen = os.getloadavg()
    busy = flag and one > 0.5 * (os.cpu_count() or 1)
    warning = "  !! machine busy: times inflated" if busy else ""
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min){warning}"


def table_header(runs: list[Run]) -> str:
    cells = "".join(f" | {r.name + ' s':>11} {'segs':>4} {'MB wr':>6} {'jobs':>4}" for r in runs)
    return f"  {'ingest':>6} {'files':>5} {'rows':>9}{cells} | load"


def table_row(number: int, files: int, runs: list[Run]) -> str:
    cells = ""
    for r in runs:
        i = r.ingests[-1]
        mark = "c" if i.compacted else "!" if not i.published else " "  # c: compacted; !: not published
        cells += (f" | {i.seconds:11.2f} {i.segments:>3}{mark} {i.spark.get('bytes_written', 0) / 1e6:6.1f} "
                  f"{i.spark.get('spark_jobs', 0):4.0f}")
    return f"  {number:>6} {files:>5} {runs[0].ingests[-1].rows:>9,}{cells} | {os.getloadavg()[0]:.1f}"


def summary_lines(run: Run) -> list[str]:
    s = run.seconds
    first5, last5 = statistics.median(s[:5]), statistics.median(s[-5:])
    written = sum(i.spark.get("bytes_written", 0) for i in run.ingests) / 1e6
    compactions = sum(i.compacted for i in run.ingests)
    slowest = max(range(len(s)), key=s.__getitem__)
    return [
        (f"  {run.name:<10} first {s[0]:.2f} s, median of first 5 {first5:.2f} s, "
         f"median of last 5 {last5:.2f} s, last {s[-1]:.2f} s; slowest {s[slowest]:.2f} s (ingest {slowest + 1}"
         f"{', a compaction' if run.ingests[slowest].compacted else ''}); total {sum(s):.1f} s"),
        (f"  {'':<10} last / first {s[-1] / s[0]:.2f} x; "
         f"median of last 5 / median of first 5 {last5 / first5:.2f} x (issue 14: <= 1.5 x)"),
        (f"  {'':<10} max segments {max_segments_of(run)}; segments at the end {run.ingests[-1].segments}, "
         f"at most {max(i.segments for i in run.ingests)}; {compactions} compaction(s); "
         f"Spark wrote {written:,.0f} MB in all; {run.ingests[-1].rows:,} rows"),
    ]


def row_mismatches(runs: list[Run]) -> list[str]:
    project, reference = runs
    return [f"ingest {n}: project {p.rows:,} rows, reference {r.rows:,}"
            for n, (p, r) in enumerate(zip(project.ingests, reference.ingests), start=1) if p.rows != r.rows]


# ------------------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ingests", type=int, default=50)
    parser.add_argument("--files-per-ingest", type=int, default=20)
    parser.add_argument("--events-per-file", type=int, default=150)
    parser.add_argument("--only", choices=CONFIGURATIONS, help="run one configuration only")
    parser.add_argument("--max-segments", type=int,
                        help="the project's MEDALLION_BRONZE_MAX_SEGMENTS (default: the setting's default)")
    args = parser.parse_args(argv)
    n_files = args.ingests * args.files_per_ingest

    print("== incremental_bronze ==")
    root, summary = ensure_day(args.events_per_file, n_files)
    files = day_files(root)
    batches = [files[k:k + args.files_per_ingest] for k in range(0, n_files, args.files_per_ingest)]
    workload = (f"1 day ({DT}) x {summary['events']:,} events, {summary['lines']:,} lines in {len(files):,} files "
                f"({summary['bytes'] / 1e6:.0f} MB); {args.ingests} ingests x {args.files_per_ingest} files, "
                f"seed {SEED}")
    print(f"workload  {workload}")
    print(f"machine   {os.cpu_count()} CPUs; Python {sys.version.split()[0]}")
    load_before = load_average()
    print(f"load      {load_before}")

    scratch = Path(tempfile.mkdtemp(prefix="medallion-bench-bronze-"))
    warmup = new_run("warm-up", scratch / "warm-up", args.max_segments)
    started = time.perf_counter()
    spark = build_spark_session(warmup.env.settings)  # the project's conf; local[*]
    spark.sparkContext.setLogLevel("ERROR")
    print(f"spark     SparkSession {time.perf_counter() - started:.1f} s; master {spark.sparkContext.master}")
    try:
        for batch in batches[:WARMUP_INGESTS]:
            ingest(spark, warmup, batch)
        print(f"warm-up   {len(warmup.ingests)} untimed ingests into a throwaway lake: "
              + ", ".join(f"{s:.1f} s" for s in warmup.seconds), flush=True)

        names = [args.only] if args.only else list(CONFIGURATIONS)
        runs = [new_run(name, scratch / name, args.max_segments if name == "project" else 1) for name in names]
        print("segments  MEDALLION_BRONZE_MAX_SEGMENTS " + ", ".join(f"{r.name} {max_segments_of(r)}" for r in runs)
              + ("" if hasattr(warmup.env.settings, "bronze_max_segments")
                 else "; every ingest rewrites the day in both configurations"))
        print("  (c: that ingest compacted the day; !: not published)")
        print(table_header(runs), flush=True)
        for number, batch in enumerate(batches, start=1):
            for r in runs if number % 2 else runs[::-1]:
                ingest(spark, r, batch)
            print(table_row(number, number * args.files_per_ingest, runs), flush=True)
    finally:
        spark.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    print()
    print("== summary: incremental_bronze ==")
    print(f"workload   {workload}")
    print(f"load       before: {load_before}; after: {load_average(flag=False)} (includes this benchmark's own JVM)")
    for r in runs:
        for line in summary_lines(r):
            print(line)
    if len(runs) == 2:
        project, reference = runs
        print(f"  ratio project / reference of total time {sum(project.seconds) / sum(reference.seconds):.2f} x; "
              f"of the last ingest {project.seconds[-1] / reference.seconds[-1]:.2f} x")
        mismatches = row_mismatches(runs)
        print("  rows: the same in both after every ingest" if not mismatches else "  rows DIFFER:")
        for line in mismatches[:5]:
            print(f"    {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
