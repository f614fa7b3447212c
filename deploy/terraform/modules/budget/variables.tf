variable "name" {
  description = "Name of the deployment (<name_prefix>-<environment>); the budget is <name>-monthly."
  type        = string
}

variable "limit_usd" {
  description = "Monthly budget in USD."
  type        = number
}

variable "project_tag_key" {
  description = "Key of the cost allocation tag the budget filters on."
  type        = string
}

variable "project_tag_value" {
  description = "Value of that tag on this project's resources."
  type        = string
}

variable "alert_emails" {
  description = "Addresses the budget notifications are mailed to."
  type        = list(string)
}

variable "alert_topic_arn" {
  description = "SNS topic the budget notifications are published to."
  type        = string
}
