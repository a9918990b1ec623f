"""The broken-manifest corpus: each mistake is caught by its own rule, named with file and line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.validate_helpers import REPO, rules, run_corpus, run_json

BROKEN = REPO / "tests" / "fixtures" / "broken"
EXPECTED = {
    "invalid-yaml": {"MLP-YAML"},
    "kustomize-error": {"MLP-KUSTOMIZE"},
    "kustomize-yaml-error": {"MLP-YAML"},
    "unknown-field": {"MLP-UNKNOWN-FIELD"},
    "wrong-api-version": {"MLP-API-VERSION"},
    "forbidden-kind": {"MLP-APPPROJECT-KIND"},
    "bad-namespace": {"MLP-APPPROJECT-NAMESPACE"},
    "gpu-no-pool": {"MLP-GPU-FIT", "MLP-GPU-CAP"},  # 8 GPUs at one replica is also over dev's cap
    "gpu-cap": {"MLP-GPU-CAP"},
    "no-security-context": {"MLP-POD-SECURITY"},
    "privileged-sidecar": {"MLP-POD-SECURITY"},
    "netpol-allow-all": {"MLP-NETPOL-WIDENS"},
    "pod-security-label": {"MLP-POD-SECURITY-LABEL"},
    "remote-resource": {"MLP-REMOTE-RESOURCE"},
    "remote-scp-github": {"MLP-REMOTE-RESOURCE"},
    "remote-any-user": {"MLP-REMOTE-RESOURCE"},
    "missing-resource": {"MLP-REMOTE-RESOURCE"},
    "patch-unmatched": {"MLP-PATCH-UNMATCHED"},
    "scaling-on-cpu": {"MLP-SCALING-METRIC"},
    "scaling-over-cap": {"MLP-SCALING-BOUNDS"},
    "scaling-hpa-fights-keda": {"MLP-SCALING-TARGET"},
    "scaling-unknown-field": {"MLP-UNKNOWN-FIELD"},
    "gpu-shared-too-much-memory": {"MLP-GPU-FIT"},
    "memory-4ti": {"MLP-RESOURCE-FIT"},
    "cpu-900": {"MLP-RESOURCE-FIT"},
    "bad-quantities": {"MLP-RESOURCE-QUANTITY", "MLP-RESOURCE-LIMITS"},
    "cpu-model-on-system-pool": {"MLP-NODE-POOL"},
    "pool-not-tolerated": {"MLP-NODE-POOL"},
}


@pytest.fixture(scope="module")
def corpus() -> dict[str, Any]:
    """One run over every case: one kubectl and one schema load for the whole corpus."""
    return run_corpus(BROKEN / case for case in EXPECTED)


def _case_findings(corpus: dict[str, Any], case: str) -> list[dict[str, Any]]:
    prefix = f"tests/fixtures/broken/{case}/"
    return [f for f in corpus["findings"] if f["file"].startswith(prefix) or case in f["message"]]


def test_corpus_fails_with_exit_1(corpus: dict[str, Any]) -> None:
    assert corpus["code"] == 1


def test_every_case_is_a_target(corpus: dict[str, Any]) -> None:
    assert sorted(corpus["targets"]) == sorted(f"tests/fixtures/broken/{case}" for case in EXPECTED)


@pytest.mark.parametrize("case", EXPECTED)
def test_case_fails_with_its_rule(corpus: dict[str, Any], case: str) -> None:
    found = {f["rule"] for f in _case_findings(corpus, case) if f["rule"] != "MLP-GPU-CAP"}
    cap = any(f["rule"] == "MLP-GPU-CAP" and f"{case}" in _cap_apps(f) for f in corpus["findings"])
    assert found | ({"MLP-GPU-CAP"} if cap else set()) == EXPECTED[case]


def _cap_apps(finding: dict[str, Any]) -> str:
    """The GPU cap names the apps it adds up; fixtures' apps are named after their case."""
    names = {"gpu-cap": "greedy=", "gpu-no-pool": "too-many-gpus="}
    return " ".join(case for case, name in names.items() if name in finding["message"])


def test_yaml_errors_name_file_and_line(corpus: dict[str, Any]) -> None:
    (plain,) = _case_findings(corpus, "invalid-yaml")
    assert (plain["file"], plain["line"]) == ("tests/fixtures/broken/invalid-yaml/serviceaccount.json", 8)
    assert "line 4" in plain["message"]  # where the broken mapping starts
    (patch,) = _case_findings(corpus, "kustomize-yaml-error")
    assert (patch["file"], patch["line"]) == ("tests/fixtures/broken/kustomize-yaml-error/patch.txt", 7)


def test_kustomize_error_says_what_kustomize_says(corpus: dict[str, Any]) -> None:
    (finding,) = _case_findings(corpus, "kustomize-error")
    assert finding["file"] == "tests/fixtures/broken/kustomize-error/kustomization.yaml"
    assert "already registered id" in finding["message"] and "/tmp/" not in finding["message"]


@pytest.mark.parametrize(
    ("case", "ref"),
    [
        ("remote-scp-github", "github.com:kserve/kserve//docs/samples/v1beta1/sklearn/v1"),
        ("remote-any-user", "deploy@git.internal:platform/models.git//base"),
        ("missing-resource", "does-not-exist.yaml"),
    ],
)
def test_a_reference_naming_nothing_in_the_repository_is_refused_whatever_its_form(
    corpus: dict[str, Any], case: str, ref: str
) -> None:
    """kustomize clones what its repospec parser reads as git (SCP style with any user, `github.com:`)
    before looking for a local path: the old pattern let those through to a fetch."""
    (finding,) = _case_findings(corpus, case)  # and no MLP-KUSTOMIZE: never handed to kustomize
    assert (finding["rule"], finding["file"], finding["line"]) == (
        "MLP-REMOTE-RESOURCE",
        f"tests/fixtures/broken/{case}/kustomization.yaml",
        6,
    )
    assert repr(ref) in finding["message"]


def test_unknown_fields_in_crd_and_core_objects(corpus: dict[str, Any]) -> None:
    messages = sorted(f["message"] for f in _case_findings(corpus, "unknown-field"))
    assert messages == [
        "unknown field automountToken",
        "unknown field spec.predictor.model.storageURI (not in the InferenceService CRD schema)",
    ]


def test_wrong_api_versions_suggest_the_served_one(corpus: dict[str, Any]) -> None:
    fixes = sorted(f["fix"] for f in _case_findings(corpus, "wrong-api-version"))
    assert fixes == ["use apiVersion policy/v1", "use apiVersion serving.kserve.io/v1beta1"]


def test_gpu_fit_names_both_reasons(corpus: dict[str, Any]) -> None:
    fits = {
        f["resource"]: f["message"]
        for f in _case_findings(corpus, "gpu-no-pool")
        if f["rule"] == "MLP-GPU-FIT"
    }
    assert "8 GPU(s)" in fits["InferenceService/models-fixtures/too-many-gpus"]
    assert "80 GiB" in fits["InferenceService/models-fixtures/too-much-memory"]


def test_gpu_cap_counts_the_whole_environment(corpus: dict[str, Any]) -> None:
    """The cap adds the environment's other GPU apps (llm-chat) even though they are not targets."""
    (cap,) = [f for f in corpus["findings"] if f["rule"] == "MLP-GPU-CAP"]
    assert "llm-chat=1x2" in cap["message"] and "greedy=4x3" in cap["message"]
    assert cap["file"] == "environments/Pulumi.dev.yaml"


def test_single_case_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_json(capsys, str(BROKEN / "forbidden-kind"), "--env", "dev")
    assert (code, rules(report)) == (1, {"MLP-APPPROJECT-KIND"})


def _where(corpus: dict[str, Any], case: str) -> list[tuple[int, str]]:
    return sorted((f["line"], f["message"].split(" (Pod Security")[0]) for f in _case_findings(corpus, case))


def test_upstream_sample_without_security_context_is_refused(corpus: dict[str, Any]) -> None:
    """KServe's own samples set no securityContext; restricted would reject their pods at runtime."""
    (finding,) = _case_findings(corpus, "no-security-context")
    assert (finding["line"], finding["path"]) == (14, "spec/predictor/model/securityContext")
    assert "restricted-pod" in finding["fix"]


def test_every_container_of_every_component_meets_restricted(corpus: dict[str, Any]) -> None:
    """Init containers and transformers count, not only the predictor's model."""
    assert _where(corpus, "privileged-sidecar") == [
        (26, "volume type hostPath is not allowed by restricted"),
        (28, "no securityContext: restricted requires allowPrivilegeEscalation: false, runAsNonRoot: true, "
         "capabilities.drop: [ALL] and a RuntimeDefault seccomp profile"),
        (37, "privileged: true"),
        (39, "adds capabilities NET_ADMIN"),
    ]  # fmt: skip


def test_allow_everything_network_policy_is_refused(corpus: dict[str, Any]) -> None:
    assert [(line, message.split(";")[0]) for line, message in _where(corpus, "netpol-allow-all")] == [
        (11, "ingress rule 0 has no `from`: it admits every source and destination"),
        (14, "egress rule 0 opens ipBlock 0.0.0.0/0"),
        (18, "egress rule 1 allows TCP 22 beyond the components' ports for these peers (TCP 9000)"),
    ]


def test_namespace_relabelled_privileged_is_refused(corpus: dict[str, Any]) -> None:
    (finding,) = _case_findings(corpus, "pod-security-label")
    assert finding["line"] == 8 and "'privileged', not 'restricted'" in finding["message"]


def test_remote_resource_is_refused_before_kustomize_fetches_it(corpus: dict[str, Any]) -> None:
    (finding,) = _case_findings(corpus, "remote-resource")  # and no MLP-KUSTOMIZE: never fetched
    assert (finding["file"], finding["line"]) == (
        "tests/fixtures/broken/remote-resource/kustomization.yaml",
        6,
    )


def test_patch_target_that_matches_nothing_is_refused(corpus: dict[str, Any]) -> None:
    (finding,) = _case_findings(corpus, "patch-unmatched")
    assert (finding["file"], finding["line"]) == (
        "tests/fixtures/broken/patch-unmatched/kustomization.yaml",
        7,
    )
    assert "ServiceAccount/fixture" in finding["fix"]


def _scanned(case: str, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """validate with its checkov scan over one case (the corpus skips the scan)."""
    from mlplat import validate

    validate.main([str(BROKEN / case), "--env", "dev", "--format", "json"])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return list(report["findings"])


def test_a_replica_cap_broken_once_is_one_finding_at_the_max_replicas_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Replica bounds have one engine (checkov's CKV_MLP_4/5): validate used to report the same
    mistake twice, once more as MLP-REPLICAS. The finding names the key that breaks the cap."""
    findings = _scanned("replicas-over-cap", capsys)
    assert [(f["rule"], f["line"], f["path"]) for f in findings] == [
        ("CKV_MLP_4", 12, "spec/predictor/maxReplicas")
    ]


def test_a_gpu_pool_that_does_not_exist_is_one_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ "Selects an existing GPU pool" has one engine (CKV_MLP_3); MLP-GPU-FIT judges only whether an
    existing pool holds the pod, so an unknown pool is not reported twice."""
    case = tmp_path / "unknown-pool"
    case.mkdir()
    text = (BROKEN / "gpu-no-pool" / "too-much-memory.yaml").read_text()
    (case / "app.yaml").write_text(text.replace("mlplat/gpu-pool: gpu-small", "mlplat/gpu-pool: gpu-nowhere"))
    from mlplat import validate

    validate.main([str(case), "--env", "dev", "--format", "json", "--repo", str(REPO)])
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert {f["rule"] for f in findings} == {"CKV_MLP_3"}, findings


def test_predictor_asking_4Ti_memory_is_refused_at_its_memory_line(corpus: dict[str, Any]) -> None:
    (finding,) = _case_findings(corpus, "memory-4ti")
    assert (finding["line"], finding["path"]) == (23, "spec/predictor/model/resources/requests/memory")
    assert "memory: the predictor pod requests 1000m CPU and 4194304Mi memory" in finding["message"]


def test_predictor_asking_900_cpus_is_refused_at_its_cpu_line(corpus: dict[str, Any]) -> None:
    (finding,) = _case_findings(corpus, "cpu-900")
    assert (finding["line"], finding["path"]) == (23, "spec/predictor/model/resources/requests/cpu")
    assert "request at most 7310m CPU per pod" in finding["fix"]


def test_nonsense_quantities_and_limits_below_requests_name_their_lines(corpus: dict[str, Any]) -> None:
    assert sorted((f["line"], f["rule"], f["message"]) for f in _case_findings(corpus, "bad-quantities")) == [
        (24, "MLP-RESOURCE-QUANTITY", "requests.cpu '-1' is negative"),
        (24, "MLP-RESOURCE-QUANTITY", "requests.memory '512m' is 512 thousandths of a byte (`m` is milli)"),
        (
            35,
            "MLP-RESOURCE-LIMITS",
            "limits.cpu 250m is below requests.cpu 500m: the API server rejects the pod",
        ),
    ]


def test_cpu_model_without_a_pool_would_land_on_the_system_node_group(corpus: dict[str, Any]) -> None:
    (finding,) = _case_findings(corpus, "cpu-model-on-system-pool")
    assert finding["line"] == 2 and "system node group" in finding["message"]
    assert "apps/components/cpu-model-pool" in finding["fix"]


def test_cpu_model_pool_without_its_toleration_is_refused(corpus: dict[str, Any]) -> None:
    (finding,) = _case_findings(corpus, "pool-not-tolerated")
    assert "does not tolerate its taint mlplat/pool=models-cpu:NoSchedule" in finding["message"]


def test_a_gpu_pod_too_big_for_its_pool_is_reported_at_the_pool_it_selects(corpus: dict[str, Any]) -> None:
    """Not the object's first line: where the overlay or base chose the pool that cannot hold it."""
    fits = [f for f in _case_findings(corpus, "gpu-no-pool") if f["rule"] == "MLP-GPU-FIT"]
    by_name = {f["resource"].rsplit("/", 1)[1]: (f["line"], f["path"]) for f in fits}
    assert by_name["too-many-gpus"] == (14, "spec/predictor/nodeSelector/mlplat~1gpu-pool"), fits
