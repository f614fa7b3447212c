output "table_name" {
  description = "Name of the DynamoDB state table."
  value       = aws_dynamodb_table.state.name
}

output "table_arn" {
  description = "ARN of the DynamoDB state table."
  value       = aws_dynamodb_table.state.arn
}

output "glue_database_name" {
  description = "Name of the Glue database."
  value       = aws_glue_catalog_database.this.name
}
