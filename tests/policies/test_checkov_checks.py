"""The checkov checks of model apps, run for real: checkov over pass/ and fail/ fixtures, and the scanner.

checkov runs once over every fixture (module-scoped); each custom check must fail exactly the
resources listed here and nothing in pass/. The scanner test renders its own documents.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlplat import policy_scan
from mlplat.findings import RenderedDoc, Waiver
from tests.support.processes import child_processes

ROOT = policy_scan.REPO_ROOT
FIXTURES = ROOT / "policies" / "checkov" / "fixtures"
README = ROOT / "policies" / "README.md"


def isvc(name: str, namespace: str = "models-core-ml") -> str:
    return f"InferenceService.{namespace}.{name}"


# check ID -> every resource (checkov's Kind.namespace.name) it must fail among all fixtures.
EXPECTED_FAILURES: dict[str, set[str]] = {
    "CKV_MLP_1": {
        isvc("mlp01-no-limits"),
        isvc("mlp01-transformer-no-memory"),
        isvc("mlp01-no-container"),
        isvc("malformed-shapes"),
    },
    "CKV_MLP_2": {
        isvc("mlp02-request-only"),
        isvc("mlp02-request-not-limit"),
        isvc("mlp02-no-toleration"),
        isvc("mlp02-other-taint-tolerated"),
        isvc("mlp02-zero-gpus"),
    },
    "CKV_MLP_3": {isvc("mlp03-no-pool"), isvc("mlp03-unknown-pool"), isvc("mlp03-affinity-any-node")},
    "CKV_MLP_4": {
        isvc("mlp04-no-max"),
        isvc("mlp04-above-cap"),
        isvc("mlp04-min-above-max"),
        isvc("mlp04-negative-min"),
        isvc("mlp04-zero-max"),
        isvc("env-unknown"),
        isvc("malformed-shapes"),
    },
    "CKV_MLP_5": {
        isvc("mlp04-negative-min"),  # below dev's floor of 1 too
        isvc("mlp04-zero-max"),
        isvc("mlp05-prod-single"),
        isvc("mlp05-prod-transformer-single"),
        isvc("env-label-missing"),
        isvc("env-unknown"),
        isvc("malformed-shapes"),
    },
    "CKV_MLP_6": {
        isvc("mlp06-hugging-face"),
        isvc("mlp06-other-bucket"),
        isvc("mlp06-https"),
        isvc("mlp06-version-mismatch"),
        isvc("mlp06-container-env"),
        isvc("mlp06-canary-hub"),
        isvc("mlp06-component-hub"),
        isvc("mlp06-latest"),
        isvc("env-unknown"),
    },
    "CKV_MLP_7": {
        isvc("mlp07-latest"),
        isvc("mlp07-untagged"),
        isvc("mlp07-docker-hub"),
        isvc("mlp07-lookalike-registry"),
        isvc("mlp07-no-image"),
        "ServingRuntime.models-core-ml.mlp07-runtime-latest",
    },
    "CKV_MLP_8": {
        isvc("mlp08-privileged"),
        isvc("mlp08-escalation"),
        isvc("mlp08-root"),
        isvc("mlp08-host-network"),
        isvc("mlp08-host-path"),
        isvc("mlp08-capabilities"),
    },
    "CKV_MLP_9": {
        isvc("mlp09-no-team"),
        isvc("mlp09-bad-version"),
        isvc("mlp09-other-team-namespace", "models-vision"),
        isvc("mlp06-latest"),  # `latest` is no version
        isvc("malformed-shapes"),
    },
    "CKV_MLP_10": {
        isvc("mlp10-env-password"),
        isvc("mlp10-aws-key-value"),
        "ServiceAccount.models-core-ml.mlp10-annotation-token",
        "ConfigMap.models-core-ml.mlp10-config-token",
    },
    "CKV_MLP_11": {"Service.models-core-ml.mlp11-load-balancer", "Service.models-core-ml.mlp11-node-port"},
    "CKV_MLP_12": {
        "ClusterRole.default.mlp12-cluster-role",
        "ClusterRoleBinding.default.mlp12-cluster-role-binding",
        "Deployment.models-core-ml.mlp12-deployment",
        "Namespace.default.team-sandbox",
        "HTTPRoute.models-core-ml.mlp12-foreign-route",
        "ScaledObject.models-core-ml.mlp12-foreign-scaledobject",
    },
}


def custom_check_ids() -> list[str]:
    """Check IDs declared in the checks folder, one per check file."""
    ids = []
    for path in sorted((ROOT / "policies" / "checkov" / "checks").glob("mlp*.py")):
        found = re.findall(r'id="(CKV_MLP_\d+)"', path.read_text())
        assert len(found) == 1, f"{path.name}: one check class with one ID per file, found {found}"
        ids += found
    return ids


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    if not policy_scan.CHECKOV.exists():
        pytest.fail("checkov is not installed in .venv-checkov; run `make setup`")
    context, errors = policy_scan.policy_context()
    assert not errors, errors
    context_file = tmp_path_factory.mktemp("checkov") / "context.json"
    context_file.write_text(json.dumps(context))
    skips = sorted(policy_scan.load_skips())
    return policy_scan.Checkov().run(FIXTURES, context_file, skips, keep_passed=True)


def in_folder(records: list[dict[str, Any]], folder: str) -> list[dict[str, Any]]:
    return [r for r in records if r["file_path"].startswith(f"/{folder}/")]


def test_every_check_has_expectations() -> None:
    assert sorted(custom_check_ids()) == sorted(EXPECTED_FAILURES)


@pytest.mark.parametrize("check_id", sorted(EXPECTED_FAILURES, key=lambda i: int(i.rsplit("_", 1)[1])))
def test_check_fails_exactly_the_expected_resources(results: dict[str, Any], check_id: str) -> None:
    failed = {r["resource"] for r in results["failed_checks"] if r["check_id"] == check_id}
    assert failed == EXPECTED_FAILURES[check_id]


def test_container_without_an_image_is_reported_missing_not_unevaluable(results: dict[str, Any]) -> None:
    """The reason is what the author fixes: "missing", not a crash turned into a failure."""
    (found,) = [
        r
        for r in results["failed_checks"]
        if r["check_id"] == "CKV_MLP_7" and r["resource"] == isvc("mlp07-no-image")
    ]
    assert found["check_result"]["evaluated_keys"] == ["spec/predictor/containers/[0]/image (missing)"]


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("mlp04-negative-min", ["spec/predictor/minReplicas (missing, or not an integer)"]),
        # minReplicas 0 is a valid lower bound here (scale to zero is the floor's, CKV_MLP_5's, to refuse).
        ("mlp04-zero-max", ["spec/predictor/maxReplicas (missing, or not a positive integer)"]),
    ],
)
def test_replica_bounds_name_exactly_the_bound_that_is_wrong(
    results: dict[str, Any], name: str, keys: list[str]
) -> None:
    (found,) = [
        r for r in results["failed_checks"] if r["check_id"] == "CKV_MLP_4" and r["resource"] == isvc(name)
    ]
    assert found["check_result"]["evaluated_keys"] == keys


def test_a_missing_label_is_named_not_reported_as_unevaluable(results: dict[str, Any]) -> None:
    """CKV_MLP_9 names the label that is missing; a check that crashed on it would still fail the
    object, as "(manifest could not be evaluated)", and hide which label to add."""
    (found,) = [
        r
        for r in results["failed_checks"]
        if r["check_id"] == "CKV_MLP_9" and r["resource"] == isvc("mlp09-no-team")
    ]
    assert found["check_result"]["evaluated_keys"] == ["metadata/labels/mlplat/team"], found


def test_pass_fixtures_pass_every_check(results: dict[str, Any]) -> None:
    failed = [(r["check_id"], r["resource"]) for r in in_folder(results["failed_checks"], "pass")]
    assert failed == []
    # Each custom check really evaluated something in pass/ (a check that never runs passes nothing).
    passed = {r["check_id"] for r in in_folder(results["passed_checks"], "pass")}
    assert set(EXPECTED_FAILURES) <= passed


def test_waiver_annotation_skips_one_check_for_one_resource(results: dict[str, Any]) -> None:
    skipped = {(r["check_id"], r["resource"]) for r in results["skipped_checks"]}
    assert skipped == {("CKV_MLP_5", isvc("iris-canary"))}


def test_skipped_builtin_checks_never_run(results: dict[str, Any]) -> None:
    skips = policy_scan.load_skips()
    assert skips and all(reason for reason in skips.values())
    ran = {r["check_id"] for key in ("passed_checks", "failed_checks") for r in results[key]}
    assert ran.isdisjoint(skips)
    # Built-in checks do run: the raw Deployment in fail/ trips some.
    assert any(check_id.startswith("CKV_K8S_") for check_id in ran)


def test_readme_documents_every_check_and_skip() -> None:
    readme = README.read_text()
    missing = [
        i for i in [*custom_check_ids(), *policy_scan.load_skips()] if not re.search(rf"\b{i}\b", readme)
    ]
    assert missing == []
    assert "## Pulumi policy pack" in readme


# --- the scanner end to end --------------------------------------------------------------------


def model(
    name: str, *, annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None
) -> dict:
    """A valid CPU InferenceService of team core-ml, without an environment label."""
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": "models-core-ml",
            "labels": {"mlplat/team": "core-ml", "mlplat/model": "iris-classifier", **(labels or {})},
            "annotations": {"mlplat/model-version": "3", **(annotations or {})},
        },
        "spec": {
            "predictor": {
                "minReplicas": 1,
                "maxReplicas": 2,
                "model": {
                    "modelFormat": {"name": "sklearn"},
                    "storageUri": "s3://mlplat-models/iris-classifier/3",
                    "resources": {
                        "requests": {"cpu": "500m", "memory": "1Gi"},
                        "limits": {"cpu": "1", "memory": "1Gi"},
                    },
                },
            }
        },
    }


def test_scan_maps_findings_back_and_lists_waivers() -> None:
    src = "apps/iris-classifier/overlays/dev/kustomization.yaml"
    docs = [
        # env from the RenderedDoc: dev allows one replica, so this one is clean.
        RenderedDoc("dev", "apps/iris-classifier/overlays/dev", src, model("dev-clean")),
        # No env anywhere: held to prod, where one replica is too few.
        RenderedDoc(
            None, "apps/iris-classifier/base", "apps/iris-classifier/base/isvc.yaml", model("no-env")
        ),
        RenderedDoc(
            "prod",
            "apps/iris-classifier/overlays/prod",
            "apps/iris-classifier/overlays/prod/patch.yaml",
            model("waived", annotations={"checkov.io/skip1": "CKV_MLP_5=canary; see ticket ML-42 (a=b)"}),
        ),
        RenderedDoc(
            "prod",
            "apps/iris-classifier/overlays/prod",
            "apps/iris-classifier/overlays/prod/patch.yaml",
            model(
                "no-reason",
                annotations={"checkov.io/skip1": "CKV_MLP_5", "checkov.io/skip2": "CKV_MLP_99=typo"},
            ),
        ),
        RenderedDoc("dev", "apps/broken", "apps/broken/x.yaml", {"kind": "InferenceService", "spec": {}}),
    ]
    findings, waivers = policy_scan.scan(docs)

    assert {(f.resource, f.rule) for f in findings} == {
        ("InferenceService/models-core-ml/no-env", "CKV_MLP_5"),
        ("InferenceService/models-core-ml/no-reason", policy_scan.WAIVER_NO_REASON),
        ("InferenceService/models-core-ml/no-reason", policy_scan.WAIVER_UNUSED),
        ("InferenceService/-/?", policy_scan.NOT_SCANNED),
    }
    no_env = next(f for f in findings if f.rule == "CKV_MLP_5")
    assert no_env.file == "apps/iris-classifier/base/isvc.yaml"
    assert "spec/predictor/minReplicas (floor 2 in prod)" in no_env.message
    assert no_env.fix.startswith("raise minReplicas")
    prod_patch = "apps/iris-classifier/overlays/prod/patch.yaml"
    assert waivers == [
        Waiver(prod_patch, "InferenceService/models-core-ml/no-reason", "CKV_MLP_5", "", "prod"),
        Waiver(prod_patch, "InferenceService/models-core-ml/no-reason", "CKV_MLP_99", "typo", "prod"),
        Waiver(
            prod_patch,
            "InferenceService/models-core-ml/waived",
            "CKV_MLP_5",
            "canary; see ticket ML-42 (a=b)",
            "prod",
        ),
    ]
    # The caller's documents are not modified (the environment label goes into a copy).
    assert "mlplat/environment" not in docs[0].doc["metadata"]["labels"]


def test_checks_fail_without_a_policy_context(tmp_path: Path) -> None:
    """Run without MLPLAT_POLICY_CONTEXT: environment-dependent checks fail instead of passing."""
    (tmp_path / "isvc.yaml").write_text(
        yaml.safe_dump(model("no-context", labels={"mlplat/environment": "dev"}))
    )
    results = policy_scan.Checkov().run(tmp_path, tmp_path / "missing.json", [])
    failed = {r["check_id"] for r in results["failed_checks"]}
    assert failed == {"CKV_MLP_4", "CKV_MLP_5", "CKV_MLP_6"}
    assert all(
        "no policy context" in r["check_result"]["evaluated_keys"][0] for r in results["failed_checks"]
    )


@pytest.mark.parametrize(
    ("env", "bent"),
    [
        ("dev", {"max_replicas_per_app": "three"}),  # not a number
        ("staging", {"min_replicas": None}),  # not a number either, of another type
        ("prod", {"model_store_uri": None, "allowed_registries": None}),  # not a list
    ],
)
def test_a_bent_policy_context_fails_the_checks_of_that_environment(
    tmp_path: Path, env: str, bent: dict[str, Any]
) -> None:
    """An environment whose entry in the policy context cannot be read is unknown to the checks: its
    resources fail the environment-dependent checks saying so, and never crash them."""
    context, errors = policy_scan.policy_context()
    assert not errors, errors
    context[env] = {**context[env], **bent}
    (tmp_path / "context.json").write_text(json.dumps(context))
    (tmp_path / "isvc.yaml").write_text(yaml.safe_dump(model("bent", labels={"mlplat/environment": env})))
    results = policy_scan.Checkov().run(tmp_path, tmp_path / "context.json", [])
    failed = {r["check_id"]: r["check_result"]["evaluated_keys"] for r in results["failed_checks"]}
    why = [f"metadata/labels/mlplat/environment (no policy context for environment {env!r})"]
    assert failed == dict.fromkeys(("CKV_MLP_4", "CKV_MLP_5", "CKV_MLP_6"), why)


def test_scan_without_checkov_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(policy_scan.PolicyScanError, match="make setup"):
        policy_scan.scan([], checkov=tmp_path / "checkov")


# --- one scan split over several checkov processes ----------------------------------------------


def kube(kind: str, name: str, namespace: str = "models-a", **fields: Any) -> dict:
    labels = fields.pop("labels", None)
    metadata = {"name": name, "namespace": namespace, **({"labels": labels} if labels else {})}
    return {"apiVersion": "v1", "kind": kind, "metadata": metadata, **fields}


def groups(docs: list[dict]) -> list[list[int]]:
    """The documents checkov may link, as the split keeps them: with a shard per document, each group
    of linkable documents fills one shard of its own."""
    return policy_scan.shard(docs, len(docs))


def together(docs: list[dict], a: int, b: int) -> bool:
    return any(a in g and b in g for g in groups(docs))


def test_split_keeps_what_checkov_can_link_together() -> None:
    pod = {"spec": {"containers": [{"name": "c", "image": "x"}]}}
    docs = [
        kube("ServiceAccount", "model", "models-a"),  # 0
        kube("ServiceAccount", "model", "models-b"),  # 1: other app, nothing names either
        kube("ServiceAccount", "model", "models-a", labels={"mlplat/environment": "prod"}),  # 2: same ID as 0
        kube("Service", "svc", spec={"selector": {"app": "x"}}),  # 3
        kube("ConfigMap", "cm", "models-b", labels={"app": "x", "other": "y"}),  # 4: matched by 3
        kube("ConfigMap", "cm2", "models-b", labels={"other": "y"}),  # 5: matched by nothing
        kube("ServiceAccount", "runner", "models-c"),  # 6
        kube("Pod", "p", "models-d", spec={**pod["spec"], "serviceAccountName": "runner"}),  # 7: names 6
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "rb", "namespace": "models-e"},
         "roleRef": {"kind": "Role", "name": "reader"}, "subjects": [{"kind": "User", "name": "u"}]},  # 8
        kube("Role", "reader", "models-f"),  # 9: named by 8
        kube("NetworkPolicy", "deny", "models-g", spec={"podSelector": {}}),  # 10: links to every pod
        kube("Deployment", "d", "models-h", spec={"template": {"metadata": {"labels": {"t": "1"}}, **pod}}),  # 11
        kube("Service", "svc2", "models-i", spec={"selector": {"t": "1"}}),  # 12: matches 11's pod template
    ]  # fmt: skip
    assert together(docs, 0, 2)
    assert not together(docs, 0, 1)
    assert together(docs, 3, 4)
    assert not together(docs, 3, 5)
    assert together(docs, 6, 7)
    assert together(docs, 8, 9)
    assert together(docs, 10, 7) and together(docs, 10, 11)  # pods: one bare, one in a Deployment
    assert together(docs, 11, 12)
    # Without any pod, NetworkPolicies link to nothing and may be split.
    policies = [kube("NetworkPolicy", "deny", f"models-{i}", spec={"podSelector": {}}) for i in range(4)]
    assert groups(policies) == [[0], [1], [2], [3]]

    shards = policy_scan.shard(docs, 2)
    assert sorted(i for s in shards for i in s) == list(range(len(docs)))
    assert shards == policy_scan.shard(docs, 2)  # deterministic
    assert len(shards) == 2 and all(s == sorted(s) for s in shards)
    # A shape the split does not model is not split.
    odd = [*docs, kube("Service", "odd", spec=[{"selector": {"a": "b"}}])]
    assert policy_scan.shard(odd, 2) == [list(range(len(odd)))]


def test_a_split_scan_gives_the_verdicts_of_one_process() -> None:
    docs = []
    # malformed.yaml has labels that are a list: a shape the split does not model, so no split at all.
    for path in sorted(p for p in FIXTURES.rglob("*.yaml") if p.name != "malformed.yaml"):
        name = str(path.relative_to(ROOT))
        for body in yaml.safe_load_all(path.read_text()):
            if isinstance(body, dict):
                docs.append(RenderedDoc(None, name, name, body))
    # RBAC for checkov's graph checks (CKV2_K8S_*), which read links between documents.
    rbac = "rbac.authorization.k8s.io/v1"
    docs += [
        RenderedDoc("dev", "rbac", "rbac.yaml", {
            "apiVersion": rbac, "kind": "RoleBinding", "metadata": {"name": "rb", "namespace": "models-x"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "model", "namespace": "models-x"}],
        }),
        RenderedDoc("dev", "rbac", "rbac.yaml", {
            "apiVersion": rbac, "kind": "Role", "metadata": {"name": "reader", "namespace": "models-x"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
        }),
    ]  # fmt: skip
    one = policy_scan.scan(docs, shards=1)
    with policy_scan.Scan(docs, shards=3) as scan:
        assert len(scan.folders) == 3  # the documents really were split
        split = scan.run()
    assert split == one
    assert {"CKV2_K8S_5", "CKV_MLP_1", "CKV_MLP_12"} <= {f.rule for f in one[0]}
    assert one[1]  # the waiver in pass/waived.yaml


EDGES = """
import json, sys
from checkov.runner_filter import RunnerFilter
from checkov.kubernetes.graph_builder.local_graph import KubernetesLocalGraph
from checkov.kubernetes.kubernetes_utils import create_definitions
def edges():
    definitions, _ = create_definitions(sys.argv[2], None, RunnerFilter())
    graph = KubernetesLocalGraph(definitions)
    graph.build_graph(render_variables=False)
    return sorted((graph.vertices[e.origin].id, graph.vertices[e.dest].id, e.label) for e in graph.edges)
before = edges()
exec(sys.argv[1])
print(json.dumps([before, edges()]))
"""


def test_prefiltered_edge_builders_link_exactly_what_checkov_links(tmp_path: Path) -> None:
    """The launcher hands checkov's label-selector and NetworkPolicy edge builders only the vertices
    they can connect to (linear instead of quadratic); the graph must keep every edge and no more."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n", "labels": {"app": "a"}},
           "spec": {"serviceAccountName": "sa", "containers": [{"name": "c", "image": "i"}]}}  # fmt: skip
    docs = [
        pod,
        {**pod, "metadata": {"name": "q", "namespace": "n", "labels": {"app": "b"}}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "s", "namespace": "n", "labels": {"x": "1"}},
            "spec": {"selector": {"app": "a"}},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "n", "labels": {"app": "a"}},
            "spec": {
                "selector": {"matchLabels": {"app": "a"}},
                "template": {
                    "metadata": {"labels": {"app": "a"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}]},
                },
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "all", "namespace": "n"},
            "spec": {"podSelector": {}},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "a", "namespace": "n"},
            "spec": {"podSelector": {"matchLabels": {"app": "a"}}},
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa", "namespace": "n"}},
    ]
    python = policy_scan.CHECKOV.with_name("python")
    for i, doc in enumerate(docs):
        (tmp_path / f"{i}.yaml").write_text(yaml.safe_dump(doc))
    result = subprocess.run(
        [str(python), "-c", EDGES, policy_scan.EDGE_PREFILTER, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    before, after = json.loads(result.stdout)
    assert len(before) >= 4, before  # selectors, the policies and the ServiceAccount do link
    assert after == before


def files_for_checkov(docs: list[RenderedDoc]) -> list[tuple[RenderedDoc, str]]:
    """Each document the scan would hand checkov, with the text of the file it writes for it (the
    scan is prepared and closed, checkov never gets the folder)."""
    with policy_scan.Scan(docs, shards=1) as scan:
        return [
            (scan.by_file[path.name], path.read_text())
            for folder in scan.folders
            for path in sorted(folder.iterdir())
        ]


def test_documents_read_as_json_get_the_verdicts_yaml_gives_them(tmp_path: Path) -> None:
    """The scan writes documents as JSON that the launcher reads without YAML (a third of checkov's
    time was parsing): every check must pass, fail and skip exactly what it does on the YAML form."""
    fixtures = [
        RenderedDoc(None, str(path), str(path), doc)
        for path in sorted(FIXTURES.rglob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict)
    ]
    as_json = [text for _, text in files_for_checkov(fixtures) if text.startswith("{")]
    assert len(as_json) > 40
    context, _ = policy_scan.policy_context()
    context_file = tmp_path / "context.json"
    context_file.write_text(json.dumps(context))
    verdicts = []
    for form, write in (("yaml", lambda text: yaml.safe_dump(json.loads(text))), ("json", str)):
        folder = tmp_path / form
        folder.mkdir()
        for i, text in enumerate(as_json):
            (folder / f"{i:04d}.yaml").write_text(write(text))
        report = policy_scan.Checkov().run(
            folder, context_file, sorted(policy_scan.load_skips()), keep_passed=True
        )
        verdicts.append(
            {
                (key, c["check_id"], c["resource"], Path(c["file_path"]).name)
                for key, checks in report.items()
                for c in checks
            }
        )
    assert verdicts[0] and verdicts[1] == verdicts[0]


def test_a_document_json_would_change_is_written_as_yaml() -> None:
    """A date (YAML reads an unquoted 2026-12-02 as one) or a non-string key would not come back the
    same from JSON, so such a document keeps the YAML form."""
    import datetime

    def config_map(name: str, data: dict[Any, Any]) -> RenderedDoc:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
        return RenderedDoc(None, "t", "f.yaml", body)

    written = files_for_checkov(
        [
            config_map("day", {"day": datetime.date(2026, 12, 2)}),
            config_map("numbered", {1: "one"}),
            config_map("plain", {"a": "1"}),
        ]
    )
    forms = {rendered.doc["metadata"]["name"]: text for rendered, text in written}
    for name in ("day", "numbered"):
        assert not forms[name].startswith("{"), forms[name]
    assert [yaml.safe_load(forms[name])["data"] for name in ("day", "numbered")] == [
        {"day": datetime.date(2026, 12, 2)},
        {1: "one"},
    ]
    assert json.loads(forms["plain"]) == config_map("plain", {"a": "1"}).doc


def _graph_check_docs() -> list[dict[str, Any]]:
    """Documents that checkov's graph checks fail and pass (RBAC that reads Secrets, a Pod with and
    one without a NetworkPolicy, a Deployment's pod template), among kinds no graph check reads."""
    rbac = "rbac.authorization.k8s.io/v1"
    labels = {"app": "a"}
    return [
        {"apiVersion": rbac, "kind": "RoleBinding", "metadata": {"name": "rb", "namespace": "n"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
         "subjects": [{"kind": "ServiceAccount", "name": "model", "namespace": "n"}]},
        {"apiVersion": rbac, "kind": "Role", "metadata": {"name": "reader", "namespace": "n"},
         "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "guarded", "namespace": "n", "labels": labels},
         "spec": {"containers": [{"name": "c", "image": "i"}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "open", "namespace": "n", "labels": {"app": "b"}},
         "spec": {"containers": [{"name": "c", "image": "i"}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "a", "namespace": "n"},
         "spec": {"podSelector": {"matchLabels": labels}}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "n"},
         "spec": {"selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "n", "labels": labels}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "model", "namespace": "n"}},
    ]  # fmt: skip


def _fixture_docs() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(FIXTURES.rglob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict)
    ]


# Apart: a fixture NetworkPolicy selecting every pod would link the graph documents' pods (checkov
# links NetworkPolicies to pods across namespaces).
@pytest.mark.parametrize("docs", [_fixture_docs, _graph_check_docs], ids=["fixtures", "graph-checks"])
def test_the_launcher_gives_every_verdict_plain_checkov_gives(tmp_path: Path, docs: Any) -> None:
    """The launcher changes how checkov parses, logs, links and builds its graph, never a verdict: over
    every fixture, and over documents the graph checks (CKV2_K8S_*) fail and pass, each check passes,
    fails and skips exactly what checkov's own entry point makes it pass, fail and skip."""
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, doc in enumerate(docs()):
        (folder / f"{i:04d}.yaml").write_text(yaml.safe_dump(doc))
    context, _ = policy_scan.policy_context()
    context_file = tmp_path / "context.json"
    context_file.write_text(json.dumps(context))
    skips = sorted(policy_scan.load_skips())
    launched = policy_scan.Checkov().run(folder, context_file, skips, keep_passed=True)
    plain = subprocess.run(
        [str(policy_scan.CHECKOV), "--directory", str(folder), "--framework", "kubernetes",
         "--external-checks-dir", str(policy_scan.CHECKS_DIR), "--output", "json", "--compact",
         "--skip-download", "--skip-check", ",".join(skips)],
        capture_output=True, text=True, check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE",
             policy_scan.CONTEXT_ENV_VAR: str(context_file)},
    )  # fmt: skip

    def verdicts(results: dict[str, Any]) -> set[tuple[str, str, str, str]]:
        return {
            (key, c["check_id"], c["resource"], Path(c["file_path"]).name)
            for key in ("passed_checks", "failed_checks", "skipped_checks")
            for c in results.get(key) or []
        }

    expected = verdicts(json.loads(plain.stdout)["results"])
    if docs is _graph_check_docs:
        assert {("failed_checks", "CKV2_K8S_5", "RoleBinding.n.rb"), ("failed_checks", "CKV2_K8S_6", "Pod.n.open"),
                ("passed_checks", "CKV2_K8S_6", "Pod.n.guarded")} <= {v[:3] for v in expected}  # fmt: skip
    else:
        assert {v[0] for v in expected} == {"passed_checks", "failed_checks", "skipped_checks"}
    assert verdicts(launched) == expected


GRAPH_VERTICES = """
import json, sys
from checkov.runner_filter import RunnerFilter
from checkov.kubernetes.graph_manager import KubernetesGraphManager
from checkov.kubernetes.kubernetes_utils import create_definitions
from checkov.common.graph.db_connectors.rustworkx.rustworkx_db_connector import RustworkxConnector
exec(sys.argv[1])
definitions, _ = create_definitions(sys.argv[2], None, RunnerFilter())
graph = KubernetesGraphManager(db_connector=RustworkxConnector()).build_graph_from_definitions(definitions)
print(json.dumps(sorted(v.attributes["kind"] for v in graph.vertices)))
"""


def test_checkov_builds_its_graph_only_from_kinds_a_graph_check_reads(tmp_path: Path) -> None:
    """Building the graph of every document was a third of a scan; the launcher keeps the kinds the
    graph checks filter on or connect, and the Pod checkov makes of a Deployment's template."""
    for i, doc in enumerate(_graph_check_docs()):
        (tmp_path / f"{i}.yaml").write_text(yaml.safe_dump(doc))
    result = subprocess.run(
        [str(policy_scan.CHECKOV.with_name("python")), "-c", GRAPH_VERTICES, policy_scan.GRAPH_OF_CHECKED_KINDS,
         str(tmp_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == [
        "Deployment", "NetworkPolicy", "Pod", "Pod", "Pod", "Role", "RoleBinding",
    ]  # fmt: skip


def test_preparing_a_document_for_checkov_leaves_the_rendered_one_unchanged() -> None:
    """The scan adds the environment label and rewrites waiver reasons checkov would split; the
    document validate reports on (and every other rule reads) must stay as rendered."""
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "cm",
            "labels": {"team": "x"},
            "annotations": {"checkov.io/skip1": "CKV_K8S_21=reason with = sign"},
        },
        "data": {"a": "1"},
    }
    before = json.loads(json.dumps(body))
    ((_, text),) = files_for_checkov([RenderedDoc("dev", "t", "f.yaml", body)])
    prepared = yaml.safe_load(text)
    assert prepared["metadata"]["labels"][policy_scan.ENV_LABEL] == "dev"
    assert prepared["metadata"]["annotations"]["checkov.io/skip1"] == "CKV_K8S_21=reason with : sign"
    assert body == before


def test_a_checkov_started_for_a_scan_that_never_comes_is_ended() -> None:
    """validate starts checkov before it knows whether anything will be scanned (it imports while the
    manifests render); a run that scans nothing must not leave it waiting, nor wait for it."""
    before = child_processes()
    started = policy_scan.Checkov()
    (process,) = child_processes() - before
    started.close()
    assert process not in child_processes()


def test_a_checkov_config_in_the_repository_or_home_cannot_choose_the_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """checkov reads `.checkov.yaml` from its working directory and home folder; validate runs from
    the repository a pull request changes, so one added there could have switched checks off."""
    config = "check:\n  - CKV_K8S_1\n"
    repo, home, folder = tmp_path / "repo", tmp_path / "home", tmp_path / "docs"
    for place in (repo, home, folder):
        place.mkdir()
    (repo / ".checkov.yaml").write_text(config)
    (home / ".checkov.yaml").write_text(config)
    monkeypatch.chdir(repo)
    monkeypatch.setenv("HOME", str(home))
    policy = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "models-a"}}
    unlisted = {**policy, "kind": "Secret", "stringData": {"a": "b"}}  # pragma: allowlist secret
    for i, doc in enumerate((policy, unlisted)):
        (folder / f"{i}.yaml").write_text(yaml.safe_dump(doc))
    context, _ = policy_scan.policy_context()
    (tmp_path / "context.json").write_text(json.dumps(context))
    report = policy_scan.Checkov().run(folder, tmp_path / "context.json", [])
    assert {c["check_id"] for c in report["failed_checks"]} - {"CKV_K8S_1"}, report["failed_checks"]


@pytest.mark.parametrize(
    ("check_id", "fixture", "predictor"),
    [
        ("CKV_MLP_3", "llm-gpu.yaml", {"nodeSelector": {"mlplat/gpu-pool": "gpu-nowhere"}}),
        ("CKV_MLP_4", "iris-classifier.yaml", {"maxReplicas": 500}),
    ],
)
def test_an_app_cannot_waive_the_environments_limits(
    check_id: str, fixture: str, predictor: dict[str, Any]
) -> None:
    """The replica cap and the GPU pools are the stack config's, and checkov is their only engine: a
    skip annotation on an app's own object must not switch them off (found in review)."""
    assert check_id in policy_scan.UNWAIVABLE
    docs = [
        RenderedDoc("dev", "app", "app.yaml", doc)
        for doc in yaml.safe_load_all((FIXTURES / "pass" / fixture).read_text())
        if isinstance(doc, dict)
    ]
    isvc_doc = next(d.doc for d in docs if d.doc["kind"] == "InferenceService")
    isvc_doc["spec"]["predictor"].update(predictor)
    isvc_doc["metadata"].setdefault("annotations", {})["checkov.io/skip1"] = f"{check_id}=we need it"
    findings, waivers = policy_scan.scan(docs)
    on_isvc = {f.rule for f in findings if f.resource.startswith("InferenceService/")}
    assert {check_id, policy_scan.WAIVER_NOT_ALLOWED} <= on_isvc, on_isvc
    assert not [w for w in waivers if w.rule == check_id], waivers
