"""The log record format KServe v0.20's logger writes, and the privacy marshaller in front of the bucket."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mlplat.monitoring import contract as contract_file
from mlplat.monitoring.privacy import EXTENSION_HEADER, FieldPolicy, serving
from mlplat.monitoring.records import (
    REQUEST,
    RESPONSE,
    LogRecord,
    RecordError,
    dump_batch,
    object_key,
    parse_batch,
    v2_columns,
)
from mlplat.promote import REPO

KEY = b"k" * 32


def churn_request(customer: str = "cust-42") -> bytes:
    return json.dumps(
        {
            "id": "r1",
            "inputs": [
                {"name": "customer_id", "shape": [1], "datatype": "BYTES", "data": [customer]},
                {"name": "tenure_months", "shape": [1], "datatype": "FP64", "data": [3.5]},
                {"name": "email", "shape": [1], "datatype": "BYTES", "data": ["a@b.example"]},
            ],
        }
    ).encode()


def kserve_record(
    body: bytes, req_type: str = REQUEST, version: str | None = "2", **extra: object
) -> dict[str, object]:
    """A record as KServe's agent queues it (pkg/logger/types.go field names, `bytes` in base64)."""
    record: dict[str, object] = {
        "url": {"Scheme": "s3"},
        "bytes": base64.b64encode(body).decode(),
        "contentType": "application/json",
        "reqType": req_type,
        "id": "6f1c-0001",
        "sourceUri": {"Scheme": "http"},
        "inferenceService": "churn-gbm",
        "namespace": "models-growth",
        "component": "predictor",
        "endpoint": "",
        "metadata": {"Authorization": ["Bearer secret"], "X-Cohort": ["b"]},
        "occurrenceTime": "2026-12-01T10:00:00Z",
        **extra,
    }
    if version is not None:
        record["annotations"] = {"mlplat/model-version": version}
    return record


@pytest.fixture(scope="module")
def churn_policy() -> FieldPolicy:
    return FieldPolicy(contract_file.load("churn-gbm", REPO, "prod"), KEY)


def test_kserve_record_round_trips_with_fields_we_do_not_read_untouched() -> None:
    raw = kserve_record(churn_request())
    (record,) = parse_batch(json.dumps([raw]), "batch")
    assert (record.id, record.kind, record.model_version) == ("6f1c-0001", "request", "2")
    assert json.loads(dump_batch([record])) == raw  # one record: an object, as KServe's JSON marshaller


def test_stored_object_key_follows_kserves_blob_store_layout() -> None:
    (record,) = parse_batch(json.dumps(kserve_record(b"{}", RESPONSE)), "x")
    assert object_key("logs", record) == "logs/models-growth/churn-gbm/predictor/6f1c-0001-response.json"


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"not json", "not JSON"),
        (json.dumps([{"reqType": REQUEST}]).encode(), "non-empty `id`"),
        (json.dumps([{"reqType": "other", "id": "x"}]).encode(), "reqType"),
        (json.dumps([{"reqType": REQUEST, "id": "x", "bytes": "%%%"}]).encode(), "not base64"),
    ],
)
def test_malformed_records_are_refused_with_the_reason(payload: bytes, why: str) -> None:
    with pytest.raises(RecordError, match=why):
        parse_batch(payload, "batch")


def test_field_policy_keeps_hashes_and_drops_unlisted_fields(churn_policy: FieldPolicy) -> None:
    (record,) = parse_batch(json.dumps([kserve_record(churn_request())]), "b")
    stored = churn_policy.filter_record(record)
    assert stored is not None
    columns = v2_columns(stored.body, "inputs", "stored")
    assert columns["tenure_months"] == [3.5]
    assert "email" not in columns  # not named in monitoring.yaml: never stored
    (hashed,) = columns["customer_id"]
    assert hashed != "cust-42" and len(hashed) == 64
    assert b"cust-42" not in stored.body and b"a@b.example" not in stored.body


def test_hashing_is_keyed_per_environment_and_joinable_within_one(churn_policy: FieldPolicy) -> None:
    other_env = FieldPolicy(churn_policy.contract, b"o" * 32)
    assert churn_policy.hashed("cust-42") == churn_policy.hashed("cust-42")
    assert churn_policy.hashed("cust-42") != other_env.hashed("cust-42")


def test_logged_headers_are_stored_only_when_the_contract_names_them(churn_policy: FieldPolicy) -> None:
    record = parse_batch(json.dumps([kserve_record(churn_request())]), "b")[0]
    record = LogRecord(**{**record.__dict__, "metadata": {**record.metadata, "X-Amz-Security-Token": ["t"]}})
    stored = churn_policy.filter_record(record)
    assert stored is not None and stored.metadata == {}  # churn names no header: credentials never stored
    cohort = FieldPolicy(churn_policy.contract.model_copy(update={"headers": ["x-cohort"]}), KEY)
    stored = cohort.filter_record(record)
    assert stored is not None and stored.metadata == {"X-Cohort": ["b"]}


def test_nothing_rides_along_outside_a_tensors_data(churn_policy: FieldPolicy) -> None:
    body = {
        "id": "SSN-123-45-6789",
        "parameters": {"email": "a@b.example"},
        "inputs": [
            {"name": "tenure_months", "shape": [2], "datatype": "FP64", "data": ["C-42 raw", 3.5],
             "parameters": {"note": "leak"}},
            {"name": "support_calls", "shape": [1], "datatype": "INT64", "data": [{"customer_id": "C-42"}]},
        ],
    }  # fmt: skip
    (record,) = parse_batch(json.dumps([kserve_record(json.dumps(body).encode())]), "b")
    stored = churn_policy.filter_record(record)
    assert stored is not None
    assert json.loads(stored.body) == {
        "inputs": [
            {"name": "tenure_months", "datatype": "FP64", "shape": [2], "data": [None, 3.5]},
            {"name": "support_calls", "datatype": "INT64", "shape": [1], "data": [None]},
        ]
    }


def test_responses_keep_only_their_predictions(churn_policy: FieldPolicy) -> None:
    body = {"id": "SSN-1", "parameters": {"echo": "a@b.example"},
            "outputs": [{"name": "p", "shape": [1], "datatype": "BYTES", "data": ["x" * 500], "parameters": {"k": 1}}]}  # fmt: skip
    (record,) = parse_batch(json.dumps([kserve_record(json.dumps(body).encode(), RESPONSE)]), "b")
    stored = churn_policy.filter_record(record)
    assert stored is not None
    assert json.loads(stored.body) == {
        "outputs": [{"name": "p", "datatype": "BYTES", "shape": [1], "data": [None]}]
    }


def test_one_record_the_policy_cannot_judge_does_not_lose_the_batch(churn_policy: FieldPolicy) -> None:
    batch = [
        kserve_record(b"not json"),
        kserve_record(b'{"instances": [[1, 2]]}'),
        kserve_record(churn_request()),
    ]
    stored, dropped = churn_policy.marshal(json.dumps(batch).encode())
    assert dropped == 2 and json.loads(stored)["reqType"] == REQUEST


@pytest.mark.parametrize("record_id", ["../../models-other/isvc/x", "a/b", "", "x" * 200])
def test_ids_that_could_become_paths_are_not_stored(churn_policy: FieldPolicy, record_id: str) -> None:
    raw = kserve_record(churn_request(), id=record_id) if record_id else kserve_record(churn_request())
    if not record_id:
        raw["id"] = "-leading-dash"
    (record,) = parse_batch(json.dumps([raw]), "b")
    assert churn_policy.filter_record(record) is None


def test_marshaller_refuses_a_bad_length_and_a_truncated_batch(churn_policy: FieldPolicy) -> None:
    import socket

    with serving(churn_policy) as url:
        host, port = url.removeprefix("http://").split(":")
        for headers, body in (("Content-Length: abc", b"[]"), ("Content-Length: 50", b"[]")):
            with socket.create_connection((host, int(port)), timeout=15) as conn:
                conn.sendall(f"POST / HTTP/1.1\r\nHost: x\r\n{headers}\r\n\r\n".encode() + body)
                conn.shutdown(socket.SHUT_WR)
                status = conn.recv(64).split(b" ")[1]
            assert status == b"400", headers


def test_records_without_model_version_are_not_stored(churn_policy: FieldPolicy) -> None:
    batch = json.dumps(
        [kserve_record(churn_request(), version=None), kserve_record(churn_request())]
    ).encode()
    stored, dropped = churn_policy.marshal(batch)
    assert dropped == 1 and json.loads(stored)["annotations"] == {"mlplat/model-version": "2"}


def test_a_short_hash_key_is_refused_when_a_field_is_hashed() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        FieldPolicy(contract_file.load("churn-gbm", REPO, "prod"), b"short")


def test_marshaller_speaks_kserves_http_marshaller_protocol(churn_policy: FieldPolicy) -> None:
    batch = [kserve_record(churn_request()), kserve_record(b'{"outputs": []}', RESPONSE)]
    with serving(churn_policy) as url:
        post = urllib.request.Request(url, data=json.dumps(batch).encode(), method="POST")
        with urllib.request.urlopen(post, timeout=5) as answer:
            assert answer.headers[EXTENSION_HEADER] == "json"
            stored = json.loads(answer.read())
        assert isinstance(stored, list) and [r["reqType"] for r in stored] == [REQUEST, RESPONSE]
        bad = urllib.request.Request(url, data=b"[{}]", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad, timeout=5)
        assert refused.value.code == 400  # the agent's upload fails: nothing unfiltered is stored


def test_prod_refuses_a_personal_field_kept_raw(tmp_path: Path) -> None:
    app = tmp_path / "apps" / "a" / "base"
    app.mkdir(parents=True)
    (app / "monitoring.yaml").write_text(
        "fields: {email: keep, x: keep}\npersonal: [email]\nfeatures: [x]\nprediction: class\n"
        "retention_days: {dev: 1, staging: 1, prod: 30}\n"
    )
    assert contract_file.load("a", tmp_path, "dev").personal == ["email"]
    with pytest.raises(contract_file.ContractError, match="personal field 'email' is kept raw in prod"):
        contract_file.load("a", tmp_path, "prod")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (
            "fields: {x: keep}\nfeatures: [y]\nprediction: class\nretention_days: {dev: 1, staging: 1, prod: 1}\n",
            "y: not listed",
        ),
        (
            "fields: {x: hash}\nfeatures: [x]\nprediction: class\nretention_days: {dev: 1, staging: 1, prod: 1}\n",
            "must be kept",
        ),
        (
            "fields: {x: keep}\nfeatures: [x]\nprediction: class\nretention_days: {dev: 9, staging: 1, prod: 1}\n",
            "prod must not be shorter",
        ),
        (
            "fields: {x: keep}\nfeatures: [x]\nprediction: class\nretention_days: {dev: 1, staging: 1, prod: 1}\nextra: 1\n",
            "extra",
        ),
    ],
)
def test_inconsistent_monitoring_file_names_the_key(tmp_path: Path, text: str, why: str) -> None:
    (tmp_path / "apps" / "a" / "base").mkdir(parents=True)
    (tmp_path / "apps" / "a" / "base" / "monitoring.yaml").write_text(text)
    with pytest.raises(contract_file.ContractError, match=why):
        contract_file.load("a", tmp_path)


@pytest.mark.parametrize("app", ["iris-classifier", "churn-gbm"])
@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_example_apps_are_monitored_in_every_environment(app: str, env: str) -> None:
    assert contract_file.load(app, REPO, env).features


def test_record_dataclass_is_what_the_recorder_writes() -> None:
    record = LogRecord(id="x", req_type=REQUEST, body=b"{}", annotations={"mlplat/model-version": "1"})
    assert parse_batch(dump_batch([record, record]), "b") == [record, record]
