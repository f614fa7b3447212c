variable "table_name" {
  description = "Name of the DynamoDB state table (the state_table of MEDALLION_CATALOG_URI)."
  type        = string
}

variable "glue_database_name" {
  description = "Name of the Glue database the catalog projects into (the database of MEDALLION_CATALOG_URI)."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer managed key the state table is encrypted with."
  type        = string
}
