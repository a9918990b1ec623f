"""AWS-layer components built directly under the one mock engine (the `mock_engine` fixture of
tests/conftest.py, mlplat/mocks.py); every test returns its Output.

Returning `Output.all(...).apply(check)` makes `pulumi.runtime.test` wait for the check, so no
assertion is lost in an un-awaited apply; each assertion message names the URN.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from infra.aws.cluster import EksCluster
from infra.aws.iam import IamScope, OidcIssuer, Statement, irsa_role
from infra.aws.identity import StackIdentity
from infra.aws.kms import kms_key
from infra.aws.network import Network, NetworkArgs
from infra.config import load_environment
from tests.support.aws_components import eks_cluster_args

pytestmark = pytest.mark.usefixtures("mock_engine")

SCOPE = IamScope(prefix="mlplat-test-", boundary_arn="arn:aws:iam::123456789012:policy/mlplat-boundary-test")
OIDC = OidcIssuer(
    provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC",
    issuer_host="oidc.eks.eu-west-1.amazonaws.com/id/ABC",
)


@pulumi.runtime.test
def test_kms_key_rotates_and_is_aliased_per_stack() -> pulumi.Output[None]:
    key = kms_key("secrets", SCOPE.prefix, "test", pulumi.ResourceOptions())

    def check(values: list[Any]) -> None:
        urn, rotation, window = values
        assert rotation is True, f"{urn}: rotation off"
        assert window == 30, f"{urn}: deletion window {window}"

    return pulumi.Output.all(key.urn, key.enable_key_rotation, key.deletion_window_in_days).apply(check)


@pulumi.runtime.test
def test_irsa_role_is_scoped_to_one_service_account_and_the_boundary() -> pulumi.Output[None]:
    role = irsa_role(
        "vault",
        SCOPE,
        OIDC,
        "vault",
        "vault",
        [Statement("Unseal", ["kms:Decrypt"], ["arn:aws:kms:eu-west-1:123456789012:key/abc"])],
        pulumi.ResourceOptions(),
    )

    def check(values: list[Any]) -> None:
        urn, trust, prefix, boundary = values
        statement = json.loads(trust)["Statement"][0]
        condition = statement["Condition"]["StringEquals"]
        assert condition[f"{OIDC.issuer_host}:sub"] == "system:serviceaccount:vault:vault", urn
        assert condition[f"{OIDC.issuer_host}:aud"] == "sts.amazonaws.com", urn
        assert statement["Principal"] == {"Federated": OIDC.provider_arn}, urn
        assert prefix == "mlplat-test-" and boundary == SCOPE.boundary_arn, f"{urn}: {prefix} {boundary}"

    return pulumi.Output.all(
        role.role.urn, role.role.assume_role_policy, role.role.name_prefix, role.role.permissions_boundary
    ).apply(check)


@pytest.mark.parametrize(("env", "zones"), [("dev", 3), ("prod", 3)])
@pulumi.runtime.test
def test_network_has_private_and_public_subnets_per_zone(env: str, zones: int) -> pulumi.Output[None]:
    network = Network(
        "net", NetworkArgs(config=load_environment(env).network, cluster_name=f"mlplat-{env}", runner=None)
    )

    def check(values: list[Any]) -> None:
        urn, private, public = values
        assert len(private) == zones and len(public) == zones, f"{urn}: {private} {public}"
        assert not set(private) & set(public), urn

    return pulumi.Output.all(network.urn, network.private_subnet_ids, network.public_subnet_ids).apply(check)


@pulumi.runtime.test
def test_cluster_kubeconfig_is_secret_and_uses_short_lived_tokens() -> pulumi.Output[None]:
    config = load_environment("prod")
    stack = StackIdentity(
        cluster_name="mlplat-prod",
        environment="prod",
        region="eu-west-1",
        account_id="123456789012",
        iam=SCOPE,
    )
    cluster = EksCluster("cluster", eks_cluster_args(stack, config))

    async def is_secret() -> bool:
        return await cluster.kubeconfig.is_secret()

    def check(values: list[Any]) -> None:
        urn, kubeconfig, secret, issuer = values
        assert secret, f"{urn}: kubeconfig is not a secret output"
        user = json.loads(kubeconfig)["users"][0]["user"]
        assert user["exec"]["args"][:2] == ["eks", "get-token"] and "token" not in user, urn
        assert issuer.startswith("https://oidc.eks."), urn

    return pulumi.Output.all(
        cluster.urn, cluster.kubeconfig, pulumi.Output.from_input(is_secret()), cluster.oidc_issuer
    ).apply(check)


def _access_entry_urns(config: Any) -> dict[str, str]:
    """principal ARN -> URN of its access entry, from one build of the cluster on a fresh engine."""
    from pulumi.runtime.settings import ROOT

    from mlplat import mocks

    stack = StackIdentity(
        cluster_name="mlplat-dev", environment="dev", region="eu-west-1", account_id="123456789012", iam=SCOPE
    )
    recording = mocks.start("test")
    try:
        mocks.run(lambda: EksCluster("cluster", eks_cluster_args(stack, config)) and None)
    finally:
        ROOT.set(None)
    return {
        r.inputs["principalArn"]: r.urn
        for r in recording.resources
        if r.type == "aws:eks/accessEntry:AccessEntry"
    }


def test_removing_an_admin_role_renames_no_other_access_entry() -> None:
    """Entries were numbered across the lists: taking the first admin out renamed every entry after it,
    and Pulumi's create-before-delete of the renamed entry met EKS's one entry per principal
    (ResourceInUseException), so `pulumi up` stopped at the cluster's access."""
    role = "arn:aws:iam::123456789012:role/{}"
    config = load_environment("dev")
    cluster = config.cluster.model_copy(
        update={
            "admin_role_arns": [role.format("first-admin"), role.format("second-admin")],
            "viewer_role_arns": [role.format("viewer")],
            "drift_role_arns": [role.format("drift")],
        }
    )
    before = _access_entry_urns(config.model_copy(update={"cluster": cluster}))
    fewer = cluster.model_copy(update={"admin_role_arns": [role.format("second-admin")]})
    after = _access_entry_urns(config.model_copy(update={"cluster": fewer}))
    for name in ("second-admin", "viewer", "drift"):
        arn = role.format(name)
        assert after[arn] == before[arn], f"{before[arn]} became {after[arn]}: EKS refuses the second entry"
