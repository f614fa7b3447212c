"""spark_floor: the least Spark work the pipeline's logic needs, against the DuckDB reference of all of it.

Is "within 4x of DuckDB" reachable by making the project leaner, or is the engine the limit on this machine?
This measures the floor under any Spark implementation: the two passes every design needs, with none of
the project's safety (no ingest ledger, catalog, audits, rescue, PII masking, schema evolution, metrics or
Dagster) and no gold at all:

* bronze floor: read the landing files as text, parse each line into a ``map<string,string>``, cast the
  v1 fields, write Parquet partitioned by ``dt``;
* silver floor: read that bronze, drop rows without an ``event_id``, hash ``client_ip`` (one ``sha2``),
  keep the first copy of each (dt, event_id) by a window, write Parquet partitioned by ``dt``.

The reference is ``pipeline_throughput``'s DuckDB SQL: silver, quarantine and the four gold tables from the
same landing files. Both run in this process with a warm page cache, in turns, ``--repeats`` times; the
medians and their ratio are printed. The workload defaults to 2 of ``make bench``'s days (186,000
events/day in 2,860 files/day), generated once into ``benchmarks/.data/`` like the other benchmarks.

    .venv/bin/python benchmarks/spark_floor.py                 # 2 days, 3 repeats
    .venv/bin/python benchmarks/spark_floor.py --days 7 --repeats 2
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


def spark_floor(spark, files: list[str], out: Path) -> dict[str, float]:
    """Bronze and silver at their floor (see the module docstring); seconds per pass."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from medallion_pipeline.schemas.bronze import TYPED_FIELDS

    seconds = {}
    started = time.perf_counter()
    fields = F.from_json("value", "map<string,string>").alias("m")
    bronze = spark.read.text(files).select(fields, F.col("_metadata.file_path").alias("file")).select(
        *[F.expr(f"try_cast(m['{name}'] AS {kind})").alias(name) for name, kind in TYPED_FIELDS.items()],
        "file", F.regexp_extract("file", r"/dt=(\d{4}-\d{2}-\d{2})/", 1).alias("dt"))
    bronze.write.partitionBy("dt").parquet(str(out / "bronze"))
    seconds["bronze floor"] = time.perf_counter() - started
    started = time.perf_counter()
    first = Window.partitionBy("dt", "event_id").orderBy("file")
    silver = (spark.read.parquet(str(out / "bronze")).where(F.col("event_id").isNotNull())
              .withColumn("client_ip", F.sha2("client_ip", 256))
              .withColumn("_copy", F.row_number().over(first)).where(F.col("_copy") == 1).drop("_copy"))
    silver.write.partitionBy("dt").parquet(str(out / "silver"))
    seconds["silver floor"] = time.perf_counter() - started
    seconds["total"] = seconds["bronze floor"] + seconds["silver floor"]
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    full = throughput.FULL
    landing, summary = throughput.ensure_landing(args.days, full["events_per_day"], full["files_per_day"])
    dts = [(date.fromisoformat(throughput.START) + timedelta(days=i)).isoformat() for i in range(args.days)]
    files = throughput.landing_files(landing, dts)
    throughput.warm_page_cache(files)
    print(f"workload: {args.days} days, {summary['events']:,} events in {len(files):,} files; "
          f"{args.repeats} repeats; load {os.getloadavg()[0]:.1f}")

    from medallion_pipeline.resources.spark import build_spark_session
    from medallion_pipeline.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="spark-floor-"))
    spark = build_spark_session(Settings(lake_root=str(work / "lake"), landing_root=str(landing)))
    floors, references = [], []
    try:
        for i in range(args.repeats):
            out = work / f"floor-{i}"
            floor = spark_floor(spark, files, out)
            shutil.rmtree(out, ignore_errors=True)
            reference = throughput.run_reference(landing, dts, work / f"reference-{i}")["wall_s"]
            floors.append(floor)
            references.append(reference)
            print(f"  repeat {i + 1}: " + ", ".join(f"{k} {v:.1f} s" for k, v in floor.items())
                  + f" | DuckDB reference (silver + gold) {reference:.1f} s")
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    medians = {k: statistics.median(f[k] for f in floors) for k in floors[0]}
    reference = statistics.median(references)
    print("== summary ==")
    for k, v in medians.items():
        print(f"  {k:<13} median {v:6.1f} s  = {v / reference:4.1f}x the reference's whole pipeline")
    print(f"  DuckDB reference median {reference:.1f} s (silver, quarantine and four gold tables)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
