"""Turning a job's report into Dagster results: per-partition metadata, schema, row counts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import dagster as dg

from medallion_pipeline.jobs.audit import ERROR, rules_for
from medallion_pipeline.jobs.report import CheckOutcome, TableReport
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


def model_schema(model, pii: dict[str, str] | None = None) -> dg.TableSchema:
    """A Dagster column schema derived from a Pandera model (the single source of the column contract)."""
    pii = pii or {}
    schema = model.to_schema()
    return dg.TableSchema(columns=[
        dg.TableColumn(
            name=name, type=column.dtype.type.simpleString(),
            description=pii.get(name) or column.description or None,
            constraints=dg.TableColumnConstraints(
                nullable=column.nullable,
                other=[f"{c.name} {c.statistics}" for c in column.checks],
            ),
            tags={"pii": ""} if name in pii else None,
        )
        for name, column in schema.columns.items()
    ])


def check_specs(table: TableId) -> list[dg.AssetCheckSpec]:
    """The table's data-quality rules as Dagster checks: ERROR rules block downstream, WARN rules never do."""
    return [
        dg.AssetCheckSpec(
            name=rule.name, asset=asset_key(table), blocking=rule.severity == ERROR,
            description=f"[{rule.severity}] {rule.description}",
        )
        for rule in rules_for(table)
    ]


def check_results(report: TableReport) -> list[dg.AssetCheckResult]:
    """One result per rule for the run's whole partition range (Dagster records one evaluation per check
    per step); the per-day verdicts, figures and samples are in its metadata."""
    results = []
    for rule in rules_for(report.table):
        outcomes = [o for o in report.checks if o.check == rule.name]
        if not outcomes:
            continue
        failed = [o for o in outcomes if not o.passed]
        worst = max(outcomes, key=lambda o: (not o.passed, o.observed or 0.0))
        metadata: dict[str, object] = {
            "partitions_failed": ", ".join(o.dt for o in failed) or "-",
            "partitions_passed": ", ".join(o.dt for o in outcomes if o.passed) or "-",
            "failing_rows": sum(o.failing_rows for o in failed),
            "verdicts": dg.MetadataValue.md(_verdicts_table(outcomes)),
            # Machine-readable per-day verdicts (the alert sensor reads these).
            "per_partition": dg.MetadataValue.json({
                o.dt: {"passed": o.passed, "severity": o.severity, "observed": o.observed, "threshold": o.threshold,
                       "failing_rows": o.failing_rows, "detail": o.detail}
                for o in outcomes
            }),
        }
        if worst.observed is not None:
            metadata["observed_value"] = float(worst.observed)
        if worst.threshold is not None:
            metadata["threshold"] = float(worst.threshold)
        if failed:
            metadata["failed"] = dg.MetadataValue.json([o.summary() for o in failed])
            reports = {o.dt: o.report for o in failed if o.report}
            if reports:
                metadata["pandera_errors"] = dg.MetadataValue.json(reports)
            samples = [row | {"dt": o.dt} for o in failed for row in o.samples][:20]
            if samples:
                metadata["sample_rows"] = dg.MetadataValue.json(samples)
            if any(report.partitions[o.dt].location for o in failed if o.dt in report.partitions):
                metadata["staged_locations"] = dg.MetadataValue.json(
                    {o.dt: report.partitions[o.dt].location for o in failed if o.dt in report.partitions}
                )
        results.append(dg.AssetCheckResult(
            asset_key=asset_key(report.table), check_name=rule.name, passed=not failed,
            severity=dg.AssetCheckSeverity.ERROR if rule.severity == ERROR else dg.AssetCheckSeverity.WARN,
            description="; ".join(o.summary() for o in failed) or None, metadata=metadata,
        ))
    return results


def _verdicts_table(outcomes: list[CheckOutcome]) -> str:
    lines = ["| dt | verdict | observed | threshold | failing rows | detail |", "|---|---|---|---|---|---|"]
    for o in sorted(outcomes, key=lambda o: o.dt):
        observed = "" if o.observed is None else f"{o.observed:.6g}"
        threshold = "" if o.threshold is None else f"{o.threshold:.6g}"
        verdict = "pass" if o.passed else f"**FAIL ({o.severity})**"
        lines.append(f"| {o.dt} | {verdict} | {observed} | {threshold} | {o.failing_rows} | {o.detail} |")
    return "\n".join(lines)


def gate_failure(reports: list[TableReport]) -> dg.Failure | None:
    """A run failure naming each rejected partition, rule, observed value and threshold."""
    failed = [o for r in reports for o in r.failures(ERROR)]
    if not failed:
        return None
    lines = [f"{r.table} {o.summary()}" for r in reports for o in r.failures(ERROR)]
    published = sorted({dt for r in reports for dt, p in r.partitions.items() if p.published})
    return dg.Failure(
        description="Blocking data-quality checks failed; these partitions were NOT published (the previous "
        "version stays current):\n" + "\n".join(lines)
        + (f"\nPublished: {', '.join(published)}" if published else ""),
        metadata={"failed_checks": dg.MetadataValue.json(lines), "published_partitions": ", ".join(published) or "-"},
    )


def _partition_metadata(report: TableReport, dt: str) -> dict[str, object]:
    partition = report.partitions[dt]
    verdicts = [o for o in report.checks if o.dt == dt]
    return {
        "dq_passed": all(o.passed for o in verdicts if o.severity == ERROR),
        "dq_failed_checks": ", ".join(f"{o.check} ({o.severity})" for o in verdicts if not o.passed) or "-",
        "dagster/row_count": partition.row_count,
        "published": partition.published,
        "version_id": partition.version_id or "-",
        "location": dg.MetadataValue.path(partition.location) if partition.location else "-",
        "new_columns": ", ".join(partition.new_columns) or "-",
        "note": partition.note or "-",
        **{name: float(value) for name, value in sorted(partition.stats.items())},
    }


def _table_metadata(report: TableReport, spark: Mapping[str, float] | None = None) -> dict[str, object]:
    """The table's figures for the run, and what the layer step cost Spark (the whole step, every table it
    wrote: ``layer_spark_jobs``, ``layer_bytes_read``, ...)."""
    published = sorted(dt for dt, p in report.partitions.items() if p.published)
    metadata: dict[str, object] = {
        "catalog_table": report.table.qualified,
        "partitions_published": ", ".join(published) or "-",
        **{f"layer_{name}": float(value) for name, value in (spark or {}).items()},
    }
    if report.columns:
        metadata["dagster/column_schema"] = table_schema(report.columns)
    return metadata


def materialize_result(context: dg.AssetExecutionContext, report: TableReport,
                       spark: Mapping[str, float] | None = None) -> dg.MaterializeResult:
    """One result for the run's partition range, plus each partition's own figures as its metadata; ``spark``:
    what the layer step cost (``LayerReport.spark``)."""
    key = asset_key(report.table)
    for dt in report.partitions:
        context.add_asset_metadata(_partition_metadata(report, dt), asset_key=key, partition_key=dt)
    return dg.MaterializeResult(asset_key=key, metadata=_table_metadata(report, spark), check_results=check_results(report))


def published_only_results(report: TableReport, spark: Mapping[str, float] | None = None) -> Iterator[dg.AssetMaterialization | dg.AssetObservation
                                                            | dg.AssetCheckResult]:
    """Results for a step that then fails its gates: a materialization for each published partition only,
    an observation (its verdicts, staged location) for each rejected one, and the check results.

    A ``MaterializeResult`` would materialize every partition of the run's range, and the UI shows a
    partition whose step reported a materialization as materialized even if the step then raised
    (FIELD_NOTES): a rejected day would look green. No output is yielded; the step raises right after.
    """
    key = asset_key(report.table)
    for dt in sorted(report.partitions):
        metadata = {**_table_metadata(report, spark), **_partition_metadata(report, dt)}
        if report.partitions[dt].published:
            yield dg.AssetMaterialization(asset_key=key, partition=dt, metadata=metadata)
        else:
            yield dg.AssetObservation(asset_key=key, partition=dt, metadata=metadata)
    yield from check_results(report)


def gated_results(context: dg.AssetExecutionContext, reports: list[TableReport],
                  spark: Mapping[str, float] | None = None) -> Iterator[object]:
    """The step's results for tables published together behind blocking gates, then the gate failure
    (raised) if a partition was rejected."""
    failure = gate_failure(reports)
    for report in reports:
        if failure is None:
            yield materialize_result(context, report, spark)
        else:
            yield from published_only_results(report, spark)
    if failure is not None:
        raise failure
