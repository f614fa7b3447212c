variable "name" {
  description = "Name of the deployment (<name_prefix>-<environment>); the queues are <name>-landing and <name>-landing-dlq."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer managed key both queues are encrypted with."
  type        = string
}

variable "landing_bucket_id" {
  description = "Name of the landing bucket whose ObjectCreated events feed the queue."
  type        = string
}

variable "landing_bucket_arn" {
  description = "ARN of the landing bucket, the only source the queue policy accepts."
  type        = string
}

variable "landing_prefix" {
  description = "Key prefix of the landing area; events outside it are not sent."
  type        = string
}

variable "visibility_timeout_seconds" {
  description = "Visibility timeout of the landing queue, above the sensor's tick budget."
  type        = number
}

variable "max_receive_count" {
  description = "Receives before a message moves to the dead-letter queue."
  type        = number
}

variable "alarm_topic_arn" {
  description = "SNS topic the dead-letter queue's alarm notifies (the alert topic)."
  type        = string
}
