"""Bronze ingest: incremental ledger, bad files, full rebuild, compaction."""

from __future__ import annotations

import gzip
import os
from dataclasses import replace

import pytest
from pyspark.sql import functions as F

from medallion_pipeline.jobs.bronze import run_bronze
from medallion_pipeline.jobs.environment import JobEnvironment
from medallion_pipeline.jobs.publish import read_published
from medallion_pipeline.resources.landing import LandingReadError, LocalLandingStore
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
    # O(new files): the new version references the first one's directory as a segment and writes b's row only.
    version = env.catalog.current(BRONZE_APP_LOGS, [DT])[DT]
    assert version.segments == (first.location,) and third.stats["segments"] == 2
    assert spark.read.parquet(third.location).count() == 1 and spark.read.parquet(first.location).count() == 2


def parquet_files(location: str) -> list[str]:
    return [f for f in os.listdir(location) if f.endswith(".parquet")]


def test_a_day_past_the_segment_limit_is_rewritten_into_one_segment(spark, settings):
    env = JobEnvironment.from_settings(replace(settings, bronze_max_segments=2), run_id="test-run")
    versions = []
    for i, name in enumerate(["a", "b", "c", "d"]):
        write_landing(settings.landing_root, DT, f"{name}.jsonl", [event(i), "not json"])
        partition(run_bronze(spark, [DT], env))
        versions.append(env.catalog.current(BRONZE_APP_LOGS, [DT])[DT])
    assert [len(v.locations) for v in versions] == [1, 2, 1, 2]  # the third ingest compacted the day
    compacted = versions[2]
    assert compacted.row_count == 6 and len(parquet_files(compacted.location)) == 1
    assert versions[3].segments == (compacted.location,) and versions[3].row_count == 8
    # Counts over the whole partition add up across segments: every other line is malformed.
    assert [v.stats["malformed_lines_total"] for v in versions] == [1, 2, 3, 4]
    assert [v.stats["malformed_lines_new"] for v in versions] == [1, 1, 1, 1]
    rows = read_published(spark, env, BRONZE_APP_LOGS, [DT])
    assert sorted(r[0] for r in rows.select("event_id").collect() if r[0]) == ["e0", "e1", "e2", "e3"]
    checks = env.catalog.latest_checks(BRONZE_APP_LOGS, [DT])
    [malformed] = [c for c in checks if c.check == "malformed_rate_within_threshold"]
    assert malformed.observed == 0.5 and not malformed.passed


def test_pii_found_in_an_earlier_segment_still_counts_when_a_clean_one_is_appended(spark, env, settings):
    write_landing(settings.landing_root, DT, "a.jsonl", [event(1, service="card 4111 1111 1111 1111")])
    run_bronze(spark, [DT], env)
    write_landing(settings.landing_root, DT, "b.jsonl", [event(2)])
    checks = {c.check: c for c in run_bronze(spark, [DT], env).table(BRONZE_APP_LOGS).checks}
    assert env.catalog.current(BRONZE_APP_LOGS, [DT])[DT].segments  # appended, not rewritten
    pii = checks["no_untagged_pii"]
    assert not pii.passed and pii.failing_rows == 1 and pii.detail == "1 rows in earlier segments"


def test_a_field_arriving_in_a_later_segment_reads_as_null_in_the_earlier_ones(spark, env, settings):
    write_landing(settings.landing_root, DT, "a.jsonl", [event(1)])
    run_bronze(spark, [DT], env)
    write_landing(settings.landing_root, DT, "b.jsonl", [event(2, region="eu-west-1")])
    result = partition(run_bronze(spark, [DT], env))
    assert result.new_columns == ["region"]
    version = env.catalog.current(BRONZE_APP_LOGS, [DT])[DT]
    assert len(version.segments) == 1 and "region" in [c.name for c in version.columns]
    rows = read_published(spark, env, BRONZE_APP_LOGS, [DT]).select("event_id", "region").collect()
    assert sorted((r[0], r[1]) for r in rows) == [("e1", None), ("e2", "eu-west-1")]
    # Later segments keep the partition's whole schema; a third ingest without the field still has it.
    write_landing(settings.landing_root, DT, "c.jsonl", [event(3)])
    run_bronze(spark, [DT], env)
    third = env.catalog.current(BRONZE_APP_LOGS, [DT])[DT]
    assert "region" in spark.read.parquet(third.location).columns and "region" in [c.name for c in third.columns]


def test_full_refresh_asked_to_drop_missing_files_replaces_partition_and_ledger(spark, env, settings):
    path = write_landing(settings.landing_root, DT, "a.jsonl", [event(1), event(2)])
    run_bronze(spark, [DT], env)
    path.unlink()
    write_landing(settings.landing_root, DT, "c.jsonl", [event(9)])
    rebuilt = partition(run_bronze(spark, [DT], env, full_refresh=True, drop_missing_files=True))
    assert rebuilt.row_count == 1
    assert rebuilt.stats["files_dropped_missing_from_landing"] == 1
    assert rebuilt.stats["files_kept_missing_from_landing"] == 0
    assert [e.key for e in env.catalog.ledger(BRONZE_APP_LOGS, DT)] == ["web/dt=2024-01-01/c.jsonl"]


def source_files(spark, env) -> list[str]:
    rows = read_published(spark, env, BRONZE_APP_LOGS, [DT]).select("_source_file").collect()
    return sorted(r[0] for r in rows)


def test_full_refresh_keeps_and_counts_rows_of_files_gone_from_landing(spark, env, settings):
    expired = write_landing(settings.landing_root, DT, "a.jsonl", [event(1), event(2)])
    write_landing(settings.landing_root, DT, "b.jsonl", [event(3)])
    run_bronze(spark, [DT], env)
    expired.unlink()  # a lifecycle rule expired it from landing; bronze is now its only copy
    rebuilt = partition(run_bronze(spark, [DT], env, full_refresh=True))
    assert rebuilt.published and rebuilt.row_count == 3
    assert rebuilt.stats["files_kept_missing_from_landing"] == 1
    assert rebuilt.stats["rows_kept_missing_from_landing"] == 2
    assert rebuilt.stats["files_new"] == 1 and rebuilt.stats["lines_new"] == 1
    assert source_files(spark, env) == ["web/dt=2024-01-01/a.jsonl"] * 2 + ["web/dt=2024-01-01/b.jsonl"]
    assert sorted(e.key for e in env.catalog.ledger(BRONZE_APP_LOGS, DT)) == [
        "web/dt=2024-01-01/a.jsonl", "web/dt=2024-01-01/b.jsonl"]
    # Only an explicit request drops them.
    dropped = partition(run_bronze(spark, [DT], env, full_refresh=True, drop_missing_files=True))
    assert dropped.row_count == 1 and dropped.stats["files_dropped_missing_from_landing"] == 1
    assert source_files(spark, env) == ["web/dt=2024-01-01/b.jsonl"]
    assert [e.key for e in env.catalog.ledger(BRONZE_APP_LOGS, DT)] == ["web/dt=2024-01-01/b.jsonl"]


def test_rollback_restores_the_ledger_so_rolled_back_files_are_ingested_again(spark, env, settings):
    write_landing(settings.landing_root, DT, "a.jsonl", [event(1), event(2)])
    first = partition(run_bronze(spark, [DT], env))
    write_landing(settings.landing_root, DT, "b.jsonl", [event(3)])
    write_landing(settings.landing_root, DT, "a.jsonl", [event(1), event(2), event(4)])  # replaced key
    second = partition(run_bronze(spark, [DT], env))
    assert second.row_count == 4 and second.stats["files_replaced"] == 1
    restored = env.catalog.rollback(BRONZE_APP_LOGS, DT, reason="bad batch")
    assert restored.version_id == first.version_id
    ledger = env.catalog.ledger(BRONZE_APP_LOGS, DT)
    assert [(e.key, e.size) for e in ledger] == [("web/dt=2024-01-01/a.jsonl", first.stats["bytes_new"])]
    again = partition(run_bronze(spark, [DT], env))
    assert again.published and again.stats["files_new"] == 2 and again.stats["files_replaced"] == 1
    assert again.row_count == 4 and again.stats["lines_new"] == 4
    assert source_files(spark, env) == ["web/dt=2024-01-01/a.jsonl"] * 3 + ["web/dt=2024-01-01/b.jsonl"]
    assert partition(run_bronze(spark, [DT], env)).stats["files_already_ingested"] == 2


class UnreachableLanding(LocalLandingStore):
    """Landing whose reads fail the way a network or a throttled S3 does: lists fine, reads raise."""

    def open_bytes(self, file):
        raise ConnectionResetError(104, "Connection reset by peer")


def test_transient_read_error_fails_the_run_and_leaves_the_file_pending(spark, env, settings):
    write_landing(settings.landing_root, DT, "zipped.jsonl.gz", [event(1)], gz=True)
    healthy = env.landing
    env.landing = UnreachableLanding(settings.landing_root)
    with pytest.raises(LandingReadError, match="web/dt=2024-01-01/zipped.jsonl.gz"):
        run_bronze(spark, [DT], env)
    assert env.catalog.ledger(BRONZE_APP_LOGS, DT) == []
    assert env.catalog.current(BRONZE_APP_LOGS, [DT]) == {}
    env.landing = healthy  # the retry reads it
    result = partition(run_bronze(spark, [DT], env))
    assert result.row_count == 1 and result.stats["files_unreadable"] == 0


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
    # The earlier rows of the overwritten object had to go: the day was rewritten, not appended to.
    assert env.catalog.current(BRONZE_APP_LOGS, [DT])[DT].segments == ()


def test_a_file_name_spark_reports_encoded_keeps_its_landing_key(spark, env, settings):
    # Spark's _metadata.file_path is URI-encoded ("a b" -> "a%20b", "%" -> "%25"; "+" stays): the rows carry the
    # key as the ledger spells it, so an overwrite of that object still replaces its earlier rows.
    name = "batch 1%41+x.jsonl"
    write_landing(settings.landing_root, DT, name, [event(1), event(2)])
    run_bronze(spark, [DT], env)
    assert source_files(spark, env) == [f"web/dt=2024-01-01/{name}"] * 2
    write_landing(settings.landing_root, DT, name, [event(1), event(3)])  # same key, new content
    result = partition(run_bronze(spark, [DT], env))
    assert result.stats["files_replaced"] == 1 and result.row_count == 2
    rows = read_published(spark, env, BRONZE_APP_LOGS, [DT]).select("event_id").collect()
    assert sorted(r[0] for r in rows) == ["e1", "e3"]
