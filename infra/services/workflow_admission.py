"""An admission policy: a Workflow in the pipelines' namespace runs a retraining WorkflowTemplate as
declared in git, and its spec cannot be rewritten once created (README "Retraining").

Why: Argo merges a submitted Workflow's spec over the WorkflowTemplate it references. Under
`templateReferencing: Secure` (platform/argo-workflows/values.yaml) the controller still lets a
submitter set `entrypoint` and `arguments` (argoproj/argo-workflows v4.0.6 workflow/util/merge.go
`allowedUserOverrideFields`), and an argument artifact replaces a step's input of the same name,
the `propose` step's git checkout with the GitHub token included (workflow/common/util.go
`ProcessArgs`). Only the Sensor's account may create Workflows there today; this policy holds
whichever account is granted that next, and also refuses what the controller's own check refuses
(`templates`, `podSpecPatch`, `serviceAccountName`, ...), so the two do not depend on each other.

On CREATE the spec holds `workflowTemplateRef` (by name only: no `clusterScope`) naming one of the
pipelines' WorkflowTemplates, and `arguments.parameters` of `{name, value}` entries naming only
parameters that template declares (which MLP-RETRAIN-PARAMETER keeps to the lineage ones). That is
every Workflow the platform creates: the Sensor's (platform/argo-events/resources/sensor.yaml), a
CronWorkflow's (its `workflowSpec` becomes the Workflow's spec: workflow/common/convert.go
`toWorkflow`) and `argo submit --from workflowtemplate/<name> -p ...` (convert.go
`NewWorkflowFromWorkflowTemplate`; workflow/util/util.go `ApplySubmitOpts` adds `entrypoint`,
`serviceAccountName` or `priority` only when asked).

On UPDATE the spec may change in `shutdown` and `suspend` only: the fields Argo's controls write
(`argo stop`/`terminate` patch `spec.shutdown`: util.go `patchShutdownStrategy`; `argo suspend` and
`resume` set and clear `spec.suspend`: `SuspendWorkflow`, `ResumeWorkflow`; `argo retry` clears
`spec.shutdown`: `createNewRetryWorkflow`, which with `-p` would also rewrite the parameters: refused).
The controller never writes a referencing Workflow's spec: it merges the template and its defaults
into `status.storedWorkflowSpec` (workflow/controller/operator.go `setExecWorkflow`,
`setStoredWfSpec`), and writes status, labels and annotations through the main resource (the CRD
has no status subresource: manifests/base/crds/minimal/argoproj.io_workflows.yaml `subresources: {}`),
with the spec unchanged. So nobody is exempted.

The expressions use standard CEL only (`has`, `all` over a list or a map's keys, `in`, `==`, list and
map literals; no Kubernetes library function, no `variables`): the API server hands `object` and
`oldObject` to them as untyped JSON maps (kubernetes/apiserver v0.33.10 pkg/admission/plugin/cel/
compile.go declares both `DynType`; condition.go `objectToResolveVal`), and the tests evaluate the
same text with cel-python. `admissionregistration.k8s.io/v1` is stable since Kubernetes 1.30
(https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/), older than
any version a stack may pin (infra/versions.py `EKS_ADDONS`; a test holds it). `failurePolicy:
Fail`: an expression that cannot be evaluated refuses the request too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.services.chart import NAMESPACE_NAME_LABEL

POLICY = "retraining-workflows-as-declared"
# The first Kubernetes minor version serving admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy
# (module docstring); every version a stack may pin must be at least this one.
POLICY_API_SINCE = (1, 30)
# What a submitted Workflow's spec may hold; its template reference, by name only.
SUBMITTED_FIELDS = ("workflowTemplateRef", "arguments")
TEMPLATE_REF_FIELDS = ("name",)
ARGUMENT_FIELDS = ("parameters",)
PARAMETER_FIELDS = ("name", "value")
# The spec fields Argo's own controls change on a live Workflow (module docstring).
CONTROL_FIELDS = ("shutdown", "suspend")

_CREATE = "request.operation != 'CREATE' || "
_UPDATE = "request.operation != 'UPDATE' || "
_REF = "object.spec.workflowTemplateRef"


def _cel(value: object) -> str:
    """A CEL literal of strings, lists of strings and maps of them (JSON's spelling is CEL's)."""
    return json.dumps(value)


def validations(templates: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    """The policy's rules, each a CEL expression true for an admitted request and the message of a
    refused one. `templates`: each retraining WorkflowTemplate's name and the parameters it declares."""
    declared = _cel({name: sorted(params) for name, params in sorted(templates.items())})
    names = ", ".join(sorted(templates)) or "none"
    names_a_template = f"has({_REF}) && has({_REF}.name) && {_REF}.name in {declared}"
    return [
        {
            "expression": _CREATE + f"object.spec.all(k, k in {_cel(SUBMITTED_FIELDS)})",
            "message": (
                "a Workflow here runs a retraining WorkflowTemplate as declared in git: its spec sets "
                "workflowTemplateRef and arguments.parameters only (entrypoint, templates, podSpecPatch, "
                "serviceAccountName and the rest would override the template)"
            ),
        },
        {
            "expression": _CREATE + f"{names_a_template} && {_REF}.all(k, k in {_cel(TEMPLATE_REF_FIELDS)})",
            "message": (
                f"spec.workflowTemplateRef names one of this namespace's retraining WorkflowTemplates "
                f"({names}), by name only (no clusterScope)"
            ),
        },
        {
            "expression": _CREATE
            + f"!has(object.spec.arguments) || object.spec.arguments.all(k, k in {_cel(ARGUMENT_FIELDS)})",
            "message": (
                "spec.arguments carries parameters only: an argument artifact replaces a step's input of "
                "the same name, such as the git checkout that holds the GitHub token"
            ),
        },
        {
            "expression": _CREATE
            + "!has(object.spec.arguments) || !has(object.spec.arguments.parameters) || "
            + f"({names_a_template} && object.spec.arguments.parameters.all(p, "
            + f"p.all(k, k in {_cel(PARAMETER_FIELDS)}) && has(p.name) && p.name in {declared}[{_REF}.name]))",
            "message": (
                "spec.arguments.parameters: each a name and a value, the name one the referenced "
                f"WorkflowTemplate declares ({declared})"
            ),
        },
        {
            "expression": _UPDATE
            + f"object.spec.all(k, k in {_cel(CONTROL_FIELDS)} || "
            + "(k in oldObject.spec && object.spec[k] == oldObject.spec[k])) && "
            + f"oldObject.spec.all(k, k in {_cel(CONTROL_FIELDS)} || k in object.spec)",
            "message": (
                "a Workflow's spec does not change once created, but for spec.shutdown and spec.suspend "
                "(argo stop, terminate, suspend, resume, retry): a pending run cannot be rewritten"
            ),
        },
    ]


@dataclass(frozen=True, kw_only=True)
class WorkflowAdmissionArgs:
    # The namespace the controller runs pipelines in, the only one the binding selects.
    namespace: str
    # Each retraining WorkflowTemplate applied there and the parameters it declares.
    templates: Mapping[str, tuple[str, ...]]


class WorkflowAdmission(pulumi.ComponentResource):
    """The ValidatingAdmissionPolicy on Workflows and its binding to the pipelines' namespace."""

    def __init__(self, name: str, args: WorkflowAdmissionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlplat:services:WorkflowAdmission", name, None, opts)
        self.policy = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
            f"{name}-policy",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=POLICY),
            spec=k8s.admissionregistration.v1.ValidatingAdmissionPolicySpecArgs(
                failure_policy="Fail",
                match_constraints=k8s.admissionregistration.v1.MatchResourcesArgs(
                    resource_rules=[
                        k8s.admissionregistration.v1.NamedRuleWithOperationsArgs(
                            api_groups=["argoproj.io"],
                            api_versions=["v1alpha1"],
                            resources=["workflows"],
                            operations=["CREATE", "UPDATE"],
                        )
                    ]
                ),
                validations=[
                    k8s.admissionregistration.v1.ValidationArgs(
                        expression=rule["expression"], message=rule["message"], reason="Forbidden"
                    )
                    for rule in validations(args.templates)
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.binding = k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
            f"{name}-binding",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=POLICY),
            spec=k8s.admissionregistration.v1.ValidatingAdmissionPolicyBindingSpecArgs(
                policy_name=POLICY,
                validation_actions=["Deny"],
                match_resources=k8s.admissionregistration.v1.MatchResourcesArgs(
                    namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                        match_labels={NAMESPACE_NAME_LABEL: args.namespace}
                    )
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy]),
        )
        self.register_outputs({"policy": self.policy.metadata.name, "binding": self.binding.metadata.name})
