# Per environment, two roles GitHub Actions assumes through OIDC:
# - `deploy`  (GitHub environment `<env>`, used by deploy.yml): runs `pulumi up` for that stack.
# - `preview` (GitHub environment `<env>-preview`, used by preview.yml and drift.yml): read-only AWS
#   access and read access to its own stack's state, because a pull request's program code runs with it.
#
# Naming contract with the Pulumi program: the AWS resources it names itself (IAM roles and policies,
# SQS queues, EventBridge rules, S3 buckets) start with `<prefix>-<env>-` (the EKS cluster is named
# `<prefix>-<env>`, so its log group is /aws/eks/<prefix>-<env>/cluster), and
# every IAM role it creates carries the `<prefix>-boundary-<env>` permissions boundary. The bootstrap's
# own roles and the boundary are named `<prefix>-github-*` / `<prefix>-boundary-*` so that the
# `<prefix>-<env>-*` grants below can never reach them.

locals {
  partition = data.aws_partition.current.partition
  iam_arn   = "arn:${local.partition}:iam::${local.account_id}"
  region_account = {
    for env in var.environments : env => "${var.aws_region}:${local.account_id}"
  }
  # The Pulumi DIY backend's project-mode layout for one stack.
  state_objects = {
    for env in var.environments : env => {
      read = [
        "${aws_s3_bucket.state.arn}/.pulumi/meta.yaml",
        "${aws_s3_bucket.state.arn}/.pulumi/stacks/${var.pulumi_project}/${env}.json*",
        "${aws_s3_bucket.state.arn}/.pulumi/history/${var.pulumi_project}/${env}/*",
        "${aws_s3_bucket.state.arn}/.pulumi/backups/${var.pulumi_project}/${env}/*",
        "${aws_s3_bucket.state.arn}/.pulumi/locks/*/${var.pulumi_project}/${env}/*",
      ]
      write = [
        "${aws_s3_bucket.state.arn}/.pulumi/stacks/${var.pulumi_project}/${env}.json*",
        "${aws_s3_bucket.state.arn}/.pulumi/history/${var.pulumi_project}/${env}/*",
        "${aws_s3_bucket.state.arn}/.pulumi/backups/${var.pulumi_project}/${env}/*",
        "${aws_s3_bucket.state.arn}/.pulumi/locks/*/${var.pulumi_project}/${env}/*",
      ]
      locks = ["${aws_s3_bucket.state.arn}/.pulumi/locks/*/${var.pulumi_project}/${env}/*"]
    }
  }
  public_ssm_parameters = "arn:${local.partition}:ssm:${var.aws_region}::parameter/aws/service/*"
}

# --- Trust: one repository, one GitHub environment, audience sts.amazonaws.com -------------------------

data "aws_iam_policy_document" "deploy_trust" {
  for_each = var.environments

  statement {
    sid     = "GitHubEnvironmentOnly"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.github_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = ["${local.github_subject_prefix}${each.key}"]
    }
  }
}

data "aws_iam_policy_document" "preview_trust" {
  for_each = var.environments

  statement {
    sid     = "GitHubPreviewEnvironmentOnly"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.github_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = ["${local.github_subject_prefix}${each.key}-preview"]
    }
  }
}

resource "aws_iam_role" "deploy" {
  for_each = var.environments

  name                 = "${var.name_prefix}-github-deploy-${each.key}"
  description          = "GitHub Actions (environment ${each.key}): pulumi up of the ${each.key} stack"
  assume_role_policy   = data.aws_iam_policy_document.deploy_trust[each.key].json
  max_session_duration = var.deploy_session_seconds

  tags = {
    "mlplat/environment" = each.key
  }
}

resource "aws_iam_role" "preview" {
  for_each = var.environments

  name                 = "${var.name_prefix}-github-preview-${each.key}"
  description          = "GitHub Actions (environment ${each.key}-preview): read-only pulumi preview and drift checks"
  assume_role_policy   = data.aws_iam_policy_document.preview_trust[each.key].json
  max_session_duration = 3600

  tags = {
    "mlplat/environment" = each.key
  }
}

# --- Permissions boundary: the ceiling of every role the Pulumi program creates -------------------------

data "aws_iam_policy_document" "workload_boundary" {
  for_each = var.environments

  # Nodes, Karpenter, the VPC CNI, the EBS CSI driver and the load balancer controller act on EC2, ELB
  # and autoscaling resources whose IDs are created at run time, hence resource "*" within the region.
  statement {
    sid = "ClusterWorkloads"
    actions = [
      "autoscaling:Describe*",
      "cloudwatch:PutMetricData",
      "ec2:*",
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetAuthorizationToken",
      "ecr:GetDownloadUrlForLayer",
      "eks-auth:AssumeRoleForPodIdentity",
      "eks:Describe*",
      "elasticloadbalancing:*",
      "logs:CreateLogStream",
      "logs:DescribeLogStreams",
      "logs:PutLogEvents",
      "pricing:GetProducts",
    ]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestedRegion"
      values   = [var.aws_region, "us-east-1"] # pricing:GetProducts is served from us-east-1
    }
  }

  statement {
    sid       = "PublicAmiParameters"
    actions   = ["ssm:GetParameter"]
    resources = [local.public_ssm_parameters]
  }

  statement {
    sid       = "EnvironmentQueuesAndBuckets"
    actions   = ["sqs:*", "s3:*"]
    resources = ["arn:${local.partition}:sqs:${local.region_account[each.key]}:${var.name_prefix}-${each.key}-*", "arn:${local.partition}:s3:::${var.name_prefix}-${each.key}-*"]
  }

  statement {
    sid       = "EnvironmentKeysByTag"
    actions   = ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/mlplat/environment"
      values   = [each.key]
    }
  }

  # Karpenter creates an instance profile per node class and passes the node role to EC2.
  statement {
    sid = "KarpenterInstanceProfilesAndNodeRole"
    actions = [
      "iam:AddRoleToInstanceProfile",
      "iam:CreateInstanceProfile",
      "iam:DeleteInstanceProfile",
      "iam:GetInstanceProfile",
      "iam:PassRole",
      "iam:RemoveRoleFromInstanceProfile",
      "iam:TagInstanceProfile",
    ]
    resources = ["${local.iam_arn}:instance-profile/*", "${local.iam_arn}:role/${var.name_prefix}-${each.key}-*"]
  }
}

resource "aws_iam_policy" "workload_boundary" {
  for_each = var.environments

  name        = "${var.name_prefix}-boundary-${each.key}"
  description = "Permissions boundary every IAM role of the ${each.key} stack must carry"
  policy      = data.aws_iam_policy_document.workload_boundary[each.key].json
}

# --- Deploy role: state, platform provisioning, IAM within the boundary, guardrails ---------------------

data "aws_iam_policy_document" "deploy_state" {
  for_each = var.environments

  statement {
    sid       = "ListStateBucket"
    actions   = ["s3:GetBucketLocation", "s3:ListBucket"]
    resources = [aws_s3_bucket.state.arn]
  }

  statement {
    sid       = "ReadOwnStackState"
    actions   = ["s3:GetObject"]
    resources = local.state_objects[each.key].read
  }

  statement {
    sid       = "WriteOwnStackState"
    actions   = ["s3:DeleteObject", "s3:PutObject"]
    resources = local.state_objects[each.key].write
  }

  statement {
    sid       = "StateBucketEncryption"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.state.arn]
  }

  statement {
    sid       = "OwnSecretsProvider"
    actions   = local.key_use_actions
    resources = [aws_kms_key.pulumi_secrets[each.key].arn]
  }
}

data "aws_iam_policy_document" "deploy_platform" {
  for_each = var.environments

  # Broad on purpose: the stack creates and replaces VPCs, subnets, NAT gateways, security groups,
  # launch templates, EKS clusters, node groups and add-ons whose IDs only exist after creation, and
  # these services offer no name-based resource scoping for Create calls. Held to the stack's region.
  statement {
    sid       = "ProvisionNetworkAndCluster"
    actions   = ["autoscaling:*", "ec2:*", "eks:*", "elasticloadbalancing:*"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestedRegion"
      values   = [var.aws_region]
    }
  }

  statement {
    sid     = "EnvironmentNamedResources"
    actions = ["events:*", "logs:*", "s3:*", "sqs:*"]
    resources = [
      "arn:${local.partition}:events:${local.region_account[each.key]}:rule/${var.name_prefix}-${each.key}-*",
      "arn:${local.partition}:logs:${local.region_account[each.key]}:log-group:/aws/eks/${var.name_prefix}-${each.key}/*",
      "arn:${local.partition}:s3:::${var.name_prefix}-${each.key}-*",
      "arn:${local.partition}:sqs:${local.region_account[each.key]}:${var.name_prefix}-${each.key}-*",
    ]
  }

  # Describe/List calls of these services only accept resource "*"; they read, never change.
  statement {
    sid = "ReadOnlyLookups"
    actions = [
      "events:DescribeRule",
      "events:ListRules",
      "events:ListTagsForResource",
      "kms:ListAliases",
      "logs:DescribeLogGroups",
      "s3:ListAllMyBuckets",
      "sqs:ListQueues",
      "sts:GetCallerIdentity",
    ]
    resources = ["*"]
  }

  # EKS-optimised and GPU AMI IDs are AWS public parameters; nothing else in SSM is readable.
  statement {
    sid       = "PublicAmiParameters"
    actions   = ["ssm:GetParameter", "ssm:GetParameters"]
    resources = [local.public_ssm_parameters]
  }

  # EKS secrets encryption keys: created only with the environment tag, managed only while tagged.
  statement {
    sid       = "CreateEnvironmentKeys"
    actions   = ["kms:CreateKey", "kms:TagResource"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/mlplat/environment"
      values   = [each.key]
    }
  }

  statement {
    sid = "ManageEnvironmentKeys"
    actions = [
      "kms:CreateGrant",
      "kms:Decrypt",
      "kms:DescribeKey",
      "kms:EnableKeyRotation",
      "kms:Encrypt",
      "kms:GenerateDataKey*",
      "kms:GetKeyPolicy",
      "kms:GetKeyRotationStatus",
      "kms:ListResourceTags",
      "kms:PutKeyPolicy",
      "kms:ScheduleKeyDeletion",
      "kms:UntagResource",
    ]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/mlplat/environment"
      values   = [each.key]
    }
  }

  statement {
    sid     = "EnvironmentKeyAliases"
    actions = ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"]
    # infra/aws/kms.py names every alias alias/<prefix>-<env>-<key>.
    resources = [
      "arn:${local.partition}:kms:${local.region_account[each.key]}:alias/${var.name_prefix}-${each.key}-*",
      "arn:${local.partition}:kms:${local.region_account[each.key]}:key/*",
    ]
  }
}

data "aws_iam_policy_document" "deploy_iam" {
  for_each = var.environments

  statement {
    sid       = "ReadIam"
    actions   = ["iam:Get*", "iam:List*"]
    resources = ["*"]
  }

  # Creating or widening a role is only allowed when the role carries the environment's boundary, so
  # no role the stack creates can exceed workload_boundary, whatever policy is attached to it.
  statement {
    sid = "RolesWithinBoundary"
    actions = [
      "iam:AttachRolePolicy",
      "iam:CreateRole",
      "iam:DeleteRolePolicy",
      "iam:DetachRolePolicy",
      "iam:PutRolePermissionsBoundary",
      "iam:PutRolePolicy",
    ]
    resources = ["${local.iam_arn}:role/${var.name_prefix}-${each.key}-*"]

    condition {
      test     = "StringEquals"
      variable = "iam:PermissionsBoundary"
      values   = [aws_iam_policy.workload_boundary[each.key].arn]
    }
  }

  statement {
    sid = "ManageEnvironmentRoles"
    actions = [
      "iam:DeleteRole",
      "iam:TagRole",
      "iam:UntagRole",
      "iam:UpdateAssumeRolePolicy",
      "iam:UpdateRole",
      "iam:UpdateRoleDescription",
    ]
    resources = ["${local.iam_arn}:role/${var.name_prefix}-${each.key}-*"]
  }

  statement {
    sid = "ManageEnvironmentPoliciesAndProfiles"
    actions = [
      "iam:AddRoleToInstanceProfile",
      "iam:CreateInstanceProfile",
      "iam:CreatePolicy",
      "iam:CreatePolicyVersion",
      "iam:DeleteInstanceProfile",
      "iam:DeletePolicy",
      "iam:DeletePolicyVersion",
      "iam:RemoveRoleFromInstanceProfile",
      "iam:SetDefaultPolicyVersion",
      "iam:TagInstanceProfile",
      "iam:TagPolicy",
      "iam:UntagPolicy",
    ]
    resources = [
      "${local.iam_arn}:instance-profile/${var.name_prefix}-${each.key}-*",
      "${local.iam_arn}:policy/${var.name_prefix}-${each.key}-*",
    ]
  }

  statement {
    sid       = "PassEnvironmentRolesToEksAndEc2"
    actions   = ["iam:PassRole"]
    resources = ["${local.iam_arn}:role/${var.name_prefix}-${each.key}-*"]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ec2.amazonaws.com", "eks.amazonaws.com"]
    }
  }

  # IRSA: the EKS cluster's OIDC issuer (its ID is random, so only the issuer host can be scoped).
  statement {
    sid = "ClusterOidcProvider"
    actions = [
      "iam:AddClientIDToOpenIDConnectProvider",
      "iam:CreateOpenIDConnectProvider",
      "iam:DeleteOpenIDConnectProvider",
      "iam:TagOpenIDConnectProvider",
      "iam:UntagOpenIDConnectProvider",
      "iam:UpdateOpenIDConnectProviderThumbprint",
    ]
    resources = ["${local.iam_arn}:oidc-provider/oidc.eks.${var.aws_region}.amazonaws.com/*"]
  }

  statement {
    sid       = "ServiceLinkedRoles"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["${local.iam_arn}:role/aws-service-role/*"]

    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values = [
        "autoscaling.amazonaws.com",
        "eks-nodegroup.amazonaws.com",
        "eks.amazonaws.com",
        "elasticloadbalancing.amazonaws.com",
        "spot.amazonaws.com",
      ]
    }
  }

  # Guardrails: even a mistake in the grants above cannot touch the bootstrap itself.
  statement {
    sid       = "DenyBootstrapIdentityChanges"
    effect    = "Deny"
    actions   = ["iam:*"]
    resources = ["${local.iam_arn}:role/${var.name_prefix}-github-*", "${local.iam_arn}:policy/${var.name_prefix}-boundary-*", "${local.iam_arn}:oidc-provider/token.actions.githubusercontent.com"]
  }

  statement {
    sid    = "DenyBootstrapStorageChanges"
    effect = "Deny"
    actions = [
      "kms:DisableKey",
      "kms:PutKeyPolicy",
      "kms:ScheduleKeyDeletion",
      "s3:DeleteBucket",
      "s3:DeleteBucketPolicy",
      "s3:PutBucketPolicy",
      "s3:PutBucketVersioning",
      "s3:PutEncryptionConfiguration",
      "s3:PutLifecycleConfiguration",
    ]
    resources = concat([aws_s3_bucket.state.arn, aws_kms_key.state.arn], [for k in aws_kms_key.pulumi_secrets : k.arn])
  }

  statement {
    sid       = "DenyLongLivedCredentials"
    effect    = "Deny"
    actions   = ["iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:CreateUser"]
    resources = ["*"]
  }
}

resource "aws_iam_policy" "deploy_state" {
  for_each = var.environments

  name        = "${var.name_prefix}-github-deploy-${each.key}-state"
  description = "Read and write the ${each.key} stack's Pulumi state and secrets"
  policy      = data.aws_iam_policy_document.deploy_state[each.key].json
}

resource "aws_iam_policy" "deploy_platform" {
  for_each = var.environments

  name        = "${var.name_prefix}-github-deploy-${each.key}-platform"
  description = "Provision the ${each.key} network, EKS cluster and named platform resources"
  policy      = data.aws_iam_policy_document.deploy_platform[each.key].json
}

resource "aws_iam_policy" "deploy_iam" {
  for_each = var.environments

  name        = "${var.name_prefix}-github-deploy-${each.key}-iam"
  description = "Manage the ${each.key} stack's IAM roles inside their permissions boundary"
  policy      = data.aws_iam_policy_document.deploy_iam[each.key].json
}

resource "aws_iam_role_policy_attachment" "deploy_state" {
  for_each = var.environments

  role       = aws_iam_role.deploy[each.key].name
  policy_arn = aws_iam_policy.deploy_state[each.key].arn
}

resource "aws_iam_role_policy_attachment" "deploy_platform" {
  for_each = var.environments

  role       = aws_iam_role.deploy[each.key].name
  policy_arn = aws_iam_policy.deploy_platform[each.key].arn
}

resource "aws_iam_role_policy_attachment" "deploy_iam" {
  for_each = var.environments

  role       = aws_iam_role.deploy[each.key].name
  policy_arn = aws_iam_policy.deploy_iam[each.key].arn
}

# --- Preview role: read-only ---------------------------------------------------------------------------

data "aws_iam_policy_document" "preview" {
  for_each = var.environments

  statement {
    sid       = "ListStateBucket"
    actions   = ["s3:GetBucketLocation", "s3:ListBucket"]
    resources = [aws_s3_bucket.state.arn]
  }

  statement {
    sid       = "ReadOwnStackState"
    actions   = ["s3:GetObject"]
    resources = local.state_objects[each.key].read
  }

  # The DIY backend takes a stack lock even for a preview; the lock objects are the only writes.
  statement {
    sid       = "StackLockOnly"
    actions   = ["s3:DeleteObject", "s3:PutObject"]
    resources = local.state_objects[each.key].locks
  }

  statement {
    sid       = "StateBucketEncryption"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.state.arn]
  }

  statement {
    sid       = "DecryptOwnSecrets"
    actions   = ["kms:Decrypt", "kms:DescribeKey"]
    resources = [aws_kms_key.pulumi_secrets[each.key].arn]
  }

  # Preview and `--refresh` read every resource the stack manages. These List/Describe calls accept
  # only resource "*"; they return metadata, never object or secret contents.
  statement {
    sid = "DescribeUnscopable"
    actions = [
      "autoscaling:Describe*",
      "ec2:Describe*",
      "eks:ListClusters",
      "elasticloadbalancing:Describe*",
      "events:ListRules",
      "kms:ListAliases",
      "logs:DescribeLogGroups",
      "s3:ListAllMyBuckets",
      "sqs:ListQueues",
      "sts:GetCallerIdentity",
    ]
    resources = ["*"]
  }

  statement {
    sid = "ReadAccountResources"
    actions = [
      "eks:Describe*",
      "eks:List*",
      "events:Describe*",
      "events:ListTagsForResource",
      "iam:Get*",
      "iam:List*",
      "kms:DescribeKey",
      "kms:GetKeyPolicy",
      "kms:GetKeyRotationStatus",
      "kms:ListResourceTags",
      "logs:ListTagsForResource",
      "logs:ListTagsLogGroup",
      "sqs:GetQueueAttributes",
      "sqs:ListQueueTags",
    ]
    resources = [
      "arn:${local.partition}:eks:${local.region_account[each.key]}:*",
      "arn:${local.partition}:events:${local.region_account[each.key]}:rule/*",
      "${local.iam_arn}:*",
      "arn:${local.partition}:kms:${local.region_account[each.key]}:key/*",
      "arn:${local.partition}:logs:${local.region_account[each.key]}:log-group:*",
      "arn:${local.partition}:sqs:${local.region_account[each.key]}:*",
    ]
  }

  statement {
    sid       = "ReadEnvironmentBuckets"
    actions   = ["s3:GetBucket*", "s3:GetEncryptionConfiguration", "s3:GetLifecycleConfiguration"]
    resources = ["arn:${local.partition}:s3:::${var.name_prefix}-${each.key}-*"]
  }

  statement {
    sid       = "PublicAmiParameters"
    actions   = ["ssm:GetParameter", "ssm:GetParameters"]
    resources = [local.public_ssm_parameters]
  }
}

resource "aws_iam_policy" "preview" {
  for_each = var.environments

  name        = "${var.name_prefix}-github-preview-${each.key}"
  description = "Read-only preview and drift detection of the ${each.key} stack"
  policy      = data.aws_iam_policy_document.preview[each.key].json
}

resource "aws_iam_role_policy_attachment" "preview" {
  for_each = var.environments

  role       = aws_iam_role.preview[each.key].name
  policy_arn = aws_iam_policy.preview[each.key].arn
}
