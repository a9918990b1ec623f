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

output "github_role_arns" {
  description = "Per role and environment ({ role => { env => ARN } }), the role GitHub Actions assumes: deploy (deploy.yml, GitHub environment <env>, variable AWS_DEPLOY_ROLE_ARN), preview (preview.yml, <env>-preview, AWS_PREVIEW_ROLE_ARN: read-only), drift (drift.yml, <env>-drift, AWS_DRIFT_ROLE_ARN: read-only, may read the cluster's Secrets), promote (promote.yml, <env>-promote, AWS_PROMOTE_ROLE_ARN: may only port-forward to MLflow)."
  value = {
    for role in distinct([for instance in local.github_role_instances : instance.role]) : role => {
      for key, instance in local.github_role_instances : instance.environment => aws_iam_role.github[key].arn if instance.role == role
    }
  }
}

output "workload_boundary_arns" {
  description = "Per environment, the permissions boundary every IAM role the Pulumi program creates must carry."
  value       = { for env, policy in aws_iam_policy.workload_boundary : env => policy.arn }
}

output "github_oidc_provider_arn" {
  description = "ARN of the account's GitHub Actions OIDC provider."
  value       = local.github_oidc_provider_arn
}
