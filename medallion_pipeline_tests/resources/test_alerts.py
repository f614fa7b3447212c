"""Alert sinks over real HTTP: SNS on a moto server, Slack against a local webhook."""

from __future__ import annotations

import json
import logging

import boto3

from medallion_pipeline.resources.alerts import Alert, Alerter, LogSink, SlackSink, SnsSink, build_alerter
from medallion_pipeline.settings import Settings

ALERT = Alert(
    title="[ERROR] check user_id_null_rate_within_threshold failed on silver/app_logs for 2024-01-02",
    severity="ERROR", kind="check_failed", asset="silver/app_logs", partition="2024-01-02",
    fields={"observed": "0.2", "threshold": "0.03", "failing_rows": "361"},
)


def test_sns_alert_reaches_a_subscribed_queue_with_routing_attributes(aws):
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="medallion-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    alerter = build_alerter(Settings(alert_sns_topic_arn=topic))
    assert [s.name for s in alerter.sinks] == ["log", "sns"]
    alerter.send(ALERT)

    [message] = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    envelope = json.loads(message["Body"])
    assert envelope["Subject"] == ALERT.title
    assert envelope["Message"].splitlines()[0] == ALERT.title
    assert "threshold: 0.03" in envelope["Message"].splitlines()
    attributes = {k: v["Value"] for k, v in envelope["MessageAttributes"].items()}
    assert attributes == {"severity": "ERROR", "kind": "check_failed", "asset": "silver/app_logs",
                          "partition": "2024-01-02"}


def test_slack_payload(webhook):
    SlackSink(webhook.url).send(ALERT)
    [payload] = webhook.requests
    assert payload["text"] == f":red_circle: {ALERT.title}"
    assert "*threshold*: 0.03" in payload["blocks"][1]["text"]["text"]


def test_slack_5xx_is_retried_with_backoff(webhook):
    webhook.statuses = [500, 503, 200]
    SlackSink(webhook.url, attempts=4, backoff_s=0.01).send(ALERT)
    assert len(webhook.requests) == 3


def test_slack_that_keeps_failing_is_logged_and_never_raises(webhook, caplog):
    webhook.statuses = [500] * 10
    records = []
    alerter = Alerter([LogSink(logging.getLogger("test.alerts")), SlackSink(webhook.url, attempts=3, backoff_s=0.01)])
    with caplog.at_level(logging.WARNING):
        alerter.send(ALERT)
        records = [r.getMessage() for r in caplog.records]
    assert len(webhook.requests) == 3
    assert any("alert sink slack failed" in r and "500" in r for r in records)
    assert any(r.startswith("ALERT [ERROR] check user_id_null_rate") for r in records)  # the log sink still got it
    assert alerter.failures


def test_min_severity_filters_warnings():
    assert Alerter([], "WARN").wants("WARN") and Alerter([], "WARN").wants("ERROR")
    assert not Alerter([], "ERROR").wants("WARN") and Alerter([], "ERROR").wants("ERROR")


def test_sns_sink_uses_the_topic_region(aws):
    sink = SnsSink("arn:aws:sns:eu-west-1:123456789012:t")
    assert sink.client.meta.region_name == "eu-west-1"
