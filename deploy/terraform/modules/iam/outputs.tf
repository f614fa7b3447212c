output "emr_job_role_arn" {
  description = "ARN of the EMR Serverless job runtime role (MEDALLION_EMR_EXECUTION_ROLE_ARN)."
  value       = aws_iam_role.emr_job.arn
}

output "dagster_role_arn" {
  description = "ARN of the Dagster task role (webserver, daemon and run task definitions)."
  value       = aws_iam_role.dagster.arn
}

output "dagster_secrets_policy_arn" {
  description = "ARN of the policy reading the Slack webhook secret, for the Dagster tasks' execution role; null without the secret."
  value       = one(aws_iam_policy.dagster_secrets[*].arn)
}
