"""Argo CD syncs no model app before the kinds its AppProject lets apps create can be created.

Found by review: the ApplicationSet waited for the Argo CD release only. On a first `pulumi up` its
Applications synced while KServe, KEDA, the Vault Secrets Operator and the Gateway API CRDs were still
being installed, failed their five retries (platform/argocd/models.yaml `retry`), and then stayed in
SyncError: argo-cd v3.4.4 controller/appcontroller.go L2251-2257 ("Skipping auto-sync: failed previous
sync attempt ... will not retry") never syncs that revision again by itself, and re-running `pulumi up`
changes nothing Argo CD looks at.
"""

from __future__ import annotations

from typing import Any

from tests.support.crds import installed_kinds, is_custom_group, refusing_webhooks
from tests.support.harness import Plan, transitive_dependencies

APP_PROJECT = "kubernetes:argoproj.io/v1alpha1:AppProject"
APPLICATION_SET = "kubernetes:argoproj.io/v1alpha1:ApplicationSet"
WHITELISTS = ("clusterResourceWhitelist", "namespaceResourceWhitelist")


def whitelisted_custom_kinds(project_spec: dict[str, Any]) -> set[tuple[str, str]]:
    """(group, kind) of every custom kind the AppProject lets its apps create."""
    return {
        (str(entry["group"]), str(entry["kind"]))
        for key in WHITELISTS
        for entry in project_spec.get(key) or []
        if is_custom_group(str(entry["group"]))
    }


def not_awaited(plan: Plan, kinds: set[tuple[str, str]]) -> list[str]:
    """What the ApplicationSet does not wait for among what creating each of `kinds` needs: the release
    that installs its CRD and every release whose `Fail` admission webhook intercepts it."""
    appset = plan.one(APPLICATION_SET)
    awaited = transitive_dependencies(plan, appset)
    installed, webhooks = installed_kinds(plan), refusing_webhooks(plan)
    problems = []
    for kind in sorted(kinds):
        if kind not in installed:
            problems.append(f"{appset.urn}: no release of the plan installs the {kind} CRD")
            continue
        needs = [(installed[kind], "its CRD"), *((w, "its webhook") for w in webhooks.get(kind, []))]
        for needed, what in needs:
            if needed.urn not in awaited:
                problems.append(f"{appset.urn} does not wait for {needed.urn} ({what}) before syncing {kind}")
    return problems


def test_model_apps_are_not_left_in_sync_error_by_syncing_before_their_kinds_exist(plan: Plan) -> None:
    kinds = whitelisted_custom_kinds(plan.one(APP_PROJECT).inputs["spec"])
    assert kinds, f"{plan.env}: the AppProject whitelists no custom kind"
    assert not not_awaited(plan, kinds), "\n".join(not_awaited(plan, kinds))


def test_a_whitelisted_kind_whose_installer_is_not_awaited_is_found(retraining_plan: Plan) -> None:
    """A kind added to the whitelist without its release among the ApplicationSet's dependencies fails
    the test above: Argo Workflows' Workflow, whose release the ApplicationSet has no reason to wait for, in the stack that installs it."""
    workflow = ("argoproj.io", "Workflow")
    spec = {"namespaceResourceWhitelist": [{"group": workflow[0], "kind": workflow[1]}]}
    kinds = whitelisted_custom_kinds(spec)
    assert kinds == {workflow}
    problems = not_awaited(retraining_plan, kinds)
    assert [p for p in problems if "argo-workflows" in p and "its CRD" in p], problems
