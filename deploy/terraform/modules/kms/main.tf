# One customer managed key for the data plane: buckets, queues, topic, state table, secrets and EMR logs.
# Who may use it is decided by IAM (the account statement delegates to IAM policies) and by the services
# below, each limited to this account.

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id     = data.aws_caller_identity.current.account_id
  account_root   = "arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root"
  log_group_arn  = "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${local.account_id}:log-group:${var.emr_log_group_name}"
  logs_principal = "logs.${data.aws_region.current.name}.amazonaws.com"
}

resource "aws_kms_key" "this" {
  description             = "${var.name} data plane: S3, SQS, SNS, DynamoDB, Secrets Manager, EMR Serverless logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

# In a key policy, Resource "*" means this key and nothing else.
data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:A key policy's Resource is always "*", meaning this key; key administration is limited to this account.
  #checkov:skip=CKV_AWS_111:A key policy's Resource is always "*", meaning this key; each service statement is conditioned on this account or log group.
  #checkov:skip=CKV_AWS_356:A key policy's Resource is always "*", meaning this key (KMS accepts nothing else there).
  # The console's key-administrator list, not kms:*: the account keeps control of the key (no lockout)
  # while usage below is a separate, explicit grant.
  statement {
    sid = "AccountAdministersKey"
    principals {
      type        = "AWS"
      identifiers = [local.account_root]
    }
    actions = [
      "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*",
      "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource",
      "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand",
    ]
    resources = ["*"]
  }

  # Lets IAM policies of this account grant use of the key (the roles in modules/iam do, per service).
  statement {
    sid = "AccountUsesKeyThroughIam"
    principals {
      type        = "AWS"
      identifiers = [local.account_root]
    }
    actions = [
      "kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
      "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey",
    ]
    resources = ["*"]
  }

  # S3 event notifications to a KMS-encrypted queue are encrypted by S3 itself, not by a caller's role.
  statement {
    sid = "S3SendsEventsToEncryptedQueue"
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  # Budgets publishes its alerts to the encrypted alert topic as a service.
  statement {
    sid = "BudgetsPublishesToEncryptedTopic"
    principals {
      type        = "Service"
      identifiers = ["budgets.amazonaws.com"]
    }
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  # CloudWatch alarms (the dead-letter queue's) publish to the encrypted alert topic as a service.
  statement {
    sid = "CloudWatchPublishesToEncryptedTopic"
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  # CloudWatch Logs encrypts the EMR log group with the key; only for that log group.
  statement {
    sid = "LogsEncryptsEmrLogGroup"
    principals {
      type        = "Service"
      identifiers = [local.logs_principal]
    }
    actions = [
      "kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
      "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey",
    ]
    resources = ["*"]
    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = [local.log_group_arn]
    }
  }
}
