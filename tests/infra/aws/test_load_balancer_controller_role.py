"""The AWS Load Balancer Controller's IRSA role: nothing upstream does not grant, nothing another
cluster owns, and nothing the environment's permissions boundary would refuse.

Upstream's policy is ../shared/reference/iam/aws-load-balancer-controller/iam_policy.json
(kubernetes-sigs/aws-load-balancer-controller v3.5.0 docs/install/iam_policy.json); ours comes from
the offline plan; the boundary from infra/bootstrap (iam_eval renders it per environment).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.config import load_environment
from mlplat.mocks import ACCOUNT
from tests.support.iam_eval import Scope, Statement, decide, request, statements

Plan = dict[str, Any]
TRUST_SUBJECT = "system:serviceaccount:aws-load-balancer-controller:aws-load-balancer-controller"
CLUSTER_TAG = "elbv2.k8s.aws/cluster"
# Upstream grants the controller needs only for ALBs (or that the boundary refuses): the values close
# every ALB path (platform/aws-load-balancer-controller/values.yaml), so the role leaves them out.
LEFT_OUT = {
    "iam:CreateServiceLinkedRole",
    "cognito-idp:DescribeUserPoolClient",
    "acm:ListCertificates",
    "acm:DescribeCertificate",
    "iam:ListServerCertificates",
    "iam:GetServerCertificate",
    "waf-regional:GetWebACL",
    "waf-regional:GetWebACLForResource",
    "waf-regional:AssociateWebACL",
    "waf-regional:DisassociateWebACL",
    "wafv2:GetWebACL",
    "wafv2:GetWebACLForResource",
    "wafv2:AssociateWebACL",
    "wafv2:DisassociateWebACL",
    "shield:GetSubscriptionState",
    "shield:DescribeProtection",
    "shield:CreateProtection",
    "shield:DeleteProtection",
    "elasticloadbalancing:CreateRule",
    "elasticloadbalancing:DeleteRule",
    "elasticloadbalancing:ModifyRule",
    "elasticloadbalancing:SetRulePriorities",
    "elasticloadbalancing:SetWebAcl",
    "elasticloadbalancing:AddListenerCertificates",
    "elasticloadbalancing:RemoveListenerCertificates",
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _parsed(doc: str, document: dict[str, Any]) -> list[Statement]:
    return [
        Statement(
            doc=doc,
            sid=st.get("Sid", str(i)),
            effect=st["Effect"],
            actions=tuple(_as_list(st["Action"])),
            resources=tuple(_as_list(st["Resource"])),
            conditions=tuple(
                (operator, key, tuple(str(v) for v in _as_list(values)))
                for operator, pairs in (st.get("Condition") or {}).items()
                for key, values in pairs.items()
            ),
            principals=(),
        )
        for i, st in enumerate(document["Statement"])
    ]


def _role(plan: dict[str, Any]) -> tuple[str, list[Statement]]:
    """(URN, statements) of the inline policy of the role its service account trusts."""
    roles = [
        r
        for r in plan["resources"]
        if r["type"] == "aws:iam/role:Role" and TRUST_SUBJECT in r["inputs"]["assumeRolePolicy"]
    ]
    assert len(roles) == 1, f"{plan['stack']}: no IRSA role for {TRUST_SUBJECT}"
    (policy,) = [
        r
        for r in plan["resources"]
        if r["type"] == "aws:iam/rolePolicy:RolePolicy" and r["parent"] == roles[0]["urn"]
    ]
    return policy["urn"], _parsed("ours", json.loads(policy["inputs"]["policy"]))


def _upstream(reference: Path) -> list[Statement]:
    path = reference / "iam" / "aws-load-balancer-controller" / "iam_policy.json"
    return _parsed("upstream", json.loads(path.read_text()))


def _vpc_id(plan: dict[str, Any]) -> str:
    (release,) = [
        r
        for r in plan["resources"]
        if r["type"] == "kubernetes:helm.sh/v3:Release"
        and r["inputs"]["name"] == "aws-load-balancer-controller"
    ]
    return str(release["inputs"]["values"]["vpcId"])


def _arns(env: str, vpc_id: str) -> dict[str, str]:
    region = load_environment(env).aws.region
    elb = f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}"
    return {
        "nlb": f"{elb}:loadbalancer/net/k8s-mlplatga-inferenc/0123456789abcdef",
        "alb": f"{elb}:loadbalancer/app/k8s-someone/0123456789abcdef",
        "tg": f"{elb}:targetgroup/k8s-mlplatga-inferenc/0123456789abcdef",
        "listener": f"{elb}:listener/net/k8s-mlplatga-inferenc/0123456789abcdef/0123456789abcdef",
        "sg": f"arn:aws:ec2:{region}:{ACCOUNT}:security-group/sg-0123456789abcdef0",
        "vpc": f"arn:aws:ec2:{region}:{ACCOUNT}:vpc/{vpc_id}",
        "other_vpc": f"arn:aws:ec2:{region}:{ACCOUNT}:vpc/vpc-0fffffffffffffff0",
        "other_region_nlb": f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/net/x/0123456789abcdef",
    }


def test_load_balancer_controller_grants_nothing_upstream_does_not(plan: Plan, reference: Path) -> None:
    urn, ours = _role(plan)
    upstream_actions = {a for st in _upstream(reference) for a in st.actions}
    our_actions = {a for st in ours for a in st.actions}
    assert our_actions <= upstream_actions, (
        f"{urn}: beyond upstream: {sorted(our_actions - upstream_actions)}"
    )
    assert upstream_actions - our_actions == LEFT_OUT, (
        f"{urn}: {sorted((upstream_actions - our_actions) ^ LEFT_OUT)}"
    )
    assert all(st.effect == "Allow" for st in ours), urn


def test_load_balancer_controller_cannot_touch_another_clusters_load_balancers(
    plan: Plan, reference: Path, env: str
) -> None:
    urn, ours = _role(plan)
    arn = _arns(env, _vpc_id(plan))
    mine = request(resource_tags={CLUSTER_TAG: f"mlplat-{env}"})
    theirs = request(resource_tags={CLUSTER_TAG: "someone-elses-cluster"})
    for action, resource in (
        ("elasticloadbalancing:DeleteLoadBalancer", arn["nlb"]),
        ("elasticloadbalancing:ModifyTargetGroup", arn["tg"]),
        ("elasticloadbalancing:RegisterTargets", arn["tg"]),
        ("ec2:DeleteSecurityGroup", arn["sg"]),
    ):
        assert decide(ours, action, resource, mine)[0], f"{urn}: cannot {action} its own {resource}"
        assert not decide(ours, action, resource, theirs)[0], f"{urn}: may {action} another cluster's"
    # Upstream's `Null` conditions let any cluster's controller delete it: the narrowing is ours.
    assert decide(_upstream(reference), "elasticloadbalancing:DeleteLoadBalancer", arn["nlb"], theirs)[0]

    create = "elasticloadbalancing:CreateLoadBalancer"
    assert decide(ours, create, arn["nlb"], request(request_tags={CLUSTER_TAG: f"mlplat-{env}"}))[0], urn
    assert not decide(ours, create, arn["nlb"], request(request_tags={CLUSTER_TAG: "other"}))[0], urn
    assert not decide(ours, create, arn["nlb"], request())[0], f"{urn}: may create untracked load balancers"
    assert not decide(ours, create, arn["alb"], request(request_tags={CLUSTER_TAG: f"mlplat-{env}"}))[0], urn
    assert not decide(
        ours, create, arn["other_region_nlb"], request(request_tags={CLUSTER_TAG: f"mlplat-{env}"})
    )[0], f"{urn}: may create load balancers in another region"
    assert decide(ours, "ec2:CreateSecurityGroup", arn["vpc"], request())[0], urn
    assert not decide(ours, "ec2:CreateSecurityGroup", arn["other_vpc"], request())[0], (
        f"{urn}: may create security groups in another VPC"
    )


def test_the_permissions_boundary_admits_what_the_load_balancer_controller_does(plan: Plan, env: str) -> None:
    """A role's grants beyond its boundary fail at run time: the NLB would never appear."""
    urn, ours = _role(plan)
    region = load_environment(env).aws.region
    boundary = statements("workload_boundary", Scope(env, region))
    arn = _arns(env, _vpc_id(plan))
    own = {CLUSTER_TAG: f"mlplat-{env}", "mlplat/environment": env}
    calls = [
        ("ec2:DescribeSubnets", "*", request(aws__RequestedRegion=region)),
        ("elasticloadbalancing:DescribeLoadBalancers", "*", request(aws__RequestedRegion=region)),
        ("ec2:CreateSecurityGroup", arn["vpc"], request(aws__RequestedRegion=region)),
        (
            "elasticloadbalancing:CreateLoadBalancer",
            arn["nlb"],
            request(aws__RequestedRegion=region, request_tags=own),
        ),
        ("elasticloadbalancing:CreateListener", arn["nlb"], request(aws__RequestedRegion=region)),
        (
            "elasticloadbalancing:RegisterTargets",
            arn["tg"],
            request(aws__RequestedRegion=region, resource_tags=own),
        ),
        (
            "ec2:AuthorizeSecurityGroupIngress",
            arn["sg"],
            request(aws__RequestedRegion=region, resource_tags=own),
        ),
    ]
    for action, resource, context in calls:
        assert decide(ours, action, resource, context)[0], f"{urn}: the role itself refuses {action}"
        allowed, why = decide(boundary, action, resource, context)
        assert allowed, f"{urn}: the {env} boundary refuses {action} on {resource} ({why})"
    # The one upstream grant the boundary refuses is not in the role (module LEFT_OUT).
    assert not decide(boundary, "iam:CreateServiceLinkedRole", "*", request(aws__RequestedRegion=region))[0]


def test_load_balancer_controller_cannot_open_another_environments_security_groups(
    plan: Plan, env: str
) -> None:
    """Node and pod groups carry no cluster tag, so the ingress grant on them was account-wide: dev's
    controller could admit anything into prod's nodes. It is held to its own VPC."""
    urn, ours = _role(plan)
    arn = _arns(env, _vpc_id(plan))
    for action in ("ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"):
        assert decide(ours, action, arn["sg"], request(ec2__Vpc=arn["vpc"]))[0], f"{urn}: {action} in its VPC"
        assert not decide(ours, action, arn["sg"], request(ec2__Vpc=arn["other_vpc"]))[0], (
            f"{urn}: may {action} on a group of another VPC"
        )
