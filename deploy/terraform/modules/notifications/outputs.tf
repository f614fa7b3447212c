output "queue_url" {
  description = "URL of the landing queue (MEDALLION_LANDING_QUEUE_URL)."
  value       = aws_sqs_queue.landing.id
}

output "queue_arn" {
  description = "ARN of the landing queue."
  value       = aws_sqs_queue.landing.arn
}

output "dlq_url" {
  description = "URL of the dead-letter queue of unparseable landing notifications."
  value       = aws_sqs_queue.dlq.id
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}
