# Service-linked roles the platform needs before its first launch, created once per account.
#
# AWSServiceRoleForEC2Spot: EC2 uses it to launch and reclaim Spot instances. Karpenter's controller
# policy (aws/karpenter-provider-aws v1.14.1, website/content/en/v1.14/getting-started/
# getting-started-with-karpenter/cloudformation.yaml) does not grant iam:CreateServiceLinkedRole, so in
# an account that never used Spot every Spot launch fails with
# AuthFailure.ServiceLinkedRoleCreationNotPermitted. Creating it here keeps that grant off every
# workload role. The role's name and path are fixed by AWS:
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/service-linked-roles-spot-instance-requests.html
resource "aws_iam_service_linked_role" "spot" {
  count = var.create_spot_service_linked_role ? 1 : 0

  aws_service_name = "spot.amazonaws.com"
  description      = "EC2 Spot launches of Karpenter GPU pools (${var.name_prefix} bootstrap)"
}
