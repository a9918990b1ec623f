"""infra/contract.py is the one owner of the environments, the manifest contract's names and the model-store
layout: no other Python module spells them, and the YAML that does (apps/, environments/) uses exactly them."""

from __future__ import annotations

import ast
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import yaml

from infra import contract
from tests.support.checkout_copy import checkout_copy, edit, mlplat

REPO = Path(__file__).resolve().parents[2]
OWNER = REPO / "infra" / "contract.py"
SHARED_CRDS = REPO.parent / "shared" / "reference" / "crds"

CONTRACT_NAMES = {
    contract.TEAM_LABEL,
    contract.MODEL_LABEL,
    contract.MODEL_VERSION_ANNOTATION,
    contract.CANARY_VERSION_ANNOTATION,
    contract.ROLLBACK_VERSION_ANNOTATION,
    contract.GPU_MEMORY_ANNOTATION,
    contract.SLO_P99_LABEL,
    contract.SUSPENDED_BY_LABEL,
    contract.ENVIRONMENT_LABEL,
    contract.GPU_POOL_LABEL,
    contract.NODE_POOL_LABEL,
    contract.STATEFUL_STORAGE_CLASS,
    contract.MODEL_STORE_URI,
}


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for package in ("infra", "mlplat", "policies"):
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if path != OWNER and "bootstrap" not in path.parts:
                yield rel, ast.parse(path.read_text(), filename=rel)


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the string constants that are docstrings: prose may name the contract."""
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            found.add(id(first.value))
    return found


def test_no_module_but_the_contract_spells_a_contract_name() -> None:
    copies = []
    for rel, tree in _modules():
        prose = _docstrings(tree)
        for node in ast.walk(tree):
            text = node.value if isinstance(node, ast.Constant) and id(node) not in prose else None
            if isinstance(text, str) and (
                text in CONTRACT_NAMES or text.startswith(contract.MODEL_STORE_URI + "/")
            ):
                copies.append(f"{rel}:{node.lineno}: {node.value!r}")
    assert not copies, "import these from infra.contract instead of copying them:\n" + "\n".join(copies)


def test_no_module_but_the_contract_lists_the_environments() -> None:
    """A second list (a tuple, `choices=[...]`, a `Literal[...]`) would miss the next environment."""
    environments = set(contract.ENVIRONMENTS)
    copies = []
    for rel, tree in _modules():
        for node in ast.walk(tree):
            elements = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else []
            values = [e.value for e in elements if isinstance(e, ast.Constant)]
            if len(values) >= 2 and len(values) == len(elements) and set(values) <= environments:
                copies.append(f"{rel}:{node.lineno}: {values}")
    assert not copies, "use infra.contract.ENVIRONMENTS / Environment:\n" + "\n".join(copies)


def test_every_environment_has_a_stack_file_and_an_overlay_per_app() -> None:
    stacks = {
        p.name.removeprefix("Pulumi.").removesuffix(".yaml")
        for p in (REPO / "environments").glob("Pulumi.*.yaml")
    }
    assert stacks == set(contract.ENVIRONMENTS), f"environments/ holds stacks {sorted(stacks)}"
    for app in sorted(p.parent for p in (REPO / "apps").glob("*/base")):
        overlays = {p.name for p in (app / "overlays").iterdir() if p.is_dir()}
        assert overlays == set(contract.ENVIRONMENTS), (
            f"{app.relative_to(REPO)}/overlays holds {sorted(overlays)}"
        )


def _inference_services() -> Iterator[tuple[str, dict[str, object]]]:
    for path in sorted((REPO / "apps").glob("*/base/*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "InferenceService":
                yield path.relative_to(REPO).as_posix(), doc


def test_model_apps_carry_the_contract_labels_and_store_layout() -> None:
    services = list(_inference_services())
    assert services, "no InferenceService under apps/*/base"
    for where, doc in services:
        meta = doc["metadata"]
        assert isinstance(meta, dict)
        labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
        assert {contract.TEAM_LABEL, contract.MODEL_LABEL} <= set(labels), f"{where}: labels {sorted(labels)}"
        assert contract.MODEL_VERSION_ANNOTATION in annotations, f"{where}: annotations {sorted(annotations)}"
        model = labels[contract.MODEL_LABEL]
        version = annotations[contract.MODEL_VERSION_ANNOTATION]
        predictor = doc["spec"]["predictor"]  # type: ignore[index]
        uri = (predictor.get("model") or {}).get("storageUri")
        if uri is not None:  # GPU apps may serve from their own container
            assert uri == contract.model_version_uri(model, version), f"{where}: storageUri {uri!r}"


def test_stack_files_name_the_contract_model_store() -> None:
    for env in contract.ENVIRONMENTS:
        stack = yaml.safe_load((REPO / "environments" / f"Pulumi.{env}.yaml").read_text())
        assert stack["config"]["mlplat:apps"]["model_store_uri"] == contract.MODEL_STORE_URI, env


def test_renaming_a_contract_label_is_one_edit_the_checkov_checks_follow(tmp_path: Path) -> None:
    """`mlplat/team` renamed in infra/contract.py alone: the checkov checks (their own virtualenv, no copy
    of the name any more) demand the new label of an app that still writes the old one. Rewriting the
    key in the apps' manifests, the contract's users, is the rest of the rename, and then the app passes."""
    repo = checkout_copy(tmp_path / "checkout")
    shutil.copytree(REPO / "policies", repo / "policies", ignore=shutil.ignore_patterns("__pycache__"))
    edit(repo / "infra" / "contract.py", '_key("team")', '_key("owner")')
    app = repo / "apps" / "iris-classifier"
    argv = ("validate", "--env", "dev", "--schemas", str(SHARED_CRDS), "--format", "json", str(app))

    before = mlplat(repo, *argv)
    assert before.returncode == 1, before.stdout[-2000:] + before.stderr[-2000:]
    assert [(f["rule"], f["path"]) for f in json.loads(before.stdout)["findings"]] == [
        ("CKV_MLP_9", "metadata/labels/mlplat/owner")
    ], before.stdout

    for manifest in app.rglob("*.yaml"):
        manifest.write_text(manifest.read_text().replace("mlplat/team:", "mlplat/owner:"))
    after = mlplat(repo, *argv)
    assert after.returncode == 0, after.stdout[-3000:] + after.stderr[-2000:]


def test_checks_that_cannot_load_the_contract_stop_validate_instead_of_passing(tmp_path: Path) -> None:
    """checkov logs a check it cannot import and scans without it: a contract that needed a package
    checkov's virtualenv lacks would turn every CKV_MLP check off, and the app would pass."""
    repo = checkout_copy(tmp_path / "checkout")
    shutil.copytree(REPO / "policies", repo / "policies", ignore=shutil.ignore_patterns("__pycache__"))
    edit(repo / "infra" / "contract.py", "import re\n", "import re\n\nimport pulumi  # noqa: F401\n")
    app = repo / "apps" / "iris-classifier"
    result = mlplat(repo, "validate", "--env", "dev", "--format", "json", str(app))
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "checkov could not load the mlplat checks" in result.stderr, result.stderr[-2000:]
