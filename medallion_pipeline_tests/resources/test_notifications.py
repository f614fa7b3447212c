"""S3 event notifications as the events-mode sensor reads them: direct, through SNS, and the bad ones."""

from __future__ import annotations

import json

import pytest

from medallion_pipeline.resources.notifications import NotificationError, ObjectCreated, parse_s3_notification


def s3_event(key: str, name: str = "ObjectCreated:Put", size: int = 10, etag: str = "abc") -> dict:
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": name,
        "s3": {"bucket": {"name": "landing"}, "object": {"key": key, "size": size, "eTag": etag}},
    }]}


def test_direct_notification_url_decodes_the_key():
    body = json.dumps(s3_event("logs%2Fweb%2Fdt%3D2024-01-01%2Fa+b%2Bc.json"))
    assert parse_s3_notification(body) == [ObjectCreated("landing", "logs/web/dt=2024-01-01/a b+c.json", 10, "abc")]


def test_sns_envelope_is_unwrapped():
    body = json.dumps({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t",
                       "Message": json.dumps(s3_event("web/dt=2024-01-01/x.json", etag='"q-2"'))})
    assert parse_s3_notification(body) == [ObjectCreated("landing", "web/dt=2024-01-01/x.json", 10, "q-2")]


def test_test_events_and_other_event_types_announce_nothing():
    assert parse_s3_notification(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})) == []
    assert parse_s3_notification(json.dumps(s3_event("web/dt=2024-01-01/x.json", "ObjectRemoved:Delete"))) == []


@pytest.mark.parametrize("body", [
    "not json", "[]", json.dumps({"hello": 1}), json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}),
    json.dumps({"Type": "Notification", "Message": "{truncated"}),
])
def test_anything_else_is_a_notification_error(body):
    with pytest.raises(NotificationError):
        parse_s3_notification(body)
