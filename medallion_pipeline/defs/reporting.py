"""Turning a job's report into Dagster results: per-partition metadata, schema, row counts."""

from __future__ import annotations

import dagster as dg

from medallion_pipeline.jobs.report import TableReport
from medallion_pipeline.resources.catalog import Column
from medallion_pipeline.tables import TableId


def asset_key(table: TableId) -> dg.AssetKey:
    return dg.AssetKey(table.asset_path)


def table_schema(columns: tuple[Column, ...]) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name, type=c.type, description=c.description or None, tags={"pii": ""} if c.pii else None
            )
            for c in columns
        ]
    )


def materialize_result(context: dg.AssetExecutionContext, report: TableReport) -> dg.MaterializeResult:
    """One result for the run's partition range, plus each partition's own figures as its metadata."""
    key = asset_key(report.table)
    for dt, partition in report.partitions.items():
        context.add_asset_metadata(
            {
                "dagster/row_count": partition.row_count,
                "published": partition.published,
                "version_id": partition.version_id or "-",
                "location": dg.MetadataValue.path(partition.location) if partition.location else "-",
                "new_columns": ", ".join(partition.new_columns) or "-",
                "note": partition.note or "-",
                **{name: float(value) for name, value in sorted(partition.stats.items())},
            },
            asset_key=key,
            partition_key=dt,
        )
    published = sorted(dt for dt, p in report.partitions.items() if p.published)
    metadata: dict[str, object] = {
        "catalog_table": report.table.qualified,
        "partitions_published": ", ".join(published) or "-",
    }
    if report.columns:
        metadata["dagster/column_schema"] = table_schema(report.columns)
    return dg.MaterializeResult(asset_key=key, metadata=metadata)
