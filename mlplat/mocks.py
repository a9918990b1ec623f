"""The mock engine: the Pulumi program run against fake AWS and Kubernetes, every registration recorded.

One implementation for `mlplat plan` (which needs it at run time, so it lives in the CLI package) and
for the Pulumi tests (tests/support/harness.py, the program-level tests and the `mock_engine` fixture of
tests/conftest.py use `start` and `run`).
`PlatformMocks` answers like the real providers (ARNs, IDs, endpoints, an OIDC issuer), so the
program's Output plumbing (role trust policies, kubeconfig, IRSA annotations) runs exactly as it
would; the recording monitor keeps what the engine would receive, in the wire form (`decode` reads it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
                # pulumi_kubernetes helm.v3 ReleaseStatus: a fresh install is revision 1.
                state["status"] = {"name": state.get("name") or name, "status": "deployed", "revision": 1}
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


# Pulumi's wire markers for secrets and resource references (pulumi 3.272.0, sdk/python/lib/pulumi/runtime/rpc.py:
# _special_sig_key, _special_secret_sig, _special_resource_sig).
SIG_KEY = "4dabf18193072939515e22adb298388d"  # pragma: allowlist secret
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # pragma: allowlist secret
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"  # pragma: allowlist secret


def decode(value: Any, on_secret: Callable[[str, Any], Any], path: str = "") -> Any:
    """A wire-form value as plain data: each resource reference becomes `{"resourceRef": urn}`, each
    secret whatever `on_secret(key path, decoded value)` returns (the plan redacts, tests reveal)."""
    if isinstance(value, dict):
        sig = value.get(SIG_KEY)
        if sig == SECRET_SIG:
            return on_secret(path, decode(value.get("value"), on_secret, path))
        if sig == RESOURCE_SIG:
            return {"resourceRef": value.get("urn")}
        return {k: decode(v, on_secret, f"{path}.{k}" if path else k) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, on_secret, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


@dataclass(frozen=True)
class Registration:
    """One RegisterResource call as the engine would receive it; `inputs` in the wire form."""

    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    provider: str | None
    inputs: dict[str, Any]
    protect: bool
    retain_on_delete: bool
    dependencies: list[str]


@dataclass
class Recording:
    """What the recording monitor saw, in registration order, and the root stack's outputs (wire form)."""

    resources: list[Registration] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)


def _recording_monitor(recording: Recording, project: str) -> Any:
    from google.protobuf import json_format
    from pulumi.runtime.mocks import MockMonitor

    # pulumi's MockMonitor leaves RegisterResource and RegisterResourceOutputs unannotated.
    class RecordingMonitor(MockMonitor):
        def make_urn(self, parent: str, type_: str, name: str) -> str:
            # The engine leaves the root stack out of its children's qualified types; so do we.
            if parent.split("::")[2:3] == ["pulumi:pulumi:Stack"]:
                parent = ""
            return str(super().make_urn(parent, type_, name))

        def RegisterResource(self, request: Any) -> Any:
            response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
            if request.type != "pulumi:pulumi:Stack":
                recording.resources.append(
                    Registration(
                        urn=response.urn,
                        type=request.type,
                        name=request.name,
                        parent=request.parent or None,
                        custom=bool(request.custom),
                        provider=request.provider or None,
                        inputs=json_format.MessageToDict(request.object),
                        protect=bool(request.protect),
                        retain_on_delete=bool(request.retainOnDelete),
                        dependencies=sorted(set(request.dependencies)),
                    )
                )
            return response

        def RegisterResourceOutputs(self, request: Any) -> Any:
            if request.urn.endswith(f"::pulumi:pulumi:Stack::{project}-{pulumi.get_stack()}"):
                recording.outputs.update(json_format.MessageToDict(request.outputs))
            return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]

    return RecordingMonitor(PlatformMocks())


def start(stack: str, config: Mapping[str, Any] | None = None, project: str = "mlplat") -> Recording:
    """Point the Pulumi runtime at a fresh recording mock engine for `stack`, with the stack's
    `project:`-namespaced config when given (as `pulumi up` hands it to the program)."""
    from pulumi.runtime.settings import ROOT

    recording = Recording()
    monitor = _recording_monitor(recording, project)
    if config is not None:
        pulumi.runtime.set_all_config(
            {f"{project}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}, []
        )
    pulumi.runtime.set_mocks(monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor)
    # set_mocks registers a bare root stack; drop it so run_in_stack owns the root and its outputs,
    # exactly as the Pulumi language host runs a program.
    ROOT.set(None)
    return recording


def run(program: Callable[[], None]) -> None:
    """Run `program` as the root stack's body on the engine `start` set up; pulumi.RunError on failure."""
    from pulumi.runtime.stack import run_in_stack
    from pulumi.runtime.sync_await import _sync_await

    _sync_await(run_in_stack(program))
