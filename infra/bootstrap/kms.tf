# Two kinds of customer-managed keys:
# - `state`: encrypts the state bucket (SSE-KMS); every environment's roles use it, through S3 only.
# - `pulumi_secrets[env]`: one per environment, Pulumi's secrets provider (awskms://) for that stack,
#   so the dev deploy role can never decrypt a prod secret even if it obtained the ciphertext.
# Key policies name their principals explicitly instead of delegating to the account root, so an IAM
# policy elsewhere in the account cannot quietly grant use of these keys.

locals {
  key_admin_actions = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
  ]
  key_use_actions = [
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
  ]
}

# The first statement of every key policy here (the state key, each stack's secrets key, the runners'
# logs key): the admins administer the key. Each key policy takes it through `source_policy_documents`,
# which the provider merges first, before the document's own statements (hashicorp/terraform-provider-aws
# internal/service/iam/policy_document_data_source.go, read at 04e9356d7f061e7be1890e030f420c81a783d651):
# the same statements in the same order as when each policy carried it inline.
# Every statement of a key policy names its principals first: a key policy says who may use the key
# (it does not delegate to IAM), then what they may do.
data "aws_iam_policy_document" "key_administration" {
  statement {
    sid = "KeyAdministration"

    principals {
      type        = "AWS"
      identifiers = var.key_admin_arns
    }

    actions   = local.key_admin_actions
    resources = ["*"] # in a key policy "*" means this key
  }
}

data "aws_iam_policy_document" "state_key" {
  source_policy_documents = [data.aws_iam_policy_document.key_administration.json]

  # The admins initialise and repair the state (`pulumi login`/`stack init` from their machine, restoring
  # an older <stack>.json version, `terraform init -migrate-state` of the bootstrap itself): every
  # object they read or write is encrypted with this key, and without a grant here S3 answers
  # AccessDenied (the key policy does not delegate to IAM). The deploy, preview and drift roles of every
  # environment read and write their stack's state (a preview writes only its lock). Through S3 only, both: one grant, one statement per
  # principal set so that each Sid says whose it is (a map: Terraform iterates it in key order).
  dynamic "statement" {
    for_each = {
      AdminStateReadWriteThroughS3 = var.key_admin_arns
      StateReadWriteThroughS3      = flatten([for role in ["deploy", "preview", "drift"] : [for env in local.environments : aws_iam_role.github["${env}/${role}"].arn]])
    }
    content {
      sid = statement.key

      principals {
        type        = "AWS"
        identifiers = statement.value
      }

      actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
      resources = ["*"]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${var.aws_region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_kms_key" "state" {
  description             = "${var.name_prefix}: Pulumi state bucket encryption"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.state_key.json

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_kms_alias" "state" {
  name          = "alias/${var.name_prefix}-pulumi-state"
  target_key_id = aws_kms_key.state.key_id
}

data "aws_iam_policy_document" "pulumi_secrets_key" {
  for_each = local.environments

  source_policy_documents = [data.aws_iam_policy_document.key_administration.json]

  # The stack's deploy role uses the key, and so do the admins: `pulumi stack init --secrets-provider`
  # and `pulumi stack change-secrets-provider` run from an admin's machine. One grant, one statement
  # per principal set so that each Sid says whose it is (a map: Terraform iterates it in key order).
  dynamic "statement" {
    for_each = {
      AdminSecretsProviderUse      = var.key_admin_arns
      DeployRoleSecretsProviderUse = [aws_iam_role.github["${each.key}/deploy"].arn]
    }
    content {
      sid = statement.key

      principals {
        type        = "AWS"
        identifiers = statement.value
      }

      actions   = local.key_use_actions
      resources = ["*"]
    }
  }

  # A preview (and drift's refreshed preview) decrypts config secrets to run the program but never
  # writes state. Written out, not a row of the grants above: checkov reads no dynamic block, and this is
  # the statement of the document its key-policy checks still see (policies/checkov/iac-skips.yaml).
  statement {
    sid = "PreviewRoleDecryptOnly"

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.github["${each.key}/preview"].arn, aws_iam_role.github["${each.key}/drift"].arn]
    }

    actions   = ["kms:Decrypt", "kms:DescribeKey"]
    resources = ["*"]
  }
}

resource "aws_kms_key" "pulumi_secrets" {
  for_each = local.environments

  description             = "${var.name_prefix}: Pulumi secrets provider for the ${each.key} stack"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.pulumi_secrets_key[each.key].json

  tags = {
    (local.environment_tag) = each.key
  }

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_kms_alias" "pulumi_secrets" {
  for_each = local.environments

  name          = "alias/${var.name_prefix}-pulumi-${each.key}"
  target_key_id = aws_kms_key.pulumi_secrets[each.key].key_id
}
