"""Batching decisions: which partitions are due, run keys, in-flight runs, and what is forgotten when."""

from __future__ import annotations

import json

import pytest

from medallion_pipeline.batching import (
    ACTIVE,
    FINISHED,
    INDEX_KEY,
    MAX_ATTEMPTS,
    NOT_LAUNCHED,
    LandingBatches,
    MemoryStore,
    SeenFile,
    partition_key,
)

DT = "2024-01-05"
T = 300.0  # batch wait, seconds


def files(n: int, dt: str = DT, start: int = 0, etag: str = "e") -> list[SeenFile]:
    return [SeenFile(dt, f"web/dt={dt}/f{i:03d}.json", f"{etag}{i}") for i in range(start, start + n)]


def nothing_ingested(key, etag):
    return False


def test_a_partition_is_due_at_the_batch_size_not_before():
    batches = LandingBatches(MemoryStore())
    assert batches.record(files(4), now=0) == 4
    assert batches.due(1, batch_files=5, batch_wait_s=T) == []
    batches.record(files(1, start=4), now=1)
    [request] = batches.due(2, batch_files=5, batch_wait_s=T)
    assert (request.dt, request.run_key, request.files, request.reason) == (DT, f"{DT}#1", 5, "count")


def test_a_partition_is_due_when_its_oldest_file_waited_long_enough():
    batches = LandingBatches(MemoryStore())
    batches.record(files(1), now=100)
    batches.record(files(1, start=1), now=350)
    assert batches.due(100 + T - 1, batch_files=5, batch_wait_s=T) == []
    [request] = batches.due(100 + T, batch_files=5, batch_wait_s=T)
    assert (request.files, request.reason) == (2, "age")


def test_known_key_and_etag_is_not_new_but_a_new_etag_is():
    batches = LandingBatches(MemoryStore())
    assert batches.record(files(2), now=0) == 2
    assert batches.record(files(2), now=5) == 0  # a duplicate event, a re-listing
    assert batches.record(files(1, etag="changed"), now=5) == 1  # the key was overwritten
    assert batches.partitions[DT].files[f"web/dt={DT}/f000.json"].etag == "changed0"
    assert batches.waiting_files() == 2


def test_one_run_in_flight_per_partition_and_its_files_are_forgotten_once_ingested():
    store = MemoryStore()
    batches = LandingBatches(store)
    batches.record(files(5), now=0)
    [first] = batches.due(0, batch_files=5, batch_wait_s=T)
    batches.record(files(5, start=5), now=1)  # arrive while the first run is in flight
    assert batches.settle(DT, nothing_ingested, lambda key: ACTIVE, now=2) is None
    assert batches.due(3, batch_files=5, batch_wait_s=T) == []
    # The run ingested the first five (and, reading the whole prefix, two of the later ones).
    done = {f.key for f in files(7)}
    batches.settle(DT, lambda key, etag: key in done, lambda key: FINISHED, now=4)
    assert sorted(batches.partitions[DT].files) == [f.key for f in files(3, start=7)]
    [second] = batches.due(4 + T, batch_files=5, batch_wait_s=T)
    assert (second.run_key, second.files, second.reason) == (f"{DT}#2", 3, "age")
    assert first.run_key != second.run_key


def test_a_requested_run_that_never_launched_is_requested_again_with_the_same_key():
    batches = LandingBatches(MemoryStore())
    batches.record(files(5), now=0)
    [request] = batches.due(0, batch_files=5, batch_wait_s=T)
    again = batches.settle(DT, nothing_ingested, lambda key: NOT_LAUNCHED, now=1)
    assert (again.run_key, again.reason) == (request.run_key, "relaunch")


def test_a_run_that_ends_without_ingesting_is_retried_then_given_up():
    batches = LandingBatches(MemoryStore())
    batches.record(files(1), now=0)
    now = 0.0
    keys = []
    for _ in range(MAX_ATTEMPTS):
        now += T
        [request] = batches.due(now, batch_files=5, batch_wait_s=T)
        keys.append(request.run_key)
        batches.settle(DT, nothing_ingested, lambda key: FINISHED, now=now)
    assert keys == [f"{DT}#1", f"{DT}#2", f"{DT}#3"]
    assert batches.due(now + 10 * T, batch_files=5, batch_wait_s=T) == []
    assert batches.waiting_files() == 1  # still recorded: a manual run that ingests it clears it
    batches.settle(DT, lambda key, etag: True, lambda key: FINISHED, now=now)
    assert batches.waiting_files() == 0


def test_state_survives_a_reload_and_run_keys_are_never_reused():
    store = MemoryStore()
    batches = LandingBatches(store)
    batches.record(files(5), now=0)
    batches.due(0, batch_files=5, batch_wait_s=T)
    batches.save()
    reloaded = LandingBatches(store)
    assert reloaded.partitions[DT].in_flight == f"{DT}#1"
    reloaded.settle(DT, lambda key, etag: True, lambda key: FINISHED, now=1)
    reloaded.save()
    assert json.loads(store.values[INDEX_KEY]) == []  # nothing waits: the partition left the index
    later = LandingBatches(store)
    later.record(files(5, start=10), now=2)
    [request] = later.due(2, batch_files=5, batch_wait_s=T)
    assert request.run_key == f"{DT}#2"


def test_save_writes_only_changed_partitions_then_the_index():
    store = MemoryStore()
    batches = LandingBatches(store)
    batches.record(files(1, dt="2024-01-04") + files(1), now=0)
    batches.save()
    assert store.writes == 2 and json.loads(store.values[INDEX_KEY]) == ["2024-01-04", DT]
    batches.save()
    assert store.writes == 2  # nothing changed
    batches.record(files(1, start=1), now=1)
    before = store.values[partition_key("2024-01-04")]
    batches.save()
    assert store.writes == 3 and store.values[partition_key("2024-01-04")] == before


class LosesTheIndexWrite(MemoryStore):
    """The process dies after writing the partitions, before the index."""

    def set(self, values):
        if INDEX_KEY in values:
            raise SystemExit("killed")
        super().set(values)


def test_a_crash_before_the_index_write_is_repaired_by_the_redelivery():
    store = LosesTheIndexWrite()
    batches = LandingBatches(store)
    batches.record(files(2), now=0)
    with pytest.raises(SystemExit):
        batches.save()
    durable = MemoryStore()
    durable.values = dict(store.values)
    again = LandingBatches(durable)
    assert again.partitions == {}  # the index does not list it yet
    assert again.record(files(2), now=5) == 0  # the re-delivered files are found in their partition's blob
    again.save()
    assert json.loads(durable.values[INDEX_KEY]) == [DT]
    assert LandingBatches(durable).partitions[DT].files[files(1)[0].key].seen == 0


def test_partitions_that_do_not_exist_yet_wait():
    batches = LandingBatches(MemoryStore())
    batches.record(files(5, dt="2024-01-06"), now=0)
    assert batches.due(0, batch_files=5, batch_wait_s=T, requestable=lambda dt: dt <= DT) == []
    assert len(batches.due(0, batch_files=5, batch_wait_s=T, requestable=lambda dt: True)) == 1
