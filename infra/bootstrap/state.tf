# The Pulumi state bucket (a DIY backend). Every stack's state, its backups and its history live here,
# so it is versioned, encrypted with our own key, private, TLS-only and protected from `destroy`.

locals {
  account_id        = data.aws_caller_identity.current.account_id
  state_bucket_name = coalesce(var.state_bucket_name, "${var.name_prefix}-pulumi-state-${local.account_id}-${var.aws_region}")
}

resource "aws_s3_bucket" "state" {
  bucket = local.state_bucket_name

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket = aws_s3_bucket.state.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# Versioning is the state backup: every `pulumi up` overwrites <stack>.json, and an older version can
# be restored after a corrupting update (docs/runbooks/failed-pulumi-up.md).
resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.state.arn
    }
    # Bucket keys cut KMS calls (and cost) for the many small checkpoint writes of an update.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  # Versioning must be on before noncurrent-version rules mean anything.
  depends_on = [aws_s3_bucket_versioning.state]

  rule {
    id     = "expire-noncurrent-state"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_retention_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_s3_bucket_ownership_controls" "state" {
  bucket = aws_s3_bucket.state.id

  # ACLs disabled: access is decided by IAM and the bucket policy only.
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

data "aws_iam_policy_document" "state_bucket" {
  source_policy_documents = [data.aws_iam_policy_document.state_bucket_admins.json]

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.state.arn,
      "${aws_s3_bucket.state.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  # Objects must be written with our key: a request that sends an encryption header must name our key
  # in it, or it is refused. One statement per header, because the headers are independent: a statement
  # denies only when both of its conditions hold (the header is sent, and with another value), and
  # either statement's deny is enough.
  # - s3:x-amz-server-side-encryption-aws-kms-key-id: a client overriding the default encryption cannot
  #   store state the key policy does not govern. Only when the header is sent: without it the bucket's
  #   default (our key) applies.
  # - s3:x-amz-server-side-encryption: the key-id header is only sent by a request that names a KMS key.
  #   Terraform's S3 backend with `encrypt = true` and no `kms_key_id` sends
  #   `x-amz-server-side-encryption: AES256` instead (hashicorp/terraform
  #   internal/backend/remote-state/s3/client.go, PutObject), which would store state under S3-managed
  #   keys; refuse any encryption header other than aws:kms (AWS S3 docs, "Requiring server-side
  #   encryption": condition key s3:x-amz-server-side-encryption).
  dynamic "statement" {
    for_each = [
      { sid = "DenyOtherEncryptionKeys", header = "s3:x-amz-server-side-encryption-aws-kms-key-id", required = aws_kms_key.state.arn },
      { sid = "DenyNonKmsEncryption", header = "s3:x-amz-server-side-encryption", required = "aws:kms" },
    ]
    content {
      sid       = statement.value.sid
      effect    = "Deny"
      actions   = ["s3:PutObject"]
      resources = ["${aws_s3_bucket.state.arn}/*"]

      principals {
        type        = "*"
        identifiers = ["*"]
      }

      condition {
        test     = "Null"
        variable = statement.value.header
        values   = ["false"]
      }

      condition {
        test     = "StringNotEquals"
        variable = statement.value.header
        values   = [statement.value.required]
      }
    }
  }
}

# The platform admins initialise and repair the state from their own machines (`pulumi stack init`,
# restoring a noncurrent <stack>.json version, `pulumi cancel`) and keep the bootstrap's own state
# under bootstrap/ (README.md). Granted here, next to the data, so it does not depend on whatever IAM
# policies the admin roles happen to carry; the key policy (kms.tf) grants the matching key use.
data "aws_iam_policy_document" "state_bucket_admins" {
  statement {
    sid       = "AdminsListState"
    actions   = ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketVersions"]
    resources = [aws_s3_bucket.state.arn]

    principals {
      type        = "AWS"
      identifiers = var.key_admin_arns
    }
  }

  statement {
    sid       = "AdminsReadWriteState"
    actions   = ["s3:DeleteObject", "s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"]
    resources = ["${aws_s3_bucket.state.arn}/.pulumi/*", "${aws_s3_bucket.state.arn}/bootstrap/*"]

    principals {
      type        = "AWS"
      identifiers = var.key_admin_arns
    }
  }
}

resource "aws_s3_bucket_policy" "state" {
  bucket = aws_s3_bucket.state.id
  policy = data.aws_iam_policy_document.state_bucket.json

  # Applying a policy while the public access block is still being created can fail with a conflict.
  depends_on = [aws_s3_bucket_public_access_block.state]
}

# The DIY backend's marker of a project-layout backend. On first use the CLI writes it itself when the
# bucket is empty (pulumi/pulumi pkg/backend/diy/meta.go, ensurePulumiMeta: `version: 1`, the YAML of
# pulumiMeta{Version: 1}); writing it here instead means no role needs write access outside its own
# stack's objects, and `pulumi login` from CI finds an initialised backend.
resource "aws_s3_object" "pulumi_meta" {
  bucket                 = aws_s3_bucket.state.id
  key                    = ".pulumi/meta.yaml"
  content                = "version: 1\n"
  content_type           = "application/yaml"
  server_side_encryption = "aws:kms"
  kms_key_id             = aws_kms_key.state.arn

  depends_on = [
    aws_s3_bucket_policy.state,
    aws_s3_bucket_server_side_encryption_configuration.state,
    aws_s3_bucket_versioning.state,
  ]
}
