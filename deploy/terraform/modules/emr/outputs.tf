output "application_id" {
  description = "Id of the EMR Serverless application (MEDALLION_EMR_APPLICATION_ID)."
  value       = aws_emrserverless_application.spark.id
}

output "application_arn" {
  description = "ARN of the EMR Serverless application."
  value       = aws_emrserverless_application.spark.arn
}

output "log_group_name" {
  description = "Name of the job runs' log group (MEDALLION_EMR_LOG_GROUP)."
  value       = aws_cloudwatch_log_group.job_runs.name
}

output "log_group_arn" {
  description = "ARN of the job runs' log group (without the trailing :*)."
  value       = aws_cloudwatch_log_group.job_runs.arn
}
