"""One alert per incident, with time injected: checks, missing landing data, stale gold."""

from __future__ import annotations

from datetime import datetime, timezone

from medallion_pipeline.incidents import CheckVerdict, check_alerts, missing_data_alert, stale_gold_alert


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def verdict(passed: bool, severity="ERROR", dt="2024-01-02", run="r1") -> CheckVerdict:
    return CheckVerdict("silver/app_logs", "user_id_null_rate_within_threshold", dt, passed, severity, run,
                        0.2 if not passed else 0.01, 0.03, 361 if not passed else 0, "361 of 1924")


def every(_severity):
    return True


def url(run_id):
    return f"http://dagster/runs/{run_id}"


def test_repeated_failures_alert_once_and_a_pass_resolves_once():
    incidents: dict[str, str] = {}
    sent = []
    for tick in range(10):
        alerts, incidents = check_alerts([verdict(False, run=f"r{tick}")], incidents, every, url)
        sent += alerts
    assert len(sent) == 1
    [alert] = sent
    assert alert.fields["observed"] == "0.2" and alert.fields["threshold"] == "0.03"
    assert alert.fields["run"] == "http://dagster/runs/r0" and alert.attributes()["partition"] == "2024-01-02"
    resolved, incidents = check_alerts([verdict(True, run="r11")], incidents, every, url)
    assert [a.kind for a in resolved] == ["check_resolved"] and incidents == {}
    again, _ = check_alerts([verdict(True, run="r12")], incidents, every, url)
    assert again == []


def test_each_partition_is_its_own_incident_and_warn_can_be_filtered():
    alerts, incidents = check_alerts([verdict(False, dt="2024-01-02"), verdict(False, dt="2024-01-03")], {}, every, url)
    assert [a.partition for a in alerts] == ["2024-01-02", "2024-01-03"]
    warn_only, _ = check_alerts([verdict(False, severity="WARN")], {}, lambda s: s == "ERROR", url)
    assert warn_only == []


def test_missing_data_fires_at_the_deadline_and_not_before():
    files: dict[str, bool] = {}
    alerts, incidents = missing_data_alert(lambda dt: files.get(dt, False), at("2024-01-11T01:59:59"), 2, {})
    assert alerts == []
    alerts, incidents = missing_data_alert(lambda dt: files.get(dt, False), at("2024-01-11T02:00:00"), 2, incidents)
    assert [(a.kind, a.partition) for a in alerts] == [("missing_data", "2024-01-10")]
    alerts, incidents = missing_data_alert(lambda dt: files.get(dt, False), at("2024-01-11T02:05:00"), 2, incidents)
    assert alerts == []
    files["2024-01-10"] = True
    alerts, incidents = missing_data_alert(lambda dt: files.get(dt, False), at("2024-01-11T03:00:00"), 2, incidents)
    assert [a.kind for a in alerts] == ["missing_data_resolved"] and incidents == {}


def test_data_present_by_the_deadline_never_alerts():
    alerts, _ = missing_data_alert(lambda dt: True, at("2024-01-11T06:00:00"), 2, {})
    assert alerts == []


def test_stale_gold_fires_after_the_max_age_and_resolves_on_a_newer_partition():
    # gold for 2024-01-10 covers a day that ended 2024-01-11T00:00Z; 36 h later is 2024-01-12T12:00Z.
    alerts, incidents = stale_gold_alert("2024-01-10", at("2024-01-12T11:59:00"), 36, {})
    assert alerts == []
    alerts, incidents = stale_gold_alert("2024-01-10", at("2024-01-12T12:01:00"), 36, incidents)
    assert [(a.kind, a.partition) for a in alerts] == [("stale_gold", "2024-01-10")]
    assert stale_gold_alert("2024-01-10", at("2024-01-13T00:00:00"), 36, incidents)[0] == []
    alerts, incidents = stale_gold_alert("2024-01-12", at("2024-01-13T01:00:00"), 36, incidents)
    assert [a.kind for a in alerts] == ["stale_gold_resolved"] and incidents == {}


def test_no_gold_at_all_is_not_stale():
    assert stale_gold_alert(None, at("2024-01-13T00:00:00"), 36, {}) == ([], {})
