# Per environment, three roles GitHub Actions assumes through OIDC:
# - `deploy`  (GitHub environment `<env>`, used by deploy.yml from main only): `pulumi up` of that stack.
# - `preview` (GitHub environment `<env>-preview`): read-only AWS access and read access to its own
#   stack's state. preview.yml runs a pull request's own code, so the dev preview role trusts
#   pull-request refs (ADR 0002); its cluster access (AmazonEKSViewPolicy) reads no Secret.
# - `drift`   (GitHub environment `<env>-drift`, used by drift.yml from main only): the preview role's
#   AWS access, for `pulumi preview --refresh`. Its cluster access may read Secrets
#   (AmazonEKSAdminViewPolicy, infra/aws/cluster.py), which a refresh needs and a pull request never
#   gets: this role trusts main only, in every environment.
# - `promote` (GitHub environment `<env>-promote`, used by promote.yml from main only, `--to <env>`):
#   reads its cluster's endpoint to build a kubeconfig; in the cluster it may only port-forward to
#   MLflow (`cluster.promote_role_arns`, infra/aws/cluster.py), where the registry gate asks.
#
# Contract with the Pulumi program:
# - the AWS resources it names itself (IAM roles and policies, SQS queues, EventBridge rules, S3
#   buckets, KMS aliases) start with `<prefix>-<env>-`; the EKS cluster is `<prefix>-<env>`, its log
#   group /aws/eks/<prefix>-<env>/cluster;
# - every resource it creates carries the contract's environment tag = <env> (the provider's default tags,
#   infra/program.py), which is what scopes EC2, KMS, IAM roles and OIDC providers to one environment
#   below: services whose IDs are random cannot be scoped by name;
# - every IAM role it creates carries the `<prefix>-boundary-<env>` permissions boundary.
# The bootstrap's own roles and the boundary are named `<prefix>-github-*` / `<prefix>-boundary-*` so
# that the `<prefix>-<env>-*` grants below can never reach them.

locals {
  partition      = data.aws_partition.current.partition
  iam_arn        = "arn:${local.partition}:iam::${local.account_id}"
  region_account = "${var.aws_region}:${local.account_id}"
  # Per environment, the other stacks of the contract (contract.tf.json, which variables.tf holds
  # var.environments to): their resources and cluster tags are refused below even when this account
  # holds only one environment. The contract's environment tag (`local.environment_tag`, the program's
  # default tag, infra/program.py) is what the environment roles are scoped by.
  other_environments = {
    for env in local.environments : env => [for other in local.contract_environments : other if other != env]
  }
  # The conditions that hold a statement to its environment by the environment tag, one owner for what
  # the tag-scoped statements below would otherwise each spell out (the statements of
  # local.environment_scoped_statements and local.tag_held_statements name these): on_resource, the resource acted on already
  # carries this environment's tag; on_request, the request sets it; on_new, the request sets it on a
  # resource that has no environment tag yet (a create, or its tags on create: another environment's
  # resource is never "new"); on_retag, the request sets or removes the environment tag of a resource
  # that has one (refused: re-tagging is how a role would otherwise move a resource across the line).
  environment_tag_conditions = {
    for env in local.environments : env => {
      on_resource = [{ test = "StringEquals", variable = "aws:ResourceTag/${local.environment_tag}", values = [env] }]
      on_request  = [{ test = "StringEquals", variable = "aws:RequestTag/${local.environment_tag}", values = [env] }]
      on_new = [
        { test = "StringEquals", variable = "aws:RequestTag/${local.environment_tag}", values = [env] },
        { test = "Null", variable = "aws:ResourceTag/${local.environment_tag}", values = ["true"] },
      ]
      on_retag = [
        { test = "ForAnyValue:StringEquals", variable = "aws:TagKeys", values = [local.environment_tag] },
        { test = "Null", variable = "aws:ResourceTag/${local.environment_tag}", values = ["false"] },
      ]
    }
  }
  public_ssm_parameters = "arn:${local.partition}:ssm:${var.aws_region}::parameter/aws/service/*"
  # The parameter reads every role here makes only of AWS's public parameters (local.public_ssm_parameters).
  public_parameter_reads = ["ssm:GetParameter", "ssm:GetParameters"]
  # The List/Describe calls both roles make to read the stack's network, cluster, rules, keys, log
  # groups, buckets and queues (a deploy before it changes them, a preview or `--refresh` to compare):
  # they accept only resource "*" and return metadata, never data.
  stack_metadata_lookups = [
    "ec2:Describe*",
    "eks:DescribeAddonVersions",
    "eks:ListClusters",
    "events:ListRules",
    "kms:ListAliases",
    "logs:DescribeLogGroups",
    "s3:ListAllMyBuckets",
    "sqs:ListQueues",
    "sts:GetCallerIdentity",
  ]
  # EC2 calls that create the stack's network resources, and the resource type each one creates. Each
  # must carry the environment tag in its TagSpecifications (the AWS provider sends default tags there).
  # (The peering with the runner VPC and the rule admitting the runner are not here: which VPC and which
  # security group they may name is held in runners.tf, deploy_runner_path.)
  ec2_created_types = {
    AllocateAddress       = "elastic-ip"
    CreateInternetGateway = "internet-gateway"
    CreateLaunchTemplate  = "launch-template"
    CreateNatGateway      = "natgateway"
    CreateRouteTable      = "route-table"
    CreateSecurityGroup   = "security-group"
    CreateSubnet          = "subnet"
    CreateVpc             = "vpc"
  }
  # Karpenter's pricing client calls the Price List API in one fixed region per region prefix
  # (aws/karpenter-provider-aws pkg/providers/pricing/pricing.go NewAPI: ap-* -> ap-south-1,
  # cn-* -> cn-northwest-1, eu-* -> eu-central-1, otherwise us-east-1).
  karpenter_pricing_region = (
    startswith(var.aws_region, "ap-") ? "ap-south-1" :
    startswith(var.aws_region, "cn-") ? "cn-northwest-1" :
    startswith(var.aws_region, "eu-") ? "eu-central-1" : "us-east-1"
  )
}

# --- The GitHub roles: one repository, one GitHub environment, one branch, audience sts.amazonaws.com --

# Per environment, each role GitHub Actions assumes (the header above says what each is for): its
# description, its longest session and the GitHub OIDC subjects it trusts (github_oidc.tf: repository,
# GitHub environment and git ref): the deploy role `<env>` on main; the preview role `<env>-preview` on
# main and, for the pull-request preview environment only, on pull-request refs, admitted through
# StringLike for the pull request's number (the repository and environment stay literal); the drift role
# `<env>-drift` and the promote role `<env>-promote` on main. Each role's name, `<prefix>-github-<role>-<env>`,
# follows from its key: a new name is a new role ("Forces new resource", terraform-provider-aws
# website/docs/r/iam_role.html.markdown), so names and descriptions stay those the roles had as one
# resource each (test_a_moved_role_keeps_its_name_description_session_and_tags).
locals {
  github_roles = {
    for env in local.environments : env => {
      deploy = {
        description     = "GitHub Actions (environment ${env}, main): pulumi up of the ${env} stack"
        session_seconds = var.deploy_session_seconds
        sid             = "GitHubEnvironmentOnMainOnly"
        subject_test    = "StringEquals"
        subjects        = ["${local.github_subject_prefix}${env}:${local.main_ref}"]
      }
      preview = {
        description     = "GitHub Actions (environment ${env}-preview): read-only pulumi preview"
        session_seconds = 3600
        sid             = "GitHubPreviewEnvironment"
        subject_test    = env == local.pull_request_preview_environment ? "StringLike" : "StringEquals"
        subjects = env == local.pull_request_preview_environment ? [
          "${local.github_subject_prefix}${env}-preview:${local.main_ref}",
          "${local.github_subject_prefix}${env}-preview:${local.pull_request_ref}",
        ] : ["${local.github_subject_prefix}${env}-preview:${local.main_ref}"]
      }
      promote = {
        description     = "GitHub Actions (environment ${env}-promote, main): promote.yml's registry gate, through a port-forward to MLflow"
        session_seconds = 3600
        sid             = "GitHubPromoteEnvironmentOnMainOnly"
        subject_test    = "StringEquals"
        subjects        = ["${local.github_subject_prefix}${env}-promote:${local.main_ref}"]
      }
      drift = {
        description     = "GitHub Actions (environment ${env}-drift, main): read-only refreshed preview of drift.yml"
        session_seconds = 3600
        sid             = "GitHubDriftEnvironmentOnMainOnly"
        subject_test    = "StringEquals"
        subjects        = ["${local.github_subject_prefix}${env}-drift:${local.main_ref}"]
      }
    }
  }
  # One instance per role, keyed "<env>/<role>": its trust policy and the role itself.
  github_role_instances = merge([
    for env, roles in local.github_roles : { for role, spec in roles : "${env}/${role}" => merge(spec, { environment = env, role = role }) }
  ]...)
}

data "aws_iam_policy_document" "github_trust" {
  for_each = local.github_role_instances

  statement {
    sid     = each.value.sid
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
      test     = each.value.subject_test
      variable = "token.actions.githubusercontent.com:sub"
      values   = each.value.subjects
    }
  }
}

# moved.tf.json moves the deploy and preview roles from the one resource each they had.
resource "aws_iam_role" "github" {
  for_each = local.github_role_instances

  name                 = "${var.name_prefix}-github-${each.value.role}-${each.value.environment}"
  description          = each.value.description
  assume_role_policy   = data.aws_iam_policy_document.github_trust[each.key].json
  max_session_duration = each.value.session_seconds

  tags = {
    (local.environment_tag) = each.value.environment
  }
}

# --- Nothing of another environment: the last word of each environment's boundary and role policies ----

# One statement, appended to the boundary, the deploy role's platform policy and the preview role's
# policy through `override_policy_documents`: the provider merges those after the document's own
# statements and appends a statement whose Sid the document lacks at its end (hashicorp/
# terraform-provider-aws internal/service/iam/policy_document_data_source.go and iam_policy_model.go
# `IAMPolicyDoc.Merge`, read at 04e9356d7f061e7be1890e030f420c81a783d651), where the three carried it
# inline: the policies' JSON, and so the aws_iam_policy resources, stay as they were.
data "aws_iam_policy_document" "deny_other_environments" {
  for_each = local.environments

  statement {
    sid       = "DenyOtherEnvironments"
    effect    = "Deny"
    actions   = ["*"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.environment_tag}"
      values   = local.other_environments[each.key]
    }
  }
}

# --- Permissions boundary: the ceiling of every role the Pulumi program creates -------------------------

# The boundary's grants on resource "*" that a region holds instead of a name: what the program's roles
# call on resources whose IDs exist only at run time, or on none. Sid => the actions and the one region
# they may be requested in.
locals {
  region_held_boundary_statements = {
    # Nodes, Karpenter, the VPC CNI, the EBS CSI driver and the load balancer controller act on EC2, ELB
    # and autoscaling resources whose IDs are created at run time, hence resource "*" within the region.
    ClusterWorkloads = {
      region = var.aws_region
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
      ]
    }
    # Karpenter's price lookups go to its pricing region, not the stack's (eu-central-1 for eu-* stacks).
    KarpenterPriceList = {
      region  = local.karpenter_pricing_region
      actions = ["pricing:GetProducts"]
    }
    # The node role carries AmazonSSMManagedInstanceCore (Session Manager instead of SSH); these are its
    # actions, v2 of the managed policy:
    # https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AmazonSSMManagedInstanceCore.html
    # (the test holds them to tests/fixtures/aws-managed-policies/AmazonSSMManagedInstanceCore.json).
    # They act on the calling instance's own SSM registration and sessions. Its ssm:GetParameter(s) on
    # "*" stays capped to the public parameters (PublicParameters): a node never needs another
    # environment's SecureStrings to register or open a session.
    SsmManagedInstanceCore = {
      region = var.aws_region
      actions = [
        "ec2messages:AcknowledgeMessage",
        "ec2messages:DeleteMessage",
        "ec2messages:FailMessage",
        "ec2messages:GetEndpoint",
        "ec2messages:GetMessages",
        "ec2messages:SendReply",
        "ssm:DescribeAssociation",
        "ssm:DescribeDocument",
        "ssm:GetDeployablePatchSnapshotForInstance",
        "ssm:GetDocument",
        "ssm:GetManifest",
        "ssm:ListAssociations",
        "ssm:ListInstanceAssociations",
        "ssm:PutComplianceItems",
        "ssm:PutConfigurePackageResult",
        "ssm:PutInventory",
        "ssm:UpdateAssociationStatus",
        "ssm:UpdateInstanceAssociationStatus",
        "ssm:UpdateInstanceInformation",
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
      ]
    }
  }
}

# The region-held statements, each held to its region by aws:RequestedRegion: one document the
# boundary takes first (source_policy_documents), apart because checkov leaves a document with a
# dynamic block unchecked, which would hide the boundary's other statements from it. A map is iterated
# in lexicographical key order (https://developer.hashicorp.com/terraform/language/functions/keys),
# Sid order here, so the statements stand where they stood when each was written out.
data "aws_iam_policy_document" "region_held_boundary" {
  dynamic "statement" {
    for_each = local.region_held_boundary_statements
    content {
      sid       = statement.key
      actions   = statement.value.actions
      resources = ["*"]

      condition {
        test     = "StringEquals"
        variable = "aws:RequestedRegion"
        values   = [statement.value.region]
      }
    }
  }
}

data "aws_iam_policy_document" "workload_boundary" {
  for_each = local.environments

  # First, the statements held to a region.
  source_policy_documents = [data.aws_iam_policy_document.region_held_boundary.json]

  # Last, whatever the grants say: nothing tagged for another environment.
  override_policy_documents = [data.aws_iam_policy_document.deny_other_environments[each.key].json]

  statement {
    sid       = "PublicParameters"
    actions   = local.public_parameter_reads
    resources = [local.public_ssm_parameters]
  }

  statement {
    sid       = "EnvironmentQueuesAndBuckets"
    actions   = ["sqs:*", "s3:*"]
    resources = ["arn:${local.partition}:sqs:${local.region_account}:${var.name_prefix}-${each.key}-*", "arn:${local.partition}:s3:::${var.name_prefix}-${each.key}-*"]
  }

  statement {
    sid       = "EnvironmentKeysByTag"
    actions   = ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.environment_tag}"
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

  # ...and lists them before a node class's finalizer lets go (Karpenter v1.14.1
  # pkg/controllers/nodeclass/controller.go cleanupInstanceProfiles) and in its profile garbage collector;
  # upstream grants it on "*" (AllowUnscopedInstanceProfileListAction). Names only, no permissions.
  statement {
    sid       = "KarpenterListsInstanceProfiles"
    actions   = ["iam:ListInstanceProfiles"]
    resources = ["*"]
  }
}

resource "aws_iam_policy" "workload_boundary" {
  for_each = local.environments

  name        = "${var.name_prefix}-boundary-${each.key}"
  description = "Permissions boundary every IAM role of the ${each.key} stack must carry"
  policy      = data.aws_iam_policy_document.workload_boundary[each.key].json
}

# --- Stack state: what both roles of an environment need of the DIY backend ---------------------------

# The objects the DIY backend reads and writes for one stack of a project-layout backend
# (pulumi/pulumi pkg/backend/diy: meta.go `.pulumi/meta.yaml`; store.go `.pulumi/stacks/<project>/
# <stack>.json` and its `.bak`/`.gz` variants, `.pulumi/history/<project>/<stack>/`,
# `.pulumi/backups/<project>/<stack>/`; lock.go `.pulumi/locks/<org>/<project>/<stack>/<id>.json`, taken
# even by a preview). `.pulumi/meta.yaml` is written once by the bootstrap (state.tf), so no role
# writes outside its own stack.
data "aws_iam_policy_document" "stack_state" {
  for_each = local.environments

  statement {
    sid       = "ListStateBucket"
    actions   = ["s3:GetBucketLocation", "s3:ListBucket"]
    resources = [aws_s3_bucket.state.arn]
  }

  statement {
    sid     = "ReadOwnStackState"
    actions = ["s3:GetObject"]
    resources = [
      "${aws_s3_bucket.state.arn}/.pulumi/meta.yaml",
      "${aws_s3_bucket.state.arn}/.pulumi/stacks/${var.pulumi_project}/${each.key}.json*",
      "${aws_s3_bucket.state.arn}/.pulumi/history/${var.pulumi_project}/${each.key}/*",
      "${aws_s3_bucket.state.arn}/.pulumi/backups/${var.pulumi_project}/${each.key}/*",
      "${aws_s3_bucket.state.arn}/.pulumi/locks/*/${var.pulumi_project}/${each.key}/*",
    ]
  }

  statement {
    sid       = "OwnStackLock"
    actions   = ["s3:DeleteObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.state.arn}/.pulumi/locks/*/${var.pulumi_project}/${each.key}/*"]
  }

  # The key policy (kms.tf) admits these roles through S3 only.
  statement {
    sid       = "StateBucketEncryption"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.state.arn]
  }
}

# --- Deploy role: state, platform provisioning, IAM within the boundary, guardrails ---------------------

data "aws_iam_policy_document" "deploy_state" {
  for_each = local.environments

  source_policy_documents = [data.aws_iam_policy_document.stack_state[each.key].json]

  statement {
    sid     = "WriteOwnStackState"
    actions = ["s3:DeleteObject", "s3:PutObject"]
    resources = [
      "${aws_s3_bucket.state.arn}/.pulumi/stacks/${var.pulumi_project}/${each.key}.json*",
      "${aws_s3_bucket.state.arn}/.pulumi/history/${var.pulumi_project}/${each.key}/*",
      "${aws_s3_bucket.state.arn}/.pulumi/backups/${var.pulumi_project}/${each.key}/*",
    ]
  }

  statement {
    sid       = "OwnSecretsProvider"
    actions   = local.key_use_actions
    resources = [aws_kms_key.pulumi_secrets[each.key].arn]
  }
}

# The conditioned statements of the deploy role, per environment and managed policy: `platform` for
# deploy_platform, `iam` for deploy_iam (two managed policies because IAM caps one at 6,144
# characters). Each statement is held to its environment by the environment tag
# (local.environment_tag_conditions), by its name or its permissions boundary, and a table entry carries
# its conditions as data, so each statement is one entry and the one `dynamic "statement"` of
# data.aws_iam_policy_document.environment_scoped renders them all (and local.tag_held_statements'
# tables, below, for the keys and the cluster OIDC provider).
locals {
  environment_scoped_statements = {
    for env in local.environments : env => {
      # deploy_platform: the environment's network and key aliases, and the network's environment tag.
      platform = [
        # EC2 IDs exist only after creation, so EC2 is scoped by the environment tag: a create call may only
        # create a resource of the type it creates, new (no environment tag yet) and tagged with this
        # environment. The parent it creates it in (the VPC of a subnet, the subnet of a NAT gateway) is
        # authorised separately, by its own tag (ChangeEnvironmentNetwork)...
        {
          sid        = "CreateEnvironmentNetwork"
          actions    = [for action, resource_type in local.ec2_created_types : "ec2:${action}"]
          resources  = [for action, resource_type in local.ec2_created_types : "arn:${local.partition}:ec2:${local.region_account}:${resource_type}/*"]
          conditions = local.environment_tag_conditions[env].on_new
        },
        # ...which EC2 authorises as ec2:CreateTags inside that create call (tag on create)...
        {
          sid       = "TagEnvironmentNetworkOnCreate"
          actions   = ["ec2:CreateTags"]
          resources = [for action, resource_type in local.ec2_created_types : "arn:${local.partition}:ec2:${local.region_account}:${resource_type}/*"]
          conditions = [
            { test = "StringEquals", variable = "ec2:CreateAction", values = keys(local.ec2_created_types) },
            { test = "StringEquals", variable = "aws:RequestTag/${local.environment_tag}", values = [env] },
            { test = "Null", variable = "aws:ResourceTag/${local.environment_tag}", values = ["true"] },
          ]
        },
        # ...and every other EC2 call (including the parent VPC or subnet of a create) acts only on
        # resources already tagged with this environment. Untagged resources (EKS's cluster security group,
        # Karpenter's instances) are out of reach: the deploy role never changes them.
        {
          sid       = "ChangeEnvironmentNetwork"
          actions   = ["ec2:*"]
          resources = ["*"]
          conditions = [
            { test = "StringEquals", variable = "aws:ResourceTag/${local.environment_tag}", values = [env] },
            { test = "StringEquals", variable = "aws:RequestedRegion", values = [var.aws_region] },
          ]
        },
        # An alias call is authorised on the alias and on the key it names: the alias by name
        # (infra/aws/kms.py names every alias alias/<prefix>-<env>-<key>), the key by its tag, so an alias
        # of this environment can never point at another environment's key.
        {
          sid        = "EnvironmentKeyAliases"
          actions    = ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"]
          resources  = ["arn:${local.partition}:kms:${local.region_account}:alias/${var.name_prefix}-${env}-*"]
          conditions = []
        },
        {
          sid        = "AliasTargetsAreEnvironmentKeys"
          actions    = ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"]
          resources  = ["arn:${local.partition}:kms:${local.region_account}:key/*"]
          conditions = local.environment_tag_conditions[env].on_resource
        },
        # The environment tag of an existing resource never changes. EC2 authorises the tags of a
        # create as ec2:CreateTags with ec2:CreateAction set (TagEnvironmentNetworkOnCreate); any other
        # is a re-tag.
        {
          sid       = "DenyEnvironmentRetagOfNetwork"
          effect    = "Deny"
          actions   = ["ec2:CreateTags", "ec2:DeleteTags"]
          resources = ["*"]
          conditions = [
            { test = "ForAnyValue:StringEquals", variable = "aws:TagKeys", values = [local.environment_tag] },
            { test = "Null", variable = "ec2:CreateAction", values = ["true"] },
          ]
        },
      ]
      # deploy_iam: the environment's roles (within its boundary), instance profiles and policies, and the
      # roles' environment tag.
      iam = [
        # Creating or widening a role is only allowed when the role carries the environment's boundary, so
        # no role the stack creates can exceed workload_boundary, whatever policy is attached to it.
        {
          sid = "RolesWithinBoundary"
          actions = [
            "iam:AttachRolePolicy",
            "iam:DeleteRolePolicy",
            "iam:DetachRolePolicy",
            "iam:PutRolePermissionsBoundary",
            "iam:PutRolePolicy",
          ]
          resources  = ["${local.iam_arn}:role/${var.name_prefix}-${env}-*"]
          conditions = [{ test = "StringEquals", variable = "iam:PermissionsBoundary", values = [aws_iam_policy.workload_boundary[env].arn] }]
        },
        # A new role carries the environment tag too, which is what the calls below are scoped by:
        # CreateRole authorises the tags it is given as iam:TagRole on the new role (here), and is allowed
        # only with the tag and the boundary (next).
        {
          sid        = "TagEnvironmentRolesOnCreate"
          actions    = ["iam:TagRole"]
          resources  = ["${local.iam_arn}:role/${var.name_prefix}-${env}-*"]
          conditions = local.environment_tag_conditions[env].on_new
        },
        {
          sid       = "CreateRolesWithinBoundary"
          actions   = ["iam:CreateRole"]
          resources = ["${local.iam_arn}:role/${var.name_prefix}-${env}-*"]
          conditions = [
            { test = "StringEquals", variable = "iam:PermissionsBoundary", values = [aws_iam_policy.workload_boundary[env].arn] },
            { test = "StringEquals", variable = "aws:RequestTag/${local.environment_tag}", values = [env] },
          ]
        },
        # Trust policy, description and tags of a role of this environment only: name and tag must both
        # match, so a role that merely shares the name prefix (or lost its tag) is out of reach.
        {
          sid = "ManageEnvironmentRoles"
          actions = [
            "iam:DeleteRole",
            "iam:TagRole",
            "iam:UntagRole",
            "iam:UpdateAssumeRolePolicy",
            "iam:UpdateRole",
            "iam:UpdateRoleDescription",
          ]
          resources  = ["${local.iam_arn}:role/${var.name_prefix}-${env}-*"]
          conditions = local.environment_tag_conditions[env].on_resource
        },
        {
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
            "${local.iam_arn}:instance-profile/${var.name_prefix}-${env}-*",
            "${local.iam_arn}:policy/${var.name_prefix}-${env}-*",
          ]
          conditions = []
        },
        {
          sid        = "PassEnvironmentRolesToEksAndEc2"
          actions    = ["iam:PassRole"]
          resources  = ["${local.iam_arn}:role/${var.name_prefix}-${env}-*"]
          conditions = [{ test = "StringEquals", variable = "iam:PassedToService", values = ["ec2.amazonaws.com", "eks.amazonaws.com"] }]
        },
        # The environment tag of an existing role never changes.
        {
          sid        = "DenyEnvironmentRetagOfRoles"
          effect     = "Deny"
          actions    = ["iam:TagRole", "iam:UntagRole"]
          resources  = ["*"]
          conditions = local.environment_tag_conditions[env].on_retag
        },
      ]
    }
  }
}

# What the stack creates with a random ID, so that no name can hold it to one environment: its KMS keys
# (infra/aws/kms.py: EKS secrets, EBS) and its cluster's OIDC provider (IRSA; another cluster's provider
# is out of reach). One rule holds each kind to its environment by the environment tag, written once in
# local.tag_held_statements: created only with the tag; tagged on create only while new (CreateKey
# authorises its tags as kms:TagResource on a key that has none yet, CreateOpenIDConnectProvider as
# iam:TagOpenIDConnectProvider on the new provider); managed only while it carries the tag; never
# re-tagged. Each kind's statements are a table of their own (`keys` for deploy_platform,
# `oidc_provider` for deploy_iam), named <verb><noun> (CreateEnvironmentKeys, ManageClusterOidcProvider).
# A new kind is one entry here and its table in the source_policy_documents of the policy that takes
# it; never named like a table of local.environment_scoped_statements, which `merge` would replace.
locals {
  tag_held_kinds = {
    keys = {
      noun      = "EnvironmentKeys"
      resources = ["*"]
      create    = "kms:CreateKey"
      tag       = "kms:TagResource"
      untag     = "kms:UntagResource"
      manage = [
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
        "kms:TagResource",
        "kms:UntagResource",
      ]
    }
    oidc_provider = {
      noun      = "ClusterOidcProvider"
      resources = ["${local.iam_arn}:oidc-provider/oidc.eks.${var.aws_region}.amazonaws.com/*"]
      create    = "iam:CreateOpenIDConnectProvider"
      tag       = "iam:TagOpenIDConnectProvider"
      untag     = "iam:UntagOpenIDConnectProvider"
      manage = [
        "iam:AddClientIDToOpenIDConnectProvider",
        "iam:DeleteOpenIDConnectProvider",
        "iam:RemoveClientIDFromOpenIDConnectProvider",
        "iam:TagOpenIDConnectProvider",
        "iam:UntagOpenIDConnectProvider",
        "iam:UpdateOpenIDConnectProviderThumbprint",
      ]
    }
  }
  tag_held_statements = {
    for env in local.environments : env => {
      for kind, held in local.tag_held_kinds : kind => [
        { sid = "Create${held.noun}", actions = [held.create], resources = held.resources, conditions = local.environment_tag_conditions[env].on_request },
        { sid = "Tag${held.noun}OnCreate", actions = [held.tag], resources = held.resources, conditions = local.environment_tag_conditions[env].on_new },
        { sid = "Manage${held.noun}", actions = held.manage, resources = held.resources, conditions = local.environment_tag_conditions[env].on_resource },
        { sid = "DenyRetagOf${held.noun}", effect = "Deny", actions = [held.tag, held.untag], resources = ["*"], conditions = local.environment_tag_conditions[env].on_retag },
      ]
    }
  }
}

# One document per environment and table of local.environment_scoped_statements and
# local.tag_held_statements (their table names never meet), keyed "<env>/<table>"; each managed policy takes its table through `source_policy_documents`, which the
# provider merges first, before the document's own statements (hashicorp/terraform-provider-aws
# internal/service/iam/policy_document_data_source.go, read at 04e9356d7f061e7be1890e030f420c81a783d651).
data "aws_iam_policy_document" "environment_scoped" {
  for_each = merge([
    for env in local.environments : {
      for table, statements in merge(local.environment_scoped_statements[env], local.tag_held_statements[env]) : "${env}/${table}" => statements
    }
  ]...)

  dynamic "statement" {
    for_each = each.value
    content {
      sid       = statement.value.sid
      effect    = try(statement.value.effect, "Allow")
      actions   = statement.value.actions
      resources = statement.value.resources

      dynamic "condition" {
        for_each = statement.value.conditions
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

data "aws_iam_policy_document" "deploy_iam" {
  for_each = local.environments

  # First, the conditioned statements (`iam` of local.environment_scoped_statements, `oidc_provider` of
  # local.tag_held_statements).
  source_policy_documents = [
    data.aws_iam_policy_document.environment_scoped["${each.key}/iam"].json,
    data.aws_iam_policy_document.environment_scoped["${each.key}/oidc_provider"].json,
  ]

  statement {
    sid       = "ReadIam"
    actions   = ["iam:Get*", "iam:List*"]
    resources = ["*"]
  }

  # EKS creates its own service-linked roles on first use in an account (the cluster, managed node
  # groups, their Auto Scaling groups). Spot's is the bootstrap's (service_linked_roles.tf).
  statement {
    sid     = "ServiceLinkedRoles"
    actions = ["iam:CreateServiceLinkedRole"]
    resources = [
      "${local.iam_arn}:role/aws-service-role/autoscaling.amazonaws.com/*",
      "${local.iam_arn}:role/aws-service-role/eks-nodegroup.amazonaws.com/*",
      "${local.iam_arn}:role/aws-service-role/eks.amazonaws.com/*",
    ]

    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values = [
        "autoscaling.amazonaws.com",
        "eks-nodegroup.amazonaws.com",
        "eks.amazonaws.com",
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

# EKS-optimised and GPU AMI IDs are AWS public parameters; nothing else in SSM is readable. One
# statement both roles take through source_policy_documents: it stands among the first of their
# policies where each once wrote it last, which the provider does not count as a change (the `policy`
# of aws_iam_policy compares as equivalent policies: hashicorp/terraform-provider-aws
# internal/service/iam/policy.go, DiffSuppressFunc verify.SuppressEquivalentPolicyDiffs, read at
# fd91d1b7945cd7b14e91b4f8e9770d14a6f793d9; hashicorp/awspolicyequivalence aws_policy_equivalence.go,
# policyDocument.equals, which matches statements in any order, read at
# 3ec3a9689639fea175d996a69a8bd0b28f019d5a).
data "aws_iam_policy_document" "public_ami_parameters" {
  statement {
    sid       = "PublicAmiParameters"
    actions   = local.public_parameter_reads
    resources = [local.public_ssm_parameters]
  }
}

data "aws_iam_policy_document" "deploy_platform" {
  for_each = local.environments

  # First, the conditioned statements (`platform` of local.environment_scoped_statements, `keys` of
  # local.tag_held_statements), and the public AMI parameters.
  source_policy_documents = [
    data.aws_iam_policy_document.environment_scoped["${each.key}/platform"].json,
    data.aws_iam_policy_document.environment_scoped["${each.key}/keys"].json,
    data.aws_iam_policy_document.public_ami_parameters.json,
  ]

  # Last, whatever the grants say: nothing tagged for another environment.
  override_policy_documents = [data.aws_iam_policy_document.deny_other_environments[each.key].json]

  # The environment's cluster and what lives under it, by name (eks:* because the add-on, access-entry
  # and node-group APIs grow with every EKS release; none of it reaches another cluster).
  statement {
    sid     = "OwnCluster"
    actions = ["eks:*"]
    resources = [
      "arn:${local.partition}:eks:${local.region_account}:cluster/${var.name_prefix}-${each.key}",
      "arn:${local.partition}:eks:${local.region_account}:nodegroup/${var.name_prefix}-${each.key}/*",
      "arn:${local.partition}:eks:${local.region_account}:addon/${var.name_prefix}-${each.key}/*",
      "arn:${local.partition}:eks:${local.region_account}:access-entry/${var.name_prefix}-${each.key}/*",
      "arn:${local.partition}:eks:${local.region_account}:identityproviderconfig/${var.name_prefix}-${each.key}/*",
      "arn:${local.partition}:eks:${local.region_account}:podidentityassociation/${var.name_prefix}-${each.key}/*",
    ]
  }

  statement {
    sid     = "EnvironmentNamedResources"
    actions = ["events:*", "logs:*", "s3:*", "sqs:*"]
    resources = [
      "arn:${local.partition}:events:${local.region_account}:rule/${var.name_prefix}-${each.key}-*",
      "arn:${local.partition}:logs:${local.region_account}:log-group:/aws/eks/${var.name_prefix}-${each.key}/*",
      "arn:${local.partition}:s3:::${var.name_prefix}-${each.key}-*",
      "arn:${local.partition}:sqs:${local.region_account}:${var.name_prefix}-${each.key}-*",
    ]
  }

  # Describe/List calls of these services only accept resource "*"; they return metadata, never data.
  # (events:DescribeRule and ListTagsForResource are authorised on the rule's ARN, so the stack's own rules
  # are read through EnvironmentNamedResources above: EventBridge API reference, ListTagsForResource
  # "ResourceARN"; the IAM reference widdix/complete-aws-iam-reference services/events.md, DescribeRule on
  # arn:$partition:events:$region:$account:rule/$rulename.)
  statement {
    sid = "ReadOnlyLookups"
    actions = concat(local.stack_metadata_lookups, [
      "eks:DescribeAddonConfiguration",
      "eks:DescribeClusterVersions",
      "eks:ListAccessPolicies",
    ])
    resources = ["*"]
  }

  # Karpenter (infra/aws/karpenter.py) and the AWS cloud integrations pick subnets and security groups by
  # these tags: another environment's cluster name on this environment's network would make that
  # cluster launch nodes (or load balancers) into it.
  statement {
    sid       = "DenyOtherClustersDiscoveryTags"
    effect    = "Deny"
    actions   = ["ec2:CreateTags"]
    resources = ["*"]

    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "aws:TagKeys"
      values   = [for other in local.other_environments[each.key] : "kubernetes.io/cluster/${var.name_prefix}-${other}"]
    }
  }

  statement {
    sid       = "DenyOtherClustersKarpenterDiscovery"
    effect    = "Deny"
    actions   = ["ec2:CreateTags"]
    resources = ["*"]

    condition {
      test     = "StringNotEquals"
      variable = "aws:RequestTag/karpenter.sh/discovery"
      values   = ["${var.name_prefix}-${each.key}"]
    }

    condition {
      test     = "Null"
      variable = "aws:RequestTag/karpenter.sh/discovery"
      values   = ["false"]
    }
  }
}

# --- Preview role: read-only ---------------------------------------------------------------------------

data "aws_iam_policy_document" "preview" {
  for_each = local.environments

  # Last, whatever the grants say: nothing tagged for another environment.
  override_policy_documents = [data.aws_iam_policy_document.deny_other_environments[each.key].json]

  # Reads its own stack and takes its lock; writes nothing else. Reads the public AMI parameters.
  source_policy_documents = [
    data.aws_iam_policy_document.stack_state[each.key].json,
    data.aws_iam_policy_document.public_ami_parameters.json,
  ]

  # A preview decrypts the stack's secrets to run the program, so the preview role of an environment
  # whose previews run unreviewed code (dev) must never be able to decrypt anything but dev (ADR 0002).
  statement {
    sid       = "DecryptOwnSecrets"
    actions   = ["kms:Decrypt", "kms:DescribeKey"]
    resources = [aws_kms_key.pulumi_secrets[each.key].arn]
  }

  # Preview and `--refresh` read every resource the stack manages. These List/Describe calls accept
  # only resource "*"; they return metadata, never object or secret contents.
  statement {
    sid       = "DescribeUnscopable"
    actions   = concat(local.stack_metadata_lookups, ["autoscaling:Describe*", "elasticloadbalancing:Describe*"])
    resources = ["*"]
  }

  # The stack's own named resources (`--refresh` of the EventBridge targets calls ListTargetsByRule).
  statement {
    sid = "ReadEnvironmentResources"
    actions = [
      "eks:Describe*",
      "eks:List*",
      "events:Describe*",
      "events:ListTagsForResource",
      "events:ListTargetsByRule",
      "logs:ListTagsForResource",
      "logs:ListTagsLogGroup",
      "sqs:GetQueueAttributes",
      "sqs:ListQueueTags",
    ]
    resources = [
      "arn:${local.partition}:eks:${local.region_account}:cluster/${var.name_prefix}-${each.key}",
      "arn:${local.partition}:eks:${local.region_account}:nodegroup/${var.name_prefix}-${each.key}/*",
      "arn:${local.partition}:eks:${local.region_account}:addon/${var.name_prefix}-${each.key}/*",
      "arn:${local.partition}:eks:${local.region_account}:access-entry/${var.name_prefix}-${each.key}/*",
      "arn:${local.partition}:events:${local.region_account}:rule/${var.name_prefix}-${each.key}-*",
      "arn:${local.partition}:logs:${local.region_account}:log-group:/aws/eks/${var.name_prefix}-${each.key}/*",
      "arn:${local.partition}:sqs:${local.region_account}:${var.name_prefix}-${each.key}-*",
    ]
  }

  statement {
    sid       = "ReadIam"
    actions   = ["iam:Get*", "iam:List*"]
    resources = ["${local.iam_arn}:*"]
  }

  statement {
    sid       = "ReadEnvironmentKeys"
    actions   = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"]
    resources = ["arn:${local.partition}:kms:${local.region_account}:key/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.environment_tag}"
      values   = [each.key]
    }
  }

  statement {
    sid       = "ReadEnvironmentBuckets"
    actions   = ["s3:GetBucket*", "s3:GetEncryptionConfiguration", "s3:GetLifecycleConfiguration"]
    resources = ["arn:${local.partition}:s3:::${var.name_prefix}-${each.key}-*"]
  }
}

# The promote role's AWS access: its cluster's endpoint and certificate, which `aws eks update-kubeconfig`
# reads (eks:DescribeCluster); the kubeconfig's token is a presigned sts:GetCallerIdentity, which needs
# no permission (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html: "No
# permissions are required to perform this operation"). No state, no key, nothing else.
data "aws_iam_policy_document" "promote" {
  for_each = local.environments

  override_policy_documents = [data.aws_iam_policy_document.deny_other_environments[each.key].json]

  statement {
    sid       = "DescribeOwnCluster"
    actions   = ["eks:DescribeCluster"]
    resources = ["arn:${local.partition}:eks:${local.region_account}:cluster/${var.name_prefix}-${each.key}"]
  }
}

# --- The roles' managed policies ---------------------------------------------------------------------

# Per environment, each managed policy of the three roles with the role it is attached to: the deploy
# role's three (state, platform, iam: IAM caps one managed policy at 6,144 characters), the preview
# role's one and the drift role's, the preview role's document: a drift check reads what a preview reads
# in AWS (it differs from a preview only in the cluster, infra/aws/cluster.py). The preview policy's
# description still names drift detection: a policy's description cannot change in place (the provider
# replaces the policy, its role without it in between; test_a_moved_policy_keeps_the_name_and_description_it_had). One aws_iam_policy and one attachment per entry, keyed "<env>/<policy>" (the addresses
# moved.tf.json moves the former one-resource-per-policy instances to).
locals {
  github_role_policies = {
    for env in local.environments : env => {
      deploy_state    = { role = aws_iam_role.github["${env}/deploy"].name, document = data.aws_iam_policy_document.deploy_state[env].json, name = "deploy-${env}-state", description = "Read and write the ${env} stack's Pulumi state and secrets" }
      deploy_platform = { role = aws_iam_role.github["${env}/deploy"].name, document = data.aws_iam_policy_document.deploy_platform[env].json, name = "deploy-${env}-platform", description = "Provision the ${env} network, EKS cluster and named platform resources" }
      deploy_iam      = { role = aws_iam_role.github["${env}/deploy"].name, document = data.aws_iam_policy_document.deploy_iam[env].json, name = "deploy-${env}-iam", description = "Manage the ${env} stack's IAM roles inside their permissions boundary" }
      preview         = { role = aws_iam_role.github["${env}/preview"].name, document = data.aws_iam_policy_document.preview[env].json, name = "preview-${env}", description = "Read-only preview and drift detection of the ${env} stack" }
      drift           = { role = aws_iam_role.github["${env}/drift"].name, document = data.aws_iam_policy_document.preview[env].json, name = "drift-${env}", description = "Read-only refreshed preview (drift detection) of the ${env} stack" }
      promote         = { role = aws_iam_role.github["${env}/promote"].name, document = data.aws_iam_policy_document.promote[env].json, name = "promote-${env}", description = "Build a kubeconfig for the ${env} cluster (promote.yml's port-forward to MLflow)" }
    }
  }
  github_role_policy_instances = merge([
    for env, policies in local.github_role_policies : { for policy, spec in policies : "${env}/${policy}" => spec }
  ]...)
}

resource "aws_iam_policy" "github_role" {
  for_each = local.github_role_policy_instances

  name        = "${var.name_prefix}-github-${each.value.name}"
  description = each.value.description
  policy      = each.value.document
}

resource "aws_iam_role_policy_attachment" "github_role" {
  for_each = local.github_role_policy_instances

  role       = each.value.role
  policy_arn = aws_iam_policy.github_role[each.key].arn
}

# --- The deploy role's inline policies ------------------------------------------------------------------

# Per environment, the inline policies its deploy role carries beside the managed ones, by policy name:
# the runner network it must leave alone and its own path to its runner (runners.tf), and the quota
# reads of `mlplat preflight` (preflight.tf). One resource holds them all, keyed "<env>/<name>";
# moved.tf.json moves the addresses they had as one resource each. AWS knows an inline policy by its
# role and name, and neither changes.
locals {
  deploy_inline_policies = {
    for env in local.environments : env => {
      keep-runner-network = data.aws_iam_policy_document.deploy_keeps_runners.json
      open-runner-path    = data.aws_iam_policy_document.deploy_runner_path[env].json
      preflight-reads     = data.aws_iam_policy_document.deploy_preflight.json
    }
  }
}

resource "aws_iam_role_policy" "deploy" {
  for_each = merge([
    for env, policies in local.deploy_inline_policies : {
      for name, policy in policies : "${env}/${name}" => { environment = env, name = name, policy = policy }
    }
  ]...)

  name   = each.value.name
  role   = aws_iam_role.github["${each.value.environment}/deploy"].id
  policy = each.value.policy
}
