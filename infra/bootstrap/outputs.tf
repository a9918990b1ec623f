output "state_bucket_name" {
  description = "Name of the Pulumi state bucket."
  value       = aws_s3_bucket.state.bucket
}

output "pulumi_backend_url" {
  description = "Value for `pulumi login` and the PULUMI_BACKEND_URL variable of the GitHub environments."
  value       = "s3://${aws_s3_bucket.state.bucket}?region=${var.aws_region}&awssdk=v2"
}

output "pulumi_secrets_providers" {
  description = "Per environment, the --secrets-provider of `pulumi stack init` and the PULUMI_SECRETS_PROVIDER variable."
  value = {
    for env, alias in aws_kms_alias.pulumi_secrets : env => "awskms://${alias.name}?region=${var.aws_region}"
  }
}

output "state_kms_key_arn" {
  description = "ARN of the key encrypting the state bucket."
  value       = aws_kms_key.state.arn
}

output "deploy_role_arns" {
  description = "Per environment, the role deploy.yml assumes (GitHub environment <env>, variable AWS_DEPLOY_ROLE_ARN)."
  value       = { for env, role in aws_iam_role.deploy : env => role.arn }
}

output "preview_role_arns" {
  description = "Per environment, the read-only role of preview.yml (GitHub environment <env>-preview, variable AWS_PREVIEW_ROLE_ARN)."
  value       = { for env, role in aws_iam_role.preview : env => role.arn }
}

output "promote_role_arns" {
  description = "Per environment, the role of promote.yml when promoting to it (GitHub environment <env>-promote, variable AWS_PROMOTE_ROLE_ARN), which may only port-forward to MLflow."
  value       = { for env, role in aws_iam_role.promote : env => role.arn }
}

output "drift_role_arns" {
  description = "Per environment, the read-only role of drift.yml (GitHub environment <env>-drift, variable AWS_DRIFT_ROLE_ARN), which may read the cluster's Secrets."
  value       = { for env, role in aws_iam_role.drift : env => role.arn }
}

output "workload_boundary_arns" {
  description = "Per environment, the permissions boundary every IAM role the Pulumi program creates must carry."
  value       = { for env, policy in aws_iam_policy.workload_boundary : env => policy.arn }
}

output "github_oidc_provider_arn" {
  description = "ARN of the account's GitHub Actions OIDC provider."
  value       = local.github_oidc_provider_arn
}
