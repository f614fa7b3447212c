"""Which alerts to send: incidents opened and resolved, one alert each, however often they are seen.

Pure functions over plain values (verdicts, file listings, catalog partitions, the current time) and the
set of open incidents, so every rule is tested with injected time and no Dagster daemon.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from medallion_pipeline.resources.alerts import Alert


@dataclass(frozen=True)
class CheckVerdict:
    """One check's outcome for one partition, as read from a Dagster check evaluation."""

    asset: str
    check: str
    partition: str
    passed: bool
    severity: str
    run_id: str
    observed: float | None = None
    threshold: float | None = None
    failing_rows: int = 0
    detail: str = ""

    @property
    def incident(self) -> str:
        return f"check:{self.asset}:{self.check}:{self.partition}"


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def check_alerts(verdicts: list[CheckVerdict], open_incidents: dict[str, str], wants, run_url
                 ) -> tuple[list[Alert], dict[str, str]]:
    """A failed verdict opens an incident (one alert); a later pass of the same check and partition resolves
    it (one "resolved" alert). Re-evaluations of an open incident send nothing. ``wants(severity)`` filters
    by the minimum severity; ``run_url(run_id)`` links to the run."""
    open_incidents = dict(open_incidents)
    alerts = []
    for v in verdicts:
        if not v.passed and v.incident not in open_incidents and wants(v.severity):
            open_incidents[v.incident] = v.run_id
            alerts.append(Alert(
                title=f"[{v.severity}] check {v.check} failed on {v.asset} for {v.partition}",
                severity=v.severity, kind="check_failed", asset=v.asset, partition=v.partition,
                fields={"asset": v.asset, "partition": v.partition, "check": v.check, "severity": v.severity,
                        "observed": _figure(v.observed), "threshold": _figure(v.threshold),
                        "failing_rows": str(v.failing_rows), "detail": v.detail or "-", "run": run_url(v.run_id)},
            ))
        elif v.passed and v.incident in open_incidents:
            open_incidents.pop(v.incident)
            alerts.append(Alert(
                title=f"[RESOLVED] check {v.check} passes again on {v.asset} for {v.partition}",
                severity="INFO", kind="check_resolved", asset=v.asset, partition=v.partition,
                fields={"asset": v.asset, "partition": v.partition, "check": v.check,
                        "observed": _figure(v.observed), "run": run_url(v.run_id)},
            ))
    return alerts, open_incidents


def missing_data_alert(day_has_files, now: datetime, deadline_hours: float, open_incidents: dict[str, str]
                       ) -> tuple[list[Alert], dict[str, str]]:
    """No landing file for yesterday's partition by ``deadline_hours`` after midnight UTC: one alert;
    "resolved" once files arrive. ``day_has_files(dt)`` asks the landing store."""
    open_incidents = dict(open_incidents)
    yesterday = (now.astimezone(timezone.utc).date() - timedelta(days=1)).isoformat()
    deadline = datetime.combine(now.astimezone(timezone.utc).date(), time(), timezone.utc) + timedelta(hours=deadline_hours)
    alerts = []
    key = f"missing:{yesterday}"
    if now >= deadline and key not in open_incidents and not day_has_files(yesterday):
        open_incidents[key] = now.isoformat()
        alerts.append(Alert(
            title=f"[ERROR] no landing data for {yesterday}", severity="ERROR", kind="missing_data",
            partition=yesterday,
            fields={"partition": yesterday, "deadline": deadline.isoformat(), "checked_at": now.isoformat()},
        ))
    for incident in [k for k in open_incidents if k.startswith("missing:")]:
        day = incident.split(":", 1)[1]
        if day_has_files(day):
            open_incidents.pop(incident)
            alerts.append(Alert(title=f"[RESOLVED] landing data arrived for {day}", severity="INFO",
                                kind="missing_data_resolved", partition=day, fields={"partition": day}))
    return alerts, open_incidents


def stale_gold_alert(newest_gold_dt: str | None, now: datetime, max_age_hours: float,
                     open_incidents: dict[str, str], asset: str = "gold/daily_kpis") -> tuple[list[Alert], dict[str, str]]:
    """The newest published gold partition's day ended more than ``max_age_hours`` ago: one alert per
    newest partition; "resolved" when a newer one is published."""
    open_incidents = dict(open_incidents)
    alerts = []
    for incident in [k for k in open_incidents if k.startswith("stale:")]:
        if newest_gold_dt and newest_gold_dt > incident.split(":", 1)[1]:
            open_incidents.pop(incident)
            alerts.append(Alert(title=f"[RESOLVED] {asset} is fresh again (newest {newest_gold_dt})", severity="INFO",
                                kind="stale_gold_resolved", asset=asset, partition=newest_gold_dt,
                                fields={"asset": asset, "newest_partition": newest_gold_dt}))
    if newest_gold_dt is None:
        return alerts, open_incidents
    ended = datetime.combine(date.fromisoformat(newest_gold_dt) + timedelta(days=1), time(), timezone.utc)
    age_hours = (now - ended).total_seconds() / 3600
    key = f"stale:{newest_gold_dt}"
    if age_hours > max_age_hours and key not in open_incidents:
        open_incidents[key] = now.isoformat()
        alerts.append(Alert(
            title=f"[ERROR] {asset} is stale: newest partition {newest_gold_dt}", severity="ERROR", kind="stale_gold",
            asset=asset, partition=newest_gold_dt,
            fields={"asset": asset, "newest_partition": newest_gold_dt, "age_hours": f"{age_hours:.1f}",
                    "max_age_hours": f"{max_age_hours:g}"},
        ))
    return alerts, open_incidents
