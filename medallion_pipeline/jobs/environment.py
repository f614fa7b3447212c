"""Everything a layer job needs besides Spark, built from serializable settings.

A job never reads the environment or assumes local paths: the launcher builds a ``JobEnvironment`` (in the
Dagster process, or from arguments in a remote Spark driver) and hands it over.
"""

from __future__ import annotations

from dataclasses import dataclass

from medallion_pipeline.resources.catalog import Catalog, open_catalog
from medallion_pipeline.resources.landing import LandingStore, landing_store_for
from medallion_pipeline.resources.lake import Lake, LakeFiles, lake_files_for
from medallion_pipeline.settings import Settings


@dataclass
class JobEnvironment:
    settings: Settings
    lake: Lake
    catalog: Catalog
    landing: LandingStore
    files: LakeFiles
    run_id: str = ""

    @classmethod
    def from_settings(cls, settings: Settings, run_id: str = "") -> JobEnvironment:
        return cls(
            settings=settings,
            lake=Lake(settings.lake_root),
            catalog=open_catalog(settings.resolved_catalog_uri, settings.lake_root),
            landing=landing_store_for(settings.landing_root),
            files=lake_files_for(settings.lake_root),
            run_id=run_id,
        )
