"""An admission policy: a Workflow in the pipelines' namespace runs a retraining WorkflowTemplate as
declared in git, and neither its spec nor the spec the controller runs for it can be rewritten
afterwards (README "Retraining").

Why: Argo merges a submitted Workflow's spec over the WorkflowTemplate it references. Under
`templateReferencing: Secure` (platform/argo-workflows/values.yaml) the controller still lets a
submitter set `entrypoint` and `arguments` (argoproj/argo-workflows v4.0.6 workflow/util/merge.go
`allowedUserOverrideFields`), and an argument artifact replaces a step's input of the same name,
the `propose` step's git checkout with the GitHub token included (workflow/common/util.go
`ProcessArgs`). Only the Sensor's account may create Workflows there today; this policy holds
whichever account is granted that next, and also refuses what the controller's own check refuses
(`templates`, `podSpecPatch`, `serviceAccountName`, ...), so the two do not depend on each other.

On CREATE the spec holds `workflowTemplateRef` (by name only: no `clusterScope`) naming one of the
pipelines' WorkflowTemplates, `arguments.parameters` of `{name, value}` entries naming only
parameters that template declares (which MLP-RETRAIN-PARAMETER keeps to the lineage ones), and at
most an `entrypoint` equal to the template's own. That is every Workflow the platform creates: the
Sensor's (platform/argo-events/resources/sensor.yaml), a CronWorkflow's (its `workflowSpec` becomes
the Workflow's spec: workflow/common/convert.go `toWorkflow`), `argo submit --from
workflowtemplate/<name> -p ...` (convert.go `NewWorkflowFromWorkflowTemplate`; workflow/util/util.go
`ApplySubmitOpts` adds `entrypoint`, `serviceAccountName` or `priority` only when asked) and the UI's
Submit on a WorkflowTemplate, which sends the template's own `spec.entrypoint` as `entryPoint`
(ui/src/workflow-templates/workflow-template-details.tsx, ui/src/workflows/components/
submit-workflow-panel.tsx; the server's `SubmitWorkflow` hands it to `ApplySubmitOpts`).

The spec must also be written as the controller writes it back, since its later updates carry the
whole Workflow re-encoded by Go (UPDATE below compares the spec): `arguments` present
(`WorkflowSpec.Arguments` is a struct, which encoding/json's `omitempty` never omits), `parameters` a
non-empty list when present (an empty one is omitted), each `value` a string (`AnyString` reads a
number or a bool and writes it back as a string: pkg/apis/workflow/v1alpha1/anystring.go). A spec the
controller cannot write back would hang the run holding its app's mutex.

And a new Workflow carries no status. The CRD has no status subresource
(manifests/base/crds/minimal/argoproj.io_workflows.yaml `subresources: {}`), so a status sent with
the create is stored as sent, and the controller runs a `status.storedWorkflowTemplateSpec` it finds
instead of fetching the template (workflow/controller/operator.go `setStoredWfSpec`): one with
`suspend: false` differs, as a pointer, from the Workflow's unset `spec.suspend`
(`needsStoredWfSpecUpdate`), so it is merged and run without the `Secure` comparison. A Go client's
create carries `status: {startedAt: null, finishedAt: null}` (the two `metav1.Time` fields of
pkg/apis/workflow/v1alpha1/workflow_types.go `WorkflowStatus`, structs `omitempty` keeps, which
kubernetes/apimachinery pkg/apis/meta/v1/time.go `MarshalJSON` writes as null when unset; every other
field is omitted when empty): that, or no status, is admitted. `argo resubmit --memoized` copies the
old run's `status.nodes` and is refused.

On UPDATE the spec may change in `shutdown` and `suspend` only: the fields Argo's controls write
(`argo stop`/`terminate` patch `spec.shutdown`: util.go `patchShutdownStrategy`; `argo suspend` and
`resume` set and clear `spec.suspend`: `SuspendWorkflow`, `ResumeWorkflow`; `argo retry` clears
`spec.shutdown`: `createNewRetryWorkflow`, which with `-p` would also rewrite the parameters: refused).
The controller never writes a referencing Workflow's spec: it merges the template and its defaults
into `status.storedWorkflowTemplateSpec` (operator.go `setExecWorkflow`, `setStoredWfSpec`) and
writes status, labels and annotations through the main resource, the spec unchanged. Whoever may
update a Workflow (what `argo stop`, `suspend`, `resume` and `retry` need) could also write that
stored spec, so only the controller's ServiceAccount may change it; anyone else may only drop its
`shutdown`, which `argo retry` clears (`createNewRetryWorkflow`). The controller's account is the
chart's `controller.serviceAccount.name`, set by the program (argo_workflows.py).

The expressions use standard CEL only (`has`, `all` over a list or a map's keys, `in`, `==`, `size`,
`type(x) == string`, `? :`, list and map literals; no Kubernetes library function, no `variables`):
the API server hands `object` and `oldObject` to them as untyped JSON maps (kubernetes/apiserver
v0.33.10 pkg/admission/plugin/cel/compile.go declares both `DynType`; condition.go
`objectToResolveVal`) and `request` as the AdmissionRequest with the requester's
`userInfo.username` (cel/filter.go `CreateAdmissionRequest`), and the tests evaluate the same text
with cel-python. `admissionregistration.k8s.io/v1` is stable since Kubernetes 1.30
(https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/), older than
any version a stack may pin (infra/versions.py `EKS_ADDONS`; a test holds it). `failurePolicy:
Fail`: an expression that cannot be evaluated refuses the request too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.services.chart import NAMESPACE_NAME_LABEL

POLICY = "retraining-workflows-as-declared"
# The first Kubernetes minor version serving admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy
# (module docstring); every version a stack may pin must be at least this one.
POLICY_API_SINCE = (1, 30)
# What a submitted Workflow's spec may hold; its template reference, by name only.
SUBMITTED_FIELDS = ("workflowTemplateRef", "arguments", "entrypoint")
TEMPLATE_REF_FIELDS = ("name",)
ARGUMENT_FIELDS = ("parameters",)
PARAMETER_FIELDS = ("name", "value")
# What a Go client sends as the status of a new Workflow: WorkflowStatus's two metav1.Time fields,
# which encoding/json never omits and which encode as null when unset (module docstring).
NEW_STATUS_FIELDS = ("startedAt", "finishedAt")
# The spec fields Argo's own controls change on a live Workflow (module docstring).
CONTROL_FIELDS = ("shutdown", "suspend")
# The merged spec the controller runs (WorkflowStatus.StoredWorkflowSpec's JSON name), and the one
# field of it `argo retry` clears (module docstring).
STORED_SPEC = "storedWorkflowTemplateSpec"
RETRY_CLEARS = "shutdown"

_CREATE = "request.operation != 'CREATE' || "
_UPDATE = "request.operation != 'UPDATE' || "
_REF = "object.spec.workflowTemplateRef"


@dataclass(frozen=True)
class DeclaredTemplate:
    """What a Workflow referencing a retraining WorkflowTemplate may set: the template's own
    `entrypoint` (None when it has none) and the names of the workflow parameters it declares."""

    entrypoint: str | None
    parameters: tuple[str, ...]


def _cel(value: object) -> str:
    """A CEL literal of strings, lists of strings and maps of them (JSON's spelling is CEL's)."""
    return json.dumps(value)


def service_account_username(namespace: str, account: str) -> str:
    """The user name the API server gives a ServiceAccount's requests (`request.userInfo.username`):
    https://kubernetes.io/docs/reference/access-authn-authz/authentication/#service-account-tokens."""
    return f"system:serviceaccount:{namespace}:{account}"


def _stored_spec(obj: str) -> str:
    return f"{obj}.status.{STORED_SPEC}"


def _has_stored_spec(obj: str) -> str:
    return f"(has({obj}.status) && has({_stored_spec(obj)}))"


def validations(templates: Mapping[str, DeclaredTemplate], controller: str) -> list[dict[str, str]]:
    """The policy's rules, each a CEL expression true for an admitted request and the message of a
    refused one. `templates`: each retraining WorkflowTemplate by name; `controller`: the user name
    of the workflow controller's ServiceAccount, the only one that may write the spec it runs."""
    declared = _cel({name: sorted(t.parameters) for name, t in sorted(templates.items())})
    entrypoints = _cel({name: t.entrypoint for name, t in sorted(templates.items()) if t.entrypoint})
    names = ", ".join(sorted(templates)) or "none"
    names_a_template = f"has({_REF}) && has({_REF}.name) && {_REF}.name in {declared}"
    parameters = "object.spec.arguments.parameters"
    new, old = _stored_spec("object"), _stored_spec("oldObject")
    return [
        {
            "expression": _CREATE + f"object.spec.all(k, k in {_cel(SUBMITTED_FIELDS)})",
            "message": (
                "a Workflow here runs a retraining WorkflowTemplate as declared in git: its spec sets "
                "workflowTemplateRef, arguments.parameters and at most the template's own entrypoint "
                "(templates, podSpecPatch, serviceAccountName and the rest would override the template)"
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
            + f"!has(object.spec.entrypoint) || ({names_a_template} && {_REF}.name in {entrypoints} && "
            + f"object.spec.entrypoint == {entrypoints}[{_REF}.name])",
            "message": (
                "spec.entrypoint, when set, is the referenced WorkflowTemplate's own entrypoint (what the "
                f"Argo UI's Submit sends: {entrypoints}): another one would run a step out of its pipeline"
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
            + f"!has(object.spec.arguments) || !has({parameters}) || "
            + f"({names_a_template} && {parameters}.all(p, "
            + f"p.all(k, k in {_cel(PARAMETER_FIELDS)}) && has(p.name) && p.name in {declared}[{_REF}.name]))",
            "message": (
                "spec.arguments.parameters: each a name and a value, the name one the referenced "
                f"WorkflowTemplate declares ({declared})"
            ),
        },
        {
            "expression": _CREATE
            + f"has(object.spec.arguments) && (!has({parameters}) || (size({parameters}) > 0 && "
            + f"{parameters}.all(p, !has(p.value) || type(p.value) == string)))",
            "message": (
                "the spec is written as the controller writes it back: spec.arguments present ({} when "
                "empty), parameters a non-empty list when present, each value a string; else the "
                "controller's own update of the Workflow is refused and the run hangs holding its "
                "app's mutex"
            ),
        },
        {
            "expression": _CREATE
            + f"!has(object.status) || object.status.all(k, k in {_cel(NEW_STATUS_FIELDS)} && "
            + "object.status[k] == null)",
            "message": (
                "a new Workflow has no status (a Go client's startedAt: null and finishedAt: null at "
                f"most): the controller runs a status.{STORED_SPEC} it finds instead of the template's, "
                "and a copied status.nodes (argo resubmit --memoized) is refused with it"
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
        {
            "expression": _UPDATE
            + f"request.userInfo.username == {_cel(controller)} || "
            + f"({_has_stored_spec('object')} ? {_has_stored_spec('oldObject')} && "
            + f"{new}.all(k, k in {old} && {new}[k] == {old}[k]) && "
            + f"{old}.all(k, k in {new} || k == {_cel(RETRY_CLEARS)}) : !{_has_stored_spec('oldObject')})",
            "message": (
                f"status.{STORED_SPEC}, the spec the controller runs, is written by the controller "
                f"({controller}) only; anyone else may at most drop its {RETRY_CLEARS} (argo retry)"
            ),
        },
    ]


@dataclass(frozen=True, kw_only=True)
class WorkflowAdmissionArgs:
    # The namespace the controller runs pipelines in, the only one the binding selects.
    namespace: str
    # Each retraining WorkflowTemplate applied there, by name.
    templates: Mapping[str, DeclaredTemplate]
    # The workflow controller's ServiceAccount in that namespace: the one writer of the spec it runs.
    controller_service_account: str


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
                    for rule in validations(
                        args.templates,
                        service_account_username(args.namespace, args.controller_service_account),
                    )
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
