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

# AWSServiceRoleForElasticLoadBalancing: Elastic Load Balancing creates it on an account's first load
# balancer, with the caller's iam:CreateServiceLinkedRole. The inference gateway's NLB is created by the
# AWS Load Balancer Controller, whose role leaves that grant out (upstream's policy has it,
# kubernetes-sigs/aws-load-balancer-controller v3.5.0 docs/install/iam_policy.json; the workload
# boundary refuses it: infra/aws/load_balancer_controller.py), so it is created here, once. Name and
# path are fixed by AWS:
# https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/elb-service-linked-roles.html
resource "aws_iam_service_linked_role" "elastic_load_balancing" {
  count = var.create_elb_service_linked_role ? 1 : 0

  aws_service_name = "elasticloadbalancing.amazonaws.com"
  description      = "Load balancers of the inference gateway (${var.name_prefix} bootstrap)"
}
