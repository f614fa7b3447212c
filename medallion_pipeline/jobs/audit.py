"""The audit of write–audit–publish: data-quality rules evaluated per partition on staged data.

Every rule yields one ``CheckOutcome`` per ``dt``. ERROR rules decide whether a partition is published;
WARN rules never do. Figures come from one aggregation per table, so the cost does not grow with the
number of rules; offending rows are sampled only for rules that failed.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import pandera.pyspark as pa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from medallion_pipeline.jobs.publish import StagedTable, read_versions
from medallion_pipeline.jobs.report import CheckOutcome
from medallion_pipeline.resources.catalog import PartitionVersion
from medallion_pipeline.schemas.contract import any_violation, type_mismatches, violations
from medallion_pipeline.schemas.silver import CONTRACT_COLUMNS, silver_schema
from medallion_pipeline.settings import USER_SCOPED_EVENT_TYPES, Settings
from medallion_pipeline.tables import (
    BRONZE_APP_LOGS,
    GOLD_DAILY_KPIS,
    GOLD_ENDPOINT_STATS,
    GOLD_FUNNEL,
    GOLD_SESSIONS,
    SILVER_APP_LOGS,
    TableId,
)
from medallion_pipeline.transforms.pii import mask_free_text, pii_detector_sql

ERROR, WARN = "ERROR", "WARN"
SAMPLE_ROWS = 20
SAMPLE_VALUE_CHARS = 200
PII_SCAN_ROWS = 50_000
PII_BLOB = "_pii_scan_blob"  # every scanned column joined, scanned once per row


@dataclass(frozen=True)
class Rule:
    table: TableId
    name: str
    severity: str
    description: str


RULES = (
    Rule(SILVER_APP_LOGS, "total_rows_positive", ERROR, "the partition has at least MEDALLION_DQ_MIN_ROWS rows"),
    Rule(SILVER_APP_LOGS, "event_id_not_null", ERROR, "no event without an event_id"),
    Rule(SILVER_APP_LOGS, "event_type_allowed", ERROR, "event_type is set and in the allowed set"),
    Rule(SILVER_APP_LOGS, "user_id_null_rate_within_threshold", ERROR,
         "user_id null rate among user-scoped events <= MEDALLION_DQ_USER_ID_NULL_RATE_MAX"),
    Rule(SILVER_APP_LOGS, "duplicate_rate_within_threshold", ERROR,
         "extra duplicate rows / rows before dedup <= MEDALLION_DQ_DUPLICATE_RATE_MAX"),
    Rule(SILVER_APP_LOGS, "schema_conforms", ERROR, "types, ranges, allowed values per the Pandera model"),
    Rule(SILVER_APP_LOGS, "quarantine_rate_within_threshold", ERROR,
         "quarantined rows / parsed bronze rows <= MEDALLION_DQ_QUARANTINE_RATE_MAX"),
    Rule(SILVER_APP_LOGS, "no_raw_pii", ERROR,
         "no email, IP address, card number, AWS key or bearer token in any string column but user_id (sampled)"),
    Rule(SILVER_APP_LOGS, "row_count_within_trailing_median", WARN,
         "rows within +-MEDALLION_DQ_ROW_COUNT_DEVIATION_MAX of the trailing median (metrics dataset)"),
    Rule(BRONZE_APP_LOGS, "malformed_rate_within_threshold", WARN,
         "malformed lines / lines <= MEDALLION_DQ_MALFORMED_RATE_MAX"),
    Rule(BRONZE_APP_LOGS, "no_new_columns", WARN, "schema drift notice: new top-level fields appeared"),
    Rule(BRONZE_APP_LOGS, "no_untagged_pii", WARN, "no PII found in a column not tagged as PII"),
    *[Rule(t, "schema_conforms", ERROR, "types, non-negative counts, rates within [0, 1] per the Pandera model")
      for t in (GOLD_DAILY_KPIS, GOLD_ENDPOINT_STATS, GOLD_SESSIONS, GOLD_FUNNEL)],
    Rule(GOLD_DAILY_KPIS, "status_counts_sum_to_requests", ERROR, "2xx + 3xx + 4xx + 5xx = requests"),
    Rule(GOLD_FUNNEL, "funnel_steps_non_increasing", ERROR, "login >= view_item >= add_to_cart >= purchase"),
)


def rules_for(table: TableId) -> list[Rule]:
    return [r for r in RULES if r.table == table]


def sample(df: DataFrame, dt: str, condition: Column, columns: list[str] | None = None) -> list[dict]:
    """Up to 20 offending rows of one partition, as JSON-friendly dicts, PII-safe on every layer: each string
    value is masked as free text (emails, IPs, cards, keys, tokens — raw bronze values, new columns and
    ``_rescued_data`` included) and then cut to ``SAMPLE_VALUE_CHARS``."""
    strings = {f.name for f in df.schema.fields if f.dataType.simpleString() == "string"}
    names = [c for c in (columns or df.columns) if c in df.columns]
    selected = df.where((F.col("dt") == dt) & condition).select(*[
        F.substring(mask_free_text(F.col(c)), 1, SAMPLE_VALUE_CHARS).alias(c) if c in strings else F.col(c)
        for c in names
    ])
    return [{k: (None if v is None else str(v)) for k, v in r.asDict().items()} for r in selected.limit(SAMPLE_ROWS).collect()]


def _per_dt(df: DataFrame, aggregates: Mapping[str, Column]) -> dict[str, dict]:
    rows = df.groupBy("dt").agg(*[agg.alias(name) for name, agg in aggregates.items()]).collect()
    return {r["dt"]: r.asDict() for r in rows}


def conformance_counts(schema: pa.DataFrameSchema, columns: list[str],
                       invariants: Mapping[str, Column] | None = None) -> dict[str, Column]:
    """What ``conformance`` counts per partition, as conditions: each rule of the Pandera model, any of
    them (``_bad``), and each of ``invariants``. Counted by one aggregation, or while writing (gold)."""
    rules = violations(schema, columns)
    return {"_bad": any_violation(rules), **rules,
            **{f"invariant|{name}": cond for name, cond in (invariants or {}).items()}}


def conformance(df: DataFrame, schema: pa.DataFrameSchema, table: TableId, dts: list[str],
                invariants: Mapping[str, Column] | None = None,
                counted: Mapping[str, Mapping[str, int]] | None = None) -> list[CheckOutcome]:
    """The Pandera model's rules as per-partition failing-row counts, plus a type comparison; then each of
    ``invariants`` (check name -> the condition a row breaks it with), an ERROR check.

    The counts are ``conformance_counts``, from one aggregation over ``df`` unless already ``counted``
    (dt -> name -> rows, e.g. observed while ``df`` was written); ``df`` is then read only for the samples and
    the Pandera report of a failing partition.
    """
    conditions = conformance_counts(schema, df.columns, invariants)
    rules = [name for name in conditions if name != "_bad" and not name.startswith("invariant|")]
    figures = counted if counted is not None else _per_dt(
        df, {name: F.count(F.when(cond, 1)) for name, cond in conditions.items()})
    mismatched = type_mismatches(schema, {f.name: f.dataType.simpleString() for f in df.schema.fields})
    outcomes = []
    for dt in dts:
        f = figures.get(dt, {})
        broken = {name: f[name] for name in rules if f.get(name)}
        failing = f.get("_bad", 0)
        passed = not failing and not mismatched
        outcomes.append(CheckOutcome(
            "schema_conforms", dt, passed, ERROR, observed=float(failing), threshold=0.0, failing_rows=failing,
            detail="; ".join([*mismatched, *(f"{name}: {n} rows" for name, n in sorted(broken.items()))]),
            samples=[] if passed or not failing else sample(df, dt, conditions["_bad"]),
            report={} if passed else pandera_report(schema, df.where(F.col("dt") == dt)),
        ))
    for name, broken in (invariants or {}).items():
        for dt in dts:
            failing = figures.get(dt, {}).get(f"invariant|{name}", 0)
            outcomes.append(CheckOutcome(name, dt, failing == 0, ERROR, observed=float(failing), threshold=0.0,
                                         failing_rows=failing, samples=sample(df, dt, broken) if failing else []))
    return outcomes


def pandera_report(schema: pa.DataFrameSchema, df: DataFrame) -> dict:
    """Pandera's own validation report for a failing partition (its PySpark backend collects errors on the
    DataFrame instead of raising); it names the failing checks, not how many rows failed them."""
    validated = schema.validate(check_obj=df)
    return json.loads(json.dumps(dict(validated.pandera.errors), default=str))


def audit_silver(staged: DataFrame, dts: list[str], stats: Mapping[str, dict], settings: Settings,
                 duplicates: DataFrame | None = None) -> list[CheckOutcome]:
    """The blocking silver gates, per partition, on the staged silver rows."""
    allowed = list(settings.allowed_event_types)
    scoped = F.col("event_type").isin(*USER_SCOPED_EVENT_TYPES)
    conditions = {
        "event_id_not_null": F.col("event_id").isNull(),
        "event_type_allowed": F.col("event_type").isNull() | ~F.col("event_type").isin(*allowed),
        "user_id_null_rate_within_threshold": scoped & F.col("user_id").isNull(),
    }
    figures = _per_dt(staged, {"_rows": F.count(F.lit(1)), "_scoped": F.count(F.when(scoped, 1)),
                               **{name: F.count(F.when(c, 1)) for name, c in conditions.items()}})
    columns = list(CONTRACT_COLUMNS)
    hits = pii_hits(staged, raw_pii_scan_columns(staged), {dt: f["_rows"] for dt, f in figures.items()})
    outcomes: list[CheckOutcome] = []
    for dt in dts:
        f = figures.get(dt, {"_rows": 0, "_scoped": 0, **{name: 0 for name in conditions}})
        rows, scoped_rows = f["_rows"], f["_scoped"]
        outcomes.append(CheckOutcome("total_rows_positive", dt, rows >= settings.dq_min_rows, ERROR,
                                     observed=float(rows), threshold=float(settings.dq_min_rows),
                                     detail="" if rows else "no rows: is upstream data missing?"))
        for name in ("event_id_not_null", "event_type_allowed"):
            outcomes.append(CheckOutcome(name, dt, f[name] == 0, ERROR, observed=float(f[name]), threshold=0.0,
                                         failing_rows=f[name]))
        null_rate = f["user_id_null_rate_within_threshold"] / scoped_rows if scoped_rows else 0.0
        outcomes.append(CheckOutcome(
            "user_id_null_rate_within_threshold", dt, null_rate <= settings.dq_user_id_null_rate_max, ERROR,
            observed=null_rate, threshold=settings.dq_user_id_null_rate_max,
            failing_rows=f["user_id_null_rate_within_threshold"],
            detail=f"{f['user_id_null_rate_within_threshold']} of {scoped_rows} user-scoped events have no user_id",
        ))
        duplicate_rate = float(stats.get(dt, {}).get("duplicate_rate", 0.0))
        outcomes.append(CheckOutcome(
            "duplicate_rate_within_threshold", dt, duplicate_rate <= settings.dq_duplicate_rate_max, ERROR,
            observed=duplicate_rate, threshold=settings.dq_duplicate_rate_max,
            failing_rows=int(stats.get(dt, {}).get("duplicates_removed", 0)),
            detail="measured before deduplication",
        ))
        outcomes.append(_quarantine_outcome(dt, stats.get(dt, {}), settings))
        outcomes.append(_pii_outcome("no_raw_pii", ERROR, dt, hits.get(dt, {})))
    outcomes += conformance(staged, silver_schema(allowed), SILVER_APP_LOGS, dts)
    for o in outcomes:
        if not o.passed and o.check in conditions:
            o.samples = sample(staged, o.dt, conditions[o.check], columns)
        elif not o.passed and o.check == "duplicate_rate_within_threshold" and duplicates is not None:
            o.samples = sample(duplicates, o.dt, F.lit(True), ["event_id", "event_ts", "event_type", "_source_file"])
    return outcomes


def raw_pii_scan_columns(staged: DataFrame) -> list[str]:
    """Silver's string columns that must hold no raw PII: all but ``user_id`` (personal data kept as the join
    key by contract) and the landing key in ``_source_file``."""
    return [f.name for f in staged.schema.fields
            if f.dataType.simpleString() == "string" and f.name not in ("user_id", "_source_file", "dt")]


def _quarantine_outcome(dt: str, stats: Mapping[str, float], settings: Settings) -> CheckOutcome:
    quarantined, parsed = stats.get("quarantined_rows", 0.0), stats.get("bronze_parsed_rows", 0.0)
    rate = quarantined / parsed if parsed else 0.0
    return CheckOutcome(
        "quarantine_rate_within_threshold", dt, rate <= settings.dq_quarantine_rate_max, ERROR, observed=rate,
        threshold=settings.dq_quarantine_rate_max, failing_rows=int(quarantined),
        detail=f"{int(quarantined)} of {int(parsed)} parsed rows quarantined",
    )


def row_count_anomalies(rows: Mapping[str, int], history: Mapping[str, float], settings: Settings) -> list[CheckOutcome]:
    """WARN when a partition's rows deviate from the median of the trailing days' ``silver_rows``."""
    outcomes = []
    window = settings.dq_row_count_history_days
    for dt, count in sorted(rows.items()):
        day = date.fromisoformat(dt)
        trailing = [history[d] for d in ((day - timedelta(days=i)).isoformat() for i in range(1, window + 1))
                    if d in history]
        if len(trailing) < 3:
            outcomes.append(CheckOutcome("row_count_within_trailing_median", dt, True, WARN, observed=float(count),
                                         detail=f"insufficient history: {len(trailing)} of {window} days"))
            continue
        median = statistics.median(trailing)
        deviation = abs(count - median) / median if median else float("inf") if count else 0.0
        outcomes.append(CheckOutcome(
            "row_count_within_trailing_median", dt, deviation <= settings.dq_row_count_deviation_max, WARN,
            observed=deviation, threshold=settings.dq_row_count_deviation_max,
            detail=f"{count} rows vs trailing {len(trailing)}-day median {median:g}",
        ))
    return outcomes


def _gold_invariants(table: TableId) -> dict[str, Column]:
    """Each gold table's own invariants: check name -> the condition a row breaks it with."""
    if table == GOLD_DAILY_KPIS:
        return {"status_counts_sum_to_requests":
                F.col("status_2xx") + F.col("status_3xx") + F.col("status_4xx") + F.col("status_5xx")
                != F.col("requests")}
    if table == GOLD_FUNNEL:
        return {"funnel_steps_non_increasing":
                (F.col("view_item_users") > F.col("login_users"))
                | (F.col("add_to_cart_users") > F.col("view_item_users"))
                | (F.col("purchase_users") > F.col("add_to_cart_users"))}
    return {}


def gold_counts(table: TableId, columns: list[str], schema: pa.DataFrameSchema) -> dict[str, Column]:
    """What ``audit_gold`` counts, to be observed while the table is written."""
    return conformance_counts(schema, columns, _gold_invariants(table))


def audit_gold(table: TableId, staged: DataFrame, schema: pa.DataFrameSchema, dts: list[str],
               counted: Mapping[str, Mapping[str, int]] | None = None) -> list[CheckOutcome]:
    """Gold internal consistency: the Pandera model plus the table's own invariants (``gold_counts``,
    observed while writing, or counted here in one aggregation)."""
    return conformance(staged, schema, table, dts, _gold_invariants(table), counted)


def pii_hits(staged: DataFrame, columns: list[str], rows: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """dt -> {"column: kind": rows} for the PII the detectors find in ``columns``.

    A notice or a gate, not an inventory: it reads a deterministic sample of at most ``PII_SCAN_ROWS`` rows
    per partition (``rows``: dt -> row count), runs the detectors once per row over all the columns joined
    together, and per column only on the (rare) rows that matched.
    """
    if not columns:
        return {}
    fractions = {dt: min(1.0, PII_SCAN_ROWS / n) if n else 1.0 for dt, n in rows.items()}
    scanned = staged.sampleBy("dt", fractions, seed=0) if any(v < 1 for v in fractions.values()) else staged
    blob = scanned.withColumn(PII_BLOB, F.concat_ws("\u0001", *[F.col(c) for c in columns]))
    suspect = F.expr(" OR ".join(pii_detector_sql(PII_BLOB).values()))
    found = {
        f"{column}|{kind}": F.expr(f"count_if({hit})")
        for column in columns
        for kind, hit in pii_detector_sql(column).items()
    }
    return {
        dt: {key.replace("|", ": "): n for key, n in figures.items() if "|" in key and n}
        for dt, figures in _per_dt(blob.where(suspect), found).items()
    }


def _pii_outcome(check: str, severity: str, dt: str, found: Mapping[str, int],
                 earlier: CheckOutcome | None = None) -> CheckOutcome:
    """``earlier``: the verdict on the partition's earlier segments, added to what was found now."""
    before = int(earlier.observed or 0) if earlier is not None else 0
    rows = sum(found.values()) + before
    detail = [f"{key} in {n} rows" for key, n in sorted(found.items())]
    if before:
        detail.append(f"{before} rows in earlier segments")
    return CheckOutcome(check, dt, not rows, severity, observed=float(rows), threshold=0.0, failing_rows=rows,
                        detail="; ".join(detail))


def audit_bronze(written: DataFrame, dts: list[str], new_columns: Mapping[str, list[str]], settings: Settings,
                 untagged: list[str], *, staged: StagedTable | None = None,
                 earlier: Sequence[CheckOutcome] = ()) -> list[CheckOutcome]:
    """Bronze warnings: malformed-line rate, schema drift, and PII in columns not tagged as PII.

    ``written`` is what the write added. With ``staged`` (the versions it belongs to), the malformed rate is
    each whole partition's, from the counts taken while writing (no scan); without, ``written`` is the whole
    partition and is counted here. The PII notice scans ``written``; for a version made of segments the
    earlier segments' verdict (``earlier``: the partition's last ``no_untagged_pii`` outcome) is added to it.
    """
    if staged is None:
        figures = _per_dt(written, {"_rows": F.count(F.lit(1)), "_malformed": F.count("_corrupt_record")})
        totals = {dt: (f["_rows"], f["_malformed"]) for dt, f in figures.items()}
        scanned = {dt: rows for dt, (rows, _) in totals.items()}
    else:
        totals = {dt: (v.row_count, _malformed(written.sparkSession, v)) for dt, v in staged.versions.items()}
        scanned = staged.written
    hits = pii_hits(written, untagged, scanned)
    before = {c.dt: c for c in earlier if c.check == "no_untagged_pii"}
    outcomes = []
    for dt in dts:
        rows, malformed = totals.get(dt, (0, 0))
        rate = malformed / rows if rows else 0.0
        failed = rate > settings.dq_malformed_rate_max
        samples = []
        if failed:  # from the whole partition: the malformed lines may all be in earlier segments
            whole = written if staged is None else read_versions(written.sparkSession, [staged.versions[dt]])
            samples = sample(whole, dt, F.col("_corrupt_record").isNotNull(), ["_source_file"])
        outcomes.append(CheckOutcome(
            "malformed_rate_within_threshold", dt, not failed, WARN, observed=rate,
            threshold=settings.dq_malformed_rate_max, failing_rows=malformed, samples=samples,
        ))
        added = new_columns.get(dt, [])
        outcomes.append(CheckOutcome("no_new_columns", dt, not added, WARN, observed=float(len(added)),
                                     threshold=0.0, detail=", ".join(added)))
        outcomes.append(_pii_outcome("no_untagged_pii", WARN, dt, hits.get(dt, {}), before.get(dt)))
    return outcomes


def _malformed(spark: SparkSession, version: PartitionVersion) -> int:
    """The partition's malformed lines, counted while writing; a version built on one written before those
    counts existed is counted here."""
    if "malformed_lines_total" in version.stats:
        return int(version.stats["malformed_lines_total"])
    return read_versions(spark, [version]).where(F.col("_corrupt_record").isNotNull()).count()


def carried_over(env, table: TableId, dts: list[str]) -> list[CheckOutcome]:
    """Verdicts for partitions a run did not change: their last recorded outcome, or a pass with nothing
    to judge when the partition holds no data yet."""
    latest = {(c.dt, c.check): c for c in env.catalog.latest_checks(table, dts)}
    outcomes = []
    for dt in dts:
        for rule in rules_for(table):
            last = latest.get((dt, rule.name))
            if last is None:
                outcomes.append(CheckOutcome(rule.name, dt, True, rule.severity, detail="no data in this partition"))
            else:
                outcomes.append(CheckOutcome(rule.name, dt, last.passed, last.severity, last.observed, last.threshold,
                                             detail="partition unchanged: last recorded verdict"))
    return outcomes


def rejections(checks) -> dict[str, str]:
    """dt -> why it may not be published, for every partition with a failed blocking check."""
    failed: dict[str, list[str]] = {}
    for check in checks:
        if not check.passed and check.severity == ERROR:
            failed.setdefault(check.dt, []).append(check.summary())
    return {dt: "failed blocking checks: " + " | ".join(reasons) for dt, reasons in failed.items()}


def record(env, table: TableId, checks: list[CheckOutcome]) -> None:
    """Keep the outcomes in the catalog: the metrics dataset and later runs read them from there."""
    from medallion_pipeline.resources.catalog import CheckRecord

    env.catalog.record_checks(
        table, [CheckRecord(c.dt, c.check, c.severity, c.passed, c.observed, c.threshold) for c in checks], env.run_id
    )
