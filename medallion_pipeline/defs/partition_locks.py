"""Partition locks: two runs never write the same partition of the same layer at once (SPEC §4).

Dagster's own limits cannot say "these two runs share a day": ``pool=`` on an asset limits its concurrent
*steps* whatever their partitions (one pool per asset would serialize different days too), and run tag
concurrency limits apply only to queued runs (``medallion run`` executes in-process, past the queue) and
match whole tag values, so a ranged run would need one tag and one configured limit per day. Instead each
step claims, in the instance's pool storage (the slots ``pool=`` uses, listed on the UI's Concurrency
page), one pool per (layer, day) — ``medallion/silver/2024-01-03`` — holding one slot, for every day of its
range, in ascending order (so two overlapping ranges cannot deadlock), and frees them when its job is done.
A run waiting on a day logs who holds it; different days never wait on each other.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from sqlalchemy.exc import IntegrityError

WAITING = "waiting for partition lock"
ACQUIRED = "partition locks acquired"
RELEASED = "partition locks released"
POLL_SECONDS = 1.0

_FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def pool_name(layer: str, dt: str) -> str:
    return f"medallion/{layer}/{dt}"


@contextmanager
def _claims_serialized(instance: dg.DagsterInstance) -> Iterator[None]:
    """One claim at a time across processes sharing this instance's directory. Dagster's SQLite storage
    claims a slot by a read then a write (``FOR UPDATE`` is a no-op in SQLite), so two processes can both
    take the last slot; PostgreSQL locks the row, and there this file lock is merely redundant."""
    with open(os.path.join(instance.root_directory, ".medallion_partition_locks"), "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _ensure_one_slot(storage, pool: str) -> None:
    """A day's pool gets one slot on first use (not from ``concurrency.pools.default_limit``, so the lock
    holds on an instance configured otherwise); an operator's later change of the limit is kept."""
    if pool in storage.get_concurrency_keys():
        return
    try:
        storage.set_concurrency_slots(pool, 1)
    except IntegrityError:  # another process created it first (PostgreSQL)
        pass


def _free_finished_holders(instance: dg.DagsterInstance, pool: str) -> None:
    """Slots of a run that ended without freeing them (a killed process, later marked failed)."""
    for slot in instance.event_log_storage.get_concurrency_info(pool).claimed_slots:
        run = instance.get_run_by_id(slot.run_id)
        if run is not None and run.status in _FINISHED:
            instance.event_log_storage.free_concurrency_slots_for_run(slot.run_id)


def _claim(instance: dg.DagsterInstance, pool: str, run_id: str, holder: str, log: logging.Logger,
           poll_seconds: float) -> None:
    storage = instance.event_log_storage
    waited = False
    while True:
        with _claims_serialized(instance):
            _ensure_one_slot(storage, pool)
            if storage.claim_concurrency_slot(pool, run_id, holder).is_claimed:
                return
        if not waited:
            held_by = sorted(instance.event_log_storage.get_concurrency_info(pool).active_run_ids)
            log.info("%s %s (held by run %s)", WAITING, pool, ", ".join(held_by) or "-")
            waited = True
        _free_finished_holders(instance, pool)
        time.sleep(poll_seconds)


@contextmanager
def hold_partitions(instance: dg.DagsterInstance, run_id: str, holder: str, layer: str, dts: list[str],
                    log: logging.Logger, poll_seconds: float = POLL_SECONDS) -> Iterator[list[str]]:
    """Hold the (layer, day) lock of every day in ``dts`` for ``run_id``'s step ``holder``; waits while
    another run holds one of them. Yields the pool names."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        raise dg.DagsterInvariantViolationError(
            "this Dagster instance's storage has no concurrency pools (needed for partition locks): "
            "run `dagster instance migrate`")
    pools = [pool_name(layer, dt) for dt in sorted(set(dts))]
    try:
        for pool in pools:
            _claim(instance, pool, run_id, holder, log, poll_seconds)
        log.info("%s %s", ACQUIRED, ", ".join(pools))
        yield pools
    finally:
        # Also withdraws a claim still waiting (the step was interrupted).
        storage.free_concurrency_slot_for_step(run_id, holder)
        log.info("%s %s", RELEASED, ", ".join(pools))


@contextmanager
def partition_locks(context: dg.AssetExecutionContext, layer: str) -> Iterator[list[str]]:
    """Hold the locks of the step's partition range while its layer job writes."""
    with hold_partitions(context.instance, context.run.run_id, layer, layer, context.partition_keys,
                         context.log) as pools:
        yield pools
