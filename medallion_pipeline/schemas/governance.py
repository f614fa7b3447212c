"""The data dictionary: per table and column, the PII class and the treatment the pipeline applies.

Nothing here restates a column list or a PII tag that already exists. The columns come from the Pandera
models and the layers' column constants; which columns are PII comes from ``schemas/bronze.py`` and
``schemas/silver.py`` (``PII_COLUMNS``) and from silver's free-text rule (``transforms/silver.py``
``free_text_columns``, tagged by ``jobs/silver.py`` except ``path`` and ``user_agent``). ``pii_class`` is
"not none" exactly where the catalog records ``pii=True`` (and so Glue ``pii=true``): bronze's untagged
string columns stay untagged on purpose, because bronze's ``no_untagged_pii`` check scans exactly those.

A class describes what the source field is (``direct``: identifies a person by itself; ``pseudonymous``: a
stable identifier; ``free-text``: may hold anything); the treatment says what the table holds of it.
``audit_glue`` checks a Glue database against the dictionary (``medallion governance --glue-database``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from medallion_pipeline.schemas import bronze, silver
from medallion_pipeline.schemas.contract import contract_columns
from medallion_pipeline.schemas.gold import DailyKpis, EndpointStats, Funnel, Sessions
from medallion_pipeline.tables import (
    ALL_TABLES,
    BRONZE_APP_LOGS,
    GLUE_TABLES,
    GOLD_DAILY_KPIS,
    GOLD_ENDPOINT_STATS,
    GOLD_FUNNEL,
    GOLD_SESSIONS,
    GOLD_TABLES,
    METRICS_DQ,
    SILVER_APP_LOGS,
    SILVER_QUARANTINE,
    TableId,
)

DIRECT, PSEUDONYMOUS, FREE_TEXT, NONE = "direct", "pseudonymous", "free-text", "none"
HMAC, MASKED, JOIN_KEY, BRONZE_ONLY = "hmac", "masked", "kept: join key", "raw: bronze only"
TREATMENTS = (HMAC, MASKED, JOIN_KEY, BRONZE_ONLY, NONE)
PARTITION_KEY = "dt"  # every table's partition key: a day, not personal data, not a catalog column

SOURCE_CLASS = {"email": DIRECT, "client_ip": DIRECT, "user_id": PSEUDONYMOUS}  # other tagged columns: free text
# silver's free-text masking (transforms/silver.py free_text_columns); path and user_agent are masked but not
# tagged (jobs/silver.py): they are not personal data, only what leaks into them is.
MASKED_FREE_TEXT = ("message", "path", "user_agent", bronze.RESCUED, silver.EVENT_TS_RAW)
MASKED_UNTAGGED = ("path", "user_agent")
LINEAGE_TYPES = {bronze.RESCUED: "string", bronze.CORRUPT: "string", bronze.SOURCE_FILE: "string",
                 bronze.INGESTED_AT: "timestamp"}
GOLD_MODELS = {GOLD_DAILY_KPIS: DailyKpis, GOLD_ENDPOINT_STATS: EndpointStats, GOLD_SESSIONS: Sessions,
               GOLD_FUNNEL: Funnel}
METRICS_COLUMNS = {"layer": "string", "table_name": "string", "metric": "string", "value": "double",
                   "computed_at": "timestamp", "run_id": "string"}  # jobs/metrics.py has no Pandera model

NOTE_RAW = "raw as received; untagged, scanned by bronze's no_untagged_pii check; masked from silver on"
NOTE_MASKED_UNTAGGED = "not personal data; emails, IPs, card numbers, keys and tokens in it are masked"
NOTE_FREE_TEXT = "free text; emails, IPs, card numbers, keys and tokens masked"
NOTE_NEW_BRONZE = "a field that arrived after v1: " + NOTE_RAW
NOTE_NEW_SILVER = "a field that arrived after v1, masked as free text"
_SILVER_NOTES = {
    **{name: c.description for name, c in silver.SilverAppLogs.to_schema().columns.items() if c.description},
    silver.QUARANTINE_REASON: "the first row-level rule the row broke",
}


@dataclass(frozen=True)
class ColumnPolicy:
    table: TableId
    column: str
    type: str
    pii_class: str
    treatment: str
    note: str = ""

    @property
    def is_pii(self) -> bool:
        """Tagged PII in the catalog, the Dagster column schema and Glue."""
        return self.pii_class != NONE


def _silver_policy(table: TableId, column: str, kind: str) -> ColumnPolicy:
    if column in silver.PII_COLUMNS or (column in MASKED_FREE_TEXT and column not in MASKED_UNTAGGED):
        pii_class = SOURCE_CLASS.get(column, FREE_TEXT)
        treatment = {DIRECT: HMAC if column == "client_ip" else MASKED, PSEUDONYMOUS: JOIN_KEY}.get(pii_class, MASKED)
        return ColumnPolicy(table, column, kind, pii_class, treatment, silver.PII_COLUMNS.get(column, NOTE_FREE_TEXT))
    if column in MASKED_UNTAGGED:
        return ColumnPolicy(table, column, kind, NONE, MASKED, NOTE_MASKED_UNTAGGED)
    return ColumnPolicy(table, column, kind, NONE, NONE, _SILVER_NOTES.get(column, ""))


def _bronze_policy(column: str, kind: str) -> ColumnPolicy:
    """Raw values silver masks, pseudonymizes or drops are ``raw: bronze only``; the join key is kept."""
    downstream = _silver_policy(SILVER_APP_LOGS, column, kind)
    if column in bronze.PII_COLUMNS:
        pii_class = SOURCE_CLASS.get(column, FREE_TEXT)
        treatment = JOIN_KEY if pii_class == PSEUDONYMOUS else BRONZE_ONLY
        return ColumnPolicy(BRONZE_APP_LOGS, column, kind, pii_class, treatment, bronze.PII_COLUMNS[column])
    if downstream.treatment in (HMAC, MASKED):
        return ColumnPolicy(BRONZE_APP_LOGS, column, kind, NONE, BRONZE_ONLY, NOTE_RAW)
    return ColumnPolicy(BRONZE_APP_LOGS, column, kind, NONE, NONE)


def _gold_policy(table: TableId, column: str, kind: str) -> ColumnPolicy:
    """A dimension carried from silver (a string of the same name) keeps silver's class and treatment."""
    if kind == "string" and column in silver.CONTRACT_COLUMNS:
        carried = _silver_policy(table, column, kind)
        return ColumnPolicy(table, column, kind, carried.pii_class, carried.treatment,
                            f"from silver: {carried.note}" if carried.note else "")
    return ColumnPolicy(table, column, kind, NONE, NONE)


def table_columns(table: TableId) -> dict[str, str]:
    """Column -> Spark type of what the pipeline always writes to ``table``, in its order (``dt`` aside)."""
    lineage = {c: LINEAGE_TYPES[c] for c in silver.LINEAGE_COLUMNS}
    if table == BRONZE_APP_LOGS:
        return {**bronze.TYPED_FIELDS, **{c: LINEAGE_TYPES[c] for c in bronze.METADATA_COLUMNS}}
    if table == SILVER_APP_LOGS:
        return {**silver.CONTRACT_COLUMNS, **lineage}
    if table == SILVER_QUARANTINE:
        return {silver.QUARANTINE_REASON: "string", **silver.CONTRACT_COLUMNS, silver.EVENT_TS_RAW: "string",
                **lineage}
    if table in GOLD_TABLES:
        return contract_columns(GOLD_MODELS[table].to_schema())
    if table == METRICS_DQ:
        return dict(METRICS_COLUMNS)
    raise KeyError(f"no column source for {table}: add it to schemas/governance.py")


def policy_for(table: TableId, column: str, kind: str = "string") -> ColumnPolicy | None:
    """The policy of any column of ``table``, including fields that arrived after v1; None if none applies."""
    declared = table_columns(table)
    if column in declared:
        kind = declared[column]
    elif table not in (BRONZE_APP_LOGS, SILVER_APP_LOGS, SILVER_QUARANTINE):
        return None  # gold and metrics do not evolve: an unknown column has not been classified
    elif table == BRONZE_APP_LOGS:
        return ColumnPolicy(table, column, kind, NONE, BRONZE_ONLY if kind == "string" else NONE, NOTE_NEW_BRONZE)
    else:
        pii_class, treatment = (FREE_TEXT, MASKED) if kind == "string" else (NONE, NONE)
        return ColumnPolicy(table, column, kind, pii_class, treatment, NOTE_NEW_SILVER)
    if table == BRONZE_APP_LOGS:
        return _bronze_policy(column, kind)
    if table in (SILVER_APP_LOGS, SILVER_QUARANTINE):
        return _silver_policy(table, column, kind)
    return _gold_policy(table, column, kind)


def dictionary(tables: Iterable[TableId] = ALL_TABLES) -> list[ColumnPolicy]:
    """One policy per column the pipeline always writes, table by table in ``ALL_TABLES`` order."""
    return [policy_for(table, column) for table in tables for column in table_columns(table)]


def render_markdown() -> str:
    """The README's data dictionary (between its markers); a test keeps the README equal to it."""
    lines = [
        "Generated from `medallion_pipeline/schemas/governance.py` by `medallion governance --markdown`; a test",
        "keeps this section equal to it.",
        "",
        "- **PII class**: `direct` identifies a person by itself, `pseudonymous` is a stable identifier,",
        "  `free-text` may hold anything, `none` is not personal data.",
        "- **Treatment**: `hmac` (keyed HMAC-SHA256 pseudonym), `masked`, `kept: join key`, `raw: bronze only` (as",
        "  received; masked, pseudonymized or dropped from silver on), `none`.",
        "- **Tags**: every column whose class is not `none` is tagged `pii` in the catalog, the Dagster column",
        "  schema and Glue (`Parameters.pii = \"true\"`). `medallion governance --glue-database DB` exits 1 naming",
        "  any such column untagged or missing in Glue, and any Glue column no policy covers. A table absent from",
        "  Glue is reported, not an error: nothing of it has been published, so Athena has nothing to read. Bronze",
        "  is not projected to Glue at all (raw PII, and its partitions are made of segments), so it is not audited.",
        f"- **New fields**: a field that arrives after v1 is `{NONE}` / `{BRONZE_ONLY}` in bronze (untagged:",
        f"  `no_untagged_pii` scans it) and `{FREE_TEXT}` / `{MASKED}` in silver and quarantine. Every table is",
        f"  partitioned by `{PARTITION_KEY}` (the day; not personal data).",
        "",
        "| table | column | type | PII class | treatment | note |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| `{p.table.sql_name}` | `{p.column}` | {p.type} | {p.pii_class} | {p.treatment} | {p.note} |"
              for p in dictionary()]
    return "\n".join(lines) + "\n"


@dataclass
class GlueAudit:
    """A Glue database against the dictionary: what Glue has per column, and what breaks the policy."""

    database: str
    rows: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)  # ... + Glue's pii parameter
    untagged: list[str] = field(default_factory=list)  # PII columns not tagged pii=true, or missing
    unclassified: list[str] = field(default_factory=list)  # Glue columns no policy covers
    absent_tables: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.untagged and not self.unclassified


def audit_table(audit: GlueAudit, table: TableId, glue_table: dict[str, Any] | None) -> None:
    """Adds one table to ``audit``; ``glue_table`` is ``get_table(...)["Table"]`` or None if it is absent."""
    if glue_table is None:
        audit.absent_tables.append(table.sql_name)
        audit.rows += [(table.sql_name, p.column, p.type, p.pii_class, p.treatment, "(no table)")
                       for p in dictionary([table])]
        return
    glue = {c["Name"].lower(): c for c in glue_table.get("StorageDescriptor", {}).get("Columns", [])}
    declared = list(table_columns(table))
    for name in [*declared, *(n for n in glue if n not in declared)]:
        column = glue.get(name)
        policy = policy_for(table, name, column["Type"] if column else "string")
        tag = (column.get("Parameters") or {}).get("pii", "(no parameter)") if column else "(missing)"
        qualified = f"{table.sql_name}.{name}"
        if policy is None:
            audit.unclassified.append(qualified)
            audit.rows.append((table.sql_name, name, column["Type"], "-", "-", tag))
            continue
        if policy.is_pii and tag != "true":
            audit.untagged.append(f"{qualified} (pii={tag})" if column else f"{qualified} (missing in Glue)")
        audit.rows.append((table.sql_name, name, policy.type, policy.pii_class, policy.treatment, tag))


def audit_glue(database: str, client: Any = None) -> GlueAudit:
    """Reads every table of ``GLUE_TABLES`` (bronze is not projected) from the Glue database; raises LookupError
    if the database is absent."""
    if client is None:
        import boto3

        client = boto3.client("glue")
    try:
        client.get_database(Name=database)
    except client.exceptions.EntityNotFoundException:
        raise LookupError(f"Glue database {database!r} does not exist") from None
    audit = GlueAudit(database)
    for table in GLUE_TABLES:
        try:
            glue_table = client.get_table(DatabaseName=database, Name=table.sql_name)["Table"]
        except client.exceptions.EntityNotFoundException:
            glue_table = None
        audit_table(audit, table, glue_table)
    return audit
