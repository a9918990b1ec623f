"""The registry gate's branches that a real MLflow server will not produce on demand.

Each test serves exactly the REST answers of one case from a loopback fake (`fake_mlflow`), so a
version stuck in registration, a proxy's plain 404, a 5xx, credentials and malformed answers are all
exercised in milliseconds. The happy path against a real MLflow lives in test_registry_gate.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from mlplat import registry_gate
from mlplat.findings import RenderedDoc
from mlplat.promote import REPO, render_inference_service, with_version
from tests.support.fake_mlflow import FakeRegistry, Raw, serve
from tests.support.lineage import COMPLETE

APP = "iris-classifier"
LLM = "llm-chat"
PASSED = {registry_gate.EVALUATION_TAG: registry_gate.EVALUATION_PASSED}


@cache
def _rendered(app: str, env: str) -> RenderedDoc:
    return render_inference_service(REPO, app, env)


def subject(env: str, version: str = "7", app: str = APP) -> RenderedDoc:
    """The committed overlay of `app` for `env`, pointed at `version` (as a promotion would)."""
    return with_version(_rendered(app, env), version, f"s3://mlplat-models/{app}/{version}")


def accuracy(value: str) -> dict[str, str]:
    """A version trained and registered through the pipeline (lineage and card), scoring `value`."""
    return {**PASSED, **COMPLETE, registry_gate.METRIC_TAG_PREFIX + "accuracy": value}


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with serve(FakeRegistry()) as registry:
        yield registry


def rules(findings: list[registry_gate.Finding]) -> list[str]:
    return [f.rule for f in findings]


@pytest.mark.parametrize("status", ["PENDING_REGISTRATION", "FAILED_REGISTRATION"])
def test_version_still_registering_or_failed_is_not_deployable(fake: FakeRegistry, status: str) -> None:
    fake.add_version(APP, "7", source=f"s3://mlplat-models/{APP}/7", status=status, tags=accuracy("0.99"))
    findings = registry_gate.check([subject("dev")], fake.url)
    assert rules(findings) == ["MLP-REGISTRY-NOT-READY"]
    assert status in findings[0].message


def test_metric_exactly_on_the_threshold_passes_and_just_below_fails(fake: FakeRegistry) -> None:
    thresholds = registry_gate.load_evaluation(APP).thresholds
    for env, threshold in thresholds.items():
        fake.add_version(
            APP, f"1{len(env)}", source=f"s3://mlplat-models/{APP}/1{len(env)}", tags=accuracy(str(threshold))
        )
        fake.add_version(
            APP,
            f"2{len(env)}",
            source=f"s3://mlplat-models/{APP}/2{len(env)}",
            tags=accuracy(str(threshold - 1e-9)),
        )
    for env in ("dev", "staging"):  # prod also needs the approval alias, tested below
        n = len(env)
        assert registry_gate.check([subject(env, f"1{n}")], fake.url) == [], env
        assert rules(registry_gate.check([subject(env, f"2{n}")], fake.url)) == ["MLP-REGISTRY-EVALUATION"], (
            env
        )


def test_prod_approval_alias_is_what_lets_a_passing_version_through(fake: FakeRegistry) -> None:
    fake.add_version(APP, "8", source=f"s3://mlplat-models/{APP}/8", tags=accuracy("0.99"))
    fake.add_version(
        APP, "9", source=f"s3://mlplat-models/{APP}/9", tags=accuracy("0.99"), aliases=("approved",)
    )
    assert rules(registry_gate.check([subject("prod", "8")], fake.url)) == ["MLP-REGISTRY-APPROVAL"]
    assert registry_gate.check([subject("prod", "9")], fake.url) == []


def test_llm_without_a_metric_is_gated_on_the_sign_off_tag_alone(fake: FakeRegistry) -> None:
    assert registry_gate.load_evaluation(LLM).metric is None
    fake.add_version(LLM, "3", source=f"s3://mlplat-models/{LLM}/3", tags={**PASSED, **COMPLETE})
    fake.add_version(LLM, "4", source=f"s3://mlplat-models/{LLM}/4", tags=COMPLETE)
    assert registry_gate.check([subject("staging", "3", LLM)], fake.url) == []
    findings = registry_gate.check([subject("staging", "4", LLM)], fake.url)
    assert rules(findings) == ["MLP-REGISTRY-EVALUATION"]
    assert "mlplat.evaluation=passed is missing" in findings[0].message


def test_plain_404_from_a_proxy_is_an_unreachable_registry_not_a_missing_model(fake: FakeRegistry) -> None:
    # A path-routing proxy answers 404 with its own HTML page: that says nothing about the model, so
    # the run must stop with exit 2 (unavailable), never report "model does not exist" (exit 1).
    fake.override = Raw(404, b"<html>Not Found</html>", "text/html")
    with pytest.raises(registry_gate.RegistryUnavailable, match="HTTP 404"):
        registry_gate.check([subject("dev")], fake.url)


def test_server_error_is_an_unreachable_registry(fake: FakeRegistry) -> None:
    fake.override = Raw(503, b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "db is down"}')
    with pytest.raises(registry_gate.RegistryUnavailable, match=r"HTTP 503.*db is down"):
        registry_gate.check([subject("dev")], fake.url)


@pytest.mark.parametrize(
    "body",
    [b"<html>login page</html>", b"[1, 2]", b'{"something": "else"}', b'{"registered_model": "x"}'],
    ids=["not-json", "json-list", "no-registered-model", "registered-model-not-an-object"],
)
def test_malformed_answer_is_an_unreachable_registry_not_a_crash(fake: FakeRegistry, body: bytes) -> None:
    fake.override = Raw(200, body)
    with pytest.raises(registry_gate.RegistryUnavailable, match="not an MLflow answer"):
        registry_gate.check([subject("dev")], fake.url)


def test_malformed_version_answer_is_an_unreachable_registry(fake: FakeRegistry) -> None:
    fake.add_version(APP, "7", source=f"s3://mlplat-models/{APP}/7", tags=accuracy("0.99"))
    fake.versions[(APP, "7")] = "garbage"  # type: ignore[assignment]
    with pytest.raises(registry_gate.RegistryUnavailable, match="not an MLflow answer"):
        registry_gate.check([subject("dev")], fake.url)


def test_a_token_beside_basic_credentials_does_not_replace_them(
    fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The platform's MLflow runs basic auth: a token the gate sent instead of the user and password
    was a 401. MLflow's own client sends basic credentials first too."""
    fake.add_version(APP, "7", source=f"s3://mlplat-models/{APP}/7", tags=accuracy("0.99"))
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "t0ken")  # pragma: allowlist secret
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ci")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw")  # pragma: allowlist secret
    assert registry_gate.check([subject("dev")], fake.url) == []
    assert {h.get("Authorization") for h in fake.seen_headers} == {"Basic Y2k6cHc="}  # base64("ci:pw")


def test_a_token_alone_is_sent_as_bearer(fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.add_version(APP, "7", source=f"s3://mlplat-models/{APP}/7", tags=accuracy("0.99"))
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "t0ken")  # pragma: allowlist secret
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    assert registry_gate.check([subject("dev")], fake.url) == []
    assert {h.get("Authorization") for h in fake.seen_headers} == {"Bearer t0ken"}


def test_basic_credentials_are_sent_when_there_is_no_token(
    fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.add_version(APP, "7", source=f"s3://mlplat-models/{APP}/7", tags=accuracy("0.99"))
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ci")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw")  # pragma: allowlist secret
    registry_gate.check([subject("dev")], fake.url)
    assert {h.get("Authorization") for h in fake.seen_headers} == {"Basic Y2k6cHc="}  # base64("ci:pw")


def test_no_credentials_sends_no_authorization_header(
    fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.add_version(APP, "7", source=f"s3://mlplat-models/{APP}/7", tags=accuracy("0.99"))
    for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ci")  # a user without a password is not credentials
    registry_gate.check([subject("dev")], fake.url)
    assert all("Authorization" not in h for h in fake.seen_headers)


def test_credentials_in_the_registry_url_are_sent_as_basic_auth_before_the_environments(
    fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As MLflow's client (through requests) sends them, percent-decoded; they were taken for the host."""
    fake.add_version(APP, "7", source=f"s3://mlplat-models/{APP}/7", tags=accuracy("0.99"))
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ci")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw")  # pragma: allowlist secret
    url = fake.url.replace("http://", "http://al%40ce:p%3Ass@")  # pragma: allowlist secret
    assert registry_gate.check([subject("dev")], url) == []
    # base64("al@ce:p:ss")
    assert {h.get("Authorization") for h in fake.seen_headers} == {"Basic YWxAY2U6cDpzcw=="}


@pytest.mark.parametrize(
    "url",
    [
        "http://alice:s3cret@127.0.0.1:9",  # pragma: allowlist secret
        "http://alice:s3cret@[::1",  # pragma: allowlist secret
        "ftp://alice:s3cret@127.0.0.1",  # pragma: allowlist secret
        "http://alice:s3/cret@127.0.0.1:9",  # pragma: allowlist secret (a base64 password holds '/')
    ],
    ids=["unreachable", "malformed", "not-http", "slash-in-password"],
)
def test_a_registry_url_with_a_password_never_shows_it(url: str) -> None:
    with pytest.raises(registry_gate.RegistryUnavailable) as raised:
        registry_gate.check([subject("dev")], url)
    assert "s3cret" not in str(raised.value) and "alice" not in str(raised.value), raised.value


def test_each_read_is_asked_once_per_run(fake: FakeRegistry) -> None:
    fake.add_version(APP, "7", source=f"s3://mlplat-models/{APP}/7", tags=accuracy("0.99"))
    registry_gate.check([subject("dev"), subject("dev")], fake.url)
    assert len(fake.seen_headers) == 2  # the model and the version, each once


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("metric: accuracy\nthreshold: {dev: 0.8, staging: 0.85, prod: 0.9}\n", "expected keys"),
        (
            "metric: accuracy\nthresholds: {dev: 0.8, staging: 0.85, prod: 0.9, qa: 1}\n",
            "thresholds.qa: not an env",
        ),
        (
            "metric: accuracy\nthresholds: {dev: 0.8, staging: .nan, prod: 0.9}\n",
            "thresholds.staging: not a fin",
        ),
        (
            "metric: accuracy\nthresholds: {dev: 0.8, staging: true, prod: 0.9}\n",
            "thresholds.staging: not a fin",
        ),
        ("metric: accuracy\nthresholds: {}\n", "at least one environment"),
        ("metric: [accuracy]\nthresholds: {dev: 0.8, staging: 0.85, prod: 0.9}\n", "metric must be a name"),
        ("- metric\n", "expected keys"),
        ("metric: accuracy\nthresholds: {dev: 0.8\n", "cannot be read"),
    ],
    ids=[
        "misspelled-thresholds",
        "unknown-env",
        "nan",
        "bool",
        "none",
        "metric-list",
        "not-a-mapping",
        "bad-yaml",
    ],
)
def test_malformed_evaluation_file_is_refused_not_ignored(tmp_path: Path, text: str, why: str) -> None:
    (tmp_path / "apps" / APP).mkdir(parents=True)
    (tmp_path / "apps" / APP / "evaluation.yaml").write_text(text)
    with pytest.raises(registry_gate.EvaluationFileError, match=why):
        registry_gate.load_evaluation(APP, tmp_path)


def _evaluation(repo: Path, text: str, deploys_to: tuple[str, ...]) -> None:
    """`APP`'s evaluation.yaml under `repo`, and an overlay folder for each environment it deploys to."""
    (repo / "apps" / APP).mkdir(parents=True)
    for env in deploys_to:
        (repo / "apps" / APP / "overlays" / env).mkdir(parents=True)
    (repo / "apps" / APP / "evaluation.yaml").write_text(text)


def test_an_app_needs_no_threshold_for_an_environment_it_does_not_deploy_to(tmp_path: Path) -> None:
    _evaluation(tmp_path, "metric: accuracy\nthresholds: {staging: 0.85, prod: 0.9}\n", ("staging", "prod"))
    evaluation = registry_gate.load_evaluation(APP, tmp_path)
    assert evaluation.thresholds == {"staging": 0.85, "prod": 0.9}
    assert evaluation.entry_threshold == 0.85  # the bar of its first deployment, not dev's


def test_an_app_deploying_to_an_environment_without_its_threshold_is_refused_naming_file_and_key(
    tmp_path: Path,
) -> None:
    _evaluation(tmp_path, "metric: accuracy\nthresholds: {dev: 0.8, prod: 0.9}\n", ("dev", "staging", "prod"))
    with pytest.raises(registry_gate.EvaluationFileError) as raised:
        registry_gate.load_evaluation(APP, tmp_path)
    assert str(raised.value) == (
        f"apps/{APP}/evaluation.yaml: thresholds: no value for staging, where the app deploys "
        f"(apps/{APP}/overlays/staging)"
    )


def test_a_version_judged_for_an_environment_without_a_threshold_is_a_finding_not_a_crash(
    fake: FakeRegistry, tmp_path: Path
) -> None:
    """A manifest labelled for (or defaulting to) an environment the app has no threshold for, since it
    does not deploy there: the gate crashed with a KeyError."""
    _evaluation(tmp_path, "metric: accuracy\nthresholds: {staging: 0.85, prod: 0.9}\n", ())
    fake.add_version(APP, "7", source=f"s3://mlplat-models/{APP}/7", tags=accuracy("0.99"))
    findings = registry_gate.check([subject("dev")], fake.url, repo_root=tmp_path)
    assert rules(findings) == ["MLP-REGISTRY-EVALUATION"]
    assert findings[0].file == f"apps/{APP}/evaluation.yaml"
    assert "has no threshold for dev" in findings[0].message


def test_missing_evaluation_file_is_a_finding_naming_it(fake: FakeRegistry, tmp_path: Path) -> None:
    fake.add_version(APP, "7", source=f"s3://mlplat-models/{APP}/7", tags=accuracy("0.99"))
    findings = registry_gate.check([subject("dev")], fake.url, repo_root=tmp_path)
    assert rules(findings) == ["MLP-REGISTRY-EVALUATION"]
    assert findings[0].file == f"apps/{APP}/evaluation.yaml" and "does not exist" in findings[0].message


# --- answers MLflow gives for what does not exist, and versions with parts missing ---------------------


def test_missing_model_is_a_finding_not_an_outage(fake: FakeRegistry) -> None:
    findings = registry_gate.check([subject("dev")], fake.url)  # the fake knows no model at all
    assert rules(findings) == ["MLP-REGISTRY-MODEL"] and "does not exist" in findings[0].message


def test_missing_version_is_a_finding_naming_the_overlay(fake: FakeRegistry) -> None:
    fake.add_version(APP, "1", source=f"s3://mlplat-models/{APP}/1", tags=accuracy("0.99"))
    findings = registry_gate.check([subject("dev", "7")], fake.url)
    assert rules(findings) == ["MLP-REGISTRY-VERSION"]
    assert findings[0].file == f"apps/{APP}/overlays/dev/model-version.yaml"


def test_does_not_exist_code_on_a_server_error_is_still_an_outage(fake: FakeRegistry) -> None:
    fake.override = Raw(500, b'{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "db"}')
    with pytest.raises(registry_gate.RegistryUnavailable, match="HTTP 500"):
        registry_gate.check([subject("dev")], fake.url)


def test_version_without_a_status_is_not_ready(fake: FakeRegistry) -> None:
    fake.add_version(APP, "7", source=f"s3://mlplat-models/{APP}/7", tags=accuracy("0.99"))
    del fake.versions[(APP, "7")]["status"]
    assert rules(registry_gate.check([subject("dev")], fake.url)) == ["MLP-REGISTRY-NOT-READY"]


@pytest.mark.parametrize("value", [None, "abc", "nan", "inf"], ids=["absent", "not-a-number", "nan", "inf"])
def test_passed_sign_off_without_a_usable_metric_is_refused(fake: FakeRegistry, value: str | None) -> None:
    tags = dict(PASSED) if value is None else accuracy(value)
    fake.add_version(APP, "7", source=f"s3://mlplat-models/{APP}/7", tags=tags)
    findings = registry_gate.check([subject("dev")], fake.url)
    assert rules(findings) == ["MLP-REGISTRY-EVALUATION"], value


def test_without_env_the_environment_label_decides_the_bar(fake: FakeRegistry) -> None:
    fake.add_version(APP, "7", source=f"s3://mlplat-models/{APP}/7", tags=accuracy("0.99"))
    doc = subject("prod")
    unlabelled = RenderedDoc(None, doc.target, doc.source_file, doc.doc)
    assert rules(registry_gate.check([unlabelled], fake.url)) == ["MLP-REGISTRY-APPROVAL"]
    del unlabelled.doc["metadata"]["labels"][registry_gate.ENV_LABEL]
    assert registry_gate.check([unlabelled], fake.url) == []  # no label: dev's bar


# --- canaries (spec.canary) -----------------------------------------------------------------------------


def with_canary(doc: RenderedDoc, canaries: object, recorded: str | None = None) -> RenderedDoc:
    spec = dict(doc.doc, spec={**doc.doc["spec"], "canary": canaries})
    if recorded is not None:
        spec["metadata"] = {
            **doc.doc["metadata"],
            "annotations": {
                **doc.doc["metadata"]["annotations"],
                registry_gate.CANARY_VERSION_ANNOTATION: recorded,
            },
        }
    return RenderedDoc(doc.env, doc.target, doc.source_file, spec)


def canary(name: str, version: str | None = None) -> dict[str, object]:
    model = {"storageUri": f"s3://mlplat-models/{APP}/{version}"} if version else None
    return {"predictor": {"name": name, **({"model": model} if model else {})}}


@pytest.fixture
def prod_registry(fake: FakeRegistry) -> FakeRegistry:
    """v9 serves prod (approved); v10 is approved for a canary; v11 passed evaluation only."""
    fake.add_version(
        APP, "9", source=f"s3://mlplat-models/{APP}/9", tags=accuracy("0.99"), aliases=("approved",)
    )
    fake.add_version(
        APP, "10", source=f"s3://mlplat-models/{APP}/10", tags=accuracy("0.99"), aliases=("canary-approved",)
    )
    fake.add_version(APP, "11", source=f"s3://mlplat-models/{APP}/11", tags=accuracy("0.99"))
    return fake


def test_approved_canary_passes(prod_registry: FakeRegistry) -> None:
    doc = with_canary(subject("prod", "9"), [canary("v10", "10")], recorded="10")
    assert registry_gate.check([doc], prod_registry.url) == []


def test_prod_canary_needs_canary_approval(prod_registry: FakeRegistry) -> None:
    doc = with_canary(subject("prod", "9"), [canary("v11", "11")], recorded="11")
    findings = registry_gate.check([doc], prod_registry.url)
    assert rules(findings) == ["MLP-REGISTRY-APPROVAL"] and "canary 'v11'" in findings[0].message
    assert findings[0].file == f"apps/{APP}/overlays/prod/canary.yaml"


@pytest.mark.parametrize("name", ["canary", "v", "v1a", "10"])
def test_canary_predictor_must_be_named_after_its_version(prod_registry: FakeRegistry, name: str) -> None:
    doc = with_canary(subject("prod", "9"), [canary(name, "10")])
    findings = registry_gate.check([doc], prod_registry.url)
    assert (
        rules(findings) == ["MLP-REGISTRY-CANARY"] and "does not say its model version" in findings[0].message
    )


def test_canary_without_a_model_has_no_storage_uri(prod_registry: FakeRegistry) -> None:
    doc = with_canary(subject("prod", "9"), [canary("v10")], recorded="10")
    assert rules(registry_gate.check([doc], prod_registry.url)) == ["MLP-REGISTRY-STORAGE-URI"]


@pytest.mark.parametrize("recorded", ["11", "9", "1"])
def test_canary_annotation_must_name_the_canary_version(prod_registry: FakeRegistry, recorded: str) -> None:
    doc = with_canary(subject("prod", "9"), [canary("v10", "10")], recorded=recorded)
    findings = registry_gate.check([doc], prod_registry.url)
    assert rules(findings) == ["MLP-REGISTRY-CANARY"] and f"={recorded!r}" in findings[0].message


def test_canary_list_that_is_not_a_list_is_a_finding(prod_registry: FakeRegistry) -> None:
    doc = with_canary(subject("prod", "9"), {"predictor": {"name": "v10"}})
    assert rules(registry_gate.check([doc], prod_registry.url)) == ["MLP-REGISTRY-CANARY"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("tags", {"mlplat.evaluation": "passed"}), ("tags", ["mlplat.evaluation"]), ("tags", [{"value": "x"}]),
     ("aliases", "not-approved"), ("aliases", [{"alias": "approved"}])],
    ids=["tags-dict", "tags-strings", "tag-without-key", "aliases-string", "aliases-objects"],
)  # fmt: skip
def test_malformed_tags_or_aliases_are_an_outage_not_a_crash_or_a_pass(
    fake: FakeRegistry, field: str, value: object
) -> None:
    fake.add_version(APP, "7", source=f"s3://mlplat-models/{APP}/7", tags=accuracy("0.99"))
    fake.versions[(APP, "7")][field] = value
    with pytest.raises(registry_gate.RegistryUnavailable, match="not an MLflow answer"):
        registry_gate.check([subject("prod")], fake.url)


def test_model_alias_without_a_version_is_an_outage(fake: FakeRegistry) -> None:
    fake.add_version(APP, "7", source=f"s3://mlplat-models/{APP}/7", tags=accuracy("0.99"))
    fake.models[APP]["aliases"] = [{"alias": "approved"}]
    with pytest.raises(registry_gate.RegistryUnavailable, match="not an MLflow answer"):
        registry_gate.check([subject("prod")], fake.url)


# --- what the findings say (the fix an engineer follows) --------------------------------------------------


def test_missing_approval_names_the_version_that_holds_it(prod_registry: FakeRegistry) -> None:
    prod_registry.add_version(APP, "8", source=f"s3://mlplat-models/{APP}/8", tags=accuracy("0.99"))
    (finding,) = registry_gate.check([subject("prod", "8")], prod_registry.url)
    assert "(v9 does)" in finding.message and "set alias 'approved' on iris-classifier v8" in finding.fix


def test_missing_approval_names_the_approved_holder_not_another_alias(fake: FakeRegistry) -> None:
    """Other aliases, listed first and sorting before and after `approved`, are not the approval."""
    for version, alias in (("6", "alpha"), ("7", "champion"), ("9", "approved")):
        fake.add_version(
            APP,
            version,
            source=f"s3://mlplat-models/{APP}/{version}",
            tags=accuracy("0.99"),
            aliases=(alias,),
        )
    fake.add_version(APP, "8", source=f"s3://mlplat-models/{APP}/8", tags=accuracy("0.99"))
    (finding,) = registry_gate.check([subject("prod", "8")], fake.url)
    assert "(v9 does)" in finding.message


def test_missing_approval_says_when_no_version_holds_it(fake: FakeRegistry) -> None:
    fake.add_version(APP, "8", source=f"s3://mlplat-models/{APP}/8", tags=accuracy("0.99"))
    (finding,) = registry_gate.check([subject("prod", "8")], fake.url)
    assert "(no version does)" in finding.message


def test_unapproved_canary_says_which_version_holds_approved(prod_registry: FakeRegistry) -> None:
    doc = with_canary(subject("prod", "9"), [canary("v11", "11")], recorded="11")
    (finding,) = registry_gate.check([doc], prod_registry.url)
    assert "(v9 holds 'approved')" in finding.message
    assert "set alias 'canary-approved' on iris-classifier v11" in finding.fix


def test_storage_uri_that_sorts_after_the_source_is_still_wrong(fake: FakeRegistry) -> None:
    fake.add_version(APP, "7", source=f"s3://mlplat-models/{APP}/7", tags=accuracy("0.99"))
    doc = with_version(_rendered(APP, "dev"), "7", f"s3://mlplat-models/{APP}/8")
    assert rules(registry_gate.check([doc], fake.url)) == ["MLP-REGISTRY-STORAGE-URI"]


def test_does_not_exist_code_on_a_client_error_is_an_outage(fake: FakeRegistry) -> None:
    fake.override = Raw(400, b'{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "bad request"}')
    with pytest.raises(registry_gate.RegistryUnavailable, match="HTTP 400"):
        registry_gate.check([subject("dev")], fake.url)


def test_a_misnamed_canary_does_not_hide_the_next_one(prod_registry: FakeRegistry) -> None:
    doc = with_canary(subject("prod", "9"), [canary("canary", "10"), canary("v11", "11")])
    assert rules(registry_gate.check([doc], prod_registry.url)) == [
        "MLP-REGISTRY-CANARY",
        "MLP-REGISTRY-APPROVAL",
    ]


def test_canary_model_that_is_not_a_mapping_has_no_storage_uri(prod_registry: FakeRegistry) -> None:
    entry = {"predictor": {"name": "v10", "model": f"s3://mlplat-models/{APP}/10"}}
    doc = with_canary(subject("prod", "9"), [entry], recorded="10")
    assert rules(registry_gate.check([doc], prod_registry.url)) == ["MLP-REGISTRY-STORAGE-URI"]


def test_canary_annotation_without_any_canary_says_none(prod_registry: FakeRegistry) -> None:
    doc = with_canary(subject("prod", "9"), [], recorded="1")
    (finding,) = registry_gate.check([doc], prod_registry.url)
    assert finding.rule == "MLP-REGISTRY-CANARY" and "versions none" in finding.message


def test_labels_written_as_a_list_are_judged_for_the_default_environment_not_a_crash() -> None:
    """`metadata.labels` as a list (the schema check reports it) made environment_of call `.get` on a
    list: an AttributeError, so the gate crashed instead of judging the object."""
    doc = RenderedDoc(None, "apps/x/overlays/dev", "apps/x/base/isvc.yaml", {"metadata": {"labels": ["a"]}})
    assert registry_gate.environment_of(doc) == registry_gate.DEFAULT_ENV
