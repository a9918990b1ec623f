# The deploy path to private cluster endpoints (docs/adr/0003-deploy-path-to-private-endpoints.md):
# per environment, an ephemeral GitHub Actions runner hosted by AWS CodeBuild inside a small runner VPC
# that the bootstrap creates before any stack exists. The Pulumi program peers each cluster VPC with
# this VPC and admits only that environment's runner security group to its cluster endpoint on 443, so
# even the very first `pulumi up` of an environment (whose VPC does not exist yet) reaches the API of
# the cluster it is creating.
#
# Upstream facts relied on:
# - Workflow jobs select the runner with `runs-on: codebuild-<project>-${{ github.run_id }}-${{ github.run_attempt }}`,
#   and the project's webhook must listen to WORKFLOW_JOB_QUEUED:
#   https://docs.aws.amazon.com/codebuild/latest/userguide/action-runner.html and
#   https://docs.aws.amazon.com/codebuild/latest/userguide/sample-github-action-runners-update-labels.html
# - Webhook filter types (EVENT, WORKFLOW_NAME) and the CODECONNECTIONS source credential:
#   hashicorp/terraform-provider-aws website/docs/r/codebuild_webhook.html.markdown and
#   codebuild_source_credential.html.markdown (provider 6.21.0, versions.tf).
# - CodeBuild in a VPC needs private subnets with a NAT route and these EC2 permissions on its service
#   role: https://docs.aws.amazon.com/codebuild/latest/userguide/vpc-support.html and
#   https://docs.aws.amazon.com/codebuild/latest/userguide/auth-and-access-control-iam-identity-based-access-control.html
# - A private-only EKS endpoint's name resolves (in public DNS) to its private IPs, so a peered VPC
#   reaches it once routes and the cluster security group allow it; with public access also on (dev),
#   clients outside the cluster VPC resolve the public IPs and must be in public_access_cidrs:
#   https://docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html

variable "runner_vpc_cidr" {
  description = "Address range of the runner VPC; must not overlap any environment's mlplat:network.vpc_cidr (the VPCs are peered)."
  type        = string
  default     = "10.255.0.0/24"

  validation {
    condition     = can(cidrhost(var.runner_vpc_cidr, 0)) && tonumber(split("/", var.runner_vpc_cidr)[1]) <= 24
    error_message = "runner_vpc_cidr must be an IPv4 CIDR of /24 or larger (two private subnets and a public one)."
  }
}

variable "runner_compute_type" {
  description = "CodeBuild compute type of the runners: a `pulumi up` of the whole platform needs more than the smallest."
  type        = string
  default     = "BUILD_GENERAL1_MEDIUM"
}

# Ubuntu 22.04: actions/setup-python only ships interpreters built for the GitHub-hosted Ubuntu
# releases (actions/setup-python docs/advanced-usage.md, "Using setup-python with a self hosted
# runner"), and the image carries the AWS CLI the kubeconfig's `aws eks get-token` runs.
variable "runner_image" {
  description = "CodeBuild curated image the runner jobs run in (Ubuntu 22.04, x86_64)."
  type        = string
  default     = "aws/codebuild/standard:7.0"
}

locals {
  runner_name = { for env in var.environments : env => "${var.name_prefix}-github-runner-${env}" }
  # Only these workflows may start an in-VPC runner; every other workflow runs on GitHub-hosted runners.
  runner_workflows = "^(deploy|preview|drift)$"
  # Two zones by name: a fixed pair, so the subnets never move when a region gains a zone.
  runner_azs = ["${var.aws_region}a", "${var.aws_region}b"]
}

# --- The runner VPC: two private subnets (CodeBuild gets no public IP), one NAT for egress --------------

resource "aws_vpc" "runner" {
  cidr_block           = var.runner_vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = "${var.name_prefix}-github-runners" }
}

# The default security group admits nothing: every runner uses its environment's own group.
resource "aws_default_security_group" "runner" {
  vpc_id = aws_vpc.runner.id
}

resource "aws_subnet" "runner_private" {
  count = length(local.runner_azs)

  vpc_id            = aws_vpc.runner.id
  availability_zone = local.runner_azs[count.index]
  cidr_block        = cidrsubnet(var.runner_vpc_cidr, 2, count.index)

  tags = { Name = "${var.name_prefix}-github-runners-private-${local.runner_azs[count.index]}" }
}

resource "aws_subnet" "runner_public" {
  vpc_id                  = aws_vpc.runner.id
  availability_zone       = local.runner_azs[0]
  cidr_block              = cidrsubnet(var.runner_vpc_cidr, 2, 3)
  map_public_ip_on_launch = false

  tags = { Name = "${var.name_prefix}-github-runners-nat" }
}

resource "aws_internet_gateway" "runner" {
  vpc_id = aws_vpc.runner.id
}

resource "aws_eip" "runner_nat" {
  domain = "vpc"

  tags = { Name = "${var.name_prefix}-github-runners-nat" }
}

resource "aws_nat_gateway" "runner" {
  allocation_id = aws_eip.runner_nat.id
  subnet_id     = aws_subnet.runner_public.id

  depends_on = [aws_internet_gateway.runner]
}

resource "aws_route_table" "runner_public" {
  vpc_id = aws_vpc.runner.id
}

resource "aws_route" "runner_public_internet" {
  route_table_id         = aws_route_table.runner_public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.runner.id
}

resource "aws_route_table_association" "runner_public" {
  subnet_id      = aws_subnet.runner_public.id
  route_table_id = aws_route_table.runner_public.id
}

# Routes are separate resources (no inline `route` blocks), so the routes the Pulumi program adds
# towards each peered cluster VPC are never removed by the next `terraform apply`.
resource "aws_route_table" "runner_private" {
  vpc_id = aws_vpc.runner.id

  tags = { Name = "${var.name_prefix}-github-runners-private" }
}

resource "aws_route" "runner_private_egress" {
  route_table_id         = aws_route_table.runner_private.id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.runner.id
}

resource "aws_route_table_association" "runner_private" {
  count = length(aws_subnet.runner_private)

  subnet_id      = aws_subnet.runner_private[count.index].id
  route_table_id = aws_route_table.runner_private.id
}

# Flow logs of the runner VPC: the record of what CI jobs talked to.
resource "aws_cloudwatch_log_group" "runner_flow_logs" {
  name              = "/${var.name_prefix}/github-runners/vpc-flow-logs"
  retention_in_days = 365
  kms_key_id        = aws_kms_key.runner_logs.arn
}

data "aws_iam_policy_document" "runner_flow_logs_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

data "aws_iam_policy_document" "runner_flow_logs" {
  statement {
    sid       = "WriteRunnerFlowLogs"
    actions   = ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.runner_flow_logs.arn}:*"]
  }
}

resource "aws_iam_role" "runner_flow_logs" {
  name               = "${var.name_prefix}-github-runners-flow-logs"
  description        = "VPC flow logs of the GitHub runner VPC"
  assume_role_policy = data.aws_iam_policy_document.runner_flow_logs_trust.json
}

resource "aws_iam_role_policy" "runner_flow_logs" {
  name   = "write-flow-logs"
  role   = aws_iam_role.runner_flow_logs.id
  policy = data.aws_iam_policy_document.runner_flow_logs.json
}

resource "aws_flow_log" "runner" {
  vpc_id          = aws_vpc.runner.id
  traffic_type    = "ALL"
  log_destination = aws_cloudwatch_log_group.runner_flow_logs.arn
  iam_role_arn    = aws_iam_role.runner_flow_logs.arn
}

# --- Per environment: the security group the cluster admits, and nothing inbound -----------------------

resource "aws_security_group" "runner" {
  for_each = var.environments

  name        = local.runner_name[each.key]
  description = "GitHub runner of the ${each.key} stack; the ${each.key} cluster endpoint admits only this group"
  vpc_id      = aws_vpc.runner.id

  tags = { "mlplat/environment" = each.key }
}

# HTTPS out only: GitHub, the package registries, the AWS APIs and the peered cluster endpoint.
# DNS goes to the VPC resolver, which security groups do not filter.
resource "aws_vpc_security_group_egress_rule" "runner_https" {
  for_each = var.environments

  security_group_id = aws_security_group.runner[each.key].id
  description       = "HTTPS to GitHub, registries, AWS APIs and the ${each.key} cluster endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# --- Logs, encrypted with a key of their own ------------------------------------------------------------

data "aws_iam_policy_document" "runner_logs_key" {
  statement {
    sid       = "KeyAdministration"
    actions   = local.key_admin_actions
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = var.key_admin_arns
    }
  }

  # CloudWatch Logs encrypts the runner and flow-log groups; only log groups of this account qualify.
  statement {
    sid       = "CloudWatchLogsUse"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*", "kms:DescribeKey"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${var.aws_region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.aws_region}:${local.account_id}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "runner_logs" {
  description             = "${var.name_prefix}: logs of the GitHub runners and their VPC"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.runner_logs_key.json

  # Losing the key loses the runners' logs: the record of what deployed what.
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "runner" {
  for_each = var.environments

  name              = "/aws/codebuild/${local.runner_name[each.key]}"
  retention_in_days = 365
  kms_key_id        = aws_kms_key.runner_logs.arn
}

# --- The runner's own role: network interfaces and logs, nothing else -----------------------------------
# Jobs assume the environment's deploy or preview role through GitHub OIDC; this role is what CodeBuild
# itself needs, and is also what any code in the job could use, so it holds no platform permission.

data "aws_iam_policy_document" "runner_trust" {
  for_each = var.environments

  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["codebuild.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:codebuild:${var.aws_region}:${local.account_id}:project/${local.runner_name[each.key]}"]
    }
  }
}

data "aws_iam_policy_document" "runner" {
  for_each = var.environments

  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.runner[each.key].arn}:*"]
  }

  # CodeBuild creates an ENI per build in the runner subnets. Describe and ENI calls take resource "*".
  statement {
    sid = "VpcNetworkInterfaces"
    actions = [
      "ec2:CreateNetworkInterface",
      "ec2:DeleteNetworkInterface",
      "ec2:DescribeDhcpOptions",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeSubnets",
      "ec2:DescribeVpcs",
    ]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestedRegion"
      values   = [var.aws_region]
    }
  }

  statement {
    sid       = "NetworkInterfacePermissionInRunnerSubnets"
    actions   = ["ec2:CreateNetworkInterfacePermission"]
    resources = ["arn:${local.partition}:ec2:${var.aws_region}:${local.account_id}:network-interface/*"]

    condition {
      test     = "StringEquals"
      variable = "ec2:AuthorizedService"
      values   = ["codebuild.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "ec2:Subnet"
      values   = [for s in aws_subnet.runner_private : s.arn]
    }
  }

  statement {
    sid       = "GitHubConnection"
    actions   = ["codeconnections:GetConnection", "codeconnections:GetConnectionToken", "codeconnections:UseConnection"]
    resources = [aws_codeconnections_connection.github.arn]
  }
}

resource "aws_iam_role" "runner" {
  for_each = var.environments

  name               = local.runner_name[each.key]
  description        = "CodeBuild-hosted GitHub runner of the ${each.key} stack (ENIs and logs only)"
  assume_role_policy = data.aws_iam_policy_document.runner_trust[each.key].json

  tags = { "mlplat/environment" = each.key }
}

resource "aws_iam_role_policy" "runner" {
  for_each = var.environments

  name   = "runner"
  role   = aws_iam_role.runner[each.key].id
  policy = data.aws_iam_policy_document.runner[each.key].json
}

# --- GitHub connection, runner projects and their webhooks ----------------------------------------------
# The connection is created PENDING; a person completes it once in the console (installing the AWS
# Connector GitHub App on the organisation) before the projects and webhooks can be created
# (docs/runbooks/first-deployment.md).

resource "aws_codeconnections_connection" "github" {
  name          = "${var.name_prefix}-github"
  provider_type = "GitHub"
}

# CodeBuild keeps one GitHub credential per region and account; this makes it the connection above.
resource "aws_codebuild_source_credential" "github" {
  auth_type   = "CODECONNECTIONS"
  server_type = "GITHUB"
  token       = aws_codeconnections_connection.github.arn
}

resource "aws_codebuild_project" "runner" {
  for_each = var.environments

  name          = local.runner_name[each.key]
  description   = "Ephemeral GitHub Actions runner in the runner VPC for the ${each.key} stack"
  service_role  = aws_iam_role.runner[each.key].arn
  build_timeout = 150 # deploy.yml gives `pulumi up` 120 minutes

  artifacts {
    type = "NO_ARTIFACTS"
  }

  environment {
    type            = "LINUX_CONTAINER"
    compute_type    = var.runner_compute_type
    image           = var.runner_image
    privileged_mode = false
  }

  source {
    type     = "GITHUB"
    location = "https://github.com/${var.github_org}/${var.github_repo}.git"
  }

  vpc_config {
    vpc_id             = aws_vpc.runner.id
    subnets            = aws_subnet.runner_private[*].id
    security_group_ids = [aws_security_group.runner[each.key].id]
  }

  logs_config {
    cloudwatch_logs {
      status     = "ENABLED"
      group_name = aws_cloudwatch_log_group.runner[each.key].name
    }
  }

  tags = { "mlplat/environment" = each.key }

  depends_on = [aws_codebuild_source_credential.github, aws_iam_role_policy.runner]
}

resource "aws_codebuild_webhook" "runner" {
  for_each = var.environments

  project_name = aws_codebuild_project.runner[each.key].name
  build_type   = "BUILD"

  filter_group {
    filter {
      type    = "EVENT"
      pattern = "WORKFLOW_JOB_QUEUED"
    }

    filter {
      type    = "WORKFLOW_NAME"
      pattern = local.runner_workflows
    }
  }
}

# --- The deploy roles may route to the runner VPC, not reshape it ---------------------------------------
# deploy_platform grants ec2:* in the region (a stack creates VPCs whose IDs do not exist yet); without
# this, a stack's deploy role could cut the runner VPC's egress or delete its network. Ingress rule calls
# stay allowed: the program's rule on the cluster security group references the runner group, and a
# runner listens on nothing.

data "aws_iam_policy_document" "deploy_keeps_runners" {
  statement {
    sid    = "NoChangesToRunnerNetwork"
    effect = "Deny"
    actions = [
      "ec2:AuthorizeSecurityGroupEgress",
      "ec2:CreateTags",
      "ec2:DeleteNatGateway",
      "ec2:DeleteRouteTable",
      "ec2:DeleteSecurityGroup",
      "ec2:DeleteSubnet",
      "ec2:DeleteTags",
      "ec2:DeleteVpc",
      "ec2:DisassociateRouteTable",
      "ec2:ModifySubnetAttribute",
      "ec2:ModifyVpcAttribute",
      "ec2:ReplaceRouteTableAssociation",
      "ec2:RevokeSecurityGroupEgress",
    ]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/mlplat/component"
      values   = ["bootstrap"]
    }
  }
}

resource "aws_iam_role_policy" "deploy_keeps_runners" {
  for_each = var.environments

  name   = "keep-runner-network"
  role   = aws_iam_role.deploy[each.key].id
  policy = data.aws_iam_policy_document.deploy_keeps_runners.json
}

output "deploy_runners" {
  description = "Per environment: the runs-on label prefix of its in-VPC runner, and what the Pulumi program needs to peer with the runner VPC and admit the runner to the cluster endpoint (mlplat:cluster.endpoint, docs/adr/0003)."
  value = {
    for env in var.environments : env => {
      runs_on                = "codebuild-${aws_codebuild_project.runner[env].name}-$${{ github.run_id }}-$${{ github.run_attempt }}"
      security_group_id      = aws_security_group.runner[env].id
      vpc_id                 = aws_vpc.runner.id
      vpc_cidr               = aws_vpc.runner.cidr_block
      private_route_table_id = aws_route_table.runner_private.id
      egress_cidr            = "${aws_eip.runner_nat.public_ip}/32"
    }
  }
}

output "github_connection_arn" {
  description = "The CodeConnections connection to GitHub; complete it in the console once after the first apply (status PENDING until then)."
  value       = aws_codeconnections_connection.github.arn
}
