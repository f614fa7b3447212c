"""The datasets the pipeline publishes, named once.

A table is addressed three ways: its Dagster asset key (``["silver", "app_logs"]``), its catalog name
(``silver.app_logs``) and its SQL name for ad-hoc queries (``silver_app_logs``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class TableId:
    layer: str
    name: str

    @property
    def qualified(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def sql_name(self) -> str:
        return f"{self.layer}_{self.name}"

    @property
    def asset_path(self) -> list[str]:
        return [self.layer, self.name]

    @classmethod
    def parse(cls, text: str) -> TableId:
        """Accepts ``silver.app_logs``, ``silver_app_logs`` or ``silver/app_logs``."""
        for sep in (".", "/", "_"):
            if sep in text:
                layer, name = text.split(sep, 1)
                table = cls(layer, name)
                if table in ALL_TABLES:
                    return table
        raise KeyError(f"unknown table {text!r}; known: {', '.join(t.qualified for t in ALL_TABLES)}")

    def __str__(self) -> str:
        return self.qualified


BRONZE_APP_LOGS = TableId("bronze", "app_logs")
SILVER_APP_LOGS = TableId("silver", "app_logs")
SILVER_QUARANTINE = TableId("silver", "quarantine")
GOLD_DAILY_KPIS = TableId("gold", "daily_kpis")
GOLD_ENDPOINT_STATS = TableId("gold", "endpoint_stats")
GOLD_SESSIONS = TableId("gold", "sessions")
GOLD_FUNNEL = TableId("gold", "funnel")
METRICS_DQ = TableId("metrics", "dq")

GOLD_TABLES = (GOLD_DAILY_KPIS, GOLD_ENDPOINT_STATS, GOLD_SESSIONS, GOLD_FUNNEL)
ALL_TABLES = (BRONZE_APP_LOGS, SILVER_APP_LOGS, SILVER_QUARANTINE, *GOLD_TABLES, METRICS_DQ)
# What the AWS catalog projects to Glue for Athena: every table but bronze (raw PII; a bronze partition is made
# of segments, which one Glue partition location cannot name — see resources/catalog/dynamodb.py).
GLUE_TABLES = tuple(t for t in ALL_TABLES if t != BRONZE_APP_LOGS)
