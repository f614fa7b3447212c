variable "name" {
  description = "Name of the deployment (<name_prefix>-<environment>); the topic is <name>-alerts."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer managed key the topic is encrypted with."
  type        = string
}
