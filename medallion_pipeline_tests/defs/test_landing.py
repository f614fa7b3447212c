"""The landing sensor against a moto server over HTTP: a real bucket, real S3 -> SQS (and SNS) notifications.

Runs are requested, not executed: what a tick requests, and what state it leaves, is the contract. A run
the daemon "launched" is created in the instance with the request's tags, as Dagster's daemon does.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import boto3
import dagster as dg
import pytest
from dagster._core.test_utils import create_run_for_test

from medallion_pipeline.batching import LandingBatches
from medallion_pipeline.defs import landing
from medallion_pipeline.defs.landing import (
    BATCH_TAG,
    InstanceStore,
    TickReport,
    drain_queue,
    landing_sensor,
    landing_tick,
)
from medallion_pipeline.resources.catalog import LedgerEntry, PartitionVersion, open_catalog
from medallion_pipeline.resources.landing import S3LandingStore
from medallion_pipeline.resources.notifications import NotificationQueue, QueueMessage, SqsNotificationQueue
from medallion_pipeline.tables import BRONZE_APP_LOGS
from medallion_pipeline_tests.conftest import write_landing

NOW = datetime(2024, 1, 5, 12, 0, tzinfo=timezone.utc)
TODAY, YESTERDAY, OLD = "2024-01-05", "2024-01-04", "2024-01-02"
WAIT = timedelta(minutes=5)
VISIBILITY_S = 60  # far above any tick here: a message comes back only when a test moves moto's clock past it


class Landing:
    """A landing bucket with its notification queue (and dead-letter queue) on the moto server."""

    def __init__(self, settings, via_sns: bool = False, visibility_s: int = VISIBILITY_S):
        self.s3, self.sqs = boto3.client("s3"), boto3.client("sqs")
        self.s3.create_bucket(Bucket="landing")
        self.dlq = self.sqs.create_queue(QueueName="landing-dlq")["QueueUrl"]
        redrive = {"deadLetterTargetArn": self.arn(self.dlq), "maxReceiveCount": "2"}
        self.queue = self.sqs.create_queue(QueueName="landing-events", Attributes={
            "VisibilityTimeout": str(visibility_s), "RedrivePolicy": json.dumps(redrive)})["QueueUrl"]
        events = {"Events": ["s3:ObjectCreated:*"],
                  "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "logs/"}]}}}
        if via_sns:
            sns = boto3.client("sns")
            topic = sns.create_topic(Name="landing-events")["TopicArn"]
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=self.arn(self.queue))
            config = {"TopicConfigurations": [{"TopicArn": topic, **events}]}
        else:
            config = {"QueueConfigurations": [{"QueueArn": self.arn(self.queue), **events}]}
        self.s3.put_bucket_notification_configuration(Bucket="landing", NotificationConfiguration=config)
        self.settings = replace(settings, landing_root="s3://landing/logs", landing_mode="events",
                                landing_queue_url=self.queue)

    def arn(self, url: str) -> str:
        return self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def put(self, dt: str, name: str, body: bytes | None = None, source: str = "web") -> str:
        """A file with content of its own (bronze skips the same bytes under another key)."""
        key = f"{source}/dt={dt}/{name}"
        self.s3.put_object(Bucket="landing", Key=f"logs/{key}", Body=body or f'{{"event_id": "{key}"}}\n'.encode())
        return key

    def depth(self, url: str | None = None) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url or self.queue,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def bucket(aws, settings):
    return Landing(settings)


def waiting(instance) -> dict[str, list[str]]:
    return {dt: sorted(b.files) for dt, b in LandingBatches(InstanceStore(instance)).partitions.items()}


def requested(requests) -> list[tuple[str, str, str]]:
    """(partition or first..last day, run key, trigger) of each request."""
    def days(r):
        if r.partition_key is not None:
            return r.partition_key
        return f"{r.tags['dagster/asset_partition_range_start']}..{r.tags['dagster/asset_partition_range_end']}"
    return [(days(r), r.run_key, r.tags["medallion/landing_trigger"]) for r in requests]


def launch(instance, requests, status=dg.DagsterRunStatus.STARTED) -> list[dg.DagsterRun]:
    """What the daemon does with a tick's requests: one run each, carrying the request's tags."""
    return [create_run_for_test(instance, job_name="__ASSET_JOB", status=status,
                                tags={**r.tags, **({"dagster/partition": r.partition_key} if r.partition_key else {})})
            for r in requests]


def ingest(settings, dt: str, keys: list[str], etag_of) -> None:
    """Record files in bronze's ledger, as a bronze run does when it publishes the partition."""
    catalog = open_catalog(settings.resolved_catalog_uri)
    version = PartitionVersion(BRONZE_APP_LOGS, dt, f"v-{time.time_ns()}", "/nowhere", len(keys))
    catalog.publish(BRONZE_APP_LOGS, [version], ledger=[LedgerEntry(dt, k, 1, etag_of(k)) for k in keys])


def s3_etag(bucket: Landing):
    return lambda key: bucket.s3.head_object(Bucket="landing", Key=f"logs/{key}")["ETag"].strip('"')


def test_instance_store_keeps_new_keys_written_with_existing_ones(instance):
    store = InstanceStore(instance)
    store.set({"a": "1"})
    store.set({"a": "2", "b": "3"})  # Dagster's set_cursor_values alone drops "b" here
    assert store.get({"a", "b"}) == {"a": "2", "b": "3"}


# --- events mode ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("via_sns", [False, True], ids=["s3-sqs", "s3-sns-sqs"])
def test_first_tick_requests_the_partition_and_re_ticks_request_nothing(aws, settings, instance, via_sns):
    bucket = Landing(settings, via_sns=via_sns)
    keys = [bucket.put(TODAY, name) for name in ("z.json", "a b+c.json", "m.jsonl.gz", "b.ndjson", "c.json")]
    bucket.s3.put_object(Bucket="landing", Key=f"logs/web/dt={TODAY}/", Body=b"")  # a directory marker
    bucket.put(TODAY, "notes.csv")  # not a log file
    requests, summary = landing_tick(instance, bucket.settings, NOW)
    assert requested(requests) == [(TODAY, f"{TODAY}#1", "count")]
    assert requests[0].tags[BATCH_TAG] == f"{TODAY}#1" and requests[0].tags["medallion/landing_files"] == "5"
    assert waiting(instance) == {TODAY: sorted(keys)}
    assert "5 new files" in summary and "2 ignored" in summary
    assert bucket.depth() == 0  # the S3 test event, the 7 notifications: all handled and deleted
    launch(instance, requests)
    for later in (NOW, NOW + WAIT, NOW + 3 * WAIT):
        assert landing_tick(instance, bucket.settings, later)[0] == []


def test_duplicate_and_multipart_double_events_are_one_file(bucket, instance):
    key = bucket.put(TODAY, "a.json")
    bucket.put(TODAY, "a.json")  # the same bytes again: a second event with the same eTag
    upload = bucket.s3.create_multipart_upload(Bucket="landing", Key=f"logs/web/dt={TODAY}/big.json")
    part = bucket.s3.upload_part(Bucket="landing", Key=f"logs/web/dt={TODAY}/big.json", PartNumber=1,
                                 UploadId=upload["UploadId"], Body=b'{"event_id": "2"}\n')
    bucket.s3.complete_multipart_upload(Bucket="landing", Key=f"logs/web/dt={TODAY}/big.json",
                                        UploadId=upload["UploadId"],
                                        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})
    requests, summary = landing_tick(instance, bucket.settings, NOW)
    assert requests == [] and "2 new files" in summary  # 4 events, 2 files: below the batch size
    assert waiting(instance) == {TODAY: [key, f"web/dt={TODAY}/big.json"]}
    assert s3_etag(bucket)(f"web/dt={TODAY}/big.json").endswith("-1")  # a multipart eTag


def test_batching_by_count_and_by_age(bucket, instance):
    for i in range(4):
        bucket.put(TODAY, f"f{i}.json")
    assert landing_tick(instance, bucket.settings, NOW)[0] == []
    assert landing_tick(instance, bucket.settings, NOW + WAIT - timedelta(seconds=1))[0] == []
    requests = landing_tick(instance, bucket.settings, NOW + WAIT)[0]
    assert requested(requests) == [(TODAY, f"{TODAY}#1", "age")]
    launch(instance, requests)
    for i in range(5):
        bucket.put(YESTERDAY, f"f{i}.json")
    requests = landing_tick(instance, bucket.settings, NOW + WAIT)[0]
    assert requested(requests) == [(YESTERDAY, f"{YESTERDAY}#1", "count")]


def test_a_late_file_requests_its_own_partition_only(bucket, instance):
    today = [bucket.put(TODAY, f"f{i}.json") for i in range(5)]
    launch(instance, landing_tick(instance, bucket.settings, NOW)[0])
    ingest(bucket.settings, TODAY, today, s3_etag(bucket))
    late = bucket.put(OLD, "late.json")  # three days late, any age in events mode
    assert landing_tick(instance, bucket.settings, NOW)[0] == []
    requests = landing_tick(instance, bucket.settings, NOW + WAIT)[0]
    assert requested(requests) == [(OLD, f"{OLD}#1", "age")]
    assert waiting(instance) == {OLD: [late], TODAY: []}  # today's files left once bronze had them


def test_consecutive_days_due_together_are_one_ranged_run_and_a_gap_splits_it(bucket, instance):
    days = ["2024-01-01", "2024-01-02", "2024-01-03", TODAY]  # 01-04 has too few files: not due
    keys = {dt: [bucket.put(dt, f"f{i}.json") for i in range(5)] for dt in days}
    bucket.put(YESTERDAY, "alone.json")
    requests = landing_tick(instance, bucket.settings, NOW)[0]
    assert requested(requests) == [
        ("2024-01-01..2024-01-03", "2024-01-01#1+2024-01-02#1+2024-01-03#1", "count"),
        (TODAY, f"{TODAY}#1", "count"),
    ]
    ranged = requests[0]
    assert ranged.partition_key is None and ranged.tags["medallion/landing_files"] == "15"
    assert {k: v for k, v in ranged.tags.items() if k.startswith(f"{BATCH_TAG}/")} == {
        f"{BATCH_TAG}/{dt}": f"{dt}#1" for dt in days[:3]}
    # The tick did not complete (nothing launched): the same ranged run key again, never a second run.
    relaunched = landing_tick(instance, bucket.settings, NOW)[0]
    assert [r.run_key for r in relaunched] == [r.run_key for r in requests]
    assert {r.tags["medallion/landing_trigger"] for r in relaunched} == {"relaunch"}
    [run, _] = launch(instance, requests)
    # The day between, due later, is a run of its own: its neighbours are in flight.
    alone = landing_tick(instance, bucket.settings, NOW + WAIT)[0]
    assert requested(alone) == [(YESTERDAY, f"{YESTERDAY}#1", "age")]
    launch(instance, alone)
    # The ranged run ingested two of its days and failed on the third: only that day is retried.
    for dt in days[:2]:
        ingest(bucket.settings, dt, keys[dt], s3_etag(bucket))
    instance.report_run_failed(run)
    assert landing_tick(instance, bucket.settings, NOW + 2 * WAIT)[0] == []  # waits the batch time again
    retry = landing_tick(instance, bucket.settings, NOW + 3 * WAIT)[0]
    assert requested(retry) == [("2024-01-03", "2024-01-03#2", "age")]
    # The first two days left once bronze had them.
    assert waiting(instance) == {"2024-01-03": sorted(keys["2024-01-03"]), TODAY: sorted(keys[TODAY]),
                                 YESTERDAY: [f"web/dt={YESTERDAY}/alone.json"]}


def test_a_run_requested_by_the_previous_release_is_found_by_its_batch_tag(bucket, instance):
    for i in range(5):
        bucket.put(TODAY, f"f{i}.json")
    [request] = landing_tick(instance, bucket.settings, NOW)[0]
    old_tags = {k: v for k, v in request.tags.items() if not k.startswith(f"{BATCH_TAG}/")}
    [run] = launch(instance, [dg.RunRequest(run_key=request.run_key, partition_key=TODAY, tags=old_tags)])
    assert landing_tick(instance, bucket.settings, NOW)[0] == []  # in flight, not relaunched
    instance.report_run_failed(run)
    assert landing_tick(instance, bucket.settings, NOW)[0] == []  # its end is seen: waits the batch time again
    assert requested(landing_tick(instance, bucket.settings, NOW + WAIT)[0]) == [(TODAY, f"{TODAY}#2", "age")]


def test_unparseable_messages_stay_on_the_queue_for_the_dead_letter_queue(bucket, instance, monkeypatch):
    sqs_clock = MotoSqsClock(monkeypatch)
    bucket.sqs.send_message(QueueUrl=bucket.queue, MessageBody="{not json")
    key = bucket.put(TODAY, "a.json")
    for attempt in range(3):
        summary = landing_tick(instance, bucket.settings, NOW)[1]
        if attempt < 2:
            assert "1 unparseable" in summary
        sqs_clock.advance(VISIBILITY_S + 1)  # the queue's visibility timeout passes
    assert waiting(instance) == {TODAY: [key]}
    assert bucket.depth() == 0
    dead = bucket.sqs.receive_message(QueueUrl=bucket.dlq, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in dead] == ["{not json"]


class CrashingQueue(SqsNotificationQueue):
    """The process dies after the files were recorded, before the messages are deleted."""

    def delete(self, messages):
        raise SystemExit("killed between recording pending files and deleting messages")


def test_a_crash_between_recording_and_deleting_loses_nothing_and_runs_once(bucket, instance, monkeypatch):
    sqs_clock = MotoSqsClock(monkeypatch)
    keys = sorted(bucket.put(TODAY, f"f{i}.json") for i in range(5))
    with pytest.raises(SystemExit):
        landing_tick(instance, bucket.settings, NOW, queue=CrashingQueue(bucket.queue))
    assert waiting(instance) == {TODAY: keys}  # durable before the crash
    assert bucket.depth() == 6  # nothing deleted (5 files + S3's test event)
    sqs_clock.advance(VISIBILITY_S + 1)  # the messages come back after the visibility timeout
    requests, summary = landing_tick(instance, bucket.settings, NOW)
    assert "0 new files" in summary and bucket.depth() == 0
    assert requested(requests) == [(TODAY, f"{TODAY}#1", "count")]
    # The tick that asked for the run did not complete: the same run key again, never a second run.
    assert requested(landing_tick(instance, bucket.settings, NOW)[0]) == [(TODAY, f"{TODAY}#1", "relaunch")]
    launch(instance, requests)
    assert landing_tick(instance, bucket.settings, NOW)[0] == []
    assert len(instance.get_runs(filters=dg.RunsFilter(tags={BATCH_TAG: f"{TODAY}#1"}))) == 1


def test_a_failed_run_is_retried_and_a_successful_one_forgotten(bucket, instance):
    keys = [bucket.put(TODAY, f"f{i}.json") for i in range(5)]
    first = landing_tick(instance, bucket.settings, NOW)[0]
    launch(instance, first)
    [run] = instance.get_runs(filters=dg.RunsFilter(tags={BATCH_TAG: f"{TODAY}#1"}))
    instance.report_run_failed(run)
    assert landing_tick(instance, bucket.settings, NOW)[0] == []  # waits the batch time again
    retry = landing_tick(instance, bucket.settings, NOW + WAIT)[0]
    assert requested(retry) == [(TODAY, f"{TODAY}#2", "age")]
    launch(instance, retry, status=dg.DagsterRunStatus.SUCCESS)
    ingest(bucket.settings, TODAY, keys, s3_etag(bucket))
    assert landing_tick(instance, bucket.settings, NOW + WAIT)[0] == []
    assert waiting(instance) == {}


class MotoSqsClock:
    """The in-process moto server's SQS clock, which a test moves forward: a visibility timeout passes at once,
    not after a sleep. It reads ``time.time()``: moto's own clock costs ~8 us per call (``datetime``
    arithmetic) and its SQS reads it for every message of a queue on each request, so a 10,000-deep queue
    would take minutes per thousand requests. What the sensor sends and receives is unchanged."""

    def __init__(self, monkeypatch):
        import moto.sqs.models
        from moto.core.utils import unix_time

        self.offset_s = 0.0
        monkeypatch.setattr(moto.sqs.models, "unix_time_millis",
                            lambda dt=None: (time.time() + self.offset_s) * 1000.0 if dt is None
                            else unix_time(dt) * 1000.0)

    def advance(self, seconds: float) -> None:
        self.offset_s += seconds


def s3_notification(key: str, etag: str) -> str:
    return json.dumps({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "landing"}, "object": {"key": f"logs/{key}", "size": 100, "eTag": etag}}}]})


class ManualClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ListQueue(NotificationQueue):
    """An in-memory queue on which every receive takes ``receive_s`` of a manual clock; received messages
    are hidden until deleted (a visibility timeout that never passes)."""

    def __init__(self, bodies: list[str], clock: ManualClock, receive_s: float):
        self.messages = {str(i): QueueMessage(str(i), f"receipt-{i}", body) for i, body in enumerate(bodies)}
        self.in_flight: set[str] = set()
        self.clock, self.receive_s = clock, receive_s

    def receive(self, max_messages):
        self.clock.now += self.receive_s
        visible = [m for i, m in self.messages.items() if i not in self.in_flight][:min(max_messages, 10)]
        self.in_flight.update(m.id for m in visible)
        return visible

    def delete(self, messages):
        for m in messages:
            del self.messages[m.id]
            self.in_flight.discard(m.id)
        return len(messages)


def test_a_tick_stops_draining_when_its_time_budget_is_spent_and_the_next_continues(settings):
    clock = ManualClock()
    keys = [f"web/dt={TODAY}/f{i:03d}.json" for i in range(100)]
    queue = ListQueue([s3_notification(k, f"{i:032x}") for i, k in enumerate(keys)], clock, receive_s=1.0)
    landing_store = S3LandingStore("s3://landing/logs", client=object())  # only maps keys: no S3 call
    budget = replace(settings, landing_tick_budget_seconds=3.0, landing_tick_max_messages=1000)
    recorded, per_tick = [], []
    while queue.messages and len(per_tick) < 10:
        report = TickReport()
        drain_queue(queue, landing_store, recorded.extend, budget, report, monotonic=clock)
        per_tick.append(report.messages)
    # Three receives of ten fit in a 3 s budget at 1 s each; what a tick received is recorded and deleted.
    assert per_tick == [30, 30, 30, 10]
    assert sorted(f.key for f in recorded) == keys and {f.dt for f in recorded} == {TODAY}
    assert queue.messages == {}


@pytest.mark.slow
def test_a_deep_queue_is_recorded_across_bounded_ticks_with_nothing_lost(aws, settings, instance, monkeypatch):
    """QUEUE_DEPTH notifications (2,000 in the suite; the issue's 10,000 with ``MEDALLION_TEST_QUEUE_DEPTH=10000``
    — moto's SQS is O(queue depth) per request, so that run takes minutes) drained by ticks capped at a
    fifth of the queue, each recording what it received before deleting it."""
    depth = int(os.environ.get("MEDALLION_TEST_QUEUE_DEPTH", "2000"))
    MotoSqsClock(monkeypatch)
    bucket = Landing(settings)
    bucket.sqs.purge_queue(QueueUrl=bucket.queue)  # S3's test event
    template = {"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "landing"}, "object": {"key": "", "size": 100, "eTag": ""}}}
    dts = [f"2024-01-0{d}" for d in range(1, 6)]
    for start in range(0, depth, 10):
        entries = []
        for i in range(start, min(start + 10, depth)):
            record = json.loads(json.dumps(template))
            record["s3"]["object"].update(key=f"logs/web/dt%3D{dts[i % 5]}/f{i:05d}.json", eTag=f"{i:032x}")
            entries.append({"Id": str(i - start), "MessageBody": json.dumps({"Records": [record]})})
        bucket.sqs.send_message_batch(QueueUrl=bucket.queue, Entries=entries)
    cap = depth // 5
    # Only the message cap bounds these ticks (the time budget has its own test, on a manual clock).
    tight = replace(bucket.settings, landing_tick_budget_seconds=3600.0, landing_tick_max_messages=cap)
    handled = []
    while bucket.depth() and len(handled) < 50:
        summary = landing_tick(instance, tight, NOW)[1]
        handled.append(int(summary.split(" messages")[0].rsplit(", ", 1)[-1]))
    assert handled == [cap] * 5
    recorded = waiting(instance)
    assert sum(len(keys) for keys in recorded.values()) == depth
    assert sorted(recorded) == dts and all(len(keys) == depth // 5 for keys in recorded.values())


# --- listing mode ---------------------------------------------------------------------------------------


def listing(bucket: Landing):
    return replace(bucket.settings, landing_mode="listing", landing_queue_url="")


def test_listing_finds_keys_that_arrive_out_of_order_within_the_same_second(bucket, instance):
    settings = listing(bucket)
    first = [bucket.put(TODAY, name) for name in ("z.json", "y.json", "x.json", "w.json", "v.json")]
    requests = landing_tick(instance, settings, NOW)[0]
    assert requested(requests) == [(TODAY, f"{TODAY}#1", "count")]
    launch(instance, requests)
    ingest(settings, TODAY, first, s3_etag(bucket))
    # Lexicographically before everything seen, same LastModified second: a StartAfter/mtime cursor misses it.
    early = bucket.put(TODAY, "a.json")
    assert landing_tick(instance, settings, NOW)[1].startswith("1 new files")
    assert waiting(instance) == {TODAY: [early]}


def test_listing_looks_back_a_window_and_a_late_file_requests_its_partition(bucket, instance):
    settings = replace(listing(bucket), landing_batch_files=1)
    inside = bucket.put("2024-01-02", "late.json")  # today minus 3: inside the default window
    bucket.put("2024-01-01", "too-late.json")  # outside: events mode, or a backfill, covers it
    assert requested(landing_tick(instance, settings, NOW)[0]) == [("2024-01-02", "2024-01-02#1", "count")]
    assert waiting(instance) == {"2024-01-02": [inside]}


def test_listing_state_does_not_grow_with_files_ever_seen(bucket, instance):
    settings = listing(bucket)
    for round_ in range(3):
        keys = [bucket.put(TODAY, f"r{round_}-{i}.json") for i in range(5)]
        requests = landing_tick(instance, settings, NOW)[0]
        launch(instance, requests)
        ingest(settings, TODAY, keys, s3_etag(bucket))
        instance.report_run_failed(instance.get_runs(filters=dg.RunsFilter(tags={BATCH_TAG: requests[0].run_key}))[0])
        assert landing_tick(instance, settings, NOW)[1].startswith("0 new files, 0 waiting")
    assert waiting(instance) == {}
    stored = InstanceStore(instance).get({f"medallion/landing/dt={TODAY}"})
    assert json.loads(stored[f"medallion/landing/dt={TODAY}"])["files"] == {}  # only the run counter is left


def seed_old_objects(count: int) -> None:
    """Old objects straight into moto's in-process backend (HTTP PUTs run at ~130/s; what is measured is
    the sensor's calls, which do go over HTTP)."""
    from moto.backends import get_backend

    s3 = get_backend("s3")["123456789012"]["aws"]
    for i in range(count):
        s3.put_object("landing", f"logs/{('web', 'api')[i % 2]}/dt=2023-{1 + i % 12:02d}-{1 + i % 28:02d}/o{i}.json",
                      b"{}", disable_notification=True)
    assert len(s3.get_bucket("landing").keys) >= count


@pytest.mark.slow
def test_listing_tick_makes_the_same_s3_calls_with_50000_old_objects(bucket, instance):
    settings = replace(listing(bucket), landing_batch_files=100)
    client = boto3.client("s3")
    calls: list[str] = []
    client.meta.events.register("before-call.s3.*", lambda model, **kw: calls.append(model.name))
    store = S3LandingStore(settings.landing_root, client=client)
    bucket.put(TODAY, "a.json")
    bucket.put(TODAY, "b.json", source="api")

    def tick_calls() -> list[str]:
        calls.clear()
        landing_tick(instance, settings, NOW, landing=store)
        return list(calls)

    empty = tick_calls()
    seed_old_objects(50_000)
    assert tick_calls() == empty
    # sources, then one prefix per source and day of the window: 1 + 2 sources x 4 days
    assert empty == ["ListObjectsV2"] * 9


def test_sensor_definition_ticks_on_a_local_landing_directory(medallion_env, monkeypatch, instance):
    monkeypatch.setenv("MEDALLION_LANDING_BATCH_FILES", "2")
    monkeypatch.setattr(landing, "clock", lambda: NOW)
    for name in ("a.json", "b.json"):
        write_landing(medallion_env.landing_root, TODAY, name, ['{"event_id": "1"}'])
    sensor = landing_sensor(medallion_env)
    result = sensor(dg.build_sensor_context(instance=instance, sensor_name="landing_files"))
    assert requested(result.run_requests) == [(TODAY, f"{TODAY}#1", "count")]
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    launch(instance, result.run_requests)
    result = sensor(dg.build_sensor_context(instance=instance, sensor_name="landing_files"))
    assert result.run_requests == [] and "0 new files, 2 waiting" in result.skip_reason.skip_message
