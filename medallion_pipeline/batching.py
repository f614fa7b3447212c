"""Landing files waiting for bronze, and when a partition's bronze run is due: the landing sensors' state.

The sensors (listing or events) only discover files; this module decides. A file stays recorded from the
moment a sensor sees it until bronze's ingest ledger holds it (same key and eTag, or the same content),
so nothing is forgotten between discovery and ingestion and a re-delivered notification or a re-listed
file is recognised. A run for a partition is due once it has ``batch_files`` waiting files or its oldest
has waited ``batch_wait_s``; at most one requested run per partition is in flight, and files that arrive
meanwhile wait for the next. Run keys (``<dt>#<n>``) make a re-evaluated tick request nothing twice.

State lives per partition in a key-value store (the Dagster instance's in production, as durable as
Dagster's own storage) and is saved before queue messages are deleted. Time is injected, never read here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)

INDEX_KEY = "medallion/landing/partitions"
MAX_ATTEMPTS = 3  # runs that finished without ingesting a file before it stops requesting runs for it
ACTIVE, FINISHED, NOT_LAUNCHED = "active", "finished", "not_launched"


class KeyValueStore(Protocol):
    def get(self, keys: set[str]) -> dict[str, str]: ...

    def set(self, values: Mapping[str, str]) -> None: ...


class MemoryStore:
    """A dict as a key-value store (tests, and a dry run of the decisions)."""

    def __init__(self):
        self.values: dict[str, str] = {}
        self.writes = 0

    def get(self, keys):
        return {k: self.values[k] for k in keys if k in self.values}

    def set(self, values):
        self.writes += 1
        self.values.update(values)


@dataclass(frozen=True)
class SeenFile:
    dt: str
    key: str  # relative to the landing root: <source>/dt=<dt>/<name>
    etag: str


@dataclass
class Waiting:
    etag: str
    seen: float  # epoch seconds when first seen (or when its last run finished without it)
    attempts: int = 0


@dataclass
class PartitionBatch:
    dt: str
    files: dict[str, Waiting] = field(default_factory=dict)
    in_flight: str = ""  # run key of the requested run that has not finished yet
    in_flight_files: list[str] = field(default_factory=list)
    requested: int = 0  # runs requested so far: the next run key is <dt>#<requested + 1>

    def waiting(self) -> dict[str, Waiting]:
        return {k: w for k, w in self.files.items() if w.attempts < MAX_ATTEMPTS}

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> PartitionBatch:
        raw = json.loads(text)
        raw["files"] = {k: Waiting(**w) for k, w in raw["files"].items()}
        return cls(**raw)


@dataclass(frozen=True)
class BatchRequest:
    dt: str
    run_key: str
    files: int
    reason: str  # "count", "age", or "relaunch" (requested before, never launched)


def partition_key(dt: str) -> str:
    return f"medallion/landing/dt={dt}"


class LandingBatches:
    """Per-partition waiting files and in-flight runs, loaded from and saved to a key-value store."""

    def __init__(self, store: KeyValueStore):
        self.store = store
        index = store.get({INDEX_KEY}).get(INDEX_KEY)
        self._dts: list[str] = json.loads(index) if index else []
        raw = store.get({partition_key(dt) for dt in self._dts})
        self.partitions = {dt: PartitionBatch.from_json(raw[partition_key(dt)]) for dt in self._dts
                           if partition_key(dt) in raw}
        self._dirty: set[str] = set()

    def record(self, files: Iterable[SeenFile], now: float) -> int:
        """Remember newly discovered files; returns how many were new (a known key + eTag is not)."""
        new = 0
        for f in files:
            batch = self._batch(f.dt)
            known = batch.files.get(f.key)
            if known is not None and known.etag == f.etag:
                continue  # duplicate or multipart double event, re-delivery, re-listing
            batch.files[f.key] = Waiting(f.etag, now)  # a key with a new eTag is a new file
            self._dirty.add(f.dt)
            new += 1
        return new

    def _batch(self, dt: str) -> PartitionBatch:
        if dt not in self.partitions:
            # A partition emptied earlier keeps its blob (its run counter) though it left the index.
            raw = self.store.get({partition_key(dt)}).get(partition_key(dt))
            self.partitions[dt] = PartitionBatch.from_json(raw) if raw else PartitionBatch(dt)
        return self.partitions[dt]

    def settle(self, dt: str, ingested: Callable[[str, str], bool], run_state: Callable[[str], str],
               now: float) -> BatchRequest | None:
        """Forget what bronze ingested and close a finished run; returns a request to re-send when the
        partition's requested run was never launched (the tick that asked for it did not complete)."""
        batch = self.partitions.get(dt)
        if batch is None:
            return None
        done = [k for k, w in batch.files.items() if ingested(k, w.etag)]
        for key in done:
            del batch.files[key]
        if done:
            self._dirty.add(dt)
        if not batch.in_flight:
            return None
        state = run_state(batch.in_flight)
        if state == NOT_LAUNCHED:
            return BatchRequest(dt, batch.in_flight, len(batch.in_flight_files), "relaunch")
        if state == FINISHED:
            for key in batch.in_flight_files:
                if key in batch.files:  # the run ended without ingesting it (failed, or the file vanished)
                    waiting = batch.files[key]
                    waiting.attempts += 1
                    waiting.seen = now
                    if waiting.attempts >= MAX_ATTEMPTS:
                        log.warning("landing file %s: %d runs of %s did not ingest it; no further runs are "
                                    "requested for it (a manual run of the partition retries it)",
                                    key, waiting.attempts, dt)
            batch.in_flight, batch.in_flight_files = "", []
            self._dirty.add(dt)
        return None

    def due(self, now: float, batch_files: int, batch_wait_s: float,
            requestable: Callable[[str], bool] = lambda dt: True) -> list[BatchRequest]:
        """Partitions whose waiting files reached the batch size or waited long enough: mark them in flight."""
        requests = []
        for dt, batch in sorted(self.partitions.items()):
            waiting = batch.waiting()
            if batch.in_flight or not waiting or not requestable(dt):
                continue
            # Files a finished run did not ingest (usually a failed run) are retried by age only:
            # a run that keeps failing is not re-requested every tick.
            if sum(w.attempts == 0 for w in waiting.values()) >= batch_files:
                reason = "count"
            elif now - min(w.seen for w in waiting.values()) >= batch_wait_s:
                reason = "age"
            else:
                continue
            batch.requested += 1
            batch.in_flight = f"{dt}#{batch.requested}"
            batch.in_flight_files = sorted(waiting)
            self._dirty.add(dt)
            requests.append(BatchRequest(dt, batch.in_flight, len(waiting), reason))
        return requests

    def waiting_files(self) -> int:
        return sum(len(b.files) for b in self.partitions.values())

    def save(self) -> None:
        """Write the partitions that changed, then the index: a crash in between leaves a blob the
        index does not list yet, which the re-delivered notification finds again (``_batch``)."""
        dts = sorted(dt for dt, b in self.partitions.items() if b.files or b.in_flight)
        if not self._dirty and dts == self._dts:
            return
        # An emptied partition keeps its blob (its run counter): later files must not reuse a run key.
        if self._dirty:
            self.store.set({partition_key(dt): self.partitions[dt].to_json() for dt in self._dirty})
        for dt in set(self.partitions) - set(dts):
            del self.partitions[dt]
        if dts != self._dts:
            self.store.set({INDEX_KEY: json.dumps(dts)})
            self._dts = dts
        self._dirty.clear()
