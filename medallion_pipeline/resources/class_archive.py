"""A class-data-sharing archive for local Spark's driver JVM: every run process starts its JVM faster.

A Spark driver loads some 15,000 classes before its first query finishes, and a run process (a Dagster run,
``medallion run``, a test session) starts a new JVM each time. Java's dynamic class-data sharing records the
classes a JVM loaded into an archive when it exits (``-XX:ArchiveClassesAtExit``); later JVMs map it
(``-XX:SharedArchiveFile``) instead of parsing and verifying those classes again. Measured (BENCHMARKS.md,
"Fixed cost"): a SparkSession and its first job 4.0-4.7 -> 2.9-3.1 s, the four layers' first steps on a
1,000-event day 16.7 -> 13.0 s; warm steps unchanged.

``make install`` builds it once per virtualenv (``python -m medallion_pipeline.resources.class_archive``):
a training run of the four layer jobs on a small generated day, in a child process whose JVM writes the
archive as it exits, to a temporary name. A second JVM must then start with it under ``-Xshare:on`` (which
refuses an archive it cannot map) before it is renamed into place, and its size is recorded beside it:
``usable`` — what ``spark_conf`` asks before local Spark maps it — holds only for an archive of exactly that
size, because a truncated archive crashes the JVM that maps it (SIGBUS, seen with JDK 17) instead of being
ignored. An archive of another JDK build or other Spark jars is ignored by the JVM, with a warning.
Nothing here is needed for correctness: when no usable archive exists, Spark starts as it always did.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

CLASS_ARCHIVE = Path(sys.prefix) / "spark-classes.jsa"  # inside the virtualenv: rebuilt with it


def _size_file(archive: Path) -> Path:
    return archive.with_name(f"{archive.name}.size")


def usable(archive: Path) -> bool:
    """The archive exists and has the size its verified build recorded (not truncated since)."""
    try:
        return archive.stat().st_size == int(_size_file(archive).read_text())
    except (OSError, ValueError):
        return False


def train(archive: Path) -> None:
    """Run each layer job once on a generated day in a JVM that writes the classes it loaded to ``archive``."""
    from medallion_pipeline.jobs import LAYER_JOBS
    from medallion_pipeline.jobs.environment import JobEnvironment
    from medallion_pipeline.resources.spark import build_spark_session
    from medallion_pipeline.sample_data import generate
    from medallion_pipeline.settings import Settings

    with tempfile.TemporaryDirectory(prefix="medallion-class-archive-") as tmp:
        settings = Settings(landing_root=f"{tmp}/landing", lake_root=f"{tmp}/lake", start_date="2024-01-01",
                            spark_master="local[2]", pii_key="class-archive-training-only-not-a-secret")
        generate(settings.landing_root, start=date(2024, 1, 1), days=1, events_per_day=500, files_per_day=4)
        spark = build_spark_session(settings, extra={
            "spark.driver.defaultJavaOptions": f"-XX:ArchiveClassesAtExit={archive}"})
        spark.sparkContext.setLogLevel("ERROR")
        env = JobEnvironment.from_settings(settings, run_id="class-archive")
        for job in LAYER_JOBS.values():
            job(spark, ["2024-01-01"], env)
        jvm = spark.sparkContext._gateway.proc  # noqa: SLF001 - the JVM pyspark started
        spark.stop()
        jvm.stdin.close()  # the JVM exits when its Python side goes, writing the archive as it does
        if jvm.wait(timeout=300) != 0:
            raise SystemExit(f"the training JVM exited with {jvm.returncode}")


def verify(archive: Path) -> None:
    """Start a SparkSession whose JVM must map ``archive`` (``-Xshare:on``) and run one job."""
    from medallion_pipeline.resources.spark import build_spark_session
    from medallion_pipeline.settings import Settings

    spark = build_spark_session(Settings(spark_master="local[1]"), extra={
        "spark.driver.defaultJavaOptions": f"-XX:SharedArchiveFile={archive} -Xshare:on"})
    if spark.range(7).count() != 7:
        raise SystemExit("a JVM mapping the archive miscounted a 7-row range")


def child(step: str, archive: Path) -> subprocess.CompletedProcess:
    """``--train`` or ``--verify`` on ``archive`` in a fresh Python + JVM; its stderr is kept."""
    command = [sys.executable, "-m", "medallion_pipeline.resources.class_archive", step, str(archive)]
    with tempfile.TemporaryDirectory() as cwd:  # where a crashing JVM would leave its hs_err file
        return subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def build(archive: Path = CLASS_ARCHIVE, force: bool = False) -> bool:
    """Build ``archive`` unless it exists; True when there is one afterwards."""
    if usable(archive) and not force:
        print(f"class-data-sharing archive: {archive} (exists)")
        return True
    partial = archive.with_name(f".{archive.name}.{os.getpid()}.partial")
    started = time.monotonic()
    for step in ("--train", "--verify"):
        result = child(step, partial)
        if result.returncode != 0 or not partial.is_file():
            partial.unlink(missing_ok=True)
            tail = result.stderr.strip().splitlines()[-3:]
            print(f"class-data-sharing archive not built ({step[2:]} failed; Spark runs without it): "
                  f"{' | '.join(tail)}")
            return False
    size_file, size_partial = _size_file(archive), partial.with_name(f"{partial.name}.size")
    size_partial.write_text(str(partial.stat().st_size))
    os.replace(size_partial, size_file)  # an old archive of another size is now unusable
    os.replace(partial, archive)
    print(f"class-data-sharing archive: {archive}, {archive.stat().st_size / 2**20:.0f} MB in "
          f"{time.monotonic() - started:.0f} s")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="rebuild an existing archive")
    parser.add_argument("--train", type=Path, help=argparse.SUPPRESS)  # the child processes
    parser.add_argument("--verify", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train:
        train(args.train)
        return 0
    if args.verify:
        verify(args.verify)
        return 0
    build(force=args.force)
    return 0  # never fails an install: the archive only makes JVMs start faster


if __name__ == "__main__":
    raise SystemExit(main())
