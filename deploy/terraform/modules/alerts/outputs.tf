output "topic_arn" {
  description = "ARN of the alert topic (MEDALLION_ALERT_SNS_TOPIC_ARN)."
  value       = aws_sns_topic.alerts.arn
}
