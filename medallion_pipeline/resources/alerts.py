"""Alerts: one message, several sinks — the Dagster log (always), an SNS topic, a Slack incoming webhook.

A message is for a person first (a title line, then one field per line) and carries structured
attributes (``severity``, ``asset``, ``partition``, ``kind``) for routing: SNS message attributes, so
subscriptions can filter on them. A sink that fails is logged and skipped: alerting never breaks a sensor.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from medallion_pipeline.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    title: str
    severity: str  # ERROR | WARN | INFO (resolved)
    kind: str  # check_failed | check_resolved | run_failed | missing_data | stale_gold | ...
    fields: dict[str, str] = field(default_factory=dict)
    asset: str = ""
    partition: str = ""

    def body(self) -> str:
        lines = [self.title, ""]
        lines += [f"{name}: {value}" for name, value in self.fields.items()]
        return "\n".join(lines)

    def attributes(self) -> dict[str, str]:
        return {k: v for k, v in {"severity": self.severity, "kind": self.kind, "asset": self.asset,
                                  "partition": self.partition}.items() if v}


class AlertSink(ABC):
    name: str

    @abstractmethod
    def send(self, alert: Alert) -> None: ...


class LogSink(AlertSink):
    """Always on: the alert in the log (the Dagster log when a Dagster logger is given)."""

    name = "log"

    def __init__(self, logger: logging.Logger | None = None):
        self.logger = logger or log

    def send(self, alert: Alert) -> None:
        level = logging.ERROR if alert.severity == "ERROR" else logging.WARNING
        self.logger.log(level, "ALERT %s", "\n  ".join([alert.title, *(f"{k}: {v}" for k, v in alert.fields.items())]))


class SnsSink(AlertSink):
    name = "sns"

    def __init__(self, topic_arn: str, client=None):
        import boto3

        self.topic_arn = topic_arn
        # boto3 honours AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_SNS, so tests point it at a local moto server.
        self.client = client or boto3.client("sns", region_name=topic_arn.split(":")[3])

    def send(self, alert: Alert) -> None:
        self.client.publish(
            TopicArn=self.topic_arn,
            Subject=alert.title[:100],
            Message=alert.body(),
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in alert.attributes().items()},
        )


class SlackSink(AlertSink):
    """A Slack incoming webhook; 429 and 5xx answers are retried with exponential backoff."""

    name = "slack"

    def __init__(self, webhook_url: str, attempts: int = 4, backoff_s: float = 0.5, timeout_s: float = 10):
        self.webhook_url, self.attempts, self.backoff_s, self.timeout_s = webhook_url, attempts, backoff_s, timeout_s

    def payload(self, alert: Alert) -> dict:
        icon = {"ERROR": ":red_circle:", "WARN": ":warning:"}.get(alert.severity, ":white_check_mark:")
        fields = "\n".join(f"*{name}*: {value}" for name, value in alert.fields.items())
        return {
            "text": f"{icon} {alert.title}",
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} *{alert.title}*"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": fields or "-"}},
            ],
        }

    def send(self, alert: Alert) -> None:
        data = json.dumps(self.payload(alert)).encode()
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(self.webhook_url, data=data, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s):
                    return
            except urllib.error.HTTPError as exc:
                if exc.code != 429 and exc.code < 500 or attempt == self.attempts:
                    raise
            except (urllib.error.URLError, TimeoutError):
                if attempt == self.attempts:
                    raise
            time.sleep(self.backoff_s * 2 ** (attempt - 1))


@dataclass
class Alerter:
    sinks: list[AlertSink]
    min_severity: str = "WARN"
    failures: list[str] = field(default_factory=list)

    def wants(self, severity: str) -> bool:
        """Check alerts below the minimum severity are dropped (resolutions follow their incident)."""
        return not (self.min_severity == "ERROR" and severity == "WARN")

    def send(self, alert: Alert) -> None:
        for sink in self.sinks:
            try:
                sink.send(alert)
            except Exception as exc:  # noqa: BLE001 - one broken sink must not stop the others or the sensor
                message = f"alert sink {sink.name} failed for {alert.title!r}: {exc}"
                self.failures.append(message)
                log.error(message)


def build_alerter(settings: Settings, logger: logging.Logger | None = None) -> Alerter:
    """The log sink always, plus SNS and Slack when their settings are present."""
    sinks: list[AlertSink] = [LogSink(logger)]
    if settings.alert_sns_topic_arn:
        sinks.append(SnsSink(settings.alert_sns_topic_arn))
    if settings.alert_slack_webhook_url:
        sinks.append(SlackSink(settings.alert_slack_webhook_url))
    return Alerter(sinks, settings.alert_min_severity)
