"""IAM documents and IRSA roles: one least-privilege role per Kubernetes service account.

Workload identity is IRSA everywhere (docs/adr/0001-gpu-autoscaling.md explains the Karpenter
choice; IRSA works with every chart we install through a service-account annotation).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class Statement:
    """One Allow statement; resources are explicit ARNs or ARN patterns, never a bare `*` with `*`."""

    sid: str
    actions: list[str]
    resources: list[pulumi.Input[str]]
    condition: dict[str, Any] | None = None


def policy_document(statements: list[Statement]) -> pulumi.Output[str]:
    """Render statements to a JSON policy; resources may be Outputs (ARNs of resources we create)."""
    rendered = [pulumi.Output.all(*st.resources).apply(_statement_body(st)) for st in statements]
    return pulumi.Output.all(*rendered).apply(
        lambda sts: json.dumps({"Version": "2012-10-17", "Statement": list(sts)}, sort_keys=True)
    )


def _statement_body(st: Statement) -> Callable[[list[str]], dict[str, Any]]:
    def body(arns: list[str]) -> dict[str, Any]:
        rendered: dict[str, Any] = {"Sid": st.sid, "Effect": "Allow", "Action": st.actions, "Resource": arns}
        if st.condition:
            rendered["Condition"] = st.condition
        return rendered

    return body


def service_trust(service: str) -> str:
    """Trust policy letting one AWS service (eks, ec2) assume a role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        },
        sort_keys=True,
    )


@dataclass(frozen=True)
class IamScope:
    """Where this stack's roles live: the name prefix and permissions boundary the deploy role demands.

    The bootstrap's deploy role may only create roles named `mlplat-<env>-*` that carry the
    `mlplat-boundary-<env>` boundary (infra/bootstrap/deploy_roles.tf), so every role goes through `role()`.
    """

    prefix: str
    boundary_arn: pulumi.Input[str]


def role(
    name: str, scope: IamScope, trust: pulumi.Input[str], description: str, opts: pulumi.ResourceOptions
) -> aws.iam.Role:
    return aws.iam.Role(
        name,
        name_prefix=scope.prefix,
        permissions_boundary=scope.boundary_arn,
        assume_role_policy=trust,
        description=description,
        opts=opts,
    )


def ec2_node_role(
    name: str, scope: IamScope, description: str, policies: Sequence[str], opts: pulumi.ResourceOptions
) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """A role EC2 nodes assume, with AWS managed `policies` attached (`<name>-<index>`, children of the
    role): the system node group's and Karpenter's nodes' roles differ only in name and policies."""
    node = role(name, scope, service_trust("ec2.amazonaws.com"), description, opts)
    attachments = [
        aws.iam.RolePolicyAttachment(
            f"{name}-{index}", role=node.name, policy_arn=arn, opts=pulumi.ResourceOptions(parent=node)
        )
        for index, arn in enumerate(policies)
    ]
    return node, attachments


@dataclass(frozen=True)
class OidcIssuer:
    """The cluster's OIDC provider, as IRSA trust policies need it."""

    provider_arn: pulumi.Input[str]
    issuer_host: pulumi.Input[str]  # issuer URL without https://


def irsa_trust(oidc: OidcIssuer, namespace: str, service_account: str) -> pulumi.Output[str]:
    """Trust limited to exactly one service account in one namespace, with the STS audience."""
    return pulumi.Output.all(oidc.provider_arn, oidc.issuer_host).apply(
        lambda v: json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": v[0]},
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": {
                            "StringEquals": {
                                f"{v[1]}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                                f"{v[1]}:aud": "sts.amazonaws.com",
                            }
                        },
                    }
                ],
            },
            sort_keys=True,
        )
    )


@dataclass(frozen=True)
class IrsaRole:
    """An IRSA role and the ARN to hand to its service account.

    `arn` resolves only once the role's policies exist, and carries them as dependencies: a pod
    given the ARN earlier assumes a role without permissions and fails its first calls (aws-node
    then never initializes the CNI; Karpenter's controller crash-loops and its atomic release rolls back).
    """

    role: aws.iam.Role
    arn: pulumi.Output[str]


def irsa_role(
    name: str,
    scope: IamScope,
    oidc: OidcIssuer,
    namespace: str,
    service_account: str,
    statements: list[Statement],
    opts: pulumi.ResourceOptions,
    managed_policy_arns: tuple[str, ...] = (),
) -> IrsaRole:
    """A role for one service account, its inline least-privilege policy and any AWS-managed policy."""
    irsa = role(
        name,
        scope,
        irsa_trust(oidc, namespace, service_account),
        f"IRSA role for {namespace}/{service_account}",
        opts,
    )
    child = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(parent=irsa))
    granted: list[pulumi.Output[str]] = []
    if statements:
        inline = aws.iam.RolePolicy(
            f"{name}-policy", role=irsa.id, policy=policy_document(statements), opts=child
        )
        granted.append(inline.id)
    for index, arn in enumerate(managed_policy_arns):
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-managed-{index}", role=irsa.name, policy_arn=arn, opts=child
        )
        granted.append(attachment.id)
    return IrsaRole(role=irsa, arn=pulumi.Output.all(irsa.arn, *granted).apply(lambda v: str(v[0])))
