# `mlplat preflight` runs in deploy.yml with the environment's deploy role before `pulumi up`. Every read
# it makes is already granted by deploy_roles.tf (sts, s3 list on the state bucket, kms:DescribeKey on
# the stack's secrets key, iam:List* and iam:GetRole of the Spot role, eks:*, ec2:*, public SSM
# parameters; ec2:DescribeVpcs, DescribeSecurityGroups and DescribeRouteTables of the runner check are
# in ec2:Describe*, statement ReadOnlyLookups) except the EC2 vCPU quotas. (The bootstrap's roles and boundaries are listed, not read:
# deploy_roles.tf denies the deploy roles every iam:* call on them.)
# Quota ARN form, as GetServiceQuota returns it: arn:<partition>:servicequotas:<region>:<account>:ec2/<code>
# (https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_GetServiceQuota.html).

data "aws_iam_policy_document" "deploy_preflight" {
  statement {
    sid       = "ReadEc2Quotas"
    actions   = ["servicequotas:GetServiceQuota"]
    resources = ["arn:${local.partition}:servicequotas:${var.aws_region}:${local.account_id}:ec2/*"]
  }
}
