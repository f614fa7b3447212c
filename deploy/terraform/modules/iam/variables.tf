variable "name" {
  description = "Name of the deployment (<name_prefix>-<environment>); roles are <name>-emr-job and <name>-dagster."
  type        = string
}

variable "kms_key_arn" {
  description = "The data plane's customer managed key, usable by both roles through the services they call."
  type        = string
}

variable "landing_bucket_arn" {
  description = "ARN of the landing bucket."
  type        = string
}

variable "landing_prefix" {
  description = "Key prefix of the landing area."
  type        = string
}

variable "lake_bucket_arn" {
  description = "ARN of the lake bucket."
  type        = string
}

variable "lake_prefix" {
  description = "Key prefix of the lake: the only place the EMR job role may write."
  type        = string
}

variable "job_bundle_prefix" {
  description = "Key prefix of the EMR job bundle in the lake bucket (read by the job role)."
  type        = string
}

variable "compute_logs_prefix" {
  description = "Key prefix of Dagster's compute logs in the lake bucket (written by the Dagster role)."
  type        = string
}

variable "landing_queue_arn" {
  description = "ARN of the landing notification queue (drained by the Dagster role)."
  type        = string
}

variable "alert_topic_arn" {
  description = "ARN of the alert topic (published to by the Dagster role)."
  type        = string
}

variable "state_table_arn" {
  description = "ARN of the DynamoDB state table of the catalog."
  type        = string
}

variable "glue_database_name" {
  description = "Name of the Glue database the catalog projects into."
  type        = string
}

variable "emr_application_arn" {
  description = "ARN of the EMR Serverless application (the job role trusts only its job runs)."
  type        = string
}

variable "emr_log_group_arn" {
  description = "ARN of the job runs' CloudWatch log group, without the trailing :*."
  type        = string
}

variable "pii_key_secret_arn" {
  description = "ARN of the PII key secret (read by the EMR job role only)."
  type        = string
}

variable "slack_webhook_secret_arns" {
  description = "ARN of the Slack webhook secret as a list (empty when there is none)."
  type        = list(string)
}
