"""GPU models scale on their load within the environment's bounds; shared GPUs count as slices."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import load_environment
from infra.contract import ENVIRONMENTS as ENVS
from infra.services import keda
from mlplat.findings import RenderedDoc
from mlplat.validation import capacity, scaling
from mlplat.validation.render import SourceIndex
from tests.support.validate_helpers import REPO, copy_without, kustomize, rules, run_json

LLM_BASE = "apps/llm-chat/base"


@pytest.fixture(scope="module")
def llm() -> dict[str, list[dict[str, Any]]]:
    return {env: kustomize(REPO / "apps" / "llm-chat" / "overlays" / env) for env in ENVS}


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


@pytest.mark.parametrize("env", ENVS)
def test_llm_scales_on_its_queue_not_cpu(llm: dict[str, list[dict[str, Any]]], env: str) -> None:
    isvc, scaled = _one(llm[env], "InferenceService"), _one(llm[env], "ScaledObject")
    # KServe makes no HPA of its own (which would scale on CPU) and leaves the replicas to KEDA.
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "external"
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": f"{isvc['metadata']['name']}-predictor",
    }
    triggers = {t["type"]: t for t in scaled["spec"]["triggers"]}
    assert not {"cpu", "memory"} & set(triggers), f"{env}: scales on {sorted(triggers)}"
    assert triggers["prometheus"]["metadata"]["serverAddress"] == keda.PROMETHEUS_URL, env
    query = triggers["prometheus"]["metadata"]["query"]
    assert "vllm:num_requests_waiting" in query and "vllm:num_requests_running" in query, query
    assert 'namespace="models-genai"' in query and "llm-chat-predictor-" in query, query


@pytest.mark.parametrize("env", ENVS)
def test_llm_scaling_bounds_are_the_environments(llm: dict[str, list[dict[str, Any]]], env: str) -> None:
    config = load_environment(env)
    isvc, scaled = _one(llm[env], "InferenceService"), _one(llm[env], "ScaledObject")
    low, high = scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]
    predictor = isvc["spec"]["predictor"]
    assert high <= min(predictor["maxReplicas"], config.apps.max_replicas_per_app)
    if env == "dev":
        assert low == 0 and config.apps.scale_to_zero, "dev's idle LLM must free its GPU node"
    else:
        assert low >= max(config.apps.min_replicas, predictor["minReplicas"]) >= 1, env


def test_a_gpu_predictor_left_to_kserves_cpu_autoscaler_is_a_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = copy_without(
        tmp_path,
        (f"{LLM_BASE}/kustomization.yaml", "  - scaledobject.yaml\n"),
        (f"{LLM_BASE}/inferenceservice.yaml", "    serving.kserve.io/autoscalerClass: external\n"),
    )
    code, report = run_json(capsys, "--repo", str(repo), str(repo / "apps" / "llm-chat"), "--env", "staging")
    assert code == 1 and rules(report) == {"MLP-SCALING-METRIC"}, report
    (finding,) = report["findings"]
    assert finding["resource"] == "InferenceService/models-genai/llm-chat"


def test_a_gpu_predictor_handed_to_keda_without_a_scaledobject_is_a_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = copy_without(tmp_path, (f"{LLM_BASE}/kustomization.yaml", "  - scaledobject.yaml\n"))
    code, report = run_json(capsys, "--repo", str(repo), str(repo / "apps" / "llm-chat"), "--env", "staging")
    assert code == 1 and rules(report) == {"MLP-SCALING-TARGET"}, report
    (finding,) = report["findings"]
    assert finding["resource"] == "InferenceService/models-genai/llm-chat"
    assert "never scales" in finding["message"]


def test_scale_to_zero_is_refused_where_the_stack_does_not_allow_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = copy_without(tmp_path, ("environments/Pulumi.dev.yaml", "    scale_to_zero: true\n"))
    code, report = run_json(capsys, "--repo", str(repo), str(repo / "apps" / "llm-chat"), "--env", "dev")
    assert code == 1 and rules(report) == {"MLP-SCALING-BOUNDS"}, report
    (finding,) = report["findings"]
    assert finding["resource"] == "ScaledObject/models-genai/llm-chat"
    assert "apps.scale_to_zero" in finding["message"]
    assert finding["file"] == "apps/components/gpu-scale-to-zero/kustomization.yaml"


def _isvc(name: str, pool: str, gpus: int, replicas: int, memory: int = 0) -> RenderedDoc:
    annotations = {"mlplat/gpu-memory-gib": str(memory)} if memory else {}
    doc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": "models-x", "annotations": annotations},
        "spec": {
            "predictor": {
                "minReplicas": replicas,
                "maxReplicas": replicas,
                "nodeSelector": {"mlplat/gpu-pool": pool},
                "model": {"resources": {"limits": {"nvidia.com/gpu": str(gpus)}}},
            }
        },
    }
    return RenderedDoc("dev", f"apps/{name}/overlays/dev", f"apps/{name}/base/isvc.yaml", doc)


def test_a_replica_on_a_shared_gpu_counts_as_its_slice_of_the_cap(tmp_path: Path) -> None:
    config = load_environment("dev")
    shared = next(p for p in config.gpu.pools if p.time_slicing_replicas)
    slices = shared.time_slicing_replicas
    assert slices is not None
    # Exactly the cap in physical GPUs: every slice of the shared pool, plus whole GPUs for the rest,
    # spread over apps of at most 2 replicas (dev's per-app cap is 3).
    whole = config.gpu.max_total_gpus - shared.max_size
    docs = [_isvc(f"small-{i}", shared.name, 1, 2) for i in range(slices * shared.max_size // 2)]
    docs += [_isvc(f"big-{i}", "gpu-small", 1, 1) for i in range(whole)]
    index = SourceIndex(tmp_path)
    assert [f for f in capacity.check(docs, config, "dev", index) if f.rule == "MLP-GPU-CAP"] == []
    over = capacity.check([*docs, _isvc("one-more", shared.name, 1, 1)], config, "dev", index)
    assert [f.rule for f in over] == ["MLP-GPU-CAP"], over


def test_a_model_fits_a_shared_gpu_only_within_its_slice_of_memory(tmp_path: Path) -> None:
    config = load_environment("dev")
    shared = next(p for p in config.gpu.pools if p.time_slicing_replicas)
    assert shared.time_slicing_replicas is not None
    share = shared.gpu_memory_gib // shared.time_slicing_replicas
    index = SourceIndex(tmp_path)
    assert capacity.check([_isvc("fits", shared.name, 1, 1, share)], config, "dev", index) == []
    (finding,) = capacity.check([_isvc("too-big", shared.name, 1, 1, share + 1)], config, "dev", index)
    assert finding.rule == "MLP-GPU-FIT" and finding.resource == "InferenceService/models-x/too-big"


def _with_pool(config: Any, name: str, **changes: Any) -> Any:
    """`config` with GPU pool `name` changed (a stack file edited by hand, without the reload)."""
    pools = [p.model_copy(update=changes) if p.name == name else p for p in config.gpu.pools]
    return config.model_copy(update={"gpu": config.gpu.model_copy(update={"pools": pools})})


def test_a_pool_that_may_not_grow_holds_no_replica(tmp_path: Path) -> None:
    """A GPU pool at max_size 0 never launches a node: a predictor selecting it would stay Pending."""
    off = _with_pool(load_environment("dev"), "gpu-small", min_size=0, max_size=0)
    (finding,) = capacity.check([_isvc("m", "gpu-small", 1, 1)], off, "dev", SourceIndex(tmp_path))
    assert finding.rule == "MLP-GPU-FIT" and "'gpu-small' in dev has max_size 0" in finding.message, finding


@pytest.mark.parametrize(
    ("pool", "gpus", "memory", "fits"),
    [
        ("gpu-multi", 4, 24, True),  # a whole 4 x 24 GiB node
        ("gpu-multi", 2, 0, True),  # part of one
        ("gpu-multi", 5, 0, False),
        ("gpu-multi", 1, 25, False),
        ("gpu-shared", 2, 0, False),  # a time-sliced pool gives one slice a replica
    ],
    ids=["all-gpus-and-memory-of-a-node", "part-of-a-node", "one-gpu-more", "one-gib-more", "two-slices"],
)
def test_a_replica_fits_a_gpu_node_up_to_its_last_gpu_and_gib(
    tmp_path: Path, pool: str, gpus: int, memory: int, fits: bool
) -> None:
    found = capacity.check(
        [_isvc("m", pool, gpus, 1, memory)], load_environment("dev"), "dev", SourceIndex(tmp_path)
    )
    assert [f.rule for f in found] == ([] if fits else ["MLP-GPU-FIT"]), found
    if not fits:
        need = f"{gpus} GPU(s)" + (f" of {memory} GiB" if memory else "")  # no memory annotation: none asked
        assert f"no node of pool {pool!r} in dev holds {need} per replica" in found[0].message, found


@pytest.mark.parametrize(
    ("autoscaler", "low", "counted"),
    [("none", 2, 2), ("none", 0, 0), ("none", None, 1), ("hpa", 2, 8), ("keda", 2, 8)],
    ids=[
        "none-runs-min",
        "none-at-zero-runs-none",
        "none-unset-runs-one",
        "hpa-may-reach-max",
        "keda-may-reach-max",
    ],
)
def test_the_gpu_cap_counts_what_each_autoscaler_class_may_run(
    tmp_path: Path, autoscaler: str, low: int | None, counted: int
) -> None:
    """Class `none` runs exactly minReplicas (KServe v0.20.0 deployment_reconciler.go), whatever
    maxReplicas says; an autoscaler may reach maxReplicas. dev's cap is 7 GPUs."""
    config = load_environment("dev")
    isvc = _isvc("m", "gpu-small", 1, 1)
    isvc.doc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] = autoscaler
    isvc.doc["spec"]["predictor"].update(minReplicas=low, maxReplicas=8)
    if low is None:
        del isvc.doc["spec"]["predictor"]["minReplicas"]
    wants = capacity.demand(isvc)
    assert wants is not None and wants.max_replicas == counted, wants
    capped = [
        f.rule
        for f in capacity.check([isvc], config, "dev", SourceIndex(tmp_path))
        if f.rule == "MLP-GPU-CAP"
    ]
    assert capped == (["MLP-GPU-CAP"] if counted > config.gpu.max_total_gpus else []), capped


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (None, None, (1, 1)),
        (0, None, (1, 1)),
        (0, 3, (1, 3)),
        (2, None, (2, 2)),
        (3, 1, (3, 3)),
        (2, 5, (2, 5)),
    ],
    ids=["unset", "zero-min", "zero-min-with-max", "min-alone", "max-below-min", "both"],
)
def test_the_replica_range_is_kserves_hpa_bounds(
    low: int | None, high: int | None, expected: tuple[int, int]
) -> None:
    """KServe v0.20.0 createHPA: minReplicas below 1 or unset is 1; maxReplicas below that or unset is raised to it."""
    predictor = {k: v for k, v in (("minReplicas", low), ("maxReplicas", high)) if v is not None}
    assert capacity.replica_range({"kind": "InferenceService", "spec": {"predictor": predictor}}) == expected


def test_a_gpu_predictor_without_replica_counts_counts_one_replica_against_the_cap(tmp_path: Path) -> None:
    """KServe's floor is 1 (constants.DefaultMinReplicas) and an unset maximum is raised to it."""
    config = load_environment("dev")
    isvc = _isvc("m", "gpu-small", config.gpu.max_total_gpus + 1, 1)
    for key in ("minReplicas", "maxReplicas"):
        del isvc.doc["spec"]["predictor"][key]
    wants = capacity.demand(isvc)
    assert wants is not None and wants.max_replicas == 1, wants
    capped = [
        f for f in capacity.check([isvc], config, "dev", SourceIndex(tmp_path)) if f.rule == "MLP-GPU-CAP"
    ]
    assert len(capped) == 1 and f"m={config.gpu.max_total_gpus + 1}x1" in capped[0].message, capped


@pytest.mark.parametrize(
    ("where", "kind", "path"),
    [
        ("model", "requests", "spec/predictor/model/resources/requests/nvidia.com~1gpu"),
        ("containers", "limits", "spec/predictor/containers/[0]/resources/limits/nvidia.com~1gpu"),
    ],
)
def test_a_gpu_request_no_pool_holds_is_reported_on_the_request_when_no_pool_is_selected(
    tmp_path: Path, where: str, kind: str, path: str
) -> None:
    """Without a pool selector the pod chose only its GPU count: the finding points at that line."""
    config = load_environment("dev")
    too_many = max(p.gpus_per_node for p in config.gpu.pools) + 1
    isvc = _isvc("m", "gpu-small", too_many, 1)
    predictor = isvc.doc["spec"]["predictor"]
    del predictor["nodeSelector"]
    request = {"resources": {kind: {"nvidia.com/gpu": str(too_many)}}}
    if where == "containers":
        predictor["model"] = {"modelFormat": {"name": "sklearn"}}
        predictor["containers"] = [request]
    else:
        predictor["model"] = request
    found = [
        f for f in capacity.check([isvc], config, "dev", SourceIndex(tmp_path)) if f.rule == "MLP-GPU-FIT"
    ]
    assert [(f.message.split(" in dev")[0], f.path) for f in found] == [("no node of any GPU pool", path)], (
        found
    )


@pytest.mark.parametrize(
    "kind", ["Deployment", "SeldonDeployment"]
)  # sorting before and after InferenceService
def test_an_object_that_is_not_an_inference_service_is_not_counted_as_one(tmp_path: Path, kind: str) -> None:
    """Only InferenceServices are KServe predictors: another kind with a predictor-shaped spec (a team's
    own CRD) neither takes GPUs from the cap nor is held to a GPU pool's nodes."""
    config = load_environment("dev")
    other = _isvc("m", "gpu-small", config.gpu.max_total_gpus + 1, 1)  # fits no node of the pool
    other.doc["kind"] = kind
    assert capacity.demand(other) is None
    assert capacity.check([other], config, "dev", SourceIndex(tmp_path), others=[other]) == []


@pytest.mark.parametrize(
    "kind", ["Deployment", "ServiceAccount"]
)  # sorting before and after InferenceService
def test_only_inference_services_are_held_to_the_replica_floor(tmp_path: Path, kind: str) -> None:
    """prod's floor of 2 replicas is for InferenceServices: another object without replica fields is
    not a model held to it."""
    prod = load_environment("prod")
    assert prod.apps.min_replicas == 2
    other = RenderedDoc(
        "prod", "apps/m/overlays/prod", "apps/m/base/x.yaml", {"kind": kind, "metadata": {"name": "m"}}
    )
    assert capacity.check([other], prod, "prod", SourceIndex(tmp_path)) == []


def _scaled(
    isvc_low: int, isvc_high: int, low: int | None, high: int | None, gpus: int = 1
) -> list[RenderedDoc]:
    """A GPU InferenceService handed to KEDA and the ScaledObject that scales it (unset counts stay unset)."""
    isvc = _isvc("m", "gpu-small", gpus, 1)
    isvc.doc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] = "external"
    isvc.doc["spec"]["predictor"].update(minReplicas=isvc_low, maxReplicas=isvc_high)
    spec: dict[str, Any] = {
        "scaleTargetRef": {"name": "m-predictor"},
        "triggers": [{"type": "prometheus", "metadata": {}}],
    }
    spec.update({k: v for k, v in (("minReplicaCount", low), ("maxReplicaCount", high)) if v is not None})
    scaled = {"kind": "ScaledObject", "metadata": {"name": "m", "namespace": "models-x"}, "spec": spec}
    return [isvc, RenderedDoc("dev", isvc.target, "apps/m/base/scaledobject.yaml", scaled)]


@pytest.mark.parametrize(
    ("isvc_bounds", "counts", "gpus", "expected"),
    [
        ((1, 3), (1, 3), 1, []),  # dev's floor and cap, the InferenceService's own bounds
        ((1, 3), (0, 3), 1, []),  # dev allows scale to zero
        ((1, 3), (2, 2), 1, []),
        ((2, 3), (1, 3), 1, ["minReplicaCount"]),  # below the InferenceService's minReplicas
        ((1, 3), (1, 4), 1, ["maxReplicaCount", "maxReplicaCount"]),  # above the cap and the isvc's max
        ((1, 2), (1, 3), 1, ["maxReplicaCount"]),  # above the InferenceService's maxReplicas only
        ((1, 3), (3, 2), 1, ["minReplicaCount"]),
        ((1, 1), (1, 1), 7, []),  # 7 GPUs: dev's gpu.max_total_gpus exactly
        ((1, 1), (1, 1), 8, ["maxReplicaCount"]),
        ((1, 3), (1, None), 1, ["maxReplicaCount"] * 3),  # KEDA's default maximum, 100: cap, isvc, GPUs
    ],
    ids=[
        "at-every-bound",
        "zero-where-allowed",
        "min-equals-max",
        "below-the-isvc-floor",
        "above-the-cap",
        "above-the-isvc-max",
        "min-above-max",
        "gpus-at-the-cap",
        "one-gpu-over-the-cap",
        "unset-max-is-kedas-100",
    ],
)
def test_scaled_object_bounds_are_judged_at_their_exact_limits(
    tmp_path: Path,
    isvc_bounds: tuple[int, int],
    counts: tuple[int, int | None],
    gpus: int,
    expected: list[str],
) -> None:
    """dev: apps.min_replicas 1, apps.max_replicas_per_app 3, scale_to_zero on, gpu.max_total_gpus 7."""
    config = load_environment("dev")
    assert (config.apps.min_replicas, config.apps.max_replicas_per_app, config.gpu.max_total_gpus) == (
        1,
        3,
        7,
    )
    assert config.apps.scale_to_zero
    found = scaling.check(_scaled(*isvc_bounds, *counts, gpus=gpus), config, "dev", SourceIndex(tmp_path))
    assert [(f.rule, f.path) for f in found] == [("MLP-SCALING-BOUNDS", f"spec/{key}") for key in expected], (
        found
    )


@pytest.mark.parametrize(
    ("autoscaler", "says"),
    [
        ("hpa", "i.e. on CPU"),
        ("keda", "whose scaler KServe builds at run time"),
        ("", "whose scaler KServe builds"),
    ],
    ids=["hpa", "keda", "sorting-before-hpa"],
)
def test_an_unscaled_gpu_predictor_is_told_what_its_autoscaler_class_does(
    tmp_path: Path, autoscaler: str, says: str
) -> None:
    """Only KServe's `hpa` class scales on CPU; another class builds a scaler validate cannot see."""
    isvc = _isvc("m", "gpu-small", 1, 1)
    isvc.doc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] = autoscaler
    isvc.doc["spec"]["predictor"]["maxReplicas"] = 3
    (finding,) = scaling.check([isvc], load_environment("dev"), "dev", SourceIndex(tmp_path))
    assert finding.rule == "MLP-SCALING-METRIC" and says in finding.message, finding


def test_a_gpu_predictor_with_autoscaler_class_none_is_not_scaled_and_not_a_finding(tmp_path: Path) -> None:
    """Class `none` holds minReplicas (no autoscaler at all): nothing scales it on the wrong metric. The
    class is read from YAML, as a rendered manifest's is."""
    isvc = _isvc("m", "gpu-small", 1, 1)
    isvc.doc["metadata"]["annotations"].update(yaml.safe_load("serving.kserve.io/autoscalerClass: none"))
    isvc.doc["spec"]["predictor"]["maxReplicas"] = 3
    assert scaling.check([isvc], load_environment("dev"), "dev", SourceIndex(tmp_path)) == []


def test_the_gpu_total_a_scaled_object_may_reach_is_named_with_its_product(tmp_path: Path) -> None:
    """dev's cap is 7 GPUs: 2 replicas x 4 GPUs are 8, and the message does the sum for the reader."""
    found = scaling.check(_scaled(1, 2, 1, 2, gpus=4), load_environment("dev"), "dev", SourceIndex(tmp_path))
    (over,) = [f for f in found if "max_total_gpus" in f.message]
    assert over.message.startswith("2 replicas x 4 GPU(s) = 8 GPUs, above dev's gpu.max_total_gpus 7"), over


@pytest.mark.parametrize(
    ("triggers", "says"),
    [
        (["cpu", "prometheus"], "scales a GPU predictor on cpu"),
        (["memory", "cpu"], "scales a GPU predictor on cpu and memory"),
        (["external"], "has no prometheus trigger: nothing reads the model server's queue"),
    ],
    ids=["cpu-beside-the-queue", "cpu-and-memory", "no-prometheus"],
)
def test_a_scaled_object_on_the_wrong_metric_is_told_which(
    tmp_path: Path, triggers: list[str], says: str
) -> None:
    docs = _scaled(1, 3, 1, 3)
    docs[1].doc["spec"]["triggers"] = [{"type": t, "metadata": {}} for t in triggers]
    found = scaling.check(docs, load_environment("dev"), "dev", SourceIndex(tmp_path))
    assert [(f.rule, f.message) for f in found] == [("MLP-SCALING-METRIC", says)], found


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [("apps/v1", "StatefulSet"), ("argoproj.io/v1alpha1", "Rollout"), ("apps/v1beta1", "Deployment")],
)
def test_a_scaled_object_of_another_kind_named_like_the_predictor_is_refused(
    tmp_path: Path, api_version: str, kind: str
) -> None:
    """Only the predictor's apps/v1 Deployment is KServe's: another kind of the same name is not the model."""
    docs = _scaled(1, 3, 1, 3)
    docs[1].doc["spec"]["scaleTargetRef"].update(apiVersion=api_version, kind=kind)
    found = scaling.check(docs, load_environment("dev"), "dev", SourceIndex(tmp_path))
    assert [(f.rule, f.resource) for f in found][:1] == [("MLP-SCALING-TARGET", "ScaledObject/models-x/m")], (
        found
    )
    assert found[0].message.startswith(f"scales {kind} 'm-predictor', not the predictor Deployment"), found


@pytest.mark.parametrize(
    ("low", "expected"), [(2, []), (0, ["minReplicaCount"])], ids=["at-the-floor", "zero"]
)
def test_prod_refuses_only_a_scaled_object_that_scales_to_zero_or_below_its_floor(
    tmp_path: Path, low: int, expected: list[str]
) -> None:
    """prod: apps.scale_to_zero off, apps.min_replicas 2 (environments/Pulumi.prod.yaml)."""
    prod = load_environment("prod")
    assert not prod.apps.scale_to_zero and prod.apps.min_replicas == 2
    found = scaling.check(_scaled(2, 3, low, 3), prod, "prod", SourceIndex(tmp_path))
    assert [(f.rule, f.path) for f in found] == [("MLP-SCALING-BOUNDS", f"spec/{key}") for key in expected], (
        found
    )
    # The fix offers 0 only where the environment scales to zero (dev does, prod does not).
    assert all(f.fix.startswith("keep 2 <= minReplicaCount <= maxReplicaCount") for f in found), found
    dev = scaling.check(_scaled(2, 3, 1, 3), load_environment("dev"), "dev", SourceIndex(tmp_path))
    assert [f.fix.split(" <= maxReplicaCount")[0] for f in dev] == ["keep 0 or 1 <= minReplicaCount"], dev


@pytest.mark.parametrize(
    ("isvc_low", "high", "expected"),
    [(1, 1, []), (1, 2, ["maxReplicaCount"]), (2, 2, []), (2, 3, ["maxReplicaCount"])],
    ids=[
        "min-one-scaled-to-one",
        "min-one-scaled-to-two",
        "min-two-scaled-to-two",
        "min-two-scaled-to-three",
    ],
)
def test_a_scaled_object_may_scale_to_what_kserve_runs_for_an_unset_max_replicas(
    tmp_path: Path, isvc_low: int, high: int, expected: list[str]
) -> None:
    """KServe raises an unset maxReplicas to minReplicas (hpa_reconciler.go createHPA, v0.20.0), and
    MLP-GPU-CAP counts that many: KEDA may scale to it, and every replica above it would be a GPU the
    cap never saw."""
    docs = _scaled(isvc_low, 1, isvc_low, high)
    del docs[0].doc["spec"]["predictor"]["maxReplicas"]
    found = scaling.check(docs, load_environment("dev"), "dev", SourceIndex(tmp_path))
    assert [(f.rule, f.path) for f in found] == [("MLP-SCALING-BOUNDS", f"spec/{key}") for key in expected], (
        found
    )


@pytest.mark.parametrize("spelled", ["unset", "below-min"])
def test_the_gpu_cap_counts_the_replicas_kserve_runs_when_max_replicas_is_unset_or_below_min(
    tmp_path: Path, spelled: str
) -> None:
    """`minReplicas: 3` with no (or a lower) maxReplicas runs 3 replicas: KServe's HPA reconciler
    raises the maximum to the minimum. Counting 1 let such an app through a GPU cap it breaks."""
    config = load_environment("dev")
    per_replica = config.gpu.max_total_gpus // 3 + 1  # 3 replicas are over the cap, 1 is not
    isvc = _isvc("m", "gpu-small", per_replica, 3)
    predictor = isvc.doc["spec"]["predictor"]
    if spelled == "unset":
        del predictor["maxReplicas"]
    else:
        predictor["maxReplicas"] = 1
    found = capacity.check([isvc], config, "dev", SourceIndex(tmp_path))
    assert [f.rule for f in found if f.rule == "MLP-GPU-CAP"] == ["MLP-GPU-CAP"], found
    (cap,) = [f for f in found if f.rule == "MLP-GPU-CAP"]
    assert f"m={per_replica}x3" in cap.message, cap


def test_a_scaled_object_of_another_deployment_is_told_the_predictors_it_may_scale(tmp_path: Path) -> None:
    """The names come from rendered YAML, as validate's documents do (not from one shared literal)."""
    isvc, scaled = _scaled(1, 3, 1, 3)
    for doc in (isvc, scaled):
        doc.doc["metadata"]["namespace"] = yaml.safe_load("models-x")
    scaled.doc["spec"]["scaleTargetRef"]["name"] = "other-predictor"
    # The same app's predictor in another namespace is not this ScaledObject's to scale.
    elsewhere = dataclasses.replace(_isvc("n", "gpu-small", 1, 1), target=isvc.target)
    elsewhere.doc["metadata"]["namespace"] = yaml.safe_load("models-y")
    found = scaling.check([isvc, scaled, elsewhere], load_environment("dev"), "dev", SourceIndex(tmp_path))
    (finding,) = [f for f in found if f.resource.startswith("ScaledObject/")]
    assert finding.rule == "MLP-SCALING-TARGET", finding
    assert finding.message.endswith("in models-x (predictors: m-predictor)"), finding
