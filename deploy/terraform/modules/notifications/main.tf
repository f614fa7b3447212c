# S3 ObjectCreated notifications of the landing bucket to the queue the landing sensor drains in events mode
# (MEDALLION_LANDING_MODE=events, MEDALLION_LANDING_QUEUE_URL). A message the sensor cannot parse is left on
# the queue and, after max_receive_count receives, moves to the dead-letter queue.

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

data "aws_caller_identity" "current" {}

locals {
  # resources/landing.py: is_log_file accepts LOG_SUFFIXES (.json, .jsonl, .ndjson), each optionally gzipped.
  # None ends with another (the dot counts: ".ndjson" does not end with ".json"), which S3 requires of the
  # suffix filters of one event.
  log_suffixes = [".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz"]
}

resource "aws_sqs_queue" "dlq" {
  name                              = "${var.name}-landing-dlq"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 3600
}

resource "aws_sqs_queue" "landing" {
  name = "${var.name}-landing"
  # Days of notifications survive a stopped daemon; listing mode can also catch up from the bucket itself.
  message_retention_seconds         = 1209600
  visibility_timeout_seconds        = var.visibility_timeout_seconds
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 3600
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.landing.arn]
  })
}

resource "aws_sqs_queue_policy" "landing" {
  queue_url = aws_sqs_queue.landing.id
  policy    = data.aws_iam_policy_document.landing_queue.json
}

data "aws_iam_policy_document" "landing_queue" {
  statement {
    sid = "LandingBucketSendsObjectCreated"
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.landing.arn]
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [var.landing_bucket_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_s3_bucket_notification" "landing" {
  bucket = var.landing_bucket_id

  dynamic "queue" {
    for_each = toset(local.log_suffixes)
    content {
      queue_arn     = aws_sqs_queue.landing.arn
      events        = ["s3:ObjectCreated:*"]
      filter_prefix = "${var.landing_prefix}/"
      filter_suffix = queue.value
    }
  }

  # S3 checks that it may send to the queue when the configuration is written.
  depends_on = [aws_sqs_queue_policy.landing]
}

# A message on the dead-letter queue is a notification the sensor could not parse: on-call hears of it on the
# alert topic (deploy/README.md, "Replay dead-lettered notifications").
resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  alarm_name          = "${var.name}-landing-dlq-not-empty"
  alarm_description   = "Landing notifications moved to the dead-letter queue: inspect, fix, then redrive (deploy/README.md)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
}
