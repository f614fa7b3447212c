output "landing_bucket_id" {
  description = "Name of the landing bucket."
  value       = aws_s3_bucket.landing.id
}

output "landing_bucket_arn" {
  description = "ARN of the landing bucket."
  value       = aws_s3_bucket.landing.arn
}

output "lake_bucket_id" {
  description = "Name of the lake bucket (lake, job bundle, Dagster compute logs)."
  value       = aws_s3_bucket.lake.id
}

output "lake_bucket_arn" {
  description = "ARN of the lake bucket."
  value       = aws_s3_bucket.lake.arn
}

output "access_log_bucket_id" {
  description = "Name of the bucket receiving the landing and lake buckets' server access logs."
  value       = aws_s3_bucket.access_logs.id
}
