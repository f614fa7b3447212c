variable "name" {
  description = "Name of the deployment (<name_prefix>-<environment>); the application is <name>-spark."
  type        = string
}

variable "release_label" {
  description = "EMR Serverless release (emr-7.x, the runtime the job bundle targets)."
  type        = string
}

variable "architecture" {
  description = "Worker CPU architecture, X86_64 or ARM64."
  type        = string
}

variable "image_uri" {
  description = "Custom image the application runs (MEDALLION_EMR_PYTHON=image); null for the stock image of the release."
  type        = string
}

variable "maximum_capacity" {
  description = "Most cpu, memory and disk the application runs at once, e.g. {cpu = \"64 vCPU\", memory = \"256 GB\", disk = \"320 GB\"}."
  type = object({
    cpu    = string
    memory = string
    disk   = string
  })
}

variable "idle_timeout_minutes" {
  description = "Idle minutes before the application stops."
  type        = number
}

variable "initial_capacity" {
  description = "Pre-initialized workers by type (Driver, Executor); empty for none."
  type = map(object({
    worker_count = number
    cpu          = string
    memory       = string
    disk         = optional(string)
  }))
}

variable "log_group_name" {
  description = "CloudWatch log group of the job runs (MEDALLION_EMR_LOG_GROUP)."
  type        = string
}

variable "log_retention_days" {
  description = "Days the job runs' logs are kept."
  type        = number
}

variable "kms_key_arn" {
  description = "Customer managed key the log group is encrypted with (the key policy admits CloudWatch Logs for this group)."
  type        = string
}
