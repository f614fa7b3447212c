# The AWS catalog (MEDALLION_CATALOG_URI=glue://<database>?state_table=<table>): its transactional state in
# DynamoDB (resources/catalog/dynamodb.py; the pipeline never creates the table) and the Glue database
# Athena reads, which the catalog projects into after every commit.

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

# The key schema DynamoState.create_table uses in tests: string pk (partition) and sk (sort), on demand.
resource "aws_dynamodb_table" "state" {
  name                        = var.table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = true

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  # The table is the only record of which version of each partition is current: losing it orphans the lake.
  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  # deletion_protection stops an API delete; this stops a plan that would replace or destroy the table.
  lifecycle {
    prevent_destroy = true
  }
}

# Created here so that neither role needs glue:CreateDatabase (GlueProjection.ensure_database finds it).
resource "aws_glue_catalog_database" "this" {
  name        = var.glue_database_name
  description = "medallion_pipeline tables (a projection of the catalog)"
}
