# The two roles of the pipeline, each granted what its side calls (README "IAM permissions", derived from the
# boto3 calls in medallion_pipeline/ and dagster-aws's Pipes client) on the resources of this deployment only.
# No statement grants a wildcard action or a "*" resource.

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
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  glue_arn_prefix = "arn:${local.partition}:glue:${local.region}:${local.account_id}"
  glue_catalog    = ["${local.glue_arn_prefix}:catalog", "${local.glue_arn_prefix}:database/${var.glue_database_name}"]
  glue_tables     = "${local.glue_arn_prefix}:table/${var.glue_database_name}/*"

  landing_objects = "${var.landing_bucket_arn}/${var.landing_prefix}/*"
  lake_objects    = "${var.lake_bucket_arn}/${var.lake_prefix}/*"
  bundle_objects  = "${var.lake_bucket_arn}/${var.job_bundle_prefix}/*"
  compute_logs    = "${var.lake_bucket_arn}/${var.compute_logs_prefix}/*"

  # Log-stream level actions are authorized on the group's ARN with ":*" (its streams).
  emr_log_group = [var.emr_log_group_arn, "${var.emr_log_group_arn}:*"]

  # The key is shared by every store; each role may use it only through the services it calls.
  kms_via = { for service in ["s3", "sqs", "sns", "dynamodb", "secretsmanager"] : service => "${service}.${local.region}.amazonaws.com" }
}

# -- EMR Serverless job runtime role: the layer jobs, their publishes and the Glue projection ---------------

resource "aws_iam_role" "emr_job" {
  name               = "${var.name}-emr-job"
  description        = "medallion_pipeline layer jobs on EMR Serverless (MEDALLION_EMR_EXECUTION_ROLE_ARN)"
  assume_role_policy = data.aws_iam_policy_document.emr_job_trust.json
}

data "aws_iam_policy_document" "emr_job_trust" {
  statement {
    sid     = "EmrServerlessRunsJobsOfThisApplication"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["emr-serverless.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [var.emr_application_arn]
    }
  }
}

resource "aws_iam_role_policy" "emr_job" {
  name   = "medallion-layer-jobs"
  role   = aws_iam_role.emr_job.id
  policy = data.aws_iam_policy_document.emr_job.json
}

data "aws_iam_policy_document" "emr_job" {
  # entrypoint.py, medallion_pipeline.zip and pyenv.tar.gz, fetched by the driver and the executors.
  statement {
    sid       = "ReadJobBundle"
    actions   = ["s3:GetObject"]
    resources = [local.bundle_objects]
  }

  # Bronze lists a day's files (S3LandingStore) and reads them (Spark, and boto3 for the gzip check).
  statement {
    sid       = "ListLanding"
    actions   = ["s3:ListBucket"]
    resources = [var.landing_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [var.landing_prefix, "${var.landing_prefix}/*"]
    }
  }

  statement {
    sid       = "ReadLanding"
    actions   = ["s3:GetObject"]
    resources = [local.landing_objects]
  }

  statement {
    sid       = "ListLake"
    actions   = ["s3:ListBucket"]
    resources = [var.lake_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [var.lake_prefix, "${var.lake_prefix}/*"]
    }
  }

  # The only writes this role has: new version directories (Spark's committer deletes its temporary files,
  # and a failed multipart upload is aborted), below the lake prefix and nowhere else.
  statement {
    sid = "ReadWriteLake"
    actions = [
      "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
    ]
    resources = [local.lake_objects]
  }

  # Strongly consistent reads of pointers, ledgers, schemas and checks.
  statement {
    sid       = "ReadCatalogState"
    actions   = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"]
    resources = [var.state_table_arn]
  }

  # Staging leases and ledger snapshots (PutItem), publish and reject transactions (TransactWriteItems is
  # authorized per item: Put, Update, Delete, ConditionCheck), check records (BatchWriteItem).
  statement {
    sid = "WriteCatalogState"
    actions = [
      "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem",
      "dynamodb:BatchWriteItem",
    ]
    resources = [var.state_table_arn]
  }

  # GlueProjection after each commit, touched days only; the database exists (modules/state), so no
  # CreateDatabase, and a job never drops a table.
  statement {
    sid = "ProjectCatalogToGlue"
    actions = [
      "glue:GetDatabase", "glue:GetTable", "glue:CreateTable", "glue:UpdateTable", "glue:BatchGetPartition",
      "glue:BatchCreatePartition", "glue:BatchUpdatePartition", "glue:BatchDeletePartition",
    ]
    resources = concat(local.glue_catalog, [local.glue_tables])
  }

  # The driver reads MEDALLION_PII_KEY_SECRET_ARN itself; the key never travels with the job run.
  statement {
    sid       = "ReadPiiKey"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.pii_key_secret_arn]
  }

  statement {
    sid       = "UseDataKeyThroughItsStores"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.kms_via.s3, local.kms_via.dynamodb, local.kms_via.secretsmanager]
    }
  }

  # EMR Serverless writes the job run's driver and executor logs with this role. DescribeLogGroups is a
  # listing, authorized on log-group ARNs: scoped to this account and region, not "*".
  statement {
    sid       = "FindJobRunLogGroup"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
  }

  statement {
    sid       = "WriteJobRunLogs"
    actions   = ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    resources = local.emr_log_group
  }
}

# -- Dagster role: webserver, daemon and run tasks (ECS) ---------------------------------------------------

resource "aws_iam_role" "dagster" {
  name               = "${var.name}-dagster"
  description        = "medallion_pipeline Dagster tasks: sensors, vacuum, rollback, catalog sync, EMR job runs"
  assume_role_policy = data.aws_iam_policy_document.dagster_trust.json
}

data "aws_iam_policy_document" "dagster_trust" {
  statement {
    sid     = "EcsTasksOfThisAccount"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:*"]
    }
  }
}

resource "aws_iam_role_policy" "dagster" {
  name   = "medallion-orchestration"
  role   = aws_iam_role.dagster.id
  policy = data.aws_iam_policy_document.dagster.json
}

data "aws_iam_policy_document" "dagster" {
  # Every catalog read: landing ledger, downstream_of_published_days, the stale-gold alert, `medallion catalog`.
  statement {
    sid       = "ReadCatalogState"
    actions   = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"]
    resources = [var.state_table_arn]
  }

  # Vacuum (revoke leases, expire versions, delete ledger snapshots) and `medallion rollback`; never DeleteItem.
  statement {
    sid       = "WriteCatalogState"
    actions   = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem", "dynamodb:BatchWriteItem"]
    resources = [var.state_table_arn]
  }

  # Rollback's projection, `medallion catalog sync` (whole tables: GetPartitions) and `medallion governance`.
  statement {
    sid = "ProjectCatalogToGlue"
    actions = [
      "glue:GetDatabase", "glue:GetTable", "glue:CreateTable", "glue:UpdateTable", "glue:GetPartitions",
      "glue:BatchGetPartition", "glue:BatchCreatePartition", "glue:BatchUpdatePartition", "glue:BatchDeletePartition",
    ]
    resources = concat(local.glue_catalog, [local.glue_tables])
  }

  # `medallion catalog sync` removes the bronze table an earlier release projected; no other table is dropped.
  statement {
    sid       = "DropLegacyBronzeGlueTable"
    actions   = ["glue:DeleteTable"]
    resources = concat(local.glue_catalog, ["${local.glue_arn_prefix}:table/${var.glue_database_name}/bronze_app_logs"])
  }

  # Listing mode and the missing-data alert list landing; they read no object.
  statement {
    sid       = "ListLanding"
    actions   = ["s3:ListBucket"]
    resources = [var.landing_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [var.landing_prefix, "${var.landing_prefix}/*"]
    }
  }

  statement {
    sid       = "ListLakeAndComputeLogs"
    actions   = ["s3:ListBucket"]
    resources = [var.lake_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [var.lake_prefix, "${var.lake_prefix}/*", var.compute_logs_prefix, "${var.compute_logs_prefix}/*"]
    }
  }

  # Vacuum deletes unreferenced version directories (DeleteObjects is authorized as DeleteObject);
  # `medallion query` reads current partitions. The Dagster side writes no lake data.
  statement {
    sid       = "ReadAndVacuumLake"
    actions   = ["s3:GetObject", "s3:DeleteObject"]
    resources = [local.lake_objects]
  }

  # dagster.yaml's S3ComputeLogManager uploads step logs, the UI reads them, run deletion removes them.
  statement {
    sid       = "ComputeLogs"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = [local.compute_logs]
  }

  # Events mode (DeleteMessageBatch is authorized as DeleteMessage).
  statement {
    sid       = "ConsumeLandingEvents"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage"]
    resources = [var.landing_queue_arn]
  }

  statement {
    sid       = "PublishAlerts"
    actions   = ["sns:Publish"]
    resources = [var.alert_topic_arn]
  }

  statement {
    sid       = "StartLayerJobRuns"
    actions   = ["emr-serverless:StartJobRun"]
    resources = [var.emr_application_arn]
  }

  # Polling, the Spark UI link, cancelling on run termination. StartJobRun sends tags (dagster/run_id,
  # medallion/layer, ...), and tagging on create is authorized as TagResource on the new job run.
  statement {
    sid = "FollowLayerJobRuns"
    actions = [
      "emr-serverless:GetJobRun", "emr-serverless:GetDashboardForJobRun", "emr-serverless:CancelJobRun",
      "emr-serverless:TagResource",
    ]
    resources = ["${var.emr_application_arn}/jobruns/*"]
  }

  statement {
    sid       = "PassJobRoleToEmrServerless"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.emr_job.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["emr-serverless.amazonaws.com"]
    }
  }

  # PipesCloudWatchMessageReader follows the driver's stdout stream while the job runs.
  statement {
    sid       = "ReadPipesMessages"
    actions   = ["logs:DescribeLogStreams", "logs:GetLogEvents"]
    resources = local.emr_log_group
  }

  # SQS and S3 reads decrypt, S3 compute-log writes and SNS publishes generate data keys, DynamoDB both.
  statement {
    sid       = "UseDataKeyThroughItsStores"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.kms_via.s3, local.kms_via.sqs, local.kms_via.sns, local.kms_via.dynamodb]
    }
  }
}

# -- reading the Dagster containers' secrets ------------------------------------------------------------------

# ECS resolves a task definition's `secrets` with the task *execution* role, which belongs to the ECS
# service deployment, not to this data plane: attach this policy there.
resource "aws_iam_policy" "dagster_secrets" {
  count = length(var.slack_webhook_secret_arns) > 0 ? 1 : 0

  name        = "${var.name}-dagster-secrets"
  description = "Read MEDALLION_ALERT_SLACK_WEBHOOK_URL for the Dagster task definitions (attach to their execution role)"
  policy      = data.aws_iam_policy_document.dagster_secrets[0].json
}

data "aws_iam_policy_document" "dagster_secrets" {
  count = length(var.slack_webhook_secret_arns) > 0 ? 1 : 0

  statement {
    sid       = "ReadSlackWebhookUrl"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = var.slack_webhook_secret_arns
  }

  statement {
    sid       = "DecryptThroughSecretsManager"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.kms_via.secretsmanager]
    }
  }
}
