"""What a layer job returns: plain, JSON-serializable figures per table and partition.

The same report travels back from an in-process job or from a remote Spark driver, and the Dagster
wiring turns it into materialization metadata.
"""

from __future__ import annotations

import json
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
class CheckOutcome:
    """One data-quality rule evaluated on one partition."""

    check: str
    dt: str
    passed: bool
    severity: str  # ERROR (blocks publishing) or WARN
    observed: float | None = None
    threshold: float | None = None
    failing_rows: int = 0
    detail: str = ""
    samples: list[dict] = field(default_factory=list)
    report: dict = field(default_factory=dict)  # e.g. Pandera's own error report for the partition

    def summary(self) -> str:
        figures = f"observed {self.observed:.6g}" if self.observed is not None else ""
        if self.threshold is not None:
            figures += f", threshold {self.threshold:.6g}"
        parts = [p for p in (figures, f"{self.failing_rows} failing rows" if self.failing_rows else "", self.detail) if p]
        return f"{self.dt} {self.check}: {'; '.join(parts)}"


@dataclass
class TableReport:
    table: TableId
    partitions: dict[str, PartitionResult] = field(default_factory=dict)
    columns: tuple[Column, ...] = ()
    checks: list[CheckOutcome] = field(default_factory=list)

    def failures(self, severity: str = "ERROR") -> list[CheckOutcome]:
        return [c for c in self.checks if not c.passed and c.severity == severity]

    @property
    def row_count(self) -> int:
        return sum(p.row_count for p in self.partitions.values())


@dataclass
class LayerReport:
    layer: str
    dts: list[str]
    tables: dict[str, TableReport] = field(default_factory=dict)
    duration_s: float = 0.0
    # What the layer cost Spark (``jobs/usage.py``): jobs, stages, tasks, bytes read/written/shuffled, seconds.
    spark: dict[str, float] = field(default_factory=dict)

    def table(self, table: TableId) -> TableReport:
        return self.tables[table.qualified]

    def add(self, report: TableReport) -> None:
        self.tables[report.table.qualified] = report


def report_to_json(report: LayerReport) -> str:
    """The report as JSON, for a remote driver to send back through Dagster Pipes."""
    return json.dumps(asdict(report))


def report_from_json(text: str) -> LayerReport:
    """The inverse of ``report_to_json``: the same report the job returned in the driver."""
    raw = json.loads(text)
    tables = {}
    for name, t in raw["tables"].items():
        tables[name] = TableReport(
            table=TableId(**t["table"]),
            partitions={dt: PartitionResult(**p) for dt, p in t["partitions"].items()},
            columns=tuple(Column(**c) for c in t["columns"]),
            checks=[CheckOutcome(**c) for c in t["checks"]],
        )
    return LayerReport(layer=raw["layer"], dts=raw["dts"], tables=tables, duration_s=raw["duration_s"],
                       spark=raw.get("spark", {}))
