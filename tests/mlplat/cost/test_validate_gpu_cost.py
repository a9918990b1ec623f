"""MLP-COST-GPU-MAX: `mlplat validate --changed` warns, with figures, when a change raises what an app's
GPUs can cost in an environment, and stays quiet when it does not. Prices are round test prices, so the
figures can be checked by hand: dev's llm-chat lands on gpu-small (g5.2xlarge or g6.2xlarge, 1 GPU each)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.config import load_environment
from infra.prices import load_prices
from mlplat import validate
from mlplat.findings import RenderedDoc
from mlplat.validation import gpu_cost, within
from mlplat.validation.render import Rendered
from mlplat.validation.targets import Target
from tests.support.prices import price_table
from tests.support.validate_helpers import copy_repo, edit, run_json

# g5.2xlarge at $1/h is the dearest GPU of gpu-small: 730 h x $1 = $730 per GPU-month.
PRICES = price_table(
    "eu-west-1",
    {"g5.2xlarge": ("1.00", True), "g6.2xlarge": ("0.80", True), "g5.12xlarge": ("5.00", True), "g4dn.xlarge": ("0.40", True)},
)  # fmt: skip
ISVC = "apps/llm-chat/base/inferenceservice.yaml"
SCALED = "apps/llm-chat/base/scaledobject.yaml"


@pytest.fixture
def prices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check prices GPUs from PRICES, not from the table the repository ships."""
    table = tmp_path / "prices.yaml"
    table.write_text(PRICES)
    monkeypatch.setattr(gpu_cost, "load_prices", lambda: load_prices(table))


@pytest.fixture
def repo(tmp_path: Path, prices: None) -> Path:
    """A copy of the apps with one commit on main, a branch `change` checked out, and the test prices."""
    checkout = copy_repo(tmp_path / "repo", git=True)
    subprocess.run(["git", "checkout", "-qb", "change"], cwd=checkout, check=True)
    return checkout


def _commit(repo: Path) -> None:
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    git = ["git", "-c", "user.email=t@localhost", "-c", "user.name=t", "commit", "-qm", "change"]
    subprocess.run(git, cwd=repo, check=True)


def _max_replicas(repo: Path, old: int, new: int, app: str = "llm-chat") -> None:
    """What a PR scaling llm-chat changes: the InferenceService's maxReplicas and its ScaledObject's."""
    edit(repo / ISVC.replace("llm-chat", app), f"    maxReplicas: {old}\n", f"    maxReplicas: {new}\n")
    edit(repo / SCALED.replace("llm-chat", app), f"  maxReplicaCount: {old}\n", f"  maxReplicaCount: {new}\n")
    _commit(repo)


def test_raising_llm_chats_max_replicas_warns_with_its_new_gpu_cost(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _max_replicas(repo, 2, 3)
    code, report = run_json(capsys, "--repo", str(repo), "--changed", "--env", "dev")
    assert (code, report["findings"]) == (0, []), "a cost rise is a warning: it must not fail the run"
    assert [(w["rule"], w["env"], w["resource"], w["file"]) for w in report["warnings"]] == [
        ("MLP-COST-GPU-MAX", "dev", "InferenceService/models-genai/llm-chat", ISVC)
    ]
    message = report["warnings"][0]["message"]
    # 2 -> 3 replicas x 1 GPU x $730 (g5.2xlarge, dearer per GPU than g6.2xlarge's $584).
    assert "could cost $2,190.00/month in dev, up from $1,460.00 at main (+$730.00)" in message
    assert "3 x 1 GPU x $730.00/GPU-month (g5.2xlarge, the dearest per GPU of pool gpu-small)" in message
    assert report["summary"]["warnings"] == 1


def test_the_warning_is_printed_but_the_exit_code_stays_clean(repo: Path) -> None:
    _max_replicas(repo, 2, 3)
    result = subprocess.run(
        [sys.executable, "-m", "mlplat.validate", "--repo", str(repo), "--changed", "--env", "dev",
         "--no-policy-scan"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning: [dev] apps/llm-chat/base/inferenceservice.yaml" in result.stdout
    assert "0 finding(s), 0 waiver(s), 1 warning(s)" in result.stdout


def test_a_base_git_cannot_archive_is_a_usage_error_naming_the_command(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A clone missing the base's objects (partial or damaged): exit 2 with git's own words, no traceback."""
    base_blob = subprocess.run(
        ["git", "rev-parse", f"main:{ISVC}"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    _max_replicas(repo, 2, 3)
    (repo / ".git" / "objects" / base_blob[:2] / base_blob[2:]).unlink()  # loose: the copy was just committed
    code = validate.main(["--repo", str(repo), "--changed", "--env", "dev", "--no-policy-scan"])
    err = capsys.readouterr().err
    assert code == 2, err
    base = subprocess.run(["git", "rev-parse", "main"], cwd=repo, capture_output=True, text=True, check=True)
    assert f"git archive {base.stdout[:12]}: " in err and base_blob in err and "Traceback" not in err, err


def test_lowering_max_replicas_does_not_warn(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _max_replicas(repo, 2, 1)
    code, report = run_json(capsys, "--repo", str(repo), "--changed", "--env", "dev")
    assert (code, report["warnings"]) == (0, [])


def test_a_change_that_leaves_the_gpus_alone_does_not_warn(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # llm-chat changes (a comment), churn-gbm changes (a CPU model): neither raises a GPU maximum.
    edit(repo / ISVC, "spec:\n", "# reviewed\nspec:\n")
    edit(repo / "apps/churn-gbm/base/inferenceservice.yaml", "spec:\n", "# reviewed\nspec:\n")
    _commit(repo)
    code, report = run_json(capsys, "--repo", str(repo), "--changed")
    assert sorted(report["targets"])[:1] == ["apps/churn-gbm/overlays/dev"]
    assert (code, report["warnings"]) == (0, [])


def test_a_new_gpu_app_warns_from_nothing(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The same app under a new folder name: at main it did not exist, so all of its cost is new.
    subprocess.run(["git", "mv", "apps/llm-chat", "apps/llm-chat-v2"], cwd=repo, check=True)
    _commit(repo)
    _, report = run_json(capsys, "--repo", str(repo), "--changed", "--env", "dev")
    messages = [w["message"] for w in report["warnings"]]
    assert len(messages) == 1, messages
    assert "up from $0.00 at main (no GPU replicas there) (+$1,460.00)" in messages[0]


def test_an_app_whose_name_git_would_quote_is_compared_with_its_base(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """git quotes a folder name holding bytes above 0x80 unless told not to (core.quotePath), so the
    base's listing named `"apps/llm-ch\303\244t"` and the app was priced as new, from $0."""
    subprocess.run(["git", "mv", "apps/llm-chat", "apps/llm-ch\u00e4t"], cwd=repo, check=True)
    _commit(repo)
    subprocess.run(["git", "branch", "-f", "main", "change"], cwd=repo, check=True)
    _max_replicas(repo, 2, 3, app="llm-ch\u00e4t")
    _, report = run_json(capsys, "--repo", str(repo), "--changed", "--env", "dev")
    messages = [w["message"] for w in report["warnings"]]
    assert len(messages) == 1, messages
    assert "up from $1,460.00 at main (+$730.00)" in messages[0]


@pytest.mark.parametrize(
    ("broken", "old", "new"),
    [
        pytest.param("apps/llm-chat/overlays/dev/kustomization.yaml", "../../base", "../../no-such-base", id="overlay-names-no-base"),
        # A YAML error in the app's base is reported on the base file, outside the overlay's folder.
        pytest.param(ISVC, "kind: InferenceService\n", "kind: InferenceService\nspec: [unclosed\n", id="base-is-not-yaml"),
    ],
)  # fmt: skip
def test_an_app_that_did_not_render_at_the_base_is_not_compared_with_zero(
    tmp_path: Path, prices: None, capsys: pytest.CaptureFixture[str], broken: str, old: str, new: str
) -> None:
    repo = copy_repo(tmp_path / "repo")
    kustomization = repo / broken
    working = kustomization.read_text()
    assert old in working, f"{broken} no longer holds {old!r}"
    kustomization.write_text(working.replace(old, new, 1))
    for args in (["init", "-q", "-b", "main"], ["add", "-A"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    _commit(repo)  # main: llm-chat's dev overlay does not render
    subprocess.run(["git", "checkout", "-qb", "change"], cwd=repo, check=True)
    kustomization.write_text(working)  # repaired: its whole cost would look new
    _commit(repo)
    _, report = run_json(capsys, "--repo", str(repo), "--changed", "--env", "dev")
    assert report["warnings"] == []
    base = subprocess.run(["git", "rev-parse", "main"], cwd=repo, capture_output=True, text=True, check=True)
    note = (
        f"MLP-COST-GPU-MAX: apps/llm-chat/overlays/dev not compared: it does not render at {base.stdout[:12]}"
    )
    assert note in report["notes"], report["notes"]


def _second_gpu_app(repo: Path) -> Path:
    """`a-chat`, a copy of llm-chat in its own namespace: an app whose name sorts before llm-chat."""
    copy = repo / "apps" / "a-chat"
    shutil.copytree(repo / "apps" / "llm-chat", copy)
    for file in copy.rglob("*.yaml"):
        file.write_text(
            file.read_text().replace("llm-chat", "a-chat").replace("models-genai", "models-a-chat")
        )
    return copy


def _make_base(repo: Path) -> None:
    _commit(repo)
    subprocess.run(["git", "branch", "-qf", "main", "HEAD"], cwd=repo, check=True)


def test_an_app_not_compared_does_not_silence_the_apps_after_it(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Apps are judged in name order: one that cannot be compared (here `a-chat`, broken at the base)
    is skipped, and llm-chat, after it, still gets its warning."""
    overlay = _second_gpu_app(repo) / "overlays" / "dev" / "kustomization.yaml"
    working = overlay.read_text()
    overlay.write_text(working.replace("../../base", "../../no-such-base"))
    _make_base(repo)
    overlay.write_text(working)
    edit(repo / "apps/a-chat/base/inferenceservice.yaml", "    maxReplicas: 2\n", "    maxReplicas: 3\n")
    edit(repo / "apps/a-chat/base/scaledobject.yaml", "  maxReplicaCount: 2\n", "  maxReplicaCount: 3\n")
    _max_replicas(repo, 2, 3)
    _, report = run_json(capsys, "--repo", str(repo), "--changed", "--env", "dev")
    assert [w["resource"] for w in report["warnings"]] == ["InferenceService/models-genai/llm-chat"], report
    assert any("apps/a-chat/overlays/dev not compared" in n for n in report["notes"]), report["notes"]


def test_an_app_rendered_again_only_for_a_platform_change_does_not_silence_the_apps_after_it(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A change to the Argo CD template renders every app again; a-chat's files did not change (same
    cost, not compared), and llm-chat, changed in the same pull request, still gets its warning."""
    _second_gpu_app(repo)
    _make_base(repo)
    template = repo / "platform" / "argocd" / "models.yaml"
    template.write_text("# reviewed\n" + template.read_text())
    _max_replicas(repo, 2, 3)
    _, report = run_json(capsys, "--repo", str(repo), "--changed", "--env", "dev")
    assert [w["resource"] for w in report["warnings"]] == ["InferenceService/models-genai/llm-chat"], report


def test_a_changed_pipeline_beside_a_gpu_change_is_priced_in_no_environment(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A retraining pipeline is a target of its app without an environment: it has no GPU replicas to
    price, and the GPU app changed beside it still warns."""
    with (repo / "apps" / "churn-gbm" / "training" / "cronworkflow.yaml").open("a") as handle:
        handle.write("# touched\n")
    _max_replicas(repo, 2, 3)
    code, report = run_json(capsys, "--repo", str(repo), "--changed", "--env", "dev")
    assert "apps/churn-gbm/training" in report["targets"], report["targets"]
    assert (code, [w["rule"] for w in report["warnings"]]) == (0, ["MLP-COST-GPU-MAX"]), report


def test_only_files_under_an_apps_folder_touch_that_app(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`docs/llm-chat/...` or `.ci/llm-chat/...` is not llm-chat's own file: a change to them (beside a
    stack change that puts llm-chat in the run) does not render llm-chat again at the base; a shared
    component's change does, for every GPU app."""
    rendered_at_base: list[str] = []
    render = gpu_cost.render

    def spy(targets: list[Target], root: Path) -> Rendered:
        rendered_at_base.extend(str(t.app) for t in targets)
        return render(targets, root)

    monkeypatch.setattr(gpu_cost, "render", spy)
    for name in (".ci/llm-chat/run.sh", "docs/llm-chat/notes.md", "tests/llm-chat/x.yaml"):
        (repo / name).parent.mkdir(parents=True)
        (repo / name).write_text("# llm-chat's, but not its app's\n")
    with (repo / "environments" / "Pulumi.dev.yaml").open("a") as handle:
        handle.write("# touched\n")
    _commit(repo)
    code, report = run_json(capsys, "--repo", str(repo), "--changed", "--env", "dev")
    assert "apps/llm-chat/overlays/dev" in report["targets"], report["targets"]
    assert (code, rendered_at_base) == (0, []), report
    with (repo / "apps" / "components" / "gateway-route" / "kustomization.yaml").open("a") as handle:
        handle.write("# touched\n")
    _commit(repo)
    run_json(capsys, "--repo", str(repo), "--changed", "--env", "dev")
    assert "llm-chat" in rendered_at_base


@pytest.mark.parametrize(
    ("file", "inside"),
    [
        ("apps/a/overlays/dev", True),
        ("apps/a/overlays/dev/k.yaml", True),
        ("apps/a/overlays/dev-eu/k.yaml", False),
    ],
)
def test_a_finding_is_within_a_target_only_under_its_folder(file: str, inside: bool) -> None:
    assert within(file, "apps/a/overlays/dev") is inside


def test_each_environment_is_compared_with_its_own_base(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run over every environment prices each one's base on that environment's documents alone."""
    _max_replicas(repo, 2, 3)
    _, report = run_json(capsys, "--repo", str(repo), "--changed")
    # Each environment runs llm-chat at 2 replicas at main: a base priced on another environment's
    # documents too would start from a sum of them.
    for env in ("dev", "staging", "prod"):
        said = [w["message"] for w in report["warnings"] if w["env"] == env]
        assert len(said) == 1 and "up from $1,460.00 at main (+$730.00)" in said[0], (env, report["warnings"])


def _gpu_isvc(pool: str, gpus: int, replicas: int) -> RenderedDoc:
    doc = {
        "kind": "InferenceService",
        "metadata": {"name": "m", "namespace": "models-x"},
        "spec": {
            "predictor": {
                "minReplicas": 1,
                "maxReplicas": replicas,
                "nodeSelector": {"mlplat/gpu-pool": pool},
                "model": {"resources": {"limits": {"nvidia.com/gpu": str(gpus)}}},
            }
        },
    }
    return RenderedDoc("dev", "apps/m/overlays/dev", "apps/m/base/isvc.yaml", doc)


def test_a_replica_on_a_shared_gpu_costs_its_slice_of_the_gpu(tmp_path: Path) -> None:
    """gpu-shared: one T4 (g4dn.xlarge at $0.40/h = $292 a GPU-month) time-sliced 4 ways, so a replica
    costs a quarter of it: 2 replicas are half a GPU, $146."""
    table = tmp_path / "prices.yaml"
    table.write_text(PRICES)
    config = load_environment("dev")
    shared = next(p for p in config.gpu.pools if p.name == "gpu-shared")
    assert shared.time_slicing_replicas == 4 and shared.instance_types == ["g4dn.xlarge"]
    costs, notes = gpu_cost.app_costs(
        [_gpu_isvc("gpu-shared", 1, 2)], {"apps/m/overlays/dev": "m"}, config, load_prices(table)
    )
    assert notes == [] and round(costs["m"].usd, 2) == 146.0, costs
    assert costs["m"].parts == (
        "m: 2 x 0.25 GPU x $292.00/GPU-month (g4dn.xlarge, the dearest per GPU of pool gpu-shared)",
    )


def test_a_pool_without_a_price_is_a_note_not_a_crash(tmp_path: Path) -> None:
    table = tmp_path / "prices.yaml"
    table.write_text(price_table("eu-west-1", {"g5.12xlarge": ("5.00", True)}))
    costs, notes = gpu_cost.app_costs(
        [_gpu_isvc("gpu-small", 1, 2)],
        {"apps/m/overlays/dev": "m"},
        load_environment("dev"),
        load_prices(table),
    )
    assert costs == {} and len(notes) == 1, (costs, notes)
    assert notes[0].startswith("MLP-COST-GPU-MAX: InferenceService/models-x/m in dev not priced: "), notes
