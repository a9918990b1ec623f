"""Pulumi mocks that stand in for AWS and Kubernetes: used by the offline plan and the unit tests.

Outputs look like the real providers' (ARNs, IDs, endpoints, an OIDC issuer), so the program's
Output plumbing (role trust policies, kubeconfig, IRSA annotations) runs exactly as it would.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pulumi

ACCOUNT = "123456789012"
REGION = "eu-west-1"


def _fake_id(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()[:17]


def _service(typ: str) -> str:
    # aws:iam/role:Role -> iam
    return typ.split(":")[1].split("/")[0]


class PlatformMocks(pulumi.runtime.Mocks):
    """Deterministic fake provider answers, keyed by resource type."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state: dict[str, Any] = dict(args.inputs)
        typ, name = args.typ, args.name
        resource_id = f"{name}-{_fake_id(typ + name)}"
        if typ.startswith("aws:"):
            service = _service(typ)
            resource_name = state.get("name") or name
            state.setdefault("name", resource_name)
            state.setdefault("arn", f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource_name}")
            if typ == "aws:iam/role:Role":
                state["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{resource_name}"
            elif typ == "aws:kms/key:Key":
                resource_id = _fake_id(name)
                state["keyId"] = resource_id
                state["arn"] = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{resource_id}"
            elif typ == "aws:s3/bucketV2:BucketV2" or typ == "aws:s3/bucket:Bucket":
                resource_id = state.get("bucket") or name
                state["arn"] = f"arn:aws:s3:::{resource_id}"
                state.setdefault("bucket", resource_id)
            elif typ == "aws:eks/cluster:Cluster":
                resource_id = resource_name
                state["endpoint"] = f"https://{_fake_id(name).upper()}.gr7.{REGION}.eks.amazonaws.com"
                state["certificateAuthority"] = {"data": "bW9jay1jYQ=="}
                issuer = f"https://oidc.eks.{REGION}.amazonaws.com/id/{_fake_id(name).upper()}"
                state["identities"] = [{"oidcs": [{"issuer": issuer}]}]
                state["version"] = state.get("version")
                # EKS creates the cluster security group and reports it in vpcConfig.
                state["vpcConfig"] = {
                    **(state.get("vpcConfig") or {}),
                    "clusterSecurityGroupId": f"sg-{_fake_id(name)}",
                }
            elif typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
                url = str(state.get("url", "")).removeprefix("https://")
                state["arn"] = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{url}"
            elif typ == "aws:sqs/queue:Queue":
                state["url"] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{resource_name}"
            elif typ == "aws:eks/nodeGroup:NodeGroup":
                state.setdefault("resources", [{"autoscalingGroups": [{"name": f"eks-{name}"}]}])
        elif typ.startswith("kubernetes:"):
            metadata = state.get("metadata") or {}
            if typ == "kubernetes:helm.sh/v3:Release":
                state["status"] = {"name": state.get("name") or name, "status": "deployed"}
            resource_id = f"{metadata.get('namespace', 'default')}/{metadata.get('name', name)}"
        elif typ.startswith("random:"):
            state["result"] = f"mock-{_fake_id(name)}"
        elif typ == "tls:index/privateKey:PrivateKey":
            state["privateKeyPem"] = (
                f"-----BEGIN PRIVATE KEY-----\nmock-{_fake_id(name)}\n-----END PRIVATE KEY-----\n"  # pragma: allowlist secret
            )
        elif typ == "tls:index/selfSignedCert:SelfSignedCert":
            state["certPem"] = (
                # Public: no `mock-` marker, which tests read as a secret that leaked into the plan.
                f"-----BEGIN CERTIFICATE-----\n{_fake_id(name)}\n-----END CERTIFICATE-----\n"
            )
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        answers: dict[str, dict[str, Any]] = {
            "aws:index/getCallerIdentity:getCallerIdentity": {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/mock",
                "userId": "mock",
            },
            "aws:index/getPartition:getPartition": {"partition": "aws", "dnsSuffix": "amazonaws.com"},
            "aws:index/getRegion:getRegion": {"name": REGION, "region": REGION},
        }
        return answers.get(args.token, {}), []
