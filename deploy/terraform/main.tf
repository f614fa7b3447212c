# The AWS data plane of medallion_pipeline (SPEC section 8): what the MEDALLION_* settings of the Dagster
# containers point at. The Dagster services themselves (ECS, RDS) are deployed separately.

locals {
  name            = "${var.name_prefix}-${var.environment}"
  project_tag_key = "project"

  # Fixed in deploy/dagster.yaml (compute_logs.config.prefix), in the lake bucket (DAGSTER_COMPUTE_LOGS_BUCKET).
  compute_logs_prefix = "dagster/compute-logs"
  # MEDALLION_EMR_LOG_GROUP: per environment, so two environments in one account never share job logs.
  emr_log_group_name = "/${var.name_prefix}/${var.environment}/emr-serverless"
  # Athena and Glue want lowercase names without hyphens (the code's example: medallion_prod).
  glue_database_name = replace(local.name, "-", "_")
}

module "kms" {
  source = "./modules/kms"

  name               = local.name
  emr_log_group_name = local.emr_log_group_name
}

module "storage" {
  source = "./modules/storage"

  name                              = local.name
  kms_key_arn                       = module.kms.key_arn
  landing_prefix                    = var.landing_prefix
  lake_prefix                       = var.lake_prefix
  job_bundle_prefix                 = var.job_bundle_prefix
  compute_logs_prefix               = local.compute_logs_prefix
  landing_retention_days            = var.landing_retention_days
  lake_noncurrent_retention_days    = var.lake_noncurrent_retention_days
  noncurrent_version_retention_days = var.noncurrent_version_retention_days
  compute_log_retention_days        = var.compute_log_retention_days
  access_log_retention_days         = var.access_log_retention_days
}

module "notifications" {
  source = "./modules/notifications"

  name                       = local.name
  kms_key_arn                = module.kms.key_arn
  landing_bucket_id          = module.storage.landing_bucket_id
  landing_bucket_arn         = module.storage.landing_bucket_arn
  landing_prefix             = var.landing_prefix
  visibility_timeout_seconds = var.queue_visibility_timeout_seconds
  max_receive_count          = var.dlq_max_receive_count
  alarm_topic_arn            = module.alerts.topic_arn
}

module "alerts" {
  source = "./modules/alerts"

  name        = local.name
  kms_key_arn = module.kms.key_arn
}

module "secrets" {
  source = "./modules/secrets"

  name                        = local.name
  kms_key_arn                 = module.kms.key_arn
  create_slack_webhook_secret = var.create_slack_webhook_secret
}

module "state" {
  source = "./modules/state"

  table_name         = "${local.name}-catalog"
  glue_database_name = local.glue_database_name
  kms_key_arn        = module.kms.key_arn
}

module "emr" {
  source = "./modules/emr"

  name                 = local.name
  release_label        = var.emr_release_label
  architecture         = var.emr_architecture
  image_uri            = var.emr_image_uri
  maximum_capacity     = var.emr_maximum_capacity
  idle_timeout_minutes = var.emr_idle_timeout_minutes
  initial_capacity     = var.emr_initial_capacity
  log_group_name       = local.emr_log_group_name
  log_retention_days   = var.emr_log_retention_days
  kms_key_arn          = module.kms.key_arn
}

module "iam" {
  source = "./modules/iam"

  name                      = local.name
  kms_key_arn               = module.kms.key_arn
  landing_bucket_arn        = module.storage.landing_bucket_arn
  landing_prefix            = var.landing_prefix
  lake_bucket_arn           = module.storage.lake_bucket_arn
  lake_prefix               = var.lake_prefix
  job_bundle_prefix         = var.job_bundle_prefix
  compute_logs_prefix       = local.compute_logs_prefix
  landing_queue_arn         = module.notifications.queue_arn
  alert_topic_arn           = module.alerts.topic_arn
  state_table_arn           = module.state.table_arn
  glue_database_name        = module.state.glue_database_name
  emr_application_arn       = module.emr.application_arn
  emr_log_group_arn         = module.emr.log_group_arn
  pii_key_secret_arn        = module.secrets.pii_key_secret_arn
  slack_webhook_secret_arns = module.secrets.slack_webhook_secret_arns
}

module "budget" {
  source = "./modules/budget"

  name              = local.name
  limit_usd         = var.monthly_budget_usd
  project_tag_key   = local.project_tag_key
  project_tag_value = var.project
  alert_emails      = var.budget_alert_emails
  alert_topic_arn   = module.alerts.topic_arn
}
