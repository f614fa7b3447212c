"""SQL over the published tables with DuckDB, resolved through the catalog (never by listing the lake).

Each table becomes a view named ``<layer>_<name>`` over exactly the current version of every partition.

A local lake is read by DuckDB itself (``read_parquet`` over the current partition directories). An ``s3://``
lake cannot be: DuckDB reads S3 through its httpfs extension, which it downloads on first use, and these
machines (like many locked-down deployments) cannot. There the current partitions' Parquet files are read
with pyarrow's S3 filesystem, which ships in the wheel, and the Arrow table is registered as the view. That
loads every current partition of every table into memory when the connection opens: fine for the CLI over
gold and metrics (a few rows per day), not a way to scan bronze or silver in AWS — use Athena for those.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa

from medallion_pipeline.resources.catalog import Catalog
from medallion_pipeline.tables import ALL_TABLES


def connect(catalog: Catalog, sql: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per published table (with ``sql``: per table it names).

    An S3 table is loaded when its view is made, so naming only the tables a query mentions keeps a gold
    query from reading bronze and silver into memory.
    """
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    s3 = None
    for table in ALL_TABLES:
        if sql is not None and not re.search(rf"\b{table.sql_name}\b", sql, re.IGNORECASE):
            continue
        locations = [location for p in catalog.partitions(table) for location in p.locations]  # segments too
        if not locations:
            continue
        if not any(location.startswith("s3://") for location in locations):
            files = ", ".join(f"'{location}/*.parquet'" for location in locations)
            db.execute(
                f"CREATE VIEW {table.sql_name} AS SELECT * FROM read_parquet([{files}], "
                "hive_partitioning = true, hive_types = {'dt': VARCHAR}, union_by_name = true)"
            )
            continue
        if not all(location.startswith("s3://") for location in locations):
            raise ValueError(f"{table.qualified}: partitions both on S3 and elsewhere; one lake root per catalog")
        s3 = s3 or s3_filesystem()
        db.register(table.sql_name, read_s3_partitions(s3, locations))
    return db


def s3_filesystem():
    """pyarrow's S3 filesystem, configured like boto3: ``AWS_ENDPOINT_URL[_S3]`` (a local S3 such as moto)
    and the region from the environment, credentials from the AWS default chain."""
    from pyarrow import fs

    options: dict[str, str] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        options.update(endpoint_override=parts.netloc, scheme=parts.scheme)
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
    if region:
        options["region"] = region
    return fs.S3FileSystem(**options)


def read_s3_partitions(s3, locations: Sequence[str]) -> pa.Table:
    """The Parquet files directly in each location (like ``'<loc>/*.parquet'``), as one table.

    As DuckDB's ``union_by_name`` does: columns are matched by name, a column missing from an older
    partition is null there, and ``dt`` is a string column from the ``dt=`` segment of the path.
    """
    tables = [read_s3_partition(s3, location) for location in locations]
    # ``dt`` goes last, after the union of the files' columns, where DuckDB's hive partitioning puts it.
    dts = pa.array([hive_dt(location) for location, t in zip(locations, tables) for _ in range(t.num_rows)],
                   pa.string())
    return pa.concat_tables(tables, promote_options="permissive").append_column("dt", dts)


def read_s3_partition(s3, location: str) -> pa.Table:
    """One partition's files, without ``dt``."""
    import pyarrow.parquet as pq
    from pyarrow import fs

    root = location.removeprefix("s3://").rstrip("/")
    paths = sorted(
        info.path for info in s3.get_file_info(fs.FileSelector(root, allow_not_found=True))
        if info.type == fs.FileType.File and info.path.endswith(".parquet")
    )
    if not paths:
        # What DuckDB raises for an empty glob, so the CLI reports both lakes the same way.
        raise duckdb.IOException(f"No files found that match the pattern \"{location}/*.parquet\"")
    # An open file, not a path: given a path, pyarrow would add its own (dictionary-typed) ``dt`` column.
    parts = []
    for path in paths:
        with s3.open_input_file(path) as source:
            parts.append(pq.read_table(source))
    table = pa.concat_tables(parts, promote_options="permissive")
    # The path says which day a file belongs to: DuckDB, too, prefers it to a ``dt`` column in the file.
    return table.drop_columns("dt") if "dt" in table.column_names else table


def hive_dt(location: str) -> str:
    """``dt`` from the location's ``dt=YYYY-MM-DD`` segment (the path, as Hive-style readers see it)."""
    for segment in reversed(location.rstrip("/").split("/")):
        key, eq, value = segment.partition("=")
        if eq and key == "dt":
            return value
    raise ValueError(f"no dt=… segment in partition location {location!r}")


def run_query(catalog: Catalog, sql: str) -> tuple[list[str], list[tuple]]:
    """Column names and rows of ``sql``."""
    db = connect(catalog, sql)
    try:
        result = db.execute(sql)
        columns = [d[0] for d in result.description] if result.description else []
        return columns, result.fetchall()
    finally:
        db.close()
