"""`register` puts the version's bytes in the model store before MLflow names them (mlplat/retrain/publish.py).

On the cluster the store is the MinIO bucket over S3: these tests give the step a real boto3 S3 client
whose answers come from botocore's Stubber, which checks every request against the S3 service model
and fails on any request it was not told to expect (so "nothing was overwritten" is checked by the
absence of a stubbed PutObject).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from infra.contract import MODEL_STORE_URI, model_version_uri
from mlplat import example_models, model_store, registry_gate
from mlplat.retrain import lineage, publish
from tests.support.embedded_mlflow import Registry

from .conftest import APP, register, trained

BUCKET = MODEL_STORE_URI.removeprefix("s3://")


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """The cluster's situation: no local store, the step's S3 client answered by a Stubber."""
    monkeypatch.delenv(model_store.ROOT_ENV, raising=False)
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url="https://minio.minio.svc.cluster.local:9000",
        aws_access_key_id="model-publisher",
        aws_secret_access_key="not-a-secret",  # pragma: allowlist secret
    )
    monkeypatch.setattr(publish, "s3_client", lambda: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@dataclass(frozen=True)
class Candidate:
    """A trained and evaluated model, and the registry version that registering it will take."""

    model: Path
    scores: Path
    version: str


@pytest.fixture
def candidate(registry: Registry, fetched: Path, tmp_path: Path) -> Candidate:
    """The model each test registers: the registry's next version, so no test finds another's bytes."""
    model, scores = trained(fetched, tmp_path)
    existing = example_models.existing_versions(example_models.mlflow_client(registry.url), APP)
    return Candidate(model, scores, str(max((int(n) for n in existing), default=0) + 1))


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The model store as a local folder (MLPLAT_MODEL_STORE_ROOT), as the demo and these tests use it."""
    root = tmp_path / "store"
    monkeypatch.setenv(model_store.ROOT_ENV, str(root))
    return root


def _register(registry: Registry, fetched: Path, candidate: Candidate, commit: str) -> int:
    return register(
        candidate.model, candidate.scores, fetched, registry.url,
        "--trigger", "schedule", "--triggered-by", "cron", "--code-commit", commit,
    )  # fmt: skip


def _listing(stubber: Stubber, version: str, present: dict[str, bytes]) -> None:
    prefix = f"{APP}/{version}/"
    contents: list[dict[str, Any]] = [
        {"Key": prefix + name, "Size": len(body)} for name, body in present.items()
    ]
    stubber.add_response(
        "list_objects_v2",
        {"Contents": contents, "KeyCount": len(contents)},
        {"Bucket": BUCKET, "Prefix": prefix},
    )
    for name, body in present.items():
        stubber.add_response("get_object", {"Body": BytesIO(body)}, {"Bucket": BUCKET, "Key": prefix + name})


def _expect_puts(stubber: Stubber, version: str, names: list[str]) -> None:
    for name in sorted(names):
        stubber.add_response(
            "put_object",
            {"ETag": '"x"'},
            {"Bucket": BUCKET, "Key": f"{APP}/{version}/{name}", "Body": ANY, "IfNoneMatch": "*"},
        )


def _version(registry: Registry, version: str) -> dict[str, Any] | None:
    return registry_gate.Registry(registry.url).version(APP, version)


def test_register_on_the_cluster_uploads_the_model_and_registers_its_s3_uri(
    registry: Registry, s3: Stubber, fetched: Path, candidate: Candidate
) -> None:
    """Without a local store the step used to stop with exit 2; it must upload to the bucket instead."""
    version = candidate.version
    _listing(s3, version, {})
    _expect_puts(s3, version, [*publish.version_files(candidate.model), lineage.MODEL_CARD_FILE])
    assert _register(registry, fetched, candidate, "a" * 40) == 0
    found = _version(registry, version)
    assert found is not None and found["source"] == model_version_uri(APP, version), found


@pytest.mark.parametrize(
    ("error", "message", "status", "exit_code", "commit"),
    [
        pytest.param("AccessDenied", "Access Denied.", 403, 2, "b" * 40, id="failed-upload-leaves-no-version"),
        # The key was free when listed, then another writer took it: MinIO's 412 on If-None-Match is a refusal.
        pytest.param("PreconditionFailed", "At least one precondition failed.", 412, 1, "f" * 40, id="writer-racing-the-upload-is-never-overwritten"),
    ],
)  # fmt: skip
def test_an_upload_the_bucket_refuses_leaves_no_version_pointing_at_missing_bytes(
    registry: Registry,
    s3: Stubber,
    fetched: Path,
    candidate: Candidate,
    error: str,
    message: str,
    status: int,
    exit_code: int,
    commit: str,
) -> None:
    _listing(s3, candidate.version, {})
    s3.add_client_error("put_object", error, message, status)
    assert _register(registry, fetched, candidate, commit) == exit_code
    assert _version(registry, candidate.version) is None


def test_a_retried_register_step_finishes_an_interrupted_upload_instead_of_refusing(
    registry: Registry, s3: Stubber, fetched: Path, candidate: Candidate
) -> None:
    """A step killed midway through its upload left some of its own files: the retry adds the rest."""
    files = publish.version_files(candidate.model)
    uploaded = {"MLmodel": files["MLmodel"]}
    _listing(s3, candidate.version, uploaded)
    _expect_puts(s3, candidate.version, [n for n in [*files, lineage.MODEL_CARD_FILE] if n not in uploaded])
    assert _register(registry, fetched, candidate, "c" * 40) == 0
    assert _version(registry, candidate.version) is not None


def _tags(registry: Registry, version: str) -> dict[str, str]:
    found = _version(registry, version)
    assert found is not None, f"no version {version}"
    return {t["key"]: t.get("value") or "" for t in found.get("tags") or []}


def test_a_model_nobody_registered_in_the_bucket_is_kept_recorded_and_passed_over(
    registry: Registry, s3: Stubber, fetched: Path, candidate: Candidate
) -> None:
    """Another model's bytes at the next key used to stop every later run with a conflict (MLflow
    gives that number again): they stay as they are, become that version, marked, and the new model
    takes the next number."""
    taken, following = candidate.version, str(int(candidate.version) + 1)
    _listing(s3, taken, {"MLmodel": b"artifact_path: someone-elses-model\n"})  # and no PutObject there
    _listing(s3, following, {})
    _expect_puts(s3, following, [*publish.version_files(candidate.model), lineage.MODEL_CARD_FILE])
    assert _register(registry, fetched, candidate, "e" * 40) == 0
    assert example_models.ORPHANED_TAG in _tags(registry, taken)
    assert lineage.missing(_tags(registry, following)) == []


def test_a_run_whose_registration_failed_after_the_upload_does_not_stop_the_next_runs(
    registry: Registry,
    fetched: Path,
    store: Path,
    monkeypatch: pytest.MonkeyPatch,
    candidate: Candidate,
) -> None:
    """The registry failed after the upload: the key held bytes no version named, MLflow kept giving
    that number, and every later run was refused at it for good."""
    with monkeypatch.context() as failing:

        def registry_down(*args: object, **kwargs: object) -> str:
            raise example_models.RegistrationError("the registry went away")

        failing.setattr(example_models, "register_version", registry_down)
        assert _register(registry, fetched, candidate, "ab" * 20) == 2
    left = publish.version_files(store / APP / candidate.version)
    assert left and _version(registry, candidate.version) is None  # bytes that no version names

    assert _register(registry, fetched, candidate, "cd" * 20) == 0  # the next run, other code
    following = str(int(candidate.version) + 1)
    assert _tags(registry, following)[lineage.CODE_COMMIT] == "cd" * 20
    assert example_models.ORPHANED_TAG in _tags(registry, candidate.version)
    assert publish.version_files(store / APP / candidate.version) == left  # nothing overwritten


@pytest.mark.parametrize("bytes_kept", [True, False], ids=["store-key-kept", "store-key-cleared-too"])
def test_a_deleted_newest_version_costs_one_orphaned_number_not_retraining(
    registry: Registry,
    fetched: Path,
    store: Path,
    candidate: Candidate,
    capsys: pytest.CaptureFixture[str],
    bytes_kept: bool,
) -> None:
    """An operator deleted the newest version: the visible numbers said N, MLflow gave N + 1, so the
    version created pointed at another number's store key, with the new model's lineage on it."""
    assert _register(registry, fetched, candidate, "12" * 20) == 0
    client = example_models.mlflow_client(registry.url)
    client.delete_model_version(APP, candidate.version)
    if not bytes_kept:
        shutil.rmtree(store / APP / candidate.version)
    capsys.readouterr()
    assert _register(registry, fetched, candidate, "34" * 20) == 2
    err = capsys.readouterr().err
    assert "deleted" in err and model_version_uri(APP, candidate.version) in err, err
    stray = max(example_models.existing_versions(client, APP), key=int)
    assert stray == str(int(candidate.version) + 1)
    tags = _tags(registry, stray)
    assert example_models.ORPHANED_TAG in tags and lineage.CODE_COMMIT not in tags, tags  # served nowhere
    # Nothing else to do: the next run numbers after the stray, and its store key matches.
    commit = "78" * 19 + ("a1" if bytes_kept else "b2")
    assert _register(registry, fetched, candidate, commit) == 0
    following = max(example_models.existing_versions(client, APP), key=int)
    assert following == str(int(stray) + 1)
    assert _tags(registry, following)[lineage.CODE_COMMIT] == commit


def test_a_registration_overtaken_by_a_hand_run_register_is_refused_without_a_stray_version(
    registry: Registry,
    fetched: Path,
    store: Path,
    candidate: Candidate,
) -> None:
    """A hand-run register between a workflow's upload and its registration took the number: the
    workflow then created the version after it, pointing at the key its own number names."""
    publish.publish(publish.store_for(None), APP, candidate.version, {"MLmodel": b"the workflow's model\n"})
    assert _register(registry, fetched, candidate, "56" * 20) == 0  # the hand run: orphan, then the next
    client = example_models.mlflow_client(registry.url)
    before = set(example_models.existing_versions(client, APP))
    with pytest.raises(
        example_models.RegistrationError, match=f"next version is {int(candidate.version) + 2}"
    ):
        example_models.register_version(client, APP, candidate.version, {}, {}, {})  # the workflow, late
    assert set(example_models.existing_versions(client, APP)) == before
