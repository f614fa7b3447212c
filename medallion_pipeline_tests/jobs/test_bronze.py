"""Bronze ingest: incremental ledger, bad files, full rebuild, compaction."""

from __future__ import annotations

import gzip
import os

from pyspark.sql import functions as F

from medallion_pipeline.jobs.bronze import run_bronze
from medallion_pipeline.jobs.publish import read_published
from medallion_pipeline.tables import BRONZE_APP_LOGS
from medallion_pipeline_tests.conftest import event, write_landing

DT = "2024-01-01"


def partition(report):
    return report.table(BRONZE_APP_LOGS).partitions[DT]


def test_bad_files_are_counted_never_crash(spark, env, settings):
    root = settings.landing_root
    write_landing(root, DT, "good.jsonl", [event(1), event(2)])
    write_landing(root, DT, "empty.json", [])
    write_landing(root, DT, "mixed.ndjson", [event(3), "garbage", b"\xff\xfe not utf8", '{"a":', "   "])
    write_landing(root, DT, "zipped.jsonl.gz", [event(4)], gz=True)
    truncated = gzip.compress(b"".join(b'{"event_id":"t%d"}\n' % i for i in range(500)))[:120]
    with open(os.path.join(root, "web", f"dt={DT}", "truncated.jsonl.gz"), "wb") as fh:
        fh.write(truncated)

    result = partition(run_bronze(spark, [DT], env))
    assert result.published and result.row_count == 7  # 4 events + 3 malformed lines (blank line dropped)
    assert result.stats["files_new"] == 5 and result.stats["files_unreadable"] == 1
    assert result.stats["malformed_lines_new"] == 3
    ledger = {e.key.rsplit("/", 1)[-1]: e.status for e in env.catalog.ledger(BRONZE_APP_LOGS, DT)}
    assert ledger["truncated.jsonl.gz"] == "unreadable" and ledger["good.jsonl"] == "ingested"
    corrupt = read_published(spark, env, BRONZE_APP_LOGS, [DT]).where(F.col("_corrupt_record").isNotNull())
    assert sorted(r[0] for r in corrupt.select("_corrupt_record").collect())[0] == "garbage"


def test_incremental_ingest_reads_only_new_files(spark, env, settings):
    write_landing(settings.landing_root, DT, "a.jsonl", [event(1), event(2)])
    first = partition(run_bronze(spark, [DT], env))
    again = partition(run_bronze(spark, [DT], env))
    assert again.published is False and again.stats["files_already_ingested"] == 1
    write_landing(settings.landing_root, DT, "b.jsonl", [event(3)], source="api")
    third = partition(run_bronze(spark, [DT], env))
    assert third.stats["files_new"] == 1 and third.row_count == 3 and third.version_id != first.version_id
    rows = read_published(spark, env, BRONZE_APP_LOGS, [DT])
    assert sorted(r[0] for r in rows.select("_source_file").collect()) == [
        "api/dt=2024-01-01/b.jsonl", "web/dt=2024-01-01/a.jsonl", "web/dt=2024-01-01/a.jsonl"]
    # Compaction: one Parquet file for the partition, however many landing files and ingests.
    files = [f for f in os.listdir(third.location) if f.endswith(".parquet")]
    assert len(files) == 1


def test_full_refresh_replaces_partition_and_ledger(spark, env, settings):
    path = write_landing(settings.landing_root, DT, "a.jsonl", [event(1), event(2)])
    run_bronze(spark, [DT], env)
    path.unlink()
    write_landing(settings.landing_root, DT, "c.jsonl", [event(9)])
    rebuilt = partition(run_bronze(spark, [DT], env, full_refresh=True))
    assert rebuilt.row_count == 1
    assert [e.key for e in env.catalog.ledger(BRONZE_APP_LOGS, DT)] == ["web/dt=2024-01-01/c.jsonl"]


def test_partition_without_landing_files_publishes_nothing(spark, env):
    result = partition(run_bronze(spark, [DT], env))
    assert result.published is False and result.note == "no new landing files"
    assert env.catalog.current(BRONZE_APP_LOGS, [DT]) == {}


def test_overwritten_landing_object_replaces_its_rows(spark, env, settings):
    write_landing(settings.landing_root, DT, "a.jsonl", [event(1), event(2)])
    write_landing(settings.landing_root, DT, "b.jsonl", [event(3)])
    run_bronze(spark, [DT], env)
    write_landing(settings.landing_root, DT, "a.jsonl", [event(1), event(2), event(4)])  # same key, new content
    result = partition(run_bronze(spark, [DT], env))
    assert result.stats["files_replaced"] == 1 and result.row_count == 4
    rows = read_published(spark, env, BRONZE_APP_LOGS, [DT]).select("event_id").collect()
    assert sorted(r[0] for r in rows) == ["e1", "e2", "e3", "e4"]
    assert len(env.catalog.ledger(BRONZE_APP_LOGS, DT)) == 2
