"""landing_files: the sensor that turns new landing files into bronze runs.

Days that are due in the same tick and follow each other go into one ranged run (one Spark application;
silver, gold and metrics then follow for the whole range in one run each), not one run per day: when
several days land at once, each run's fixed cost is paid once, not once per day.

Two discovery modes (``MEDALLION_LANDING_MODE``), one decision (``medallion_pipeline.batching``):
- *listing* lists only the ``dt=`` prefixes of today and the look-back days, and takes every file not in
  bronze's ingest ledger — no ``StartAfter`` or ``LastModified`` watermark, so keys that arrive out of
  order or within the same second are never skipped, and the cursor holds nothing that grows;
- *events* drains S3 ``ObjectCreated`` notifications from SQS within a time and message budget, records
  the files durably, and only then deletes the messages (a crash in between means a re-delivery, which
  is recognised); unparseable messages stay for the dead-letter queue.
Silver, gold and metrics follow by declarative automation once bronze's partition updates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import dagster as dg

from medallion_pipeline.batching import ACTIVE, FINISHED, NOT_LAUNCHED, BatchRequest, LandingBatches, SeenFile
from medallion_pipeline.defs.partitions import contiguous_ranges, range_tags
from medallion_pipeline.defs.reporting import asset_key
from medallion_pipeline.resources.catalog import Catalog, open_catalog
from medallion_pipeline.resources.landing import LandingStore, S3LandingStore, landing_store_for, partition_of
from medallion_pipeline.resources.notifications import (
    NotificationError,
    NotificationQueue,
    QueueMessage,
    SqsNotificationQueue,
    parse_s3_notification,
)
from medallion_pipeline.settings import Settings
from medallion_pipeline.tables import BRONZE_APP_LOGS

log = logging.getLogger(__name__)
BATCH_TAG = "medallion/landing_batch"  # the run's key: the days' batch keys, joined by "+"
FLUSH_EVERY = 500  # messages handled between two durable saves (and their deletes)


def clock() -> datetime:
    """Now, in UTC (tests replace it)."""
    return datetime.now(timezone.utc)


class InstanceStore:
    """The Dagster instance's key-value storage (SQLite locally, PostgreSQL in production)."""

    def __init__(self, instance: dg.DagsterInstance):
        self.storage = instance.run_storage

    def get(self, keys):
        return self.storage.get_cursor_values(set(keys))

    def set(self, values):
        # One call per kind: Dagster's set_cursor_values silently drops new keys when it is given new
        # and existing keys together (its insert fails, and the fallback only updates).
        existing = self.storage.get_cursor_values(set(values))
        for subset in ({k: v for k, v in values.items() if k not in existing},
                       {k: v for k, v in values.items() if k in existing}):
            if subset:
                self.storage.set_cursor_values(subset)


class Ledger:
    """Bronze's ingest ledger, read once per partition per tick."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self._cache: dict[str, tuple[set[tuple[str, str]], set[str]]] = {}

    def _entries(self, dt: str):
        if dt not in self._cache:
            entries = self.catalog.ledger(BRONZE_APP_LOGS, dt)
            self._cache[dt] = ({(e.key, e.etag) for e in entries}, {e.etag for e in entries if e.status == "ingested"})
        return self._cache[dt]

    def has(self, dt: str, key: str, etag: str) -> bool:
        files, contents = self._entries(dt)
        return (key, etag) in files or etag in contents  # bronze skips the same bytes under another key

    def ingested(self, dt: str) -> Callable[[str, str], bool]:
        return lambda key, etag: self.has(dt, key, etag)


def day_batch_tag(dt: str) -> str:
    """The tag naming a day's batch (``<dt>#<n>``) on the run that ingests it, alone or in a range."""
    return f"{BATCH_TAG}/{dt}"


def run_state(instance: dg.DagsterInstance) -> Callable[[str], str]:
    def state(batch_key: str) -> str:
        dt = batch_key.partition("#")[0]
        runs = (instance.get_runs(filters=dg.RunsFilter(tags={day_batch_tag(dt): batch_key}), limit=1)
                # a run requested by an earlier release carries only the batch tag
                or instance.get_runs(filters=dg.RunsFilter(tags={BATCH_TAG: batch_key}), limit=1))
        if not runs:
            return NOT_LAUNCHED
        return FINISHED if runs[0].is_finished else ACTIVE
    return state


def bronze_run_requests(requests: list[BatchRequest]) -> list[dg.RunRequest]:
    """One run per stretch of consecutive due days: a day alone is a partition run, several a ranged run."""
    by_dt = {r.dt: r for r in requests}
    run_requests = []
    for start, end in contiguous_ranges(list(by_dt)):
        batch = [r for dt, r in sorted(by_dt.items()) if start <= dt <= end]
        run_key = "+".join(r.run_key for r in batch)  # a relaunched batch is the same key again
        tags = {BATCH_TAG: run_key, **{day_batch_tag(r.dt): r.run_key for r in batch},
                "medallion/landing_files": str(sum(r.files for r in batch)),
                "medallion/landing_trigger": ",".join(sorted({r.reason for r in batch}))}
        if start == end:
            run_requests.append(dg.RunRequest(run_key=run_key, partition_key=start, tags=tags))
        else:
            run_requests.append(dg.RunRequest(run_key=run_key, tags={**tags, **range_tags(start, end)}))
    return run_requests


@dataclass
class TickReport:
    new_files: int = 0
    messages: int = 0
    unparseable: int = 0
    ignored: int = 0  # events outside landing's layout: directory markers, other suffixes, other buckets
    before_start: int = 0

    def summary(self, waiting: int, requested: int) -> str:
        parts = [f"{self.new_files} new files", f"{waiting} waiting", f"{requested} runs requested"]
        if self.messages:
            parts.append(f"{self.messages} messages ({self.unparseable} unparseable left for the DLQ, "
                         f"{self.ignored} ignored)")
        if self.before_start:
            parts.append(f"{self.before_start} files before MEDALLION_START_DATE ignored")
        return ", ".join(parts)


def listing_window(today: date, settings: Settings) -> list[str]:
    """Today and the look-back days, never before the first partition."""
    start = date.fromisoformat(settings.start_date)
    days = (today - timedelta(days=i) for i in range(settings.landing_lookback_days + 1))
    return sorted(d.isoformat() for d in days if d >= start)


def discover_listing(landing: LandingStore, dts: list[str]) -> Iterator[SeenFile]:
    sources = landing.sources()  # once per tick: one listing per source and day after that
    for dt in dts:
        for f in landing.list_partition(dt, sources):
            yield SeenFile(dt, f.key, f.etag)


def drain_queue(queue: NotificationQueue, landing: S3LandingStore, record: Callable[[list[SeenFile]], None],
                settings: Settings, report: TickReport, monotonic: Callable[[], float] = time.monotonic) -> None:
    """Receive notifications until the queue is empty or the tick's budget (on ``monotonic``, which tests
    replace) is spent; every ``FLUSH_EVERY`` messages, record their files durably, then delete them."""
    deadline = monotonic() + settings.landing_tick_budget_seconds
    handled: list[QueueMessage] = []
    seen: list[SeenFile] = []

    def flush():
        record(seen)  # durable first: a crash after this only means re-delivered messages
        queue.delete(handled)
        handled.clear()
        seen.clear()

    while report.messages < settings.landing_tick_max_messages and monotonic() < deadline:
        messages = queue.receive(min(10, settings.landing_tick_max_messages - report.messages))
        if not messages:
            break
        for message in messages:
            report.messages += 1
            try:
                created = parse_s3_notification(message.body)
            except NotificationError as exc:
                report.unparseable += 1
                log.warning("landing notification %s left on the queue: %s", message.id, exc)
                continue
            for obj in created:
                key = landing.relative_key(obj.bucket, obj.key)
                dt = partition_of(key) if key else None
                if dt is None:
                    report.ignored += 1
                else:
                    seen.append(SeenFile(dt, key, obj.etag))
            handled.append(message)
        if len(handled) >= FLUSH_EVERY:
            flush()
    flush()


def landing_tick(instance: dg.DagsterInstance, settings: Settings, now: datetime,
                 landing: LandingStore | None = None, queue: NotificationQueue | None = None,
                 ) -> tuple[list[dg.RunRequest], str]:
    """One evaluation: discover, record, settle finished runs, and request the partitions that are due."""
    landing = landing or landing_store_for(settings.landing_root)
    batches = LandingBatches(InstanceStore(instance))
    ledger = Ledger(open_catalog(settings.resolved_catalog_uri, settings.lake_root))
    report = TickReport()
    stamp = now.timestamp()

    def record(files: list[SeenFile]) -> None:
        fresh = [f for f in files if f.dt >= settings.start_date and not ledger.has(f.dt, f.key, f.etag)]
        report.before_start += sum(f.dt < settings.start_date for f in files)
        report.new_files += batches.record(fresh, stamp)
        batches.save()

    if settings.landing_mode == "events":
        if not isinstance(landing, S3LandingStore):
            raise dg.Failure("MEDALLION_LANDING_MODE=events needs an s3:// MEDALLION_LANDING_ROOT")
        drain_queue(queue or SqsNotificationQueue(settings.landing_queue_url), landing, record, settings, report)
    else:
        record(list(discover_listing(landing, listing_window(now.date(), settings))))

    state = run_state(instance)
    requests = [r for dt in sorted(batches.partitions)
                if (r := batches.settle(dt, ledger.ingested(dt), state, stamp)) is not None]
    today = now.date().isoformat()
    requests += batches.due(stamp, settings.landing_batch_files, settings.landing_batch_wait_minutes * 60,
                            requestable=lambda dt: settings.start_date <= dt <= today)
    batches.save()  # in flight before the requests leave: a crash now re-sends the same run keys
    run_requests = bronze_run_requests(requests)
    return run_requests, report.summary(batches.waiting_files(), len(run_requests))


def landing_sensor(settings: Settings) -> dg.SensorDefinition:
    @dg.sensor(
        name="landing_files",
        target=[asset_key(BRONZE_APP_LOGS)],
        minimum_interval_seconds=settings.landing_sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"New landing files ({settings.landing_mode} mode) -> bronze runs, consecutive due days "
                    f"in one ranged run, batched by {settings.landing_batch_files} files or "
                    f"{settings.landing_batch_wait_minutes:g} min.",
    )
    def landing_files(context: dg.SensorEvaluationContext):
        run_requests, summary = landing_tick(context.instance, Settings.from_env(), clock())
        context.log.info(summary)
        return dg.SensorResult(run_requests=run_requests, skip_reason=None if run_requests else summary)

    return landing_files
