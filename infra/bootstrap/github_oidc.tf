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
  # The `sub` claim of a job that declares `environment: <name>`; nothing else in any repository matches.
  github_subject_prefix = "repo:${var.github_org}/${var.github_repo}:environment:"
}
