# The EMR Serverless Spark application every layer job run goes to (MEDALLION_EMR_APPLICATION_ID), and the
# log group its job runs write to (MEDALLION_EMR_LOG_GROUP): the launcher reads the driver's stdout there
# for the Dagster Pipes messages, so the group must exist before the first job run.
#
# No network_configuration: without a VPC, job runs reach S3, Glue, DynamoDB, CloudWatch, KMS and Secrets
# Manager in the region, which is all the layer jobs call; they need nothing on the internet or in a VPC.

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

resource "aws_cloudwatch_log_group" "job_runs" {
  name              = var.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_emrserverless_application" "spark" {
  name          = "${var.name}-spark"
  release_label = var.release_label
  type          = "spark"
  architecture  = var.architecture

  # A job run starts the application and idleness stops it: nothing is billed between runs
  # (pre-initialized capacity included).
  auto_start_configuration {
    enabled = true
  }

  auto_stop_configuration {
    enabled              = true
    idle_timeout_minutes = var.idle_timeout_minutes
  }

  # The cost guardrail: job runs beyond this wait for capacity instead of scaling the bill.
  maximum_capacity {
    cpu    = var.maximum_capacity.cpu
    memory = var.maximum_capacity.memory
    disk   = var.maximum_capacity.disk
  }

  # With the custom image, Python, the package and the entry point come from the image, not the job bundle.
  dynamic "image_configuration" {
    for_each = var.image_uri == null ? [] : [var.image_uri]
    content {
      image_uri = image_configuration.value
    }
  }

  dynamic "initial_capacity" {
    for_each = var.initial_capacity
    content {
      initial_capacity_type = initial_capacity.key
      initial_capacity_config {
        worker_count = initial_capacity.value.worker_count
        worker_configuration {
          cpu    = initial_capacity.value.cpu
          memory = initial_capacity.value.memory
          disk   = initial_capacity.value.disk
        }
      }
    }
  }
}
