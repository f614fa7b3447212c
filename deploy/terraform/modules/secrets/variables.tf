variable "name" {
  description = "Name of the deployment (<name_prefix>-<environment>); secrets are named <name>/<purpose>."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer managed key the secrets are encrypted with."
  type        = string
}

variable "create_slack_webhook_secret" {
  description = "Whether to create the Slack webhook URL secret."
  type        = bool
}
