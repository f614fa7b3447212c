# What the runbook and the Dagster task definitions need. dagster_environment is the complete set of
# non-secret settings; secrets are passed by ARN and read by whoever needs them.

output "landing_bucket_name" {
  description = "Landing bucket; producers write <landing_prefix>/<source>/dt=YYYY-MM-DD/<file>."
  value       = module.storage.landing_bucket_id
}

output "landing_bucket_arn" {
  description = "ARN of the landing bucket."
  value       = module.storage.landing_bucket_arn
}

output "lake_bucket_name" {
  description = "Lake bucket: the lake, the EMR job bundle and Dagster's compute logs (DAGSTER_COMPUTE_LOGS_BUCKET)."
  value       = module.storage.lake_bucket_id
}

output "lake_bucket_arn" {
  description = "ARN of the lake bucket."
  value       = module.storage.lake_bucket_arn
}

output "access_log_bucket_name" {
  description = "Bucket holding the landing and lake buckets' S3 server access logs."
  value       = module.storage.access_log_bucket_id
}

output "landing_root" {
  description = "MEDALLION_LANDING_ROOT."
  value       = "s3://${module.storage.landing_bucket_id}/${var.landing_prefix}"
}

output "lake_root" {
  description = "MEDALLION_LAKE_ROOT."
  value       = "s3://${module.storage.lake_bucket_id}/${var.lake_prefix}"
}

output "job_bundle_uri" {
  description = "MEDALLION_EMR_JOB_BUNDLE_URI: where `medallion package-job --to` uploads the bundle."
  value       = "s3://${module.storage.lake_bucket_id}/${var.job_bundle_prefix}"
}

output "landing_queue_url" {
  description = "MEDALLION_LANDING_QUEUE_URL (events mode)."
  value       = module.notifications.queue_url
}

output "landing_queue_arn" {
  description = "ARN of the landing notification queue."
  value       = module.notifications.queue_arn
}

output "landing_dlq_url" {
  description = "Dead-letter queue of notifications the sensor could not parse: inspect, then redrive or purge."
  value       = module.notifications.dlq_url
}

output "landing_dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = module.notifications.dlq_arn
}

output "alert_topic_arn" {
  description = "MEDALLION_ALERT_SNS_TOPIC_ARN; the budget alerts go here too. Subscribe on-call to it."
  value       = module.alerts.topic_arn
}

output "state_table_name" {
  description = "DynamoDB state table of the catalog."
  value       = module.state.table_name
}

output "glue_database_name" {
  description = "Glue database Athena reads (the catalog's projection)."
  value       = module.state.glue_database_name
}

output "catalog_uri" {
  description = "MEDALLION_CATALOG_URI."
  value       = "glue://${module.state.glue_database_name}?state_table=${module.state.table_name}"
}

output "emr_application_id" {
  description = "MEDALLION_EMR_APPLICATION_ID."
  value       = module.emr.application_id
}

output "emr_log_group_name" {
  description = "MEDALLION_EMR_LOG_GROUP."
  value       = module.emr.log_group_name
}

output "emr_job_role_arn" {
  description = "MEDALLION_EMR_EXECUTION_ROLE_ARN."
  value       = module.iam.emr_job_role_arn
}

output "dagster_role_arn" {
  description = "Task role of the Dagster webserver, daemon and run task definitions."
  value       = module.iam.dagster_role_arn
}

output "dagster_secrets_policy_arn" {
  description = "Policy to attach to the Dagster tasks' execution role so ECS can inject the Slack webhook secret; null without it."
  value       = module.iam.dagster_secrets_policy_arn
}

output "kms_key_arn" {
  description = "ARN of the customer managed key of the data plane."
  value       = module.kms.key_arn
}

output "pii_key_secret_arn" {
  description = "MEDALLION_PII_KEY_SECRET_ARN; put the key with `aws secretsmanager put-secret-value` before the first run."
  value       = module.secrets.pii_key_secret_arn
}

output "slack_webhook_secret_arn" {
  description = "Secret for MEDALLION_ALERT_SLACK_WEBHOOK_URL (a task definition `secrets` entry); null unless create_slack_webhook_secret."
  value       = one(module.secrets.slack_webhook_secret_arns)
}

output "budget_name" {
  description = "Name of the monthly AWS Budgets budget."
  value       = module.budget.budget_name
}

output "dagster_environment" {
  description = "Environment of the Dagster containers: the MEDALLION_* settings for this data plane and dagster.yaml's DAGSTER_COMPUTE_LOGS_BUCKET."
  value = {
    AWS_DEFAULT_REGION               = var.region
    DAGSTER_COMPUTE_LOGS_BUCKET      = module.storage.lake_bucket_id
    MEDALLION_SPARK_MODE             = "emr-serverless"
    MEDALLION_LANDING_MODE           = "events"
    MEDALLION_LANDING_ROOT           = "s3://${module.storage.landing_bucket_id}/${var.landing_prefix}"
    MEDALLION_LANDING_QUEUE_URL      = module.notifications.queue_url
    MEDALLION_LAKE_ROOT              = "s3://${module.storage.lake_bucket_id}/${var.lake_prefix}"
    MEDALLION_CATALOG_URI            = "glue://${module.state.glue_database_name}?state_table=${module.state.table_name}"
    MEDALLION_ALERT_SNS_TOPIC_ARN    = module.alerts.topic_arn
    MEDALLION_PII_KEY_SECRET_ARN     = module.secrets.pii_key_secret_arn
    MEDALLION_EMR_APPLICATION_ID     = module.emr.application_id
    MEDALLION_EMR_EXECUTION_ROLE_ARN = module.iam.emr_job_role_arn
    MEDALLION_EMR_PYTHON             = var.emr_image_uri == null ? "bundle" : "image"
    MEDALLION_EMR_JOB_BUNDLE_URI     = "s3://${module.storage.lake_bucket_id}/${var.job_bundle_prefix}"
    MEDALLION_EMR_RELEASE_LABEL      = var.emr_release_label
    MEDALLION_EMR_LOG_GROUP          = module.emr.log_group_name
    MEDALLION_EMR_REGION             = var.region
    # The driver's boto3 clients (DynamoDB, Glue, S3) use the default region too (README "Settings for AWS").
    MEDALLION_SPARK_CONF = jsonencode({ "spark.emr-serverless.driverEnv.AWS_DEFAULT_REGION" = var.region })
  }
}
