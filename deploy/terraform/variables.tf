# -- where and what ---------------------------------------------------------------------------------------

variable "region" {
  description = "AWS region of the whole data plane (MEDALLION_EMR_REGION and AWS_DEFAULT_REGION of the Dagster containers)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "environment" {
  description = "Deployment environment; part of every resource name and the environment tag."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (<name_prefix>-<environment>-...). Bucket names append the account id, so keep it short."
  type        = string
  default     = "medallion"

  validation {
    # Bucket names are at most 63 characters: prefix (22) + environment (7) + "-access-logs-" + account id (12).
    condition     = can(regex("^[a-z][a-z0-9-]{0,20}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 2-22 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "project" {
  description = "Value of the project tag on every resource; the budget counts the costs carrying it (activate it as a cost allocation tag in Billing)."
  type        = string
  default     = "medallion_pipeline"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.:/=+@-]{1,256}$", var.project))
    error_message = "project must be a valid tag value (1-256 letters, digits or _.:/=+@-)."
  }
}

variable "tags" {
  description = "Extra tags for every resource (owner, cost centre); project, environment and managed_by are set by this module."
  type        = map(string)
  default     = {}
}

# -- S3 layout ----------------------------------------------------------------------------------------------

variable "landing_prefix" {
  description = "Key prefix of the landing area in the landing bucket: MEDALLION_LANDING_ROOT is s3://<landing bucket>/<landing_prefix>."
  type        = string
  default     = "app-logs"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$", var.landing_prefix))
    error_message = "landing_prefix must be a non-empty key prefix without leading or trailing slash."
  }
}

variable "lake_prefix" {
  description = "Key prefix of the lake in the lake bucket: MEDALLION_LAKE_ROOT is s3://<lake bucket>/<lake_prefix>. The EMR job role writes only below it."
  type        = string
  default     = "medallion"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$", var.lake_prefix))
    error_message = "lake_prefix must be a non-empty key prefix without leading or trailing slash."
  }
}

variable "job_bundle_prefix" {
  description = "Key prefix of the EMR job bundle in the lake bucket: MEDALLION_EMR_JOB_BUNDLE_URI is s3://<lake bucket>/<job_bundle_prefix> (written by `medallion package-job`)."
  type        = string
  default     = "jobs/medallion"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$", var.job_bundle_prefix))
    error_message = "job_bundle_prefix must be a non-empty key prefix without leading or trailing slash."
  }
}

# -- retention ------------------------------------------------------------------------------------------------

variable "landing_retention_days" {
  description = "Days a landing object is kept. Bronze keeps every readable line it ingested, so landing older than this is missed only by a bronze full refresh reaching further back."
  type        = number
  default     = 90

  validation {
    condition     = var.landing_retention_days > 0 && floor(var.landing_retention_days) == var.landing_retention_days
    error_message = "landing_retention_days must be a whole number of days > 0."
  }
}

variable "lake_noncurrent_retention_days" {
  description = "Days a lake object version deleted by vacuum stays recoverable (moved to STANDARD_IA after 30 days, then expired)."
  type        = number
  default     = 180

  validation {
    condition     = var.lake_noncurrent_retention_days > 30 && floor(var.lake_noncurrent_retention_days) == var.lake_noncurrent_retention_days
    error_message = "lake_noncurrent_retention_days must be a whole number > 30 (noncurrent versions move to STANDARD_IA at 30 days)."
  }
}

variable "noncurrent_version_retention_days" {
  description = "Days an overwritten or deleted object version is kept in the landing and access-log buckets, the job bundle and the compute logs."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_retention_days > 0 && floor(var.noncurrent_version_retention_days) == var.noncurrent_version_retention_days
    error_message = "noncurrent_version_retention_days must be a whole number of days > 0."
  }
}

variable "compute_log_retention_days" {
  description = "Days Dagster step logs (dagster.yaml's S3ComputeLogManager, prefix dagster/compute-logs in the lake bucket) are kept."
  type        = number
  default     = 90

  validation {
    condition     = var.compute_log_retention_days > 0 && floor(var.compute_log_retention_days) == var.compute_log_retention_days
    error_message = "compute_log_retention_days must be a whole number of days > 0."
  }
}

variable "access_log_retention_days" {
  description = "Days S3 server access logs of the landing and lake buckets are kept."
  type        = number
  default     = 365

  validation {
    condition     = var.access_log_retention_days > 0 && floor(var.access_log_retention_days) == var.access_log_retention_days
    error_message = "access_log_retention_days must be a whole number of days > 0."
  }
}

# -- landing notifications -------------------------------------------------------------------------------------

variable "queue_visibility_timeout_seconds" {
  description = "How long a received landing notification stays hidden: above the sensor's MEDALLION_LANDING_TICK_BUDGET_SECONDS (20) plus the time to record and delete a batch."
  type        = number
  default     = 120

  validation {
    condition     = var.queue_visibility_timeout_seconds > 20 && var.queue_visibility_timeout_seconds <= 43200
    error_message = "queue_visibility_timeout_seconds must be above the sensor's 20 s tick budget and at most 43200 (12 h)."
  }
}

variable "dlq_max_receive_count" {
  description = "Receives after which a notification the sensor cannot parse (it leaves those on the queue) moves to the dead-letter queue."
  type        = number
  default     = 5

  validation {
    condition     = var.dlq_max_receive_count >= 1 && var.dlq_max_receive_count <= 1000
    error_message = "dlq_max_receive_count must be between 1 and 1000."
  }
}

# -- alerts ---------------------------------------------------------------------------------------------------

variable "create_slack_webhook_secret" {
  description = "Create a Secrets Manager secret for MEDALLION_ALERT_SLACK_WEBHOOK_URL (its value is put out of band, never through Terraform)."
  type        = bool
  default     = false
}

# -- EMR Serverless ------------------------------------------------------------------------------------------------

variable "emr_release_label" {
  description = "EMR Serverless release of the Spark application; the job bundle targets the emr-7.x runtime (Spark 3.5, Python 3.11), like MEDALLION_EMR_RELEASE_LABEL."
  type        = string
  default     = "emr-7.5.0"

  validation {
    condition     = can(regex("^emr-7\\.[0-9]+\\.[0-9]+$", var.emr_release_label))
    error_message = "emr_release_label must be an emr-7.x.y release: the job bundle is built for that runtime."
  }
}

variable "emr_architecture" {
  description = "CPU architecture of the EMR Serverless workers; build the job bundle's pyenv.tar.gz for the same one."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.emr_architecture)
    error_message = "emr_architecture must be X86_64 or ARM64."
  }
}

variable "emr_image_uri" {
  description = "ECR URI of the custom EMR Serverless image (deploy/docker/emr-serverless.Dockerfile) the application runs; null: the stock image and the job bundle (MEDALLION_EMR_PYTHON=bundle). Its repository policy must let emr-serverless.amazonaws.com pull."
  type        = string
  default     = null

  validation {
    condition     = var.emr_image_uri == null || can(regex("^[0-9]{12}\\.dkr\\.ecr\\.[a-z0-9-]+\\.amazonaws\\.com(\\.cn)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$", var.emr_image_uri))
    error_message = "emr_image_uri must be an ECR image URI with a tag or digest, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/medallion-emr:7.5.0-1."
  }
}

variable "emr_maximum_capacity" {
  description = "Most the EMR Serverless application may run at once, over all its job runs (the cost guardrail next to dagster.yaml's max_concurrent_runs). The default is 16 workers of EMR Serverless's default size (4 vCPU, 16 GB, 20 GB disk)."
  type = object({
    cpu    = string
    memory = string
    disk   = string
  })
  default = {
    cpu    = "64 vCPU"
    memory = "256 GB"
    disk   = "320 GB"
  }

  validation {
    condition     = can(regex("^[1-9][0-9]* vCPU$", var.emr_maximum_capacity.cpu))
    error_message = "emr_maximum_capacity.cpu must look like \"64 vCPU\"."
  }

  validation {
    condition     = can(regex("^[1-9][0-9]* GB$", var.emr_maximum_capacity.memory)) && can(regex("^[1-9][0-9]* GB$", var.emr_maximum_capacity.disk))
    error_message = "emr_maximum_capacity.memory and .disk must look like \"256 GB\"."
  }
}

variable "emr_idle_timeout_minutes" {
  description = "Minutes without job runs after which the EMR Serverless application stops (and stops billing pre-initialized capacity)."
  type        = number
  default     = 15

  validation {
    condition     = var.emr_idle_timeout_minutes >= 1 && var.emr_idle_timeout_minutes <= 10080
    error_message = "emr_idle_timeout_minutes must be between 1 and 10080 (7 days)."
  }
}

variable "emr_initial_capacity" {
  description = "Pre-initialized workers by type (Driver, Executor), warm while the application is started: faster job starts, billed while idle. Empty: none."
  type = map(object({
    worker_count = number
    cpu          = string
    memory       = string
    disk         = optional(string)
  }))
  default = {}

  validation {
    condition     = alltrue([for worker_type in keys(var.emr_initial_capacity) : contains(["Driver", "Executor"], worker_type)])
    error_message = "emr_initial_capacity keys must be Driver or Executor."
  }

  validation {
    condition = alltrue(flatten([for c in values(var.emr_initial_capacity) : [
      c.worker_count >= 1,
      can(regex("^[1-9][0-9]* vCPU$", c.cpu)),
      can(regex("^[1-9][0-9]* GB$", c.memory)),
      c.disk == null || can(regex("^[1-9][0-9]* GB$", c.disk)),
    ]]))
    error_message = "each emr_initial_capacity entry needs worker_count >= 1, cpu like \"4 vCPU\", memory (and disk) like \"16 GB\"."
  }
}

variable "emr_log_retention_days" {
  description = "Days the EMR job runs' CloudWatch logs (driver stdout carries the Pipes messages) are kept."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.emr_log_retention_days)
    error_message = "emr_log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653)."
  }
}

# -- budget ----------------------------------------------------------------------------------------------------

variable "monthly_budget_usd" {
  description = "Monthly cost budget in USD for everything carrying the project tag; alerts at 80 % and 100 % actual and 100 % forecast."
  type        = number

  validation {
    condition     = var.monthly_budget_usd > 0
    error_message = "monthly_budget_usd must be > 0."
  }
}

variable "budget_alert_emails" {
  description = "Addresses the budget alerts are mailed to, besides the alert topic."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for email in var.budget_alert_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", email))])
    error_message = "budget_alert_emails must be e-mail addresses."
  }
}
