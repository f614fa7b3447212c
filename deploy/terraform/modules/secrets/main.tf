# Secrets whose values never pass through Terraform (they would land in its state): Terraform creates the
# secret, an operator puts the value (`aws secretsmanager put-secret-value`).

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

# The HMAC key that pseudonymizes client_ip; read by the EMR driver itself (MEDALLION_PII_KEY_SECRET_ARN).
resource "aws_secretsmanager_secret" "pii_key" {
  #checkov:skip=CKV2_AWS_57:Rotating the HMAC key changes every pseudonym and breaks joins across days; it is rotated deliberately, with a re-pseudonymization, never on a schedule.
  name                    = "${var.name}/pii-key"
  description             = "medallion_pipeline PII pseudonymization key (MEDALLION_PII_KEY_SECRET_ARN)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 30
}

# MEDALLION_ALERT_SLACK_WEBHOOK_URL, injected into the Dagster containers by their task definitions.
resource "aws_secretsmanager_secret" "slack_webhook" {
  #checkov:skip=CKV2_AWS_57:A Slack incoming-webhook URL is issued by Slack and cannot be rotated by a Secrets Manager rotation function.
  count = var.create_slack_webhook_secret ? 1 : 0

  name                    = "${var.name}/slack-webhook-url"
  description             = "medallion_pipeline alerts Slack incoming webhook URL (MEDALLION_ALERT_SLACK_WEBHOOK_URL)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 30
}
