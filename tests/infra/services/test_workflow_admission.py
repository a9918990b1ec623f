"""The admission policy on Workflows in the pipelines' namespace (infra/services/workflow_admission.py),
read from the plan of every environment and evaluated with cel-python (tests/support/admission.py):
what the Sensor, a CronWorkflow and `argo submit --from` create is admitted; a Workflow that overrides
its template, or a rewrite of a pending one, is refused; Argo's own controls keep working.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra import versions
from infra.services import argo_workflows, workflow_admission
from tests.support.admission import refusals
from tests.support.harness import Plan, Registered, depends_on

POLICY = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
BINDING = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"
NAME_LABEL = "kubernetes.io/metadata.name"


def _validations(plan: Plan) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = plan.one(POLICY).inputs["spec"]["validations"]
    return rules


def _refused(plan: Plan, operation: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    """The policy's refusals, each a rule found false: none may fail to evaluate (which `failurePolicy:
    Fail` would also refuse, hiding which rule was meant to)."""
    refused = refusals(_validations(plan), operation, obj, old)
    assert not [m for m in refused if "cannot be evaluated" in m or "not a bool" in m], refused
    return refused


def _documents(plan: Plan, kind: str) -> list[Registered]:
    return [r for r in plan.resources if r.type == f"kubernetes:argoproj.io/v1alpha1:{kind}"]


def _sensor_workflow(plan: Plan, app: str) -> dict[str, Any]:
    """The Workflow the Sensor creates for an alert on `app`: its trigger's resource with each
    parameter written at its `dest` (an sjson path: dot-separated keys, list indices as numbers),
    `append` and `prepend` joining the current string (argoproj/argo-events v1.9.10
    pkg/sensors/triggers/params.go `ApplyParams`), then its labels added, the only change before the
    create (pkg/sensors/triggers/standard-k8s/standard-k8s.go `Execute`). A `dataKey` is read from the
    alert; a `dataTemplate` renders a string the policy does not read (a name, the lineage text), so a
    stand-in is written there."""
    sensor = plan.one("kubernetes:argoproj.io/v1alpha1:Sensor")
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


def _apps(plan: Plan) -> list[str]:
    return sorted(
        r.inputs["metadata"]["labels"]["mlplat/model"] for r in _documents(plan, "WorkflowTemplate")
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


def _a_template(plan: Plan) -> str:
    return str(_documents(plan, "WorkflowTemplate")[0].inputs["metadata"]["name"])


def test_the_policy_and_its_binding_are_in_the_plan_before_the_controller(plan: Plan) -> None:
    policy, binding = plan.one(POLICY), plan.one(BINDING)
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
    release = plan.releases()["argo-workflows"]
    assert depends_on(plan, release, binding), (
        f"{release.urn}: the controller may start before the policy binds"
    )


def test_every_kubernetes_version_a_stack_may_pin_serves_the_policy_api() -> None:
    older = [
        v
        for v in versions.EKS_ADDONS
        if tuple(int(part) for part in v.split(".")) < workflow_admission.POLICY_API_SINCE
    ]
    assert not older, f"admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy is not served by {older}"


def test_the_binding_selects_the_pipelines_namespace_only(plan: Plan) -> None:
    binding = plan.one(BINDING)
    assert binding.inputs["spec"]["matchResources"] == {
        "namespaceSelector": {"matchLabels": {NAME_LABEL: argo_workflows.NAMESPACE}}
    }, binding.urn


def test_the_sensors_workflow_is_admitted_for_every_app_with_a_pipeline(plan: Plan) -> None:
    apps = _apps(plan)
    assert apps, plan.env
    for app in apps:
        workflow = _sensor_workflow(plan, app)
        assert workflow["spec"]["workflowTemplateRef"] == {"name": f"retrain-{app}"}
        assert _refused(plan, "CREATE", workflow) == [], f"{plan.env}: {app}: {workflow}"


def test_a_cronworkflows_workflow_is_admitted(plan: Plan) -> None:
    crons = _documents(plan, "CronWorkflow")
    assert crons, plan.env
    for cron in crons:
        workflow = {"metadata": {"name": "scheduled"}, "spec": cron.inputs["spec"]["workflowSpec"]}
        assert _refused(plan, "CREATE", workflow) == [], cron.urn


def test_a_manual_submit_from_the_template_is_admitted(plan: Plan) -> None:
    workflow = _submitted(_a_template(plan))
    workflow["spec"]["arguments"]["parameters"].append({"name": "params", "value": '{"max_depth": 3}'})
    assert _refused(plan, "CREATE", workflow) == []


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
    plan: Plan, override: dict[str, Any], refused_for: str
) -> None:
    refused = _refused(plan, "CREATE", _submitted(_a_template(plan), **override))
    assert any(refused_for in message for message in refused), refused


def test_an_argument_artifact_replacing_the_git_checkout_is_refused(plan: Plan) -> None:
    workflow = _submitted(_a_template(plan))
    workflow["spec"]["arguments"]["artifacts"] = [
        {"name": "repo", "git": {"repo": "https://evil.invalid/x.git"}}
    ]
    refused = _refused(plan, "CREATE", workflow)
    assert any("argument artifact" in message for message in refused), refused


def test_an_inline_workflow_without_a_template_reference_is_refused(plan: Plan) -> None:
    workflow = {
        "metadata": {"name": "inline"},
        "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": "evil"}}]},
    }
    refused = _refused(plan, "CREATE", workflow)
    assert any("spec.workflowTemplateRef names one of" in message for message in refused), refused


def test_a_cluster_scoped_template_reference_is_refused(plan: Plan) -> None:
    workflow = _submitted(_a_template(plan))
    workflow["spec"]["workflowTemplateRef"]["clusterScope"] = True
    refused = _refused(plan, "CREATE", workflow)
    assert any("no clusterScope" in message for message in refused), refused


def test_a_template_that_is_not_a_pipeline_is_refused(plan: Plan) -> None:
    refused = _refused(plan, "CREATE", _submitted("someone-elses-template"))
    assert any("spec.workflowTemplateRef names one of" in message for message in refused), refused


@pytest.mark.parametrize(
    "parameter",
    [
        {"name": "repo", "value": "https://evil.invalid/x.git"},
        {"name": "trigger", "valueFrom": {"configMapKeyRef": {"name": "platform-repository", "key": "url"}}},
    ],
)
def test_a_parameter_the_template_does_not_declare_or_a_value_from_elsewhere_is_refused(
    plan: Plan, parameter: dict[str, Any]
) -> None:
    workflow = _submitted(_a_template(plan))
    workflow["spec"]["arguments"]["parameters"].append(parameter)
    refused = _refused(plan, "CREATE", workflow)
    assert any("spec.arguments.parameters" in message for message in refused), refused


def _running(plan: Plan) -> dict[str, Any]:
    return _sensor_workflow(plan, _apps(plan)[0])


@pytest.mark.parametrize(
    "rewrite",
    [
        {"entrypoint": "register"},
        {"arguments": {"parameters": [{"name": "trigger", "value": "manual"}]}},
        {"workflowTemplateRef": {"name": "retrain-other"}},
    ],
)
def test_an_update_rewriting_a_pending_workflows_spec_is_refused(plan: Plan, rewrite: dict[str, Any]) -> None:
    old = _running(plan)
    new = copy.deepcopy(old)
    new["spec"].update(rewrite)
    refused = _refused(plan, "UPDATE", new, old)
    assert any("does not change once created" in message for message in refused), refused


def test_an_update_dropping_a_spec_field_is_refused(plan: Plan) -> None:
    old = _running(plan)
    new = copy.deepcopy(old)
    del new["spec"]["arguments"]
    refused = _refused(plan, "UPDATE", new, old)
    assert any("does not change once created" in message for message in refused), refused


@pytest.mark.parametrize(
    "control",
    [
        {"shutdown": "Stop"},  # argo stop (workflow/util/util.go patchShutdownStrategy)
        {"shutdown": "Terminate"},  # argo terminate
        {"suspend": True},  # argo suspend (SuspendWorkflow)
    ],
)
def test_argos_own_controls_still_update_a_workflow(plan: Plan, control: dict[str, Any]) -> None:
    old = _running(plan)
    new = copy.deepcopy(old)
    new["spec"].update(control)
    new["metadata"]["labels"] = {"workflows.argoproj.io/action": "changed"}
    assert _refused(plan, "UPDATE", new, old) == []
    # And back again: `argo resume` drops `suspend`, `argo retry` clears `shutdown`
    # (ResumeWorkflow, createNewRetryWorkflow).
    assert _refused(plan, "UPDATE", old, new) == []


def test_the_controllers_status_update_is_admitted(plan: Plan) -> None:
    old = _running(plan)
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Running", "storedWorkflowTemplateSpec": {"entrypoint": "retrain"}}
    new["metadata"]["labels"] = {"workflows.argoproj.io/phase": "Running"}
    assert _refused(plan, "UPDATE", new, old) == []
