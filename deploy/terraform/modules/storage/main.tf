# The landing bucket (producers drop <landing_prefix>/<source>/dt=YYYY-MM-DD/<file>), the lake bucket (the
# lake under <lake_prefix>, the EMR job bundle, Dagster's compute logs) and the bucket their access logs go to.
# Each bucket: ACLs disabled, public access blocked, versioned, encrypted, TLS only, lifecycle rules.

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

data "aws_caller_identity" "current" {}

locals {
  # The account id makes the globally unique bucket names predictable per account.
  account_id           = data.aws_caller_identity.current.account_id
  lake_bucket_prefixes = [var.lake_prefix, var.job_bundle_prefix, var.compute_logs_prefix]
}

# -- landing --------------------------------------------------------------------------------------------------

resource "aws_s3_bucket" "landing" {
  #checkov:skip=CKV_AWS_144:Landing is transient (expires after landing_retention_days) and bronze keeps every readable line; a second-region copy is not worth its cost.
  #checkov:skip=CKV_AWS_143:Object Lock would stop the retention expiry and producers' corrections; versioning already keeps overwritten objects.
  #checkov:skip=CKV2_AWS_62:False positive: the ObjectCreated notifications are modules/notifications' aws_s3_bucket_notification.landing, which checkov's graph does not link across modules.
  bucket = "${var.name}-landing-${local.account_id}"
}

resource "aws_s3_bucket_ownership_controls" "landing" {
  bucket = aws_s3_bucket.landing.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "landing" {
  bucket                  = aws_s3_bucket.landing.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "landing" {
  bucket = aws_s3_bucket.landing.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "landing" {
  bucket = aws_s3_bucket.landing.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    # One KMS request per bucket key instead of per object: thousands of small log files a day.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_logging" "landing" {
  bucket        = aws_s3_bucket.landing.id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "landing/"
}

resource "aws_s3_bucket_lifecycle_configuration" "landing" {
  bucket = aws_s3_bucket.landing.id

  rule {
    id     = "landing-retention"
    status = "Enabled"
    filter {
      prefix = "${var.landing_prefix}/"
    }
    expiration {
      days = var.landing_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_retention_days
    }
  }

  # Whole bucket: an upload abandoned anywhere is billed until it is aborted.
  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.landing]
}

resource "aws_s3_bucket_policy" "landing" {
  bucket = aws_s3_bucket.landing.id
  policy = data.aws_iam_policy_document.landing.json

  depends_on = [aws_s3_bucket_public_access_block.landing]
}

data "aws_iam_policy_document" "landing" {
  statement {
    sid    = "DenyInsecureTransport"
    effect = "Deny"
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.landing.arn, "${aws_s3_bucket.landing.arn}/*"]
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

# -- lake -----------------------------------------------------------------------------------------------------

resource "aws_s3_bucket" "lake" {
  #checkov:skip=CKV_AWS_144:Silver, gold and metrics are rebuilt from bronze and versioning keeps deleted objects; a second-region copy of bronze is a disaster-recovery choice not made here.
  #checkov:skip=CKV_AWS_143:Object Lock would stop vacuum from deleting unreferenced version directories, which it must do.
  #checkov:skip=CKV2_AWS_62:Nothing consumes lake object events: readers resolve partitions through the catalog, never through object notifications.
  bucket = "${var.name}-lake-${local.account_id}"

  lifecycle {
    # Bronze is the only copy of landing files past their retention: a plan that destroys the lake must fail.
    prevent_destroy = true
    # One bucket, three writers: the EMR job role writes only the lake prefix, so no other prefix may nest in it.
    precondition {
      condition = alltrue(flatten([for i, a in local.lake_bucket_prefixes : [
        for j, b in local.lake_bucket_prefixes : i == j || !startswith("${a}/", "${b}/")
      ]]))
      error_message = "lake_prefix, job_bundle_prefix and the compute logs prefix must differ and not contain one another."
    }
  }
}

resource "aws_s3_bucket_ownership_controls" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "lake" {
  bucket                  = aws_s3_bucket.lake.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "lake" {
  bucket = aws_s3_bucket.lake.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    # Spark reads and writes many part files per run: a bucket key keeps the KMS request bill flat.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_logging" "lake" {
  bucket        = aws_s3_bucket.lake.id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "lake/"
}

# The lake layout is <lake_prefix>/<layer>/<table>/<version_id>/dt=YYYY-MM-DD/ (resources/lake.py). A version
# directory is never rewritten, and whether it is old is the catalog's call, not its age: a day published once
# stays current for years. So nothing current is expired by age. What vacuum deletes (versions the catalog no
# longer keeps) becomes noncurrent in this versioned bucket; those are what the lake rule ages out. The filter
# is the whole lake prefix because a lifecycle prefix cannot match the version segment in the middle of a key.
resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id

  rule {
    id     = "lake-vacuumed-versions"
    status = "Enabled"
    filter {
      prefix = "${var.lake_prefix}/"
    }
    # Recoverable for a while after vacuum, at infrequent-access prices after the first month.
    noncurrent_version_transition {
      noncurrent_days = 30
      storage_class   = "STANDARD_IA"
    }
    noncurrent_version_expiration {
      noncurrent_days = var.lake_noncurrent_retention_days
    }
    # Vacuum's deletes leave delete markers; once their versions are gone the markers are clutter.
    expiration {
      expired_object_delete_marker = true
    }
  }

  # Each `medallion package-job` overwrites the bundle; only the current one is used.
  rule {
    id     = "job-bundle-previous-uploads"
    status = "Enabled"
    filter {
      prefix = "${var.job_bundle_prefix}/"
    }
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_retention_days
    }
  }

  rule {
    id     = "dagster-compute-logs"
    status = "Enabled"
    filter {
      prefix = "${var.compute_logs_prefix}/"
    }
    expiration {
      days = var.compute_log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_retention_days
    }
  }

  # Whole bucket: Spark uploads part files in multiple parts, and a killed job run leaves its parts behind.
  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.lake]
}

resource "aws_s3_bucket_policy" "lake" {
  bucket = aws_s3_bucket.lake.id
  policy = data.aws_iam_policy_document.lake.json

  depends_on = [aws_s3_bucket_public_access_block.lake]
}

data "aws_iam_policy_document" "lake" {
  statement {
    sid    = "DenyInsecureTransport"
    effect = "Deny"
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.lake.arn, "${aws_s3_bucket.lake.arn}/*"]
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

# -- access logs --------------------------------------------------------------------------------------------------

resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV_AWS_18:This is the access-log destination; logging it would need yet another bucket, and S3 would log its own deliveries.
  #checkov:skip=CKV_AWS_144:Access logs are an audit aid kept for a year in-region; a second-region copy is not required here.
  #checkov:skip=CKV_AWS_145:AWS does not support SSE-KMS default encryption on server access log destination buckets; it uses SSE-S3.
  #checkov:skip=CKV_AWS_143:Object Lock would block the retention expiry; these logs are an audit aid, not a compliance archive.
  #checkov:skip=CKV2_AWS_62:Nothing consumes access-log object events; the logs are read on demand (Athena).
  bucket = "${var.name}-access-logs-${local.account_id}"
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket                  = aws_s3_bucket.access_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

# S3 server access log delivery supports only SSE-S3 default encryption on the destination bucket (AWS S3
# User Guide, "Enabling Amazon S3 server access logging"); with SSE-KMS, logs are not delivered.
resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    id     = "access-log-retention"
    status = "Enabled"
    filter {}
    expiration {
      days = var.access_log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_retention_days
    }
  }

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.access_logs]
}

resource "aws_s3_bucket_policy" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  policy = data.aws_iam_policy_document.access_logs.json

  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}

data "aws_iam_policy_document" "access_logs" {
  # With ACLs disabled, the logging service is granted by bucket policy, for these two buckets only.
  statement {
    sid = "S3ServerAccessLogDelivery"
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/*"]
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.landing.arn, aws_s3_bucket.lake.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid    = "DenyInsecureTransport"
    effect = "Deny"
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.access_logs.arn, "${aws_s3_bucket.access_logs.arn}/*"]
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}
