"""The admission policy on Workflows in the pipelines' namespace (infra/services/workflow_admission.py),
read from the plan of every environment and evaluated with cel-python (tests/support/admission.py):
what the Sensor, a CronWorkflow, `argo submit --from` and the UI's Submit create is admitted, and the
controller can write each back; a Workflow that overrides its template, carries a status, or is
written so the controller could not write it back is refused, as is a rewrite of a pending one's spec,
and, by anyone but the controller, of its stored spec, of the rest of the status the controller
trusts, of a node's outputs, of its completed label or its last-seen-version annotation; Argo's own
controls keep working, but on a Workflow whose nodes are compressed.
"""

from __future__ import annotations

import copy
import re
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from infra import versions
from infra.config import ConfigError
from infra.services import argo_workflows, workflow_admission
from infra.services.chart import REPO
from tests.support.admission import refusals
from tests.support.harness import Plan, Registered, depends_on

POLICY = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
BINDING = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"
NAME_LABEL = "kubernetes.io/metadata.name"
CONTROLLER = workflow_admission.service_account_username(
    argo_workflows.NAMESPACE, argo_workflows.CONTROLLER_SERVICE_ACCOUNT
)
# Anyone else: a person running `argo stop`, `suspend`, `resume` or `retry`, or a pipeline's account.
OPERATOR = "operator"
# Those who run Argo's controls: a person through kubectl or the CLI, and the argo-server's account
# (its name here stands for any account but the controller's).
ADMIN = "kube:admin"
ARGO_SERVER = workflow_admission.service_account_username(argo_workflows.NAMESPACE, "argo-workflows-server")
# A run's name and its nodes' IDs as the controller writes them.
RUN = "retrain-run"


def _validations(retraining_plan: Plan) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = retraining_plan.one(POLICY).inputs["spec"]["validations"]
    return rules


def _refused(
    retraining_plan: Plan,
    operation: str,
    obj: dict[str, Any],
    old: dict[str, Any] | None = None,
    by: str = OPERATOR,
) -> list[str]:
    """The policy's refusals, each a rule found false: none may fail to evaluate (which `failurePolicy:
    Fail` would also refuse, hiding which rule was meant to)."""
    refused = refusals(_validations(retraining_plan), operation, by, obj, old)
    assert not [m for m in refused if "cannot be evaluated" in m or "not a bool" in m], refused
    return refused


def _documents(retraining_plan: Plan, kind: str) -> list[Registered]:
    return [r for r in retraining_plan.resources if r.type == f"kubernetes:argoproj.io/v1alpha1:{kind}"]


def _sensor_workflow(retraining_plan: Plan, app: str) -> dict[str, Any]:
    """The Workflow the Sensor creates for an alert on `app`: its trigger's resource with each
    parameter written at its `dest` (an sjson path: dot-separated keys, list indices as numbers),
    `append` and `prepend` joining the current string (argoproj/argo-events v1.9.10
    pkg/sensors/triggers/params.go `ApplyParams`), then its labels added, the only change before the
    create (pkg/sensors/triggers/standard-k8s/standard-k8s.go `Execute`). A `dataKey` is read from the
    alert; a `dataTemplate` renders a string the policy does not read (a name, the lineage text), so a
    stand-in is written there."""
    sensor = retraining_plan.one("kubernetes:argoproj.io/v1alpha1:Sensor")
    trigger = sensor.inputs["spec"]["triggers"][0]["template"]["k8s"]
    assert trigger["operation"] == "create", sensor.urn
    workflow: dict[str, Any] = copy.deepcopy(trigger["source"]["resource"])
    alert = {"body": {"status": "firing", "commonLabels": {"model": app, "alertname": "ModelDrift"}}}
    for parameter in trigger["parameters"]:
        src = parameter["src"]
        if "dataKey" in src:
            value: Any = alert
            for key in src["dataKey"].split("."):
                value = value[key]
        else:
            value = f"rendered {parameter['dest']}"
        *path, last = parameter["dest"].split(".")
        node: Any = workflow
        for key in path:
            node = node[int(key)] if isinstance(node, list) else node[key]
        index: Any = int(last) if isinstance(node, list) else last
        old = node[index] if isinstance(node, list) or index in node else ""
        operation = parameter.get("operation", "overwrite")
        node[index] = {"append": old + value, "prepend": value + old}.get(operation, value)
    workflow["metadata"]["labels"] = {
        "events.argoproj.io/sensor": sensor.inputs["metadata"]["name"],
        "events.argoproj.io/trigger": sensor.inputs["spec"]["triggers"][0]["template"]["name"],
        "events.argoproj.io/action-timestamp": "1764633600000",
    }
    return workflow


def _apps(retraining_plan: Plan) -> list[str]:
    return sorted(
        r.inputs["metadata"]["labels"]["mlplat/model"]
        for r in _documents(retraining_plan, "WorkflowTemplate")
    )


def _submitted(template: str, **spec: Any) -> dict[str, Any]:
    """What `argo submit --from workflowtemplate/<template> -p trigger=manual -p triggered-by=me`
    creates (argo-workflows v4.0.6 workflow/common/convert.go `NewWorkflowFromWorkflowTemplate`),
    with `spec` merged over it."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": f"{template}-", "namespace": argo_workflows.NAMESPACE},
        "spec": {
            "workflowTemplateRef": {"name": template},
            "arguments": {
                "parameters": [
                    {"name": "trigger", "value": "manual"},
                    {"name": "triggered-by", "value": "me"},
                ]
            },
            **spec,
        },
    }


def _a_template(retraining_plan: Plan) -> str:
    return str(_documents(retraining_plan, "WorkflowTemplate")[0].inputs["metadata"]["name"])


def test_the_policy_and_its_binding_are_in_the_plan_before_the_controller(retraining_plan: Plan) -> None:
    policy, binding = retraining_plan.one(POLICY), retraining_plan.one(BINDING)
    assert policy.inputs["spec"]["failurePolicy"] == "Fail", policy.urn
    assert binding.inputs["spec"]["policyName"] == policy.inputs["metadata"]["name"], binding.urn
    assert binding.inputs["spec"]["validationActions"] == ["Deny"], binding.urn
    rules = policy.inputs["spec"]["matchConstraints"]["resourceRules"]
    assert rules == [
        {
            "apiGroups": ["argoproj.io"],
            "apiVersions": ["v1alpha1"],
            "resources": ["workflows"],
            "operations": ["CREATE", "UPDATE"],
        }
    ], policy.urn
    release = retraining_plan.releases()["argo-workflows"]
    assert depends_on(retraining_plan, release, binding), (
        f"{release.urn}: the controller may start before the policy binds"
    )


def test_every_kubernetes_version_a_stack_may_pin_serves_the_policy_api() -> None:
    older = [
        v
        for v in versions.EKS_ADDONS
        if tuple(int(part) for part in v.split(".")) < workflow_admission.POLICY_API_SINCE
    ]
    assert not older, f"admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy is not served by {older}"


def test_the_binding_selects_the_pipelines_namespace_only(retraining_plan: Plan) -> None:
    binding = retraining_plan.one(BINDING)
    assert binding.inputs["spec"]["matchResources"] == {
        "namespaceSelector": {"matchLabels": {NAME_LABEL: argo_workflows.NAMESPACE}}
    }, binding.urn


def test_the_sensors_workflow_is_admitted_for_every_app_with_a_pipeline(retraining_plan: Plan) -> None:
    apps = _apps(retraining_plan)
    assert apps, retraining_plan.env
    for app in apps:
        workflow = _sensor_workflow(retraining_plan, app)
        assert workflow["spec"]["workflowTemplateRef"] == {"name": f"retrain-{app}"}
        assert _refused(retraining_plan, "CREATE", workflow) == [], (
            f"{retraining_plan.env}: {app}: {workflow}"
        )


def test_a_cronworkflows_workflow_is_admitted(retraining_plan: Plan) -> None:
    crons = _documents(retraining_plan, "CronWorkflow")
    assert crons, retraining_plan.env
    for cron in crons:
        workflow = {"metadata": {"name": "scheduled"}, "spec": cron.inputs["spec"]["workflowSpec"]}
        assert _refused(retraining_plan, "CREATE", workflow) == [], cron.urn


def test_a_manual_submit_from_the_template_is_admitted(retraining_plan: Plan) -> None:
    workflow = _submitted(_a_template(retraining_plan))
    workflow["spec"]["arguments"]["parameters"].append({"name": "params", "value": '{"max_depth": 3}'})
    assert _refused(retraining_plan, "CREATE", workflow) == []


@pytest.mark.parametrize(
    ("override", "refused_for"),
    [
        ({"entrypoint": "register"}, "entrypoint"),
        ({"templates": [{"name": "retrain", "container": {"image": "evil"}}]}, "templates"),
        ({"podSpecPatch": '{"containers": [{"name": "main", "image": "evil"}]}'}, "podSpecPatch"),
        ({"serviceAccountName": "retrain-churn-gbm"}, "serviceAccountName"),
    ],
)
def test_a_workflow_overriding_its_template_is_refused(
    retraining_plan: Plan, override: dict[str, Any], refused_for: str
) -> None:
    refused = _refused(retraining_plan, "CREATE", _submitted(_a_template(retraining_plan), **override))
    assert any(refused_for in message for message in refused), refused


def test_an_argument_artifact_replacing_the_git_checkout_is_refused(retraining_plan: Plan) -> None:
    workflow = _submitted(_a_template(retraining_plan))
    workflow["spec"]["arguments"]["artifacts"] = [
        {"name": "repo", "git": {"repo": "https://evil.invalid/x.git"}}
    ]
    refused = _refused(retraining_plan, "CREATE", workflow)
    assert any("argument artifact" in message for message in refused), refused


def test_an_inline_workflow_without_a_template_reference_is_refused(retraining_plan: Plan) -> None:
    workflow = {
        "metadata": {"name": "inline"},
        "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": "evil"}}]},
    }
    refused = _refused(retraining_plan, "CREATE", workflow)
    assert any("spec.workflowTemplateRef names one of" in message for message in refused), refused


def test_a_cluster_scoped_template_reference_is_refused(retraining_plan: Plan) -> None:
    workflow = _submitted(_a_template(retraining_plan))
    workflow["spec"]["workflowTemplateRef"]["clusterScope"] = True
    refused = _refused(retraining_plan, "CREATE", workflow)
    assert any("no clusterScope" in message for message in refused), refused


def test_a_template_that_is_not_a_pipeline_is_refused(retraining_plan: Plan) -> None:
    refused = _refused(retraining_plan, "CREATE", _submitted("someone-elses-template"))
    assert any("spec.workflowTemplateRef names one of" in message for message in refused), refused


@pytest.mark.parametrize(
    "parameter",
    [
        {"name": "repo", "value": "https://evil.invalid/x.git"},
        {"name": "trigger", "valueFrom": {"configMapKeyRef": {"name": "platform-repository", "key": "url"}}},
    ],
)
def test_a_parameter_the_template_does_not_declare_or_a_value_from_elsewhere_is_refused(
    retraining_plan: Plan, parameter: dict[str, Any]
) -> None:
    workflow = _submitted(_a_template(retraining_plan))
    workflow["spec"]["arguments"]["parameters"].append(parameter)
    refused = _refused(retraining_plan, "CREATE", workflow)
    assert any("spec.arguments.parameters" in message for message in refused), refused


def _running(retraining_plan: Plan) -> dict[str, Any]:
    return _sensor_workflow(retraining_plan, _apps(retraining_plan)[0])


@pytest.mark.parametrize(
    "rewrite",
    [
        {"entrypoint": "register"},
        {"arguments": {"parameters": [{"name": "trigger", "value": "manual"}]}},
        {"workflowTemplateRef": {"name": "retrain-other"}},
    ],
)
def test_an_update_rewriting_a_pending_workflows_spec_is_refused(
    retraining_plan: Plan, rewrite: dict[str, Any]
) -> None:
    old = _running(retraining_plan)
    new = copy.deepcopy(old)
    new["spec"].update(rewrite)
    refused = _refused(retraining_plan, "UPDATE", new, old)
    assert any("does not change once created" in message for message in refused), refused


def test_an_update_dropping_a_spec_field_is_refused(retraining_plan: Plan) -> None:
    old = _running(retraining_plan)
    new = copy.deepcopy(old)
    del new["spec"]["arguments"]
    refused = _refused(retraining_plan, "UPDATE", new, old)
    assert any("does not change once created" in message for message in refused), refused


@pytest.mark.parametrize(
    "control",
    [
        {"shutdown": "Stop"},  # argo stop (workflow/util/util.go patchShutdownStrategy)
        {"shutdown": "Terminate"},  # argo terminate
        {"suspend": True},  # argo suspend (SuspendWorkflow)
    ],
)
def test_argos_own_controls_still_update_a_workflow(retraining_plan: Plan, control: dict[str, Any]) -> None:
    old = _running(retraining_plan)
    new = copy.deepcopy(old)
    new["spec"].update(control)
    new["metadata"]["labels"] = {"workflows.argoproj.io/action": "changed"}
    assert _refused(retraining_plan, "UPDATE", new, old) == []
    # And back again: `argo resume` drops `suspend`, `argo retry` clears `shutdown`
    # (ResumeWorkflow, createNewRetryWorkflow).
    assert _refused(retraining_plan, "UPDATE", old, new) == []


def _go_string(value: Any) -> str:
    """A parameter value as Argo's AnyString holds it: read from a JSON string, number or bool, and
    written back as a string (argo-workflows v4.0.6 pkg/apis/workflow/v1alpha1/anystring.go: bools
    by strconv.FormatBool, numbers by FormatFloat(v, 'f', -1, 64): no exponent, fewest digits)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format(Decimal(repr(float(value))), "f").removesuffix(".0")
    return str(value)


def _go_encoded_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A Workflow's spec as a Go client writes it back after reading it into v4.0.6 WorkflowSpec
    (pkg/apis/workflow/v1alpha1/workflow_types.go): `arguments` is a struct, which encoding/json's
    `omitempty` never omits; empty strings, lists and nil pointers are omitted; a parameter's `name`
    has no `omitempty`; values are AnyStrings. Only the fields the policy lets a Workflow hold are
    modelled: any other one here means the policy admitted a field this model does not know."""
    assert set(spec) <= {"workflowTemplateRef", "arguments", "entrypoint", "shutdown", "suspend"}, spec
    encoded: dict[str, Any] = {}
    if spec.get("workflowTemplateRef") is not None:
        assert set(spec["workflowTemplateRef"]) <= {"name", "clusterScope"}, spec
        encoded["workflowTemplateRef"] = {k: v for k, v in spec["workflowTemplateRef"].items() if v}
    for field in ("entrypoint", "shutdown"):
        if spec.get(field):
            encoded[field] = spec[field]
    if spec.get("suspend") is not None:
        encoded["suspend"] = spec["suspend"]
    arguments = spec.get("arguments") or {}
    assert set(arguments) <= {"parameters"}, spec
    parameters = []
    for parameter in arguments.get("parameters") or []:
        assert set(parameter) <= {"name", "value"}, spec
        written = {"name": parameter.get("name") or ""}
        if parameter.get("value") is not None:
            written["value"] = _go_string(parameter["value"])
        parameters.append(written)
    encoded["arguments"] = {"parameters": parameters} if parameters else {}
    return encoded


def _controllers_write(created: dict[str, Any]) -> dict[str, Any]:
    """The controller's update of a Workflow it runs: the object read back and encoded by Go, the
    merged spec it runs stored in status (operator.go `setStoredWfSpec`), the artifact repository it
    resolved (`operate`), the app's mutex held, the `fetch` step done with its output artifact and
    `train` running, the version it last wrote noted (controller.go `isOutdated`), labels added."""
    written = copy.deepcopy(created)
    written["spec"] = _go_encoded_spec(created["spec"])
    written["metadata"].setdefault("labels", {})["workflows.argoproj.io/phase"] = "Running"
    written["metadata"].setdefault("annotations", {})[workflow_admission.LAST_SEEN_ANNOTATION] = "4242"
    written["status"] = {
        "phase": "Running",
        "startedAt": "2026-12-01T00:00:00Z",
        "finishedAt": None,
        workflow_admission.STORED_SPEC: {
            **written["spec"],
            "entrypoint": "retrain",
            "templates": [{"name": "retrain", "steps": [[{"name": "fetch", "template": "fetch"}]]}],
        },
        "artifactRepositoryRef": {
            "configMap": "artifact-repositories",
            "key": "default-v1",
            "namespace": argo_workflows.NAMESPACE,
            "artifactRepository": {"s3": {"bucket": "argo-artifacts", "endpoint": "minio:9000"}},
        },
        "synchronization": {
            "mutex": {"holding": [{"mutex": f"{argo_workflows.NAMESPACE}/Mutex/retrain", "holder": RUN}]}
        },
        "taskResultsCompletionStatus": {f"{RUN}-fetch": True},
        "nodes": {
            RUN: {"id": RUN, "type": "Steps", "phase": "Running", "children": [f"{RUN}-fetch"]},
            f"{RUN}-fetch": {
                "id": f"{RUN}-fetch",
                "type": "Pod",
                "phase": "Succeeded",
                "templateName": "fetch",
                "children": [f"{RUN}-train"],
                "outputs": {"artifacts": [{"name": "data", "s3": {"key": "churn-gbm/data.tgz"}}]},
            },
            f"{RUN}-train": {
                "id": f"{RUN}-train",
                "type": "Pod",
                "phase": "Running",
                "templateName": "train",
            },
        },
    }
    return written


def _ui_submitted(template: Registered) -> dict[str, Any]:
    """What the Argo UI's Submit on a WorkflowTemplate creates: the template's own entrypoint as
    `entryPoint` and each declared parameter with a value as `name=value`
    (ui/src/workflow-templates/workflow-template-details.tsx, ui/src/workflows/components/
    submit-workflow-panel.tsx), made a Workflow by the server's `SubmitWorkflow` (convert.go
    `NewWorkflowFromWorkflowTemplate`, util.go `ApplySubmitOpts`), as a Go client sends it."""
    spec = template.inputs["spec"]
    name = str(template.inputs["metadata"]["name"])
    workflow = _submitted(name, entrypoint=spec["entrypoint"])
    workflow["metadata"]["labels"] = {"submit-from-ui": "true"}
    workflow["spec"]["arguments"]["parameters"] = [
        {"name": p["name"], "value": str(p["value"])} for p in spec["arguments"]["parameters"] if "value" in p
    ]
    workflow["status"] = {"startedAt": None, "finishedAt": None}
    return workflow


def test_the_argo_uis_submit_from_a_template_is_admitted(retraining_plan: Plan) -> None:
    for template in _documents(retraining_plan, "WorkflowTemplate"):
        workflow = _ui_submitted(template)
        assert workflow["spec"]["arguments"]["parameters"], template.urn
        assert _refused(retraining_plan, "CREATE", workflow) == [], template.urn


def test_an_entrypoint_other_than_the_templates_own_is_refused(retraining_plan: Plan) -> None:
    template = _documents(retraining_plan, "WorkflowTemplate")[0]
    workflow = _ui_submitted(template)
    steps = [t["name"] for t in template.inputs["spec"]["templates"]]
    other = next(step for step in steps if step != template.inputs["spec"]["entrypoint"])
    workflow["spec"]["entrypoint"] = other
    refused = _refused(retraining_plan, "CREATE", workflow)
    assert any("spec.entrypoint, when set" in message for message in refused), refused


def test_a_go_clients_create_with_its_empty_status_is_admitted(retraining_plan: Plan) -> None:
    workflow = _submitted(_a_template(retraining_plan))
    workflow["status"] = {"startedAt": None, "finishedAt": None}
    assert _refused(retraining_plan, "CREATE", workflow) == []


@pytest.mark.parametrize(
    "status",
    [
        # A stored spec the controller would run instead of the template's: `suspend: false` makes it
        # differ from the unset spec.suspend, so it is merged without the Secure comparison.
        {
            workflow_admission.STORED_SPEC: {
                "suspend": False,
                "entrypoint": "main",
                "templates": [{"name": "main", "container": {"image": "evil", "command": ["sh"]}}],
            }
        },
        {"nodes": {"x": {"phase": "Succeeded"}}},  # argo resubmit --memoized copies the old nodes
        {"startedAt": "2026-12-01T00:00:00Z", "finishedAt": None},
        {"startedAt": None, "finishedAt": None, "phase": "Running"},
    ],
)
def test_a_create_carrying_a_status_is_refused(retraining_plan: Plan, status: dict[str, Any]) -> None:
    workflow = _submitted(_a_template(retraining_plan))
    workflow["status"] = status
    refused = _refused(retraining_plan, "CREATE", workflow)
    assert any("a new Workflow has no status" in message for message in refused), refused


def _candidate_creates(retraining_plan: Plan) -> list[tuple[str, dict[str, Any]]]:
    """What may be sent as a new Workflow: the platform's own, and specs that read the same to Argo
    but are written otherwise (by kubectl or any client that is not Go's)."""
    template = _a_template(retraining_plan)
    candidates = [(f"sensor {app}", _sensor_workflow(retraining_plan, app)) for app in _apps(retraining_plan)]
    candidates += [
        (cron.urn, {"metadata": {"name": "scheduled"}, "spec": cron.inputs["spec"]["workflowSpec"]})
        for cron in _documents(retraining_plan, "CronWorkflow")
    ]
    candidates += [(t.urn, _ui_submitted(t)) for t in _documents(retraining_plan, "WorkflowTemplate")]
    candidates.append(("argo submit", _submitted(template)))
    for label, spec in [
        ("no arguments", {"arguments": None}),
        ("empty arguments", {"arguments": {}}),
        ("empty parameter list", {"arguments": {"parameters": []}}),
        ("numeric value", {"arguments": {"parameters": [{"name": "params", "value": 3}]}}),
        ("bool value", {"arguments": {"parameters": [{"name": "trigger", "value": True}]}}),
        ("null value", {"arguments": {"parameters": [{"name": "trigger", "value": None}]}}),
        ("no value", {"arguments": {"parameters": [{"name": "trigger"}]}}),
    ]:
        workflow = _submitted(template, **spec)
        if spec.get("arguments", {}) is None:
            del workflow["spec"]["arguments"]
        candidates.append((label, workflow))
    return candidates


def test_every_admitted_create_is_one_the_controller_can_write_back(retraining_plan: Plan) -> None:
    """The controller's updates carry the spec re-encoded by Go: a create it cannot write back
    unchanged would be admitted, then never updated, holding its app's mutex."""
    admitted = []
    for label, created in _candidate_creates(retraining_plan):
        if _refused(retraining_plan, "CREATE", created):
            continue
        admitted.append(label)
        written = _controllers_write(created)
        assert _refused(retraining_plan, "UPDATE", written, created, by=CONTROLLER) == [], (
            f"{label}: {written}"
        )
    assert {"argo submit", "empty arguments", "no value"} <= set(admitted), admitted


@pytest.mark.parametrize(
    "spec",
    [
        {"workflowTemplateRef": {"name": "retrain-churn-gbm"}},
        {"arguments": {"parameters": []}},
        {"arguments": {"parameters": [{"name": "params", "value": 3}]}},
        {"arguments": {"parameters": [{"name": "trigger", "value": None}]}},
    ],
)
def test_a_spec_the_controller_cannot_write_back_is_refused_at_create(
    retraining_plan: Plan, spec: dict[str, Any]
) -> None:
    workflow = _submitted(_a_template(retraining_plan))
    if "workflowTemplateRef" in spec:
        workflow["spec"] = {"workflowTemplateRef": {"name": _a_template(retraining_plan)}}
    else:
        workflow["spec"].update(spec)
    refused = _refused(retraining_plan, "CREATE", workflow)
    assert any("as the controller writes it back" in message for message in refused), refused


def test_the_controllers_status_update_is_admitted(retraining_plan: Plan) -> None:
    old = _running(retraining_plan)
    assert _refused(retraining_plan, "UPDATE", _controllers_write(old), old, by=CONTROLLER) == []


def test_the_controller_may_rewrite_the_stored_spec_it_runs(retraining_plan: Plan) -> None:
    """`argo suspend` and `stop` change spec.suspend and spec.shutdown; the controller merges them into
    the stored spec again (operator.go `needsStoredWfSpecUpdate`)."""
    old = _controllers_write(_running(retraining_plan))
    new = copy.deepcopy(old)
    new["status"][workflow_admission.STORED_SPEC]["suspend"] = True
    assert _refused(retraining_plan, "UPDATE", new, old, by=CONTROLLER) == []


def _forged(stored: dict[str, Any]) -> dict[str, Any]:
    stored["suspend"] = False
    stored["templates"] = [{"name": "retrain", "container": {"image": "evil", "command": ["sh"]}}]
    return stored


@pytest.mark.parametrize(
    "forge",
    [
        "rewrite",  # the controller's stored spec replaced
        "add",  # a stored spec written before the controller picked the Workflow up
        "remove",  # the controller made to fetch the template again mid-run
    ],
)
def test_another_account_writing_the_stored_spec_is_refused(retraining_plan: Plan, forge: str) -> None:
    picked_up = _controllers_write(_running(retraining_plan))
    old, new = copy.deepcopy(picked_up), copy.deepcopy(picked_up)
    if forge == "rewrite":
        _forged(new["status"][workflow_admission.STORED_SPEC])
    elif forge == "add":
        del old["status"][workflow_admission.STORED_SPEC]
        _forged(new["status"][workflow_admission.STORED_SPEC])
    else:
        del new["status"][workflow_admission.STORED_SPEC]
    refused = _refused(retraining_plan, "UPDATE", new, old)
    assert any("written by the controller" in message for message in refused), refused


def _stopped(retraining_plan: Plan) -> dict[str, Any]:
    """A run `argo stop` ended while `train` ran: failed, completed, its work volume listed."""
    stopped = _controllers_write(_running(retraining_plan))
    stopped["metadata"]["labels"][workflow_admission.COMPLETED_LABEL] = "true"
    stopped["metadata"]["labels"]["workflows.argoproj.io/workflow-archiving-status"] = "Pending"
    stopped["spec"]["shutdown"] = "Stop"
    status = stopped["status"]
    status[workflow_admission.STORED_SPEC]["shutdown"] = "Stop"
    status.update(phase="Failed", message="Stopped with strategy 'Stop'", finishedAt="2026-12-01T01:00:00Z")
    status["nodes"][f"{RUN}-train"].update(phase="Failed", message="Stopped")
    status[workflow_admission.RETRY_EMPTIES] = [
        {"name": "work", "persistentVolumeClaim": {"claimName": f"{RUN}-work"}}
    ]
    status["conditions"] = [{"type": "Completed", "status": "True"}]
    return stopped


def _retried(stopped: dict[str, Any]) -> dict[str, Any]:
    """What `argo retry` writes back (argo-workflows v4.0.6 workflow/util/util.go
    `createNewRetryWorkflow`, `FormulateRetryWorkflow`, `resetNode`; server/workflow/
    workflow_server.go `RetryWorkflow`): the completed and archiving labels dropped, spec.shutdown and
    the stored spec's cleared, phase (`WorkflowUnknown`, "", omitted) and message cleared, the claims
    emptied (omitted), the failed node deleted and its parents reset to Running, the action label set."""
    retried = copy.deepcopy(stopped)
    labels = retried["metadata"]["labels"]
    del labels[workflow_admission.COMPLETED_LABEL], labels["workflows.argoproj.io/workflow-archiving-status"]
    labels["workflows.argoproj.io/action"] = "retry"
    del retried["spec"]["shutdown"]
    status = retried["status"]
    del status[workflow_admission.STORED_SPEC]["shutdown"], status["phase"], status["message"]
    del status[workflow_admission.RETRY_EMPTIES]
    status.update(startedAt="2026-12-01T02:00:00Z", finishedAt=None)
    status["conditions"] = [{"type": "Completed", "status": "False"}]
    nodes = status["nodes"]
    del nodes[f"{RUN}-train"]
    nodes[f"{RUN}-fetch"]["children"] = []
    nodes[RUN].update(phase="Running", startedAt="2026-12-01T02:00:00Z", finishedAt=None)
    return retried


def _suspended_at_a_step(retraining_plan: Plan) -> dict[str, Any]:
    """A run waiting in a Suspend step whose output parameter is supplied on resume (the pipelines
    have none today; Argo's controls rewrite such a node)."""
    waiting = _controllers_write(_running(retraining_plan))
    waiting["status"]["nodes"][f"{RUN}-approve"] = {
        "id": f"{RUN}-approve",
        "type": workflow_admission.SUSPEND_NODE,
        "phase": "Running",
        "templateName": "approve",
        "outputs": {"parameters": [{"name": "approved", "valueFrom": {"supplied": {}, "default": "no"}}]},
    }
    return waiting


def _controlled(retraining_plan: Plan, control: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A running Workflow before and after one of Argo's controls (argo-workflows v4.0.6
    workflow/util/util.go): stop and terminate merge-patch spec.shutdown and the action label
    (`patchShutdownStrategy`); suspend sets spec.suspend (`SuspendWorkflow`); resume drops it and
    marks an active Suspend node Succeeded with its output parameters' defaults (`ResumeWorkflow`,
    `OverrideOutputParametersWithDefault`); `argo node set` and `stop --node-field-selector` set a
    Suspend node's output parameter, phase and message (`updateSuspendedNode`); retry as `_retried`."""
    if control == "retry":
        stopped = _stopped(retraining_plan)
        return stopped, _retried(stopped)
    old = (
        _suspended_at_a_step(retraining_plan)
        if "node" in control
        else _controllers_write(_running(retraining_plan))
    )
    new = copy.deepcopy(old)
    new["metadata"]["labels"]["workflows.argoproj.io/action"] = control
    node = new["status"]["nodes"].get(f"{RUN}-approve", {})
    if control in ("stop", "terminate"):
        new["spec"]["shutdown"] = control.title()
    elif control == "suspend":
        new["spec"]["suspend"] = True
    elif control == "resume":
        old["spec"]["suspend"] = True
    elif control == "resume a suspended node":
        node.update(phase="Succeeded", message="Resumed by: admin", finishedAt="2026-12-01T01:00:00Z")
        node["outputs"]["parameters"] = [{"name": "approved", "value": "no"}]
    elif control == "node set":
        node["outputs"]["parameters"] = [{"name": "approved", "value": "yes"}]
        new["status"]["outputs"] = {"parameters": [{"name": "approved", "value": "yes"}]}
    elif control == "stop a suspended node":
        node.update(phase="Failed", message="denied", finishedAt="2026-12-01T01:00:00Z")
    return old, new


@pytest.mark.parametrize("by", [ADMIN, ARGO_SERVER])
@pytest.mark.parametrize(
    "control",
    [
        "stop",
        "terminate",
        "suspend",
        "resume",
        "resume a suspended node",
        "node set",
        "stop a suspended node",
        "retry",
    ],
)
def test_argos_own_controls_on_a_running_workflow_are_admitted(
    retraining_plan: Plan, control: str, by: str
) -> None:
    old, new = _controlled(retraining_plan, control)
    assert new != old, control
    assert _refused(retraining_plan, "UPDATE", new, old, by=by) == []


def test_argo_retry_clearing_the_stored_shutdown_is_admitted(retraining_plan: Plan) -> None:
    """`argo retry` clears spec.shutdown and the stored spec's, and empties the claims, as whoever
    runs it."""
    stopped = _stopped(retraining_plan)
    retried = _retried(stopped)
    assert workflow_admission.RETRY_CLEARS not in retried["status"][workflow_admission.STORED_SPEC]
    assert _refused(retraining_plan, "UPDATE", retried, stopped) == []
    # A client that is not Go's may send the emptied list itself.
    retried["status"][workflow_admission.RETRY_EMPTIES] = []
    assert _refused(retraining_plan, "UPDATE", retried, stopped) == []


# The repository a forged status.artifactRepositoryRef points steps at: every artifact is sent there
# with the Secrets it names as Basic auth (v4.0.6 artifactrepositories.go `get` takes it as is).
_LEAKING_REPOSITORY = {
    "artifactory": {
        "repoURL": "https://attacker.invalid/r",
        "usernameSecret": {"name": "retraining-github", "key": "username"},
        "passwordSecret": {"name": "retraining-github", "key": "token"},  # pragma: allowlist secret
    }
}


# A run's root node, failed then reset by retry, as the controller compresses nodes (gzip, then
# base64: argo-workflows v4.0.6 util/file/fileutil.go `CompressEncodeString`).
_COMPRESSED_NODES = (
    "H4sIAAAAAAACA6tWKkotKUrMzNMtKs1TsqpWykxRskIR01EqyEgsTgWKuiVm5qSmKNXWAgBWzsEjNQAAAA==",  # pragma: allowlist secret
    "H4sIAAAAAAACA6tWKkotKUrMzNMtKs1TsqpWykxRskIR01EqyEgsTgWKBpXm5WXmpSvV1gIAhOT2yjYAAAA=",  # pragma: allowlist secret
)


def _forge_status(status: dict[str, Any], forgery: str) -> None:
    if forgery == "artifact repository rewritten":
        status["artifactRepositoryRef"]["artifactRepository"] = _LEAKING_REPOSITORY
    elif forgery == "artifact repository removed":  # resolved again, from whatever the spec says then
        del status["artifactRepositoryRef"]
    elif forgery == "claim added":  # deleted when the run completes (operator.go `deletePVCs`)
        status[workflow_admission.RETRY_EMPTIES] = [
            {"name": "x", "persistentVolumeClaim": {"claimName": "mlflow-postgres"}}
        ]
    elif forgery == "stored template added":
        status["storedTemplates"] = {
            "namespaced/retrain/fetch": {"name": "fetch", "container": {"image": "evil"}}
        }
    elif forgery == "lock holder forged":
        status["synchronization"]["mutex"]["holding"][0]["holder"] = "someone-else"
    elif forgery == "task results marked incomplete":
        status["taskResultsCompletionStatus"][f"{RUN}-fetch"] = False
    elif forgery == "nodes said offloaded":
        status["offloadNodeStatusVersion"] = "fnv:1"
    elif forgery == "compressed nodes written":
        status["compressedNodes"] = _COMPRESSED_NODES[0]


@pytest.mark.parametrize("by", [ADMIN, ARGO_SERVER])
@pytest.mark.parametrize(
    ("forgery", "field"),
    [
        ("artifact repository rewritten", "artifactRepositoryRef"),
        ("artifact repository removed", "artifactRepositoryRef"),
        ("claim added", workflow_admission.RETRY_EMPTIES),
        ("stored template added", "storedTemplates"),
        ("lock holder forged", "synchronization"),
        ("task results marked incomplete", "taskResultsCompletionStatus"),
        ("nodes said offloaded", "offloadNodeStatusVersion"),
        ("compressed nodes written", "compressedNodes"),
    ],
)
def test_another_account_forging_the_status_the_controller_trusts_is_refused(
    retraining_plan: Plan, forgery: str, field: str, by: str
) -> None:
    old = _controllers_write(_running(retraining_plan))
    new = copy.deepcopy(old)
    _forge_status(new["status"], forgery)
    refused = _refused(retraining_plan, "UPDATE", new, old, by=by)
    assert any(f"status.{field}" in m and "written by the controller" in m for m in refused), refused
    assert _refused(retraining_plan, "UPDATE", new, old, by=CONTROLLER) == [], forgery


def test_another_account_setting_the_artifact_repository_before_the_controller_is_refused(
    retraining_plan: Plan,
) -> None:
    """The controller resolves the repository only while status.artifactRepositoryRef is unset
    (operator.go `operate`): one written first is used as is."""
    new = _controllers_write(_running(retraining_plan))
    new["status"]["artifactRepositoryRef"]["artifactRepository"] = _LEAKING_REPOSITORY
    old = copy.deepcopy(new)
    del old["status"]["artifactRepositoryRef"]
    refused = _refused(retraining_plan, "UPDATE", new, old, by=ADMIN)
    assert any("status.artifactRepositoryRef" in m for m in refused), refused


_LEAKING_ARTIFACT = {
    "name": "data",
    "artifactory": {"url": "https://attacker.invalid/d", **_LEAKING_REPOSITORY["artifactory"]},
}


def _forge_node(nodes: dict[str, Any], forgery: str) -> None:
    fetch, train = nodes[f"{RUN}-fetch"], nodes[f"{RUN}-train"]
    if forgery == "output artifact rewritten":
        fetch["outputs"]["artifacts"] = [_LEAKING_ARTIFACT]
    elif forgery == "outputs given to a node":
        train.update(phase="Succeeded", outputs={"artifacts": [_LEAKING_ARTIFACT]})
    elif forgery == "node added with outputs":
        nodes[f"{RUN}-forged"] = {
            "id": f"{RUN}-forged",
            "type": "Pod",
            "phase": "Succeeded",
            "outputs": {"artifacts": [_LEAKING_ARTIFACT]},
        }
    elif forgery == "node retyped Suspend":
        fetch["type"] = workflow_admission.SUSPEND_NODE
        fetch["outputs"]["parameters"] = [{"name": "model-uri", "value": "s3://elsewhere"}]
    elif forgery == "Suspend node given an artifact":
        nodes[f"{RUN}-approve"]["outputs"]["artifacts"] = [_LEAKING_ARTIFACT]


@pytest.mark.parametrize(
    "forgery",
    [
        "output artifact rewritten",
        "outputs given to a node",
        "node added with outputs",
        "node retyped Suspend",
        "Suspend node given an artifact",
    ],
)
def test_another_account_forging_a_nodes_outputs_is_refused(retraining_plan: Plan, forgery: str) -> None:
    old = _suspended_at_a_step(retraining_plan)
    new = copy.deepcopy(old)
    _forge_node(new["status"]["nodes"], forgery)
    refused = _refused(retraining_plan, "UPDATE", new, old, by=ADMIN)
    assert any("a node's outputs in status.nodes" in m for m in refused), refused
    assert _refused(retraining_plan, "UPDATE", new, old, by=CONTROLLER) == [], forgery


def test_retrying_a_workflow_with_compressed_nodes_is_refused(retraining_plan: Plan) -> None:
    """The controller compresses the nodes of a Workflow over 1 MiB into status.compressedNodes
    (workflow/packer/packer.go `CompressWorkflowIfNeeded`), which the policy cannot read; `argo retry`
    decompresses them, rewrites them and compresses them again when still too large
    (workflow_server.go `RetryWorkflow`: `Hydrate`, `Dehydrate`). Refused, as docs/security.md says."""
    stopped = _stopped(retraining_plan)
    retried = _retried(stopped)
    del stopped["status"]["nodes"], retried["status"]["nodes"]
    stopped["status"]["compressedNodes"] = _COMPRESSED_NODES[0]
    retried["status"]["compressedNodes"] = _COMPRESSED_NODES[1]
    refused = _refused(retraining_plan, "UPDATE", retried, stopped, by=ADMIN)
    assert any("status.compressedNodes" in m for m in refused), refused


@pytest.mark.parametrize(
    "forgery", ["completed label set", "last seen version changed", "last seen version removed"]
)
def test_another_account_marking_a_run_completed_or_outdated_is_refused(
    retraining_plan: Plan, forgery: str
) -> None:
    """The controller skips a run labelled completed (controller.go `reconciliationNeeded`) or whose
    last-seen-version annotation is not the one it wrote (`isOutdated`): a pending run would hang."""
    old = _controllers_write(_running(retraining_plan))
    new = copy.deepcopy(old)
    annotations = new["metadata"]["annotations"]
    if forgery == "completed label set":
        new["metadata"]["labels"][workflow_admission.COMPLETED_LABEL] = "true"
    elif forgery == "last seen version changed":
        annotations[workflow_admission.LAST_SEEN_ANNOTATION] = "1"
    else:
        del annotations[workflow_admission.LAST_SEEN_ANNOTATION]
    refused = _refused(retraining_plan, "UPDATE", new, old, by=ADMIN)
    assert any(workflow_admission.COMPLETED_LABEL in m for m in refused), refused
    assert _refused(retraining_plan, "UPDATE", new, old, by=CONTROLLER) == [], forgery


def test_the_controller_the_policy_trusts_is_the_one_the_release_runs(retraining_plan: Plan) -> None:
    """The chart runs the controller as `controller.serviceAccount.name` when it creates the account
    (argo-helm argo-workflows-1.0.18 templates/_helpers.tpl `argo-workflows.controllerServiceAccountName`,
    used by templates/controller/workflow-controller-deployment.yaml), in the release's namespace."""
    release = retraining_plan.releases()["argo-workflows"]
    account = release.inputs["values"]["controller"]["serviceAccount"]
    assert account.get("create", True) is True, release.urn
    username = workflow_admission.service_account_username(release.inputs["namespace"], account["name"])
    trusted = [
        r
        for r in _validations(retraining_plan)
        if f'request.userInfo.username == "{username}"' in r["expression"]
    ]
    assert trusted, f"{release.urn}: no rule trusts {username}"


def _pipelines_copy(tmp_path: Path) -> Path:
    for app in ("iris-classifier", "churn-gbm"):
        shutil.copytree(REPO / "apps" / app / "training", tmp_path / "apps" / app / "training")
    return tmp_path / "apps"


def test_two_apps_naming_their_workflowtemplates_alike_is_a_config_error_naming_both(tmp_path: Path) -> None:
    apps = _pipelines_copy(tmp_path)
    template = apps / "iris-classifier" / "training" / "workflowtemplate.yaml"
    template.write_text(
        template.read_text().replace("name: retrain-iris-classifier", "name: retrain-churn-gbm", 1)
    )
    with pytest.raises(ConfigError, match=re.escape("WorkflowTemplate retrain-churn-gbm is also")) as caught:
        argo_workflows.training_pipelines(tmp_path)
    assert "apps/churn-gbm/training/" in str(caught.value), caught.value
    assert "apps/iris-classifier/training/" in str(caught.value), caught.value


def test_a_declared_parameter_without_a_name_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    apps = _pipelines_copy(tmp_path)
    template = apps / "iris-classifier" / "training" / "workflowtemplate.yaml"
    template.write_text(template.read_text().replace("- name: triggered-by", "- value: triggered-by", 1))
    with pytest.raises(ConfigError, match="needs a name") as caught:
        argo_workflows.training_pipelines(tmp_path)
    assert "apps/iris-classifier/training/workflowtemplate.yaml" in str(caught.value), caught.value
