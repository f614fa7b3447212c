output "pii_key_secret_arn" {
  description = "ARN of the PII key secret (MEDALLION_PII_KEY_SECRET_ARN)."
  value       = aws_secretsmanager_secret.pii_key.arn
}

output "slack_webhook_secret_arns" {
  description = "ARN of the Slack webhook URL secret, as a list: empty when it is not created."
  value       = aws_secretsmanager_secret.slack_webhook[*].arn
}
