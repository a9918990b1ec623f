"""The mlplat CrossGuard policies.

POLICIES is the single list of real pulumi_policy objects: __main__.py registers it with the
PolicyPack that `pulumi preview --policy-pack policies/pulumi` serves, and offline.py runs the very
same objects over build/plan/<env>.json. Each check is a plain function over props and options.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from inspect_props import (
    as_json,
    elements,
    entries,
    is_unknown,
    peek,
    plaintext_secrets,
    stack_of,
    stack_urn,
)
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

# The program's bounded stack-file reader (infra/stack_file.py needs only PyYAML, which this pack's
# virtualenv has; infra/config.py needs pydantic, which it has not): the pack reads a stack file under
# the same bounds as the program, never with a plain yaml.safe_load that expands aliases. The names of
# the platform contract come from their one owner too (infra/contract.py: standard library only).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from infra.contract import GPU_POOL_LABEL, PRODUCTION
from infra.stack_file import ConfigError, parse_stack_yaml

PACK_NAME = "mlplat"
# pulumi_policy's PolicyPack reports this version in diagnostics, whatever PulumiPolicy.yaml says.
PACK_VERSION = "0.0.1"
PACK_LABEL = f"{PACK_NAME}@v{PACK_VERSION}"
DEFAULT_ENFORCEMENT = EnforcementLevel.MANDATORY
MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY
REPO = Path(__file__).resolve().parents[2]

ResourceCheck = Callable[[ResourceValidationArgs], Iterable[str]]


def resource_policy(
    name: str,
    description: str,
    types: Iterable[str],
    check: ResourceCheck,
    remediation: str,
    enforcement_level: EnforcementLevel = MANDATORY,
) -> ResourceValidationPolicy:
    """A ResourceValidationPolicy that reports every message `check` yields for the given types."""
    wanted = frozenset(types)

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type in wanted:
            for message in check(args):
                report_violation(message, None)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=enforcement_level,
        remediation_steps=remediation,
    )


# ---- KMS ----------------------------------------------------------------------------------------

KMS_KEY = "aws:kms/key:Key"


def check_kms_rotation(args: ResourceValidationArgs) -> Iterator[str]:
    rotation = peek(args.props, "enableKeyRotation", strict=True)
    if rotation is not True:
        yield f"enableKeyRotation is {rotation!r}, expected true"


def check_kms_deletion_window(args: ResourceValidationArgs) -> Iterator[str]:
    if stack_of(args.urn) not in PRODUCTION:
        return
    window = peek(args.props, "deletionWindowInDays", strict=True)
    if window is not None and window < 30:
        yield f"deletionWindowInDays is {window:g}; prod keys keep the 30-day maximum"


# ---- EKS ----------------------------------------------------------------------------------------

EKS_CLUSTER = "aws:eks/cluster:Cluster"
OPEN_CIDRS = frozenset({"0.0.0.0/0", "::/0"})


def check_eks_secrets_encryption(args: ResourceValidationArgs) -> Iterator[str]:
    config = peek(args.props, "encryptionConfig", strict=True)
    if not config:
        yield "no encryptionConfig: Kubernetes Secrets are stored unencrypted by a customer key"
        return
    resources = elements(peek(config, "resources", strict=True))
    if "secrets" not in resources:
        yield f'encryptionConfig.resources is {resources!r}, must include "secrets"'
    key_arn = peek(config, "provider", "keyArn")  # a computed KMS ARN is fine: it exists
    if not key_arn and not is_unknown(key_arn):
        yield "encryptionConfig.provider.keyArn is empty"


def check_eks_audit_logs(args: ResourceValidationArgs) -> Iterator[str]:
    types = elements(peek(args.props, "enabledClusterLogTypes", strict=True))
    if "audit" not in types:
        yield f'enabledClusterLogTypes is {types!r}, must include "audit"'


def endpoint_public(vpc: Any) -> bool:
    """vpcConfig.endpointPublicAccess as AWS applies it: on unless set to false (unknown counts as on)."""
    public = peek(vpc, "endpointPublicAccess", strict=True)
    return True if public is None else public is not False


def check_eks_endpoint(args: ResourceValidationArgs) -> Iterator[str]:
    vpc = peek(args.props, "vpcConfig", strict=True)
    # AWS defaults: public endpoint on, private off, public CIDRs 0.0.0.0/0.
    public = endpoint_public(vpc)
    private = peek(vpc, "endpointPrivateAccess", strict=True) is True
    if stack_of(args.urn) in PRODUCTION:
        if public:
            yield "vpcConfig.endpointPublicAccess is not false: the prod API server must be private"
        if not private:
            yield "vpcConfig.endpointPrivateAccess is not true: the prod API server needs a private endpoint"
        return
    if public:
        cidrs = elements(peek(vpc, "publicAccessCidrs", strict=True))
        if not cidrs:
            yield "public endpoint without vpcConfig.publicAccessCidrs: AWS opens it to 0.0.0.0/0"
        for cidr in cidrs:
            if cidr in OPEN_CIDRS:
                yield f"vpcConfig.publicAccessCidrs contains {cidr}: list the admin networks instead"


# ---- the prod API: reached only through a referenced security group ---------------------------

SG_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
HTTPS = 443
# Sources that admit by address (a range or a prefix list) rather than by security group; the first
# three are SecurityGroupIngressRule's, the others SecurityGroupRule's.
ADDRESS_SOURCES = ("cidrIpv4", "cidrIpv6", "prefixListId", "cidrBlocks", "ipv6CidrBlocks", "prefixListIds")
GROUP_SOURCES = ("referencedSecurityGroupId", "sourceSecurityGroupId")


def admits_https(resource: PolicyResource) -> bool:
    """Whether an ingress rule's protocol and port range take in TCP 443 (unknown counts as yes)."""
    props = resource.props
    if resource.resource_type == SG_RULE and peek(props, "type") != "ingress":
        return False
    protocol = (
        peek(props, "ipProtocol") if resource.resource_type == SG_INGRESS_RULE else peek(props, "protocol")
    )
    if is_unknown(protocol) or str(protocol) in ("-1", "all"):
        return True
    if str(protocol) not in ("tcp", "6"):
        return False
    low, high = peek(props, "fromPort"), peek(props, "toPort")
    return is_unknown(low) or is_unknown(high) or (low or 0) <= HTTPS <= (high or 0)


def on_cluster_group(rule: PolicyResource, cluster: PolicyResource) -> bool:
    """A rule on the group EKS made for the cluster: its ID is the one the cluster reports or, before
    the cluster exists (a first preview), the rule takes its group from the cluster."""
    group = peek(rule.props, "securityGroupId")
    reported = peek(cluster.props, "vpcConfig", "clusterSecurityGroupId")
    if isinstance(group, str) and isinstance(reported, str):
        return group == reported
    return any(dependency.urn == cluster.urn for dependency in rule.dependencies)


def validate_prod_api_reachability(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    clusters = [r for r in args.resources if r.resource_type == EKS_CLUSTER and stack_of(r.urn) in PRODUCTION]
    rules = [r for r in args.resources if r.resource_type in (SG_INGRESS_RULE, SG_RULE) and admits_https(r)]
    for cluster in clusters:
        if endpoint_public(peek(cluster.props, "vpcConfig")):
            report_violation(
                "vpcConfig.endpointPublicAccess is not false: the prod API admits addresses", cluster.urn
            )
        by_group = 0
        for rule in (r for r in rules if on_cluster_group(r, cluster)):
            by_address = [key for key in ADDRESS_SOURCES if peek(rule.props, key) not in (None, [])]
            if by_address:
                report_violation(
                    f"admits {by_address[0]} on 443 to the prod cluster security group: only a referenced "
                    "security group (the runner's) may reach the API",
                    rule.urn,
                )
            elif any(peek(rule.props, key) for key in GROUP_SOURCES):
                by_group += 1
        if not by_group:
            report_violation(
                "no rule admits a referenced security group on 443 to the cluster security group: "
                "the private API is unreachable for deploys (docs/adr/0003)",
                cluster.urn,
            )


# ---- nodes: IMDSv2 and GPU pools --------------------------------------------------------------

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
EC2_NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"


def check_imdsv2(args: ResourceValidationArgs) -> Iterator[str]:
    props = args.props
    if args.resource_type == NODE_GROUP:
        if not peek(props, "launchTemplate", strict=True):
            yield "no launchTemplate: the EKS default template does not prove httpTokens=required"
        return
    path: tuple[str, ...] = ("spec", "metadataOptions", "httpTokens")
    if args.resource_type == LAUNCH_TEMPLATE:
        path = path[1:]
    tokens = peek(props, *path, strict=True)
    if tokens != "required":
        yield f'{".".join(path)} is {tokens!r}, expected "required" (IMDSv2)'


GPU_FAMILY_RE = re.compile(r"^(g[3-9][a-z]*|gr[0-9][a-z]*|p[2-9][a-z]*)$")
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true"}
GPU_ATTRIBUTE_KEYS = frozenset(
    {
        "karpenter.k8s.aws/instance-gpu-count",
        "karpenter.k8s.aws/instance-gpu-name",
        "karpenter.k8s.aws/instance-gpu-manufacturer",
        "karpenter.k8s.aws/instance-gpu-memory",
    }
)


def gpu_instance_type(value: Any) -> bool:
    """g5.xlarge, p4d.24xlarge, g6e... are NVIDIA GPU instance types."""
    return isinstance(value, str) and bool(GPU_FAMILY_RE.match(value.split(".")[0]))


def gpu_requirement(requirement: Any) -> bool:
    """A Karpenter requirement that selects GPU instances."""
    key, operator = peek(requirement, "key"), peek(requirement, "operator")
    values = [v for v in elements(peek(requirement, "values")) if isinstance(v, str)]
    if operator in ("NotIn", "DoesNotExist"):
        return False
    if key in GPU_ATTRIBUTE_KEYS:
        return operator in ("Gt", "Exists") or any(v != "0" for v in values)
    if key == "karpenter.k8s.aws/instance-family":
        return any(GPU_FAMILY_RE.match(v) for v in values)
    if key == "karpenter.k8s.aws/instance-category":
        return any(v in ("g", "p") for v in values)
    if key == "node.kubernetes.io/instance-type":
        return any(gpu_instance_type(v) for v in values)
    return False


def is_gpu_pool(resource_type: str, props: Mapping[str, Any]) -> bool:
    """A NodePool labelled mlplat/gpu-pool or requiring GPU instances; a NodeGroup of GPU types/AMIs."""
    if resource_type == NODE_POOL:
        labels = peek(props, "spec", "template", "metadata", "labels")
        if isinstance(labels, Mapping) and any(key == GPU_POOL_LABEL for key in labels):
            return True
        requirements = elements(peek(props, "spec", "template", "spec", "requirements"))
        return any(gpu_requirement(r) for r in requirements)
    ami = peek(props, "amiType")
    gpu_ami = isinstance(ami, str) and ("GPU" in ami or "NVIDIA" in ami)
    return gpu_ami or any(gpu_instance_type(t) for t in elements(peek(props, "instanceTypes")))


def check_gpu_taint(args: ResourceValidationArgs) -> Iterator[str]:
    if not is_gpu_pool(args.resource_type, args.props):
        return
    if args.resource_type == NODE_POOL:
        taints, effect = peek(args.props, "spec", "template", "spec", "taints", strict=True), "NoSchedule"
    else:
        taints, effect = peek(args.props, "taints", strict=True), "NO_SCHEDULE"
    wanted = {**GPU_TAINT, "effect": effect}
    if not any(all(peek(t, k) == v for k, v in wanted.items()) for t in elements(taints)):
        yield f"GPU pool without the taint {wanted}: any pod could land on (and hold) a GPU node"


def check_gpu_limits(args: ResourceValidationArgs) -> Iterator[str]:
    if (
        is_gpu_pool(args.resource_type, args.props)
        and peek(args.props, "spec", "limits", "nvidia.com/gpu") is None
    ):
        yield 'GPU NodePool without spec.limits["nvidia.com/gpu"]: Karpenter may scale GPUs without bound'


# ---- state protection in prod ---------------------------------------------------------------

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
HELM_CHART_V4 = "kubernetes:helm.sh/v4:Chart"
HELM_TYPES = (HELM_RELEASE, HELM_CHART_V4)
STATEFUL_TYPES = frozenset(
    {
        KMS_KEY,
        EKS_CLUSTER,
        "aws:s3/bucketV2:BucketV2",
        "aws:s3/bucket:Bucket",
        "aws:rds/instance:Instance",
        "aws:rds/cluster:Cluster",
        "aws:ebs/volume:Volume",
        "aws:efs/fileSystem:FileSystem",
        "aws:dynamodb/table:Table",
        "kubernetes:core/v1:PersistentVolumeClaim",
    }
)
# Charts whose PersistentVolumes hold data the platform cannot regenerate.
STATEFUL_CHARTS = frozenset({"vault", "minio", "mlflow", "kube-prometheus-stack", "postgresql"})


def chart_name(props: Mapping[str, Any]) -> str:
    chart = peek(props, "chart")
    return chart.rstrip("/").rsplit("/", 1)[-1] if isinstance(chart, str) else ""


def is_stateful(resource_type: str, props: Mapping[str, Any]) -> bool:
    return resource_type in STATEFUL_TYPES or (
        resource_type in HELM_TYPES and chart_name(props) in STATEFUL_CHARTS
    )


def check_protected(args: ResourceValidationArgs) -> Iterator[str]:
    if stack_of(args.urn) not in PRODUCTION or not is_stateful(args.resource_type, args.props):
        return
    # retain_on_delete is set by offline.py only: the CLI's analyzer protocol does not carry it.
    if not args.opts.protect and not getattr(args.opts, "retain_on_delete", False):
        yield "stateful prod resource without protect=True or retain_on_delete=True"


# ---- Helm ----------------------------------------------------------------------------------------

EXACT_VERSION_RE = re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


def check_helm_pinned(args: ResourceValidationArgs) -> Iterator[str]:
    chart = peek(args.props, "chart", strict=True)
    if isinstance(chart, str) and chart.startswith((".", "/")):
        return  # a chart in this repository is pinned by the commit
    version = peek(args.props, "version", strict=True)
    if not isinstance(version, str) or not EXACT_VERSION_RE.match(version):
        yield f"chart {chart!r} version is {version!r}: pin an exact version such as 1.2.3"


def check_helm_oci_chart_form(args: ResourceValidationArgs) -> Iterator[str]:
    """An OCI registry given as `repositoryOpts.repo` makes Helm fetch `<repo>/index.yaml`, which
    OCI registries do not serve: the release fails at install. OCI charts are named in `chart`
    as `oci://host/path/name`: Helm takes an OCI chart only as a full reference
    (https://helm.sh/docs/topics/registries/), pulumi-kubernetes passes `chart` to Helm as such
    (OCI support in Release: pulumi/pulumi-kubernetes#1892; "Chart Resolution" in
    https://www.pulumi.com/registry/packages/kubernetes/api-docs/helm/v4/chart/)."""
    repo = peek(args.props, "repositoryOpts", "repo")
    if isinstance(repo, str) and repo.startswith("oci://"):
        chart = peek(args.props, "chart")
        yield f"repositoryOpts.repo is the OCI registry {repo!r}: set chart={repo.rstrip('/')}/{chart} instead"


def check_helm_values_secrets(args: ResourceValidationArgs) -> Iterator[str]:
    for path in plaintext_secrets(peek(args.props, "values"), "values"):
        yield f"{path} holds a plaintext secret: reference an existing Secret or pass pulumi.secret()"


# ---- IAM -----------------------------------------------------------------------------------------

IAM_DOCUMENT_TYPES = frozenset(
    {
        "aws:iam/policy:Policy",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/groupPolicy:GroupPolicy",
    }
)
IAM_ROLE = "aws:iam/role:Role"
IAM_ATTACHMENT_TYPES = frozenset(
    {
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:iam/policyAttachment:PolicyAttachment",
        "aws:iam/userPolicyAttachment:UserPolicyAttachment",
        "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
    }
)
ADMIN_ACTIONS = frozenset({"*", "*:*"})


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def admin_statements(document: Any) -> Iterator[str]:
    """Allow statements granting every action on every resource in one IAM policy document."""
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    for index, statement in enumerate(_as_list(statements)):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        actions = set(_as_list(statement.get("Action"))) & ADMIN_ACTIONS
        if actions and "*" in _as_list(statement.get("Resource")):
            sid = statement.get("Sid", index)
            yield f"statement {sid!r} allows Action {sorted(actions)[0]!r} on Resource '*'"


def check_iam_admin(args: ResourceValidationArgs) -> Iterator[str]:
    if args.resource_type in IAM_ATTACHMENT_TYPES:
        arn = peek(args.props, "policyArn")
        if isinstance(arn, str) and arn.endswith(":policy/AdministratorAccess"):
            yield "attaches AdministratorAccess (Action * on Resource *)"
        return
    if args.resource_type == IAM_ROLE:
        documents = [peek(p, "policy", strict=True) for p in elements(peek(args.props, "inlinePolicies"))]
    else:
        documents = [peek(args.props, "policy", strict=True)]
    for document in documents:
        try:
            parsed = as_json(document)
        except ValueError:
            yield "policy is not valid JSON"
            continue
        yield from admin_statements(parsed)


# ---- S3: a bucket and its companion resources ------------------------------------------------

BUCKET_TYPES = frozenset({"aws:s3/bucketV2:BucketV2", "aws:s3/bucket:Bucket"})
VERSIONING_TYPES = frozenset(
    {"aws:s3/bucketVersioningV2:BucketVersioningV2", "aws:s3/bucketVersioning:BucketVersioning"}
)
SSE_TYPES = frozenset(
    {
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    }
)
PUBLIC_ACCESS_BLOCK_TYPES = frozenset({"aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"})
KMS_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def _single(candidates: Iterable[PolicyResource]) -> PolicyResource | None:
    found = {r.urn: r for r in candidates}
    return next(iter(found.values())) if len(found) == 1 else None


def owning_bucket(companion: PolicyResource, buckets: list[PolicyResource]) -> PolicyResource | None:
    """The bucket a companion configures; the rules are tried in order (README: S3 correlation).

    1. the engine's property dependencies of `bucket` (CLI only: the offline plan has none);
    2. a known `bucket` value equal to the bucket's name input, logical name or URN reference;
    3. the one bucket among the companion's dependencies;
    4. naming: same parent and companion name = bucket name + "-..." (longest bucket name wins).
    """
    by_property = _single(r for r in companion.property_dependencies.get("bucket", []) if r in buckets)
    if by_property:
        return by_property
    value = peek(companion.props, "bucket")
    if isinstance(value, Mapping):
        value = peek(value, "resourceRef")
    if isinstance(value, str):
        by_value = _single(b for b in buckets if value in (peek(b.props, "bucket"), b.name, b.urn))
        if by_value:
            return by_value
    by_dependency = _single(d for d in companion.dependencies if d in buckets)
    if by_dependency:
        return by_dependency
    named = [
        b
        for b in buckets
        if b.opts.parent == companion.opts.parent and companion.name.startswith(f"{b.name}-")
    ]
    return max(named, key=lambda b: len(b.name), default=None)


def companions_by_bucket(resources: list[PolicyResource], types: frozenset[str]) -> dict[str, list[Any]]:
    """Bucket URN -> props of its companions of `types`."""
    buckets = [r for r in resources if r.resource_type in BUCKET_TYPES]
    found: dict[str, list[Any]] = {b.urn: [] for b in buckets}
    for resource in resources:
        if resource.resource_type in types:
            bucket = owning_bucket(resource, buckets)
            if bucket is not None:
                found[bucket.urn].append(resource.props)
    return found


def sse_kms(props: Any) -> bool:
    rules = elements(peek(props, "rules", strict=True))
    algorithms = [peek(r, "applyServerSideEncryptionByDefault", "sseAlgorithm", strict=True) for r in rules]
    return bool(algorithms) and all(a in KMS_ALGORITHMS for a in algorithms)


def versioning_enabled(props: Any) -> bool:
    return bool(peek(props, "versioningConfiguration", "status", strict=True) == "Enabled")


def public_access_blocked(props: Any) -> bool:
    return all(peek(props, flag, strict=True) is True for flag in PUBLIC_ACCESS_FLAGS)


def bucket_policy(
    name: str, description: str, types: frozenset[str], compliant: Callable[[Any], bool], missing: str
) -> StackValidationPolicy:
    """A stack policy: every bucket needs a companion of `types` for which `compliant` holds."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for bucket_urn, companions in companions_by_bucket(list(args.resources), types).items():
            if not any(compliant(props) for props in companions):
                detail = "a non-compliant one" if companions else "none"
                report_violation(f"{missing} (found {detail})", bucket_urn)

    return StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=MANDATORY,
        remediation_steps=missing,
    )


# ---- plaintext secrets in stack outputs and config --------------------------------------------

STACK_TYPE = "pulumi:pulumi:Stack"
STACK_SECRETS_POLICY = "no-plaintext-secrets-in-outputs-or-config"  # pragma: allowlist secret


def stack_config_file(stack: str) -> Path:
    """environments/Pulumi.<stack>.yaml, following the project's stackConfigDir."""
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text()) or {}
    return REPO / str(project.get("stackConfigDir", ".")) / f"Pulumi.{stack}.yaml"


def config_secrets(path: Path) -> Iterator[str]:
    """Plaintext credentials in a stack file's config; ConfigError when the file is refused."""
    document = parse_stack_yaml(path)
    config = document.get("config") if isinstance(document, dict) else None
    for key, value in entries(config or {}):
        yield from plaintext_secrets({key: value})


def validate_stack_secrets(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    stacks = [r for r in args.resources if r.resource_type == STACK_TYPE]
    for stack in stacks:
        for output in plaintext_secrets(stack.props, "outputs"):
            report_violation(
                f"stack output {output} is a plaintext secret: export it with pulumi.Output.secret()",
                stack.urn,
            )
    if not args.resources:
        return
    urn = args.resources[0].urn
    configured = args.get_config().get("stackConfigFile")
    path = Path(configured) if configured else stack_config_file(stack_of(urn))
    if not path.is_file():
        if configured:
            report_violation(f"stackConfigFile {path} does not exist", stack_urn(urn))
        return
    try:
        keys = list(config_secrets(path))
    except ConfigError as err:
        where = "; ".join(f"{place}: {reason}" for place, reason in err.problems)
        report_violation(f"stack config {path.name} cannot be read safely ({where})", stack_urn(urn))
        return
    for key in keys:
        report_violation(
            f"config {key} in {path.name} is plaintext: set it with `pulumi config set --secret`",
            stack_urn(urn),
        )


# ---- the pack --------------------------------------------------------------------------------

POLICIES: list[Policy] = [
    resource_policy(
        "kms-key-rotation",
        "KMS keys rotate their key material yearly, limiting what one leaked key version decrypts.",
        [KMS_KEY],
        check_kms_rotation,
        "Set enable_key_rotation=True on aws.kms.Key.",
    ),
    resource_policy(
        "kms-deletion-window-prod",
        "Prod KMS keys keep the 30-day deletion window so a mistaken deletion can be cancelled.",
        [KMS_KEY],
        check_kms_deletion_window,
        "Set deletion_window_in_days=30 (or leave it unset) on prod keys.",
        # Advisory: a recovery-time trade-off, not an exposure; protect-stateful-prod already blocks deletes.
        enforcement_level=ADVISORY,
    ),
    resource_policy(
        "eks-secrets-encryption",
        "EKS envelope-encrypts Kubernetes Secrets with a customer-managed KMS key.",
        [EKS_CLUSTER],
        check_eks_secrets_encryption,
        'Set encryption_config={"provider": {"key_arn": key.arn}, "resources": ["secrets"]}.',
    ),
    resource_policy(
        "eks-audit-logging",
        "EKS control-plane audit logs go to CloudWatch so API access can be investigated.",
        [EKS_CLUSTER],
        check_eks_audit_logs,
        'Add "audit" to enabled_cluster_log_types.',
    ),
    resource_policy(
        "eks-endpoint-access",
        "The prod EKS API is private; elsewhere a public API is allowed only from an allowlist.",
        [EKS_CLUSTER],
        check_eks_endpoint,
        "prod: endpoint_public_access=False, endpoint_private_access=True; "
        "dev/staging: set public_access_cidrs to the admin networks, never 0.0.0.0/0.",
    ),
    resource_policy(
        "nodes-imdsv2-required",
        "Nodes require IMDSv2 session tokens, so SSRF in a pod cannot read the node role's credentials.",
        [LAUNCH_TEMPLATE, EC2_NODE_CLASS, NODE_GROUP],
        check_imdsv2,
        'Set metadata_options.http_tokens="required" (EC2NodeClass: spec.metadataOptions.httpTokens); '
        "give managed node groups a launch template.",
    ),
    resource_policy(
        "gpu-pool-taint",
        "GPU pools carry the nvidia.com/gpu=true:NoSchedule taint so only GPU workloads use GPU nodes.",
        [NODE_POOL, NODE_GROUP],
        check_gpu_taint,
        'Add {key: "nvidia.com/gpu", value: "true", effect: "NoSchedule"} to spec.template.spec.taints '
        "(NodeGroup: effect NO_SCHEDULE).",
    ),
    resource_policy(
        "gpu-pool-limits",
        "GPU NodePools cap their nvidia.com/gpu total, bounding what a runaway workload can spend.",
        [NODE_POOL],
        check_gpu_limits,
        'Set spec.limits["nvidia.com/gpu"] to the pool\'s share of gpu.max_total_gpus.',
    ),
    resource_policy(
        "protect-stateful-prod",
        "Prod resources holding state (keys, buckets, cluster, volumes, stateful charts) cannot be deleted.",
        STATEFUL_TYPES | set(HELM_TYPES),
        check_protected,
        "Pass ResourceOptions(protect=True) (mlplat:protect_stateful) to stateful prod resources.",
    ),
    resource_policy(
        "helm-chart-version-pinned",
        "Helm charts are pinned to an exact version, so a deploy is reproducible and reviewed.",
        HELM_TYPES,
        check_helm_pinned,
        "Set version to an exact chart version from infra/versions.py, not a range, empty or latest.",
    ),
    resource_policy(
        "helm-oci-chart-form",
        "OCI charts are named in chart (oci://host/path/name); an OCI repository URL makes Helm fail.",
        HELM_TYPES,
        check_helm_oci_chart_form,
        'Set chart="oci://host/path/name" and leave repository_opts unset (infra/services/chart.py helm_release).',
    ),
    resource_policy(
        "helm-values-no-plaintext-secrets",
        "Helm values hold no literal credentials: they would sit in the state and the release Secret.",
        HELM_TYPES,
        check_helm_values_secrets,
        "Point the chart at an existing Secret (existingSecret) or wrap the value in pulumi.secret().",
    ),
    resource_policy(
        "iam-no-admin-wildcard",
        'IAM policies never Allow Action "*" on Resource "*": every role gets least privilege.',
        IAM_DOCUMENT_TYPES | IAM_ATTACHMENT_TYPES | {IAM_ROLE},
        check_iam_admin,
        "List the actions and resource ARNs the role needs; do not attach AdministratorAccess.",
    ),
    bucket_policy(
        "s3-sse-kms",
        "S3 buckets encrypt objects by default with SSE-KMS.",
        SSE_TYPES,
        sse_kms,
        'Declare BucketServerSideEncryptionConfigurationV2 with sse_algorithm "aws:kms" for the bucket',
    ),
    bucket_policy(
        "s3-versioning",
        "S3 buckets keep object versions, so overwrites and deletes can be undone.",
        VERSIONING_TYPES,
        versioning_enabled,
        'Declare BucketVersioningV2 with status "Enabled" for the bucket',
    ),
    bucket_policy(
        "s3-public-access-block",
        "S3 buckets block every form of public access.",
        PUBLIC_ACCESS_BLOCK_TYPES,
        public_access_blocked,
        "Declare BucketPublicAccessBlock with all four block/ignore/restrict flags true for the bucket",
    ),
    StackValidationPolicy(
        name="prod-api-admits-only-referenced-groups",
        description="The prod EKS API is private and its cluster security group admits 443 only from a "
        "referenced security group (the environment's runner), never from an address range.",
        validate=validate_prod_api_reachability,
        enforcement_level=MANDATORY,
        remediation_steps="Keep endpoint_public_access=False; admit the runner with one "
        "aws.vpc.SecurityGroupIngressRule(referenced_security_group_id=<runner group>, 443) on "
        "vpc_config.cluster_security_group_id (mlplat:cluster.endpoint.runner) and no CIDR or prefix list.",
    ),
    StackValidationPolicy(
        name=STACK_SECRETS_POLICY,
        description="Stack outputs and stack config hold no plaintext credentials.",
        validate=validate_stack_secrets,
        enforcement_level=MANDATORY,
        config_schema=PolicyConfigSchema(properties={"stackConfigFile": {"type": "string"}}),
        remediation_steps="Export with pulumi.Output.secret(); set config with `pulumi config set --secret`.",
    ),
]
