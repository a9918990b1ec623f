"""MLP-NODE-POOL and MLP-RESOURCE-*: every model pod lands on a model pool, and its CPU and memory fit
one node of that pool (issue 14, item 5). Rules are judged against dev's stack config, as validate does."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from infra.config import load_environment
from mlplat.validation.resources import parse_quantity, problems
from tests.support.validate_helpers import REPO, copy_repo, rules, run_json

DEV = load_environment("dev")
POOL = {"nodeSelector": {"mlplat/pool": "models-cpu"}}
TOLERATION = {"key": "mlplat/pool", "operator": "Equal", "value": "models-cpu", "effect": "NoSchedule"}
# dev's largest CPU pool node is an m6i/m7i.2xlarge: what a pod gets there (see the exact-fit fixture).
ROOM_CPU_M, ROOM_MEMORY_MIB = 7310, 27781


def isvc(requests: dict[str, Any], limits: dict[str, Any] | None = None, **predictor: Any) -> dict[str, Any]:
    placement = {**POOL, "tolerations": [TOLERATION]}
    resources = {"requests": requests, "limits": limits if limits is not None else requests}
    return {
        "kind": "InferenceService",
        "metadata": {"name": "m", "namespace": "models-x"},
        "spec": {"predictor": {**placement, "model": {"resources": resources}, **predictor}},
    }


def found(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p.rule, p.path) for p in problems(doc, DEV)]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", Fraction(1, 10)),
        ("4Ti", Fraction(4 * 2**40)),
        ("1.5", Fraction(3, 2)),
        ("2e3", Fraction(2000)),
        ("1E-3", Fraction(1, 1000)),
        ("512Mi", Fraction(512 * 2**20)),
        ("512M", Fraction(512 * 10**6)),
        ("1Gi", Fraction(2**30)),
        ("1G", Fraction(10**9)),
        (".5", Fraction(1, 2)),
        ("+2", Fraction(2)),
        ("-1", Fraction(-1)),
        ("2k", Fraction(2000)),
        (3, Fraction(3)),
        # every suffix of quantity.go, each exactly: the rare ones too
        *(
            (f"1{suffix}", Fraction(10**power))
            for suffix, power in zip("kMGTPE", range(3, 19, 3), strict=True)
        ),
        *(
            (f"1{suffix}i", Fraction(2**power))
            for suffix, power in zip("KMGTPE", range(10, 61, 10), strict=True)
        ),
    ],
)
def test_kubernetes_quantities_are_read_exactly(text: Any, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text", ["4 cores", "1gi", "1GiB", "", "Mi", "1..5", "1e400", True, None, ["1"], "1e1.5"]
)
def test_what_is_not_a_quantity_reads_as_none_never_an_exception(text: Any) -> None:
    assert parse_quantity(text) is None


def test_a_quantity_of_64_characters_is_read_and_one_longer_is_not() -> None:
    """The length bound keeps Fraction arithmetic small; a quantity at the bound still reads."""
    assert parse_quantity("1" + "0" * 63) == Fraction(10**63)
    assert parse_quantity("1" + "0" * 64) is None


def test_predictor_asking_4Ti_memory_is_refused() -> None:
    doc = isvc({"cpu": "1", "memory": "4Ti"})
    assert found(doc) == [("MLP-RESOURCE-FIT", "spec/predictor/model/resources/requests/memory")]
    (problem,) = problems(doc, DEV)
    assert f"request at most {ROOM_MEMORY_MIB}Mi memory" in problem.fix
    assert "cpu_pool.instance_types in environments/Pulumi.<env>.yaml" in problem.fix


def test_predictor_asking_900_cpus_is_refused() -> None:
    doc = isvc({"cpu": "900", "memory": "1Gi"})
    assert found(doc) == [("MLP-RESOURCE-FIT", "spec/predictor/model/resources/requests/cpu")]
    assert f"request at most {ROOM_CPU_M}m CPU" in problems(doc, DEV)[0].fix


def test_request_of_exactly_a_nodes_room_fits() -> None:
    assert found(isvc({"cpu": f"{ROOM_CPU_M}m", "memory": f"{ROOM_MEMORY_MIB}Mi"})) == []


@pytest.mark.parametrize(
    ("requests", "path"),
    [
        ({"cpu": f"{ROOM_CPU_M + 1}m", "memory": f"{ROOM_MEMORY_MIB}Mi"}, "requests/cpu"),
        ({"cpu": f"{ROOM_CPU_M}m", "memory": f"{ROOM_MEMORY_MIB + 1}Mi"}, "requests/memory"),
    ],
    ids=["one-millicore-more", "one-mebibyte-more"],
)
def test_one_unit_past_a_nodes_room_does_not_fit(requests: dict[str, str], path: str) -> None:
    assert found(isvc(requests)) == [("MLP-RESOURCE-FIT", f"spec/predictor/model/resources/{path}")]


def test_containers_of_one_pod_add_up() -> None:
    """Two containers that each fit a node, but not together."""
    doc = isvc({"cpu": "4", "memory": "1Gi"})
    sidecar = {"name": "s", "resources": {"requests": {"cpu": "4", "memory": "1Gi"}}}
    doc["spec"]["predictor"]["containers"] = [sidecar]
    assert [r for r, _ in found(doc)] == ["MLP-RESOURCE-FIT"]


def test_a_larger_init_container_decides_the_pods_request() -> None:
    doc = isvc({"cpu": "1", "memory": "1Gi"})
    doc["spec"]["predictor"]["initContainers"] = [
        {"name": "warm", "resources": {"limits": {"memory": "40Gi"}}}
    ]
    assert found(doc) == [("MLP-RESOURCE-FIT", "spec/predictor/initContainers/[0]/resources/limits/memory")]


def test_decimal_and_binary_suffixes_are_not_confused() -> None:
    """29,000M (decimal) is 27,657Mi and fits; 29,000Mi does not."""
    assert found(isvc({"cpu": "1", "memory": "29000M"})) == []
    assert [r for r, _ in found(isvc({"cpu": "1", "memory": "29000Mi"}))] == ["MLP-RESOURCE-FIT"]


def test_cpu_model_pods_do_not_land_on_the_system_node_group() -> None:
    doc = isvc({"cpu": "1", "memory": "1Gi"})
    del doc["spec"]["predictor"]["nodeSelector"], doc["spec"]["predictor"]["tolerations"]
    (problem,) = problems(doc, DEV)
    assert (problem.rule, problem.path) == ("MLP-NODE-POOL", None)  # missing: the object's own line
    assert (
        "predictor selects no node pool" in problem.message
        and "system node group" in problem.message
        and "apps/components/cpu-model-pool" in problem.fix
    )


def test_selecting_the_system_node_group_is_refused() -> None:
    doc = isvc({"cpu": "1", "memory": "1Gi"}, nodeSelector={"mlplat/pool": "system"})
    (problem,) = problems(doc, DEV)
    assert (problem.rule, problem.path) == ("MLP-NODE-POOL", "spec/predictor/nodeSelector/mlplat~1pool")
    assert "system node group" in problem.message


def test_cpu_model_pool_without_its_toleration_stays_pending() -> None:
    doc = isvc({"cpu": "1", "memory": "1Gi"}, tolerations=[])
    (problem,) = problems(doc, DEV)
    assert problem.rule == "MLP-NODE-POOL" and "stay Pending" in problem.message


@pytest.mark.parametrize(
    "toleration",
    [{"key": "mlplat/pool", "operator": "Exists"}, {"operator": "Exists"}, {**TOLERATION, "effect": None}],
)
def test_any_toleration_kubernetes_accepts_for_the_taint_counts(toleration: dict[str, Any]) -> None:
    assert found(isvc({"cpu": "1", "memory": "1Gi"}, tolerations=[toleration])) == []


@pytest.mark.parametrize(
    "toleration",
    [{**TOLERATION, "operator": "Gt"}, {**TOLERATION, "value": "models-gpu"}],
    ids=["operator-kubernetes-does-not-have", "value-of-another-pool"],
)
def test_a_toleration_that_does_not_match_the_taint_leaves_the_pod_pending(
    toleration: dict[str, Any],
) -> None:
    """Only `Exists` (any value) or `Equal` with the pool's value tolerates the taint (Kubernetes'
    ToleratesTaint); an operator it does not have, or another pool's value, tolerates nothing."""
    assert found(isvc({"cpu": "1", "memory": "1Gi"}, tolerations=[toleration])) == [
        ("MLP-NODE-POOL", "spec/predictor/tolerations")
    ]


def test_a_toleration_that_does_not_match_does_not_hide_the_one_that_does() -> None:
    other = {"key": "example.com/other", "operator": "Exists", "effect": "NoExecute"}
    assert found(isvc({"cpu": "1", "memory": "1Gi"}, tolerations=["bent", other, TOLERATION])) == []


def test_a_pod_without_containers_does_not_end_the_scan_of_the_others() -> None:
    """An empty workerSpec (a pod of its own, listed before the transformer) has nothing to judge; the
    transformer after it still is."""
    doc = isvc({"cpu": "1", "memory": "1Gi"}, workerSpec={})
    too_big = {"cpu": "900", "memory": "1Gi"}
    doc["spec"]["transformer"] = {
        **POOL,
        "tolerations": [TOLERATION],
        "containers": [{"name": "t", "resources": {"requests": too_big, "limits": too_big}}],
    }
    assert found(doc) == [("MLP-RESOURCE-FIT", "spec/transformer/containers/[0]/resources/requests/cpu")]


def test_cpu_pod_selecting_a_gpu_pool_is_refused() -> None:
    doc = isvc({"cpu": "1", "memory": "1Gi"}, nodeSelector={"mlplat/gpu-pool": "gpu-small"})
    assert found(doc) == [("MLP-NODE-POOL", "spec/predictor/nodeSelector/mlplat~1gpu-pool")]


def test_gpu_pod_is_judged_on_its_gpu_pools_nodes() -> None:
    """gpu-small's nodes (g5/g6.2xlarge) give a pod 7310m and 27781Mi; 40Gi does not fit."""
    doc = isvc(
        {"cpu": "2", "memory": "40Gi", "nvidia.com/gpu": "1"}, nodeSelector={"mlplat/gpu-pool": "gpu-small"}
    )
    (problem,) = problems(doc, DEV)
    assert problem.rule == "MLP-RESOURCE-FIT" and "GPU pool gpu-small" in problem.message
    assert "gpu.pools[].instance_types" in problem.fix


def test_limit_below_request_is_refused() -> None:
    assert found(isvc({"cpu": "2", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"})) == [
        ("MLP-RESOURCE-LIMITS", "spec/predictor/model/resources/limits/cpu")
    ]


def test_memory_in_thousandths_of_a_byte_is_refused() -> None:
    (problem,) = problems(isvc({"cpu": "1", "memory": "512m"}, {"cpu": "1", "memory": "1Gi"}), DEV)
    assert (problem.rule, problem.path) == (
        "MLP-RESOURCE-QUANTITY",
        "spec/predictor/model/resources/requests/memory",
    )
    assert "`512Mi`" in problem.fix


def test_unreadable_quantities_are_left_to_the_schema_and_never_crash() -> None:
    """`4 cores` and a bare float are MLP-SCHEMA's findings (the CRD's pattern); the fit skips them."""
    for value in ("4 cores", 0.5, True, ["1"], {"a": 1}, None):
        assert found(isvc({"cpu": value, "memory": "1Gi"})) == []


def test_canary_inherits_placement_and_its_own_resources_are_judged() -> None:
    doc = isvc({"cpu": "1", "memory": "1Gi"})
    big = {"requests": {"memory": "4Ti"}, "limits": {"memory": "4Ti"}}
    doc["spec"]["canary"] = [{"predictor": {"model": {"resources": big}}}]
    assert found(doc) == [("MLP-RESOURCE-FIT", "spec/canary/[0]/predictor/model/resources/requests/memory")]


def test_canary_repeating_the_predictors_mistake_is_one_finding() -> None:
    doc = isvc({"cpu": "900", "memory": "1Gi"})
    doc["spec"]["canary"] = [{"predictor": {"name": "v2"}}]
    assert [r for r, _ in found(doc)] == ["MLP-RESOURCE-FIT"]


def test_repository_cpu_apps_render_onto_the_cpu_model_pool(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_json(capsys, str(REPO / "apps" / "iris-classifier"), str(REPO / "apps" / "churn-gbm"))
    assert (code, rules(report)) == (0, set())


def test_app_without_the_cpu_pool_component_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Dropping the component from the base is caught in every environment, at the predictor."""
    root = copy_repo(tmp_path)
    base = root / "apps" / "iris-classifier" / "base" / "kustomization.yaml"
    text = base.read_text()
    assert "  - ../../components/cpu-model-pool\n" in text
    base.write_text(text.replace("  - ../../components/cpu-model-pool\n", ""))
    code, report = run_json(capsys, "--repo", str(root), str(root / "apps" / "iris-classifier"))
    assert code == 1
    (finding,) = report["findings"]
    assert finding["rule"] == "MLP-NODE-POOL" and finding["env"] == "dev,staging,prod"
    assert (finding["file"], finding["line"]) == ("apps/iris-classifier/base/inferenceservice.yaml", 2)


def test_exact_fit_fixture_validates_clean(capsys: pytest.CaptureFixture[str]) -> None:
    fixture = REPO / "tests" / "fixtures" / "resources" / "exact-fit"
    code, report = run_json(capsys, str(fixture), "--env", "dev")
    assert (code, report["findings"]) == (0, [])


def test_unreadable_cpu_gets_a_quantity_hint_from_the_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (REPO / "tests" / "fixtures" / "resources" / "exact-fit" / "inferenceservice.yaml").read_text()
    (tmp_path / "isvc.yaml").write_text(
        text.replace(
            "cpu: 7310m, memory: 27781Mi}\n        limits", "cpu: 4 cores, memory: 1Gi}\n        limits", 1
        )
    )
    code, report = run_json(capsys, str(tmp_path / "isvc.yaml"), "--env", "dev")
    assert code == 1
    (finding,) = report["findings"]
    assert finding["rule"] == "MLP-SCHEMA" and finding["path"].endswith("requests/cpu")
    assert 'write a Kubernetes quantity, e.g. `cpu: "500m"`' in finding["fix"]


def test_pinning_a_model_pod_to_a_node_by_name_is_refused() -> None:
    """nodeName skips the scheduler: it would put a model on a system node whatever its selector says."""
    doc = isvc({"cpu": "1", "memory": "1Gi"}, nodeName="ip-10-10-1-1.eu-west-1.compute.internal")
    assert found(doc) == [("MLP-NODE-POOL", "spec/predictor/nodeName")]


def test_transformer_without_a_pool_is_told_to_set_its_own_placement() -> None:
    doc = isvc({"cpu": "1", "memory": "1Gi"})
    doc["spec"]["transformer"] = {"containers": [{"name": "t", "resources": {"requests": {"cpu": "1"}}}]}
    (problem,) = problems(doc, DEV)
    assert problem.rule == "MLP-NODE-POOL" and problem.message.startswith("transformer selects no node pool")
    assert "on spec.transformer" in problem.fix


def test_one_oversized_request_is_one_finding_per_pool_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """dev and staging offer the same nodes: one finding for both, at the base's request line; prod's
    larger nodes are another verdict."""
    root = copy_repo(tmp_path)
    isvc_file = root / "apps" / "iris-classifier" / "base" / "inferenceservice.yaml"
    text = isvc_file.read_text()
    old = 'requests: {cpu: 500m, memory: 1Gi}\n        limits: {cpu: "1", memory: 2Gi}'
    assert old in text
    isvc_file.write_text(
        text.replace(old, 'requests: {cpu: 500m, memory: 4Ti}\n        limits: {cpu: "1", memory: 4Ti}')
    )
    code, report = run_json(capsys, "--repo", str(root), str(root / "apps" / "iris-classifier"))
    assert code == 1
    fits = sorted(
        (f["env"], f["file"], f["line"]) for f in report["findings"] if f["rule"] == "MLP-RESOURCE-FIT"
    )
    where = ("apps/iris-classifier/base/inferenceservice.yaml", 29)
    assert fits == [("dev,staging", *where), ("prod", *where)]
