variable "name" {
  description = "Name of the deployment (<name_prefix>-<environment>); the key's alias is alias/<name>."
  type        = string
}

variable "emr_log_group_name" {
  description = "The EMR job runs' CloudWatch log group, the only log group CloudWatch Logs may encrypt with this key."
  type        = string
}
