variable "aws_region" {
  description = "Region of the state bucket, the KMS keys and the Pulumi stacks (must match mlplat:aws.region)."
  type        = string
  default     = "eu-west-1"
}

variable "name_prefix" {
  description = "Prefix of every name the bootstrap creates; the Pulumi program names its resources <prefix>-<env>-*."
  type        = string
  default     = "mlplat"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name_prefix))
    error_message = "name_prefix must be 2-21 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "environments" {
  description = "Environments whose deploy and preview roles live in this account: null (the default) for every environment of the contract (contract.tf.json) in a single account, or one per account."
  type        = set(string)
  default     = null

  # A validation may refer to other objects (here the contract's locals) since Terraform 1.9
  # (hashicorp/terraform CHANGELOG.md, 1.9.0: "Input variable validation rules can refer to other
  # objects", #34955; versions.tf pins ~> 1.11.0). Of a conditional, HCL returns only the chosen
  # branch's errors (hashicorp/hcl hclsyntax/expression.go, ConditionalExpr.Value), so length() never
  # sees the null default.
  validation {
    condition     = var.environments == null ? true : length(var.environments) > 0 && alltrue([for e in var.environments : contains(local.contract_environments, e)])
    error_message = "environments must be null (every environment of the contract) or a non-empty subset of contract_environments in contract.tf.json (the Pulumi stacks)."
  }
}

locals {
  # The environments this account holds, what every per-environment resource iterates over.
  environments = var.environments == null ? toset(local.contract_environments) : var.environments
}

# One fact, owner/name as the OIDC subject's `repo` claim spells it (`repo:<owner>/<name>:...`,
# https://docs.github.com/en/actions/reference/security/oidc#customizing-the-subject-claims-for-an-organization-or-repository),
# so it is validated once. No default: roles trusting a stand-in owner would be assumable by whoever
# holds that name on GitHub, and an old terraform.tfvars still setting github_org/github_repo (only a
# warning for Terraform) would fall back to it silently instead of stopping.
variable "github_repository" {
  description = "The GitHub repository, as owner/name (e.g. my-org/mlplat), whose workflows alone may assume the deploy and preview roles."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be a literal owner/name, e.g. my-org/mlplat (no wildcards); it replaces github_org and github_repo (README.md, Migrations)."
  }
}

variable "pulumi_project" {
  description = "Pulumi project name (Pulumi.yaml `name`); the state objects of a stack live under .pulumi/*/<project>/<stack>."
  type        = string
  default     = "mlplat"
}

variable "state_bucket_name" {
  description = "Name of the Pulumi state bucket; null derives a globally unique name from the prefix, account and region."
  type        = string
  default     = null
}

variable "key_admin_arns" {
  description = "Platform admins (IAM roles or users): administer the KMS keys, and initialise and repair the Pulumi state (pulumi login, stack init, state restore, the bootstrap's own state). Must include whoever applies this."
  type        = list(string)

  validation {
    condition     = length(var.key_admin_arns) > 0 && alltrue([for a in var.key_admin_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/", a))])
    error_message = "key_admin_arns must be a non-empty list of IAM role or user ARNs."
  }
}

variable "noncurrent_version_retention_days" {
  description = "How long superseded state versions are kept: the window in which a bad `pulumi up` can be rolled back from the bucket."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_retention_days >= 30
    error_message = "Keep at least 30 days of state history."
  }
}

variable "kms_deletion_window_days" {
  description = "Waiting period before a scheduled KMS key deletion takes effect (7-30 days); losing the key loses every stack secret."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be between 7 and 30."
  }
}

variable "create_github_oidc_provider" {
  description = "Create the account's GitHub OIDC provider; set false when another stack already created it (one per account)."
  type        = bool
  default     = true
}

variable "create_spot_service_linked_role" {
  description = "Create AWSServiceRoleForEC2Spot (one per account, Karpenter cannot create it). Set false when the account already has it, or import it: see README.md."
  type        = bool
  default     = true
}

variable "create_elb_service_linked_role" {
  description = "Create AWSServiceRoleForElasticLoadBalancing (one per account, the load balancer controller cannot create it). Set false when the account already has it, or import it: see README.md."
  type        = bool
  default     = true
}

variable "deploy_session_seconds" {
  description = "Maximum session length of the deploy roles: a first `pulumi up` (EKS, node pools, charts) can outlast one hour."
  type        = number
  default     = 7200
}

variable "tags" {
  description = "Extra tags on every bootstrap resource."
  type        = map(string)
  default     = {}
}
