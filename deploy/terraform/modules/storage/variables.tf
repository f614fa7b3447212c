variable "name" {
  description = "Name of the deployment (<name_prefix>-<environment>); bucket names are <name>-<purpose>-<account id>."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer managed key the landing and lake buckets are encrypted with."
  type        = string
}

variable "landing_prefix" {
  description = "Key prefix of the landing area in the landing bucket (no slashes at either end)."
  type        = string
}

variable "lake_prefix" {
  description = "Key prefix of the lake in the lake bucket (no slashes at either end)."
  type        = string
}

variable "job_bundle_prefix" {
  description = "Key prefix of the EMR job bundle in the lake bucket (no slashes at either end)."
  type        = string
}

variable "compute_logs_prefix" {
  description = "Key prefix of Dagster's compute logs in the lake bucket, as in deploy/dagster.yaml."
  type        = string
}

variable "landing_retention_days" {
  description = "Days a landing object is kept."
  type        = number
}

variable "lake_noncurrent_retention_days" {
  description = "Days a lake object version deleted by vacuum is kept (more than 30: it moves to STANDARD_IA at 30)."
  type        = number
}

variable "noncurrent_version_retention_days" {
  description = "Days noncurrent versions are kept outside the lake prefix."
  type        = number
}

variable "compute_log_retention_days" {
  description = "Days Dagster compute logs are kept."
  type        = number
}

variable "access_log_retention_days" {
  description = "Days S3 server access logs are kept."
  type        = number
}
