"""Vacuum, once for every catalog: delete what no reader can reach, in the order ``Catalog.vacuum`` states.

(1) list the lake's version directories; (2) commit the catalog's changes (expired version rows removed,
abandoned leases revoked); (3) delete files, outside any catalog transaction. The implementations supply
the primitives (``forget_expired_versions``, ``owners``, ``revoke_leases``); the order lives here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Hashable, Mapping
from typing import TYPE_CHECKING, TypeVar

from medallion_pipeline.resources.lake import Lake, LakeFiles, age_seconds

if TYPE_CHECKING:
    from medallion_pipeline.resources.catalog.base import Catalog

K = TypeVar("K", bound=Hashable)


def vacuum(
    catalog: Catalog,
    lake: Lake,
    files: LakeFiles,
    keep: int,
    grace_seconds: float,
    run_in_progress: Callable[[str], bool] | None,
) -> list[str]:
    from medallion_pipeline.tables import ALL_TABLES

    # (1) Listed before the catalog is read: whatever is listed was leased or published before it was
    # written, so the reads below know its owner.
    listed = [(table.qualified, location, mtime) for table in ALL_TABLES
              for location, mtime in files.list_children(lake.table_root(table))]
    expired = catalog.forget_expired_versions(keep, grace_seconds)  # (2) committed before any delete
    referenced, leases = catalog.owners()
    revoked = {(lease.table.qualified, lease.version_id) for lease in leases if lease.revoked_at}
    if run_in_progress is not None:
        # Asked after the leases were read: a run that is not in progress now cannot have started since.
        finished = [lease for lease in leases if not lease.revoked_at and not run_in_progress(lease.run_id)]
        revoked |= catalog.revoke_leases(finished)
    live = {(lease.table.qualified, lease.version_id) for lease in leases} - revoked
    removed: list[str] = []
    for location in expired:  # (3) outside every transaction
        files.delete_tree(location)
        removed.append(location)
    for table_name, location, mtime in listed:
        owner = (table_name, location.rstrip("/").rsplit("/", 1)[-1])
        if owner in referenced or owner in live:
            continue
        if owner in revoked or age_seconds(mtime) >= grace_seconds:
            files.delete_tree(location)
            removed.append(location)
    return removed


def expirable(candidates: Collection[K], layout: Mapping[K, tuple[str, tuple[str, ...]]]) -> dict[K, set[K]]:
    """Which ``candidates`` may be forgotten: not one whose location is a segment of a version that stays.

    ``layout`` maps every version of the catalog (or of the candidates' partitions) to its (location,
    segments). Keeping a version keeps the versions it lists, and theirs in turn, so this is a fixpoint.
    Returns each forgettable version with the versions that list it as a segment (all forgettable too), for
    a catalog that expires one version per transaction: it expires a version only after those.
    """
    listed_by: dict[str, set[K]] = defaultdict(set)
    for key, (_, segments) in layout.items():
        for segment in segments:
            listed_by[segment].add(key)
    removable = set(candidates)
    while protected := {key for key in removable if not listed_by[layout[key][0]] <= removable}:
        removable -= protected
    return {key: set(listed_by[layout[key][0]]) for key in removable}
