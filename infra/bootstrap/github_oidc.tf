# GitHub Actions' OIDC identity provider: workflows exchange a short-lived GitHub token for a role
# session, so no AWS access key is ever stored in GitHub. One provider per account.

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_github_oidc_provider ? 1 : 0

  url            = "https://token.actions.githubusercontent.com"
  client_id_list = ["sts.amazonaws.com"]
  # AWS validates GitHub's certificate against its own trusted CAs; these published thumbprints are
  # only kept for tools that still read the field.
  thumbprint_list = [
    "6938fd4d98bab03faadb97b34396831e3780aea1", # pragma: allowlist secret
    "1c58a3a8518e8759bf075b76b750d4f2df264fcd", # pragma: allowlist secret
  ]
}

data "aws_iam_openid_connect_provider" "github" {
  count = var.create_github_oidc_provider ? 0 : 1

  url = "https://token.actions.githubusercontent.com"
}

locals {
  github_oidc_provider_arn = var.create_github_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : data.aws_iam_openid_connect_provider.github[0].arn
  # The `sub` claim of a job that declares `environment: <name>`, once the repository's OIDC subject
  # template is set to ["repo", "context", "ref"] (docs/runbooks/first-deployment.md): it then reads
  # repo:<org>/<repo>:environment:<name>:ref:<git ref>, so a trust policy can demand both the GitHub
  # environment and the branch the workflow runs from. GitHub's default template drops the ref
  # whenever a job names an environment, which would let any branch that can reach the environment
  # assume its role.
  # https://docs.github.com/en/actions/reference/security/oidc#customizing-the-subject-claims-for-an-organization-or-repository
  # The subject names the repository by `<org>/<repo>` only: a repository created later under that name
  # (after this one is renamed, transferred or deleted) presents the same subjects. IAM cannot condition
  # on GitHub's other claims ("Support for custom claims for OIDC is unavailable in AWS":
  # https://docs.github.com/en/actions/how-tos/secure-your-work/security-harden-deployments/oidc-in-aws),
  # so the one way to bind the numeric repository_id is to make the subject template carry it instead of
  # `repo`, which flips every role's trust together with the repository's setting; not done, and GitHub's
  # acceptance of `repository_id` as a template key was not checked (docs/security.md, "Known limits").
  github_subject_prefix = "repo:${var.github_repository}:environment:"
  main_ref              = "ref:refs/heads/main"
  # The only git refs a pull request's own code runs from (`pull_request` events check out the merge ref).
  pull_request_ref = "ref:refs/pull/*/merge"
  # The one environment whose preview role a pull request may assume: it can read and decrypt nothing
  # of the others (ADR 0002). It is the contract's first, its least strict (contract.tf.json lists the
  # environments in promotion order, infra/contract.py). Every other role trusts main only.
  pull_request_preview_environment = local.contract_environments[0]
}
