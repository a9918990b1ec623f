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

The rest of the status the controller trusts is held the same way on anyone else's UPDATE (v4.0.6
workflow_types.go `WorkflowStatus`):
- `artifactRepositoryRef` (the controller resolves the repository only while it is unset and uses a
  full repository definition found there as is: operator.go `operate`, artifactrepositories.go `get`;
  every Secret a step's artifacts name is mounted into its pod: workflowpod.go
  `createSecretVolumesAndMounts`), `storedTemplates`, `synchronization` (lock holders),
  `taskResultsCompletionStatus`, `offloadNodeStatusVersion` and `compressedNodes` stay as they are
  (absent in both or equal); `persistentVolumeClaims` (each deleted when the run completes:
  operator.go `deletePVCs`) may also be dropped or emptied, which is all `argo retry` does to it
  (util.go `createNewRetryWorkflow`).
- a node's `outputs` (a later step takes an output artifact as input, its storage Secret mounted)
  is never new nor changed: `argo retry` deletes nodes and resets phase, message and times
  (`FormulateRetryWorkflow`, `resetNode`), `argo resume` the same of suspended nodes
  (`ResumeWorkflow`); only a Suspend node's output parameters are rewritten by Argo's controls
  (`resetNode`, `OverrideOutputParametersWithDefault`, `argo node set`: `updateSuspendedNode`), so a
  node the old object holds as `Suspend` may change `outputs.parameters` and nothing else. Nodes
  compressed into `compressedNodes` (a Workflow over 1 MiB: workflow/packer/packer.go) cannot be read
  here, so resuming or retrying such a Workflow is refused.
- label `workflows.argoproj.io/completed` (the controller skips a run labelled `true`:
  controller.go `reconciliationNeeded`) may be dropped (`argo retry`) but not set or changed, and
  annotation `workflows.argoproj.io/last-seen-version` (a run whose value differs from the one the
  controller last wrote is skipped as outdated: controller.go `isOutdated`) is unchanged.
`argo stop` and `terminate` merge-patch `spec.shutdown` (`patchShutdownStrategy`); `suspend`,
`resume` and `retry` read the Workflow and update it whole (`SuspendWorkflow`, `ResumeWorkflow`,
server/workflow/workflow_server.go `RetryWorkflow`), conflicts retried, so each carries these as the
controller last wrote them.

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
# The rest of the status only the controller writes (module docstring), and the one of them `argo
# retry` empties.
CONTROLLER_STATUS = (
    "artifactRepositoryRef",
    "storedTemplates",
    "synchronization",
    "taskResultsCompletionStatus",
    "offloadNodeStatusVersion",
    "compressedNodes",
)
RETRY_EMPTIES = "persistentVolumeClaims"
# The node type whose output parameters Argo's controls rewrite, and that part of its outputs.
SUSPEND_NODE = "Suspend"
SUSPEND_OUTPUTS = "parameters"
# The label the controller skips completed runs by, and the annotation it skips outdated ones by
# (argo-workflows v4.0.6 workflow/common/common.go `LabelKeyCompleted`, `AnnotationKeyLastSeenVersion`).
COMPLETED_LABEL = "workflows.argoproj.io/completed"
LAST_SEEN_ANNOTATION = "workflows.argoproj.io/last-seen-version"

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


def _unchanged(parent: str, key: str, may_drop: bool = False) -> str:
    """CEL true when map `parent` of the object holds `key` (a CEL string) as oldObject's does, or
    in neither; with `may_drop`, also when the object no longer holds it."""
    new, old = (
        f"(has(object.{parent}) && {key} in object.{parent})",
        f"(has(oldObject.{parent}) && {key} in oldObject.{parent})",
    )
    kept = f"{old} && object.{parent}[{key}] == oldObject.{parent}[{key}]"
    return f"({new} ? {kept} : {'true' if may_drop else '!' + old})"


def _outputs_kept(node: str) -> str:
    """CEL true when status node `node` (a CEL string) has no outputs, or outputs oldObject's node
    held, changed at most in the output parameters of a node oldObject holds as Suspend."""
    new, old = f"object.status.nodes[{node}]", f"oldObject.status.nodes[{node}]"
    suspend = f"'type' in {old} && {old}.type == {_cel(SUSPEND_NODE)}"
    part = _cel(SUSPEND_OUTPUTS)
    resumed = (
        f"{new}.outputs.all(k, k == {part} || (k in {old}.outputs && {new}.outputs[k] == {old}.outputs[k])) && "
        f"{old}.outputs.all(k, k == {part} || k in {new}.outputs)"
    )
    return (
        f"!('outputs' in {new}) || (has(oldObject.status) && has(oldObject.status.nodes) && "
        f"{node} in oldObject.status.nodes && 'outputs' in {old} && "
        f"({new}.outputs == {old}.outputs || ({suspend} && {resumed})))"
    )


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
    by_controller = _UPDATE + f"request.userInfo.username == {_cel(controller)} || "
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
            "expression": by_controller
            + f"({_has_stored_spec('object')} ? {_has_stored_spec('oldObject')} && "
            + f"{new}.all(k, k in {old} && {new}[k] == {old}[k]) && "
            + f"{old}.all(k, k in {new} || k == {_cel(RETRY_CLEARS)}) : !{_has_stored_spec('oldObject')})",
            "message": (
                f"status.{STORED_SPEC}, the spec the controller runs, is written by the controller "
                f"({controller}) only; anyone else may at most drop its {RETRY_CLEARS} (argo retry)"
            ),
        },
        {
            "expression": by_controller
            + f"{_cel(CONTROLLER_STATUS)}.all(f, {_unchanged('status', 'f')}) && "
            + f"({_unchanged('status', _cel(RETRY_EMPTIES), may_drop=True)} || "
            + f"size(object.status.{RETRY_EMPTIES}) == 0)",
            "message": (
                f"status.{', status.'.join(CONTROLLER_STATUS)} are written by the controller "
                f"({controller}) only, and status.{RETRY_EMPTIES} too but that anyone may empty it "
                "(argo retry): a forged artifact repository receives the Secrets it names and every "
                "artifact, a forged claim is deleted when the run completes, a forged lock holder "
                "blocks the app's runs"
            ),
        },
        {
            "expression": by_controller
            + "!has(object.status) || !has(object.status.nodes) || "
            + f"object.status.nodes.all(n, {_outputs_kept('n')})",
            "message": (
                f"a node's outputs in status.nodes are written by the controller ({controller}) only "
                f"(anyone else may delete or reset nodes, and rewrite a {SUSPEND_NODE} node's output "
                "parameters: argo retry, resume, node set): a forged output artifact names the Secret "
                "the next step's pod mounts"
            ),
        },
        {
            "expression": by_controller
            + f"{_unchanged('metadata.labels', _cel(COMPLETED_LABEL), may_drop=True)} && "
            + f"{_unchanged('metadata.annotations', _cel(LAST_SEEN_ANNOTATION))}",
            "message": (
                f"label {COMPLETED_LABEL} is set by the controller ({controller}) only (argo retry "
                f"drops it), and annotation {LAST_SEEN_ANNOTATION} changed by it only: the controller "
                "skips a run whose label says completed or whose annotation is not the one it wrote"
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
