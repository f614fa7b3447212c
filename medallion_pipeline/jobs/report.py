"""What a layer job returns: plain, JSON-serializable figures per table and partition.

The same report travels back from an in-process job or from a remote Spark driver, and the Dagster
wiring turns it into materialization metadata.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from medallion_pipeline.resources.catalog import Column
from medallion_pipeline.tables import TableId


@dataclass
class PartitionResult:
    dt: str
    published: bool
    row_count: int = 0
    version_id: str = ""
    location: str = ""
    stats: dict[str, float] = field(default_factory=dict)
    new_columns: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class TableReport:
    table: TableId
    partitions: dict[str, PartitionResult] = field(default_factory=dict)
    columns: tuple[Column, ...] = ()

    @property
    def row_count(self) -> int:
        return sum(p.row_count for p in self.partitions.values())


@dataclass
class LayerReport:
    layer: str
    dts: list[str]
    tables: dict[str, TableReport] = field(default_factory=dict)
    duration_s: float = 0.0

    def table(self, table: TableId) -> TableReport:
        return self.tables[table.qualified]

    def add(self, report: TableReport) -> None:
        self.tables[report.table.qualified] = report

    def to_dict(self) -> dict:
        return asdict(self)
