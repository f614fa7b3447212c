"""SQL over the published tables with DuckDB, resolved through the catalog (never by listing the lake).

Each table becomes a view named ``<layer>_<name>`` over exactly the current version of every partition.
"""

from __future__ import annotations

import duckdb

from medallion_pipeline.resources.catalog import Catalog
from medallion_pipeline.tables import ALL_TABLES


def connect(catalog: Catalog) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per published table."""
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    for table in ALL_TABLES:
        partitions = catalog.partitions(table)
        if not partitions:
            continue
        files = ", ".join(f"'{p.location}/*.parquet'" for p in partitions)
        db.execute(
            f"CREATE VIEW {table.sql_name} AS SELECT * FROM read_parquet([{files}], "
            "hive_partitioning = true, hive_types = {'dt': VARCHAR}, union_by_name = true)"
        )
    return db


def run_query(catalog: Catalog, sql: str) -> tuple[list[str], list[tuple]]:
    """Column names and rows of ``sql``."""
    db = connect(catalog)
    try:
        result = db.execute(sql)
        columns = [d[0] for d in result.description] if result.description else []
        return columns, result.fetchall()
    finally:
        db.close()
