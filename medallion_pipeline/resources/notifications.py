"""S3 ``ObjectCreated`` notifications from a queue: the landing sensor's event mode.

``NotificationQueue`` is what the sensor depends on; ``SqsNotificationQueue`` is the boto3 implementation.
``parse_s3_notification`` reads a message body sent by S3 straight to SQS or through SNS (the envelope's
``Message``), including S3's ``s3:TestEvent``; anything else is a ``NotificationError`` and the message
stays on the queue, for its dead-letter redrive.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from urllib.parse import unquote_plus


class NotificationError(ValueError):
    """A message that is not an S3 event notification."""


@dataclass(frozen=True)
class QueueMessage:
    id: str
    receipt: str
    body: str


@dataclass(frozen=True)
class ObjectCreated:
    bucket: str
    key: str  # URL-decoded
    size: int
    etag: str


def parse_s3_notification(body: str) -> list[ObjectCreated]:
    """The objects a notification announces as created (none for a test event or another event type)."""
    try:
        message = json.loads(body)
        if isinstance(message, dict) and message.get("Type") == "Notification" and "Message" in message:
            message = json.loads(message["Message"])  # S3 -> SNS -> SQS without raw message delivery
    except (TypeError, ValueError) as exc:
        raise NotificationError(f"not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise NotificationError("not a JSON object")
    if message.get("Event") == "s3:TestEvent":
        return []
    records = message.get("Records")
    if not isinstance(records, list):
        raise NotificationError("no Records")
    created = []
    for record in records:
        try:
            if not record["eventName"].startswith("ObjectCreated:"):
                continue
            obj = record["s3"]["object"]
            created.append(ObjectCreated(
                bucket=record["s3"]["bucket"]["name"], key=unquote_plus(obj["key"]),
                size=int(obj.get("size", 0)), etag=str(obj.get("eTag", "")).strip('"'),
            ))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise NotificationError(f"malformed S3 record: {exc!r}") from exc
    return created


class NotificationQueue(ABC):
    @abstractmethod
    def receive(self, max_messages: int) -> list[QueueMessage]:
        """Up to ``max_messages`` messages (at most 10), hidden from other consumers for the queue's
        visibility timeout (set it above the sensor's tick budget)."""

    @abstractmethod
    def delete(self, messages: list[QueueMessage]) -> int:
        """Delete messages that were handled; returns how many the queue confirmed."""


class SqsNotificationQueue(NotificationQueue):
    def __init__(self, queue_url: str, client=None):
        import boto3

        self.queue_url = queue_url
        self.client = client or boto3.client("sqs")

    def receive(self, max_messages):
        response = self.client.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=min(max_messages, 10), WaitTimeSeconds=0,
        )
        return [QueueMessage(m["MessageId"], m["ReceiptHandle"], m["Body"]) for m in response.get("Messages", [])]

    def delete(self, messages):
        deleted = 0
        for start in range(0, len(messages), 10):
            chunk = messages[start:start + 10]
            response = self.client.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m.receipt} for i, m in enumerate(chunk)],
            )
            # A failed delete is only a re-delivery later, which the sensor recognises.
            deleted += len(response.get("Successful", []))
        return deleted
