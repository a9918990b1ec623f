"""The training data of a retraining run: its layout on disk, its content hash and where it comes from.

A data folder holds `train.csv` and `test.csv`, the app's feature columns plus `label`. The content
hash covers every data file by name and bytes, so the same data fetched from another place hashes the
same and any changed byte changes it: it is what lineage records and what makes `register` idempotent.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRAIN_FILE, TEST_FILE = "train.csv", "test.csv"
DATA_FILES = (TRAIN_FILE, TEST_FILE)
LABEL_COLUMN = "label"
LINEAGE_FILE = "lineage-data.json"


class DataError(Exception):
    """Missing, unreadable or malformed training data; the message names the place and the reason."""


@dataclass(frozen=True)
class Frames:
    """A data folder read: features and labels of both splits."""

    x_train: Any
    y_train: Any
    x_test: Any
    y_test: Any


def content_hash(files: dict[str, bytes]) -> str:
    """sha256 over each file's name and its own sha256, in name order."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{hashlib.sha256(files[name]).hexdigest()}\n".encode())
    return digest.hexdigest()


def to_files(x_train: Any, y_train: Any, x_test: Any, y_test: Any) -> dict[str, bytes]:
    """The data folder's files for in-memory splits (the examples' data, written as the pipeline reads it)."""
    return {
        TRAIN_FILE: x_train.assign(**{LABEL_COLUMN: list(y_train)}).to_csv(index=False).encode(),
        TEST_FILE: x_test.assign(**{LABEL_COLUMN: list(y_test)}).to_csv(index=False).encode(),
    }


def read_files(folder: Path) -> dict[str, bytes]:
    """The data files of `folder`; DataError naming the first one missing."""
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder of training data")
    files = {}
    for name in DATA_FILES:
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path}: missing (a data folder holds {', '.join(DATA_FILES)})")
        files[name] = path.read_bytes()
    return files


def read_frames(folder: Path) -> Frames:
    """Both splits of a data folder, checked: same columns, a label, at least one row each."""
    import pandas as pd

    read_files(folder)
    splits = []
    for name in DATA_FILES:
        try:
            frame = pd.read_csv(folder / name)
        except (ValueError, OSError) as err:  # pandas' parser errors are ValueErrors
            raise DataError(f"{folder / name}: not a CSV table: {err}") from None
        if LABEL_COLUMN not in frame.columns or len(frame) == 0 or len(frame.columns) < 2:
            raise DataError(f"{folder / name}: needs feature columns, a {LABEL_COLUMN!r} column and rows")
        splits.append(frame)
    train, test = splits
    if list(train.columns) != list(test.columns):
        raise DataError(f"{folder}: {TRAIN_FILE} and {TEST_FILE} have different columns")
    return Frames(
        train.drop(columns=LABEL_COLUMN),
        train[LABEL_COLUMN],
        test.drop(columns=LABEL_COLUMN),
        test[LABEL_COLUMN],
    )


def fetch(source: str, out: Path) -> dict[str, Any]:
    """Copy the data files from `source` (a local folder or s3://bucket/prefix) into `out`, and write
    `out/lineage-data.json` {uri, sha256, rows}; returns that record."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise DataError(f"--source {source!r}: an s3 URI needs a bucket (s3://<bucket>/<prefix>)")
        files = _s3_files(parsed.netloc, parsed.path.strip("/"), source)
        uri = source
    elif parsed.scheme in ("", "file"):
        folder = Path(parsed.path if parsed.scheme == "file" else source).resolve()
        files = read_files(folder)
        uri = folder.as_uri()
    else:
        raise DataError(f"--source {source!r}: expected a local folder or an s3://<bucket>/<prefix> URI")
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name, body in files.items():
        (staging / name).write_bytes(body)
    frames = read_frames(staging)  # refuse malformed data here, not three steps later
    record = {
        "uri": uri,
        "sha256": content_hash(files),
        "rows": {"train": len(frames.x_train), "test": len(frames.x_test)},
    }
    (staging / LINEAGE_FILE).write_text(json.dumps(record, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    return record


def read_lineage(folder: Path) -> dict[str, Any]:
    """The record `fetch` wrote, checked against the files now in the folder (a changed byte is refused)."""
    path = folder / LINEAGE_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: missing; run `mlplat retrain fetch` into {folder} first") from None
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: unreadable: {err}") from None
    if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in ("uri", "sha256")):
        raise DataError(f"{path}: expected an object with uri and sha256")
    if content_hash(read_files(folder)) != record["sha256"]:
        raise DataError(f"{folder}: the data files no longer match the sha256 in {LINEAGE_FILE}")
    return record


def _s3_files(bucket: str, prefix: str, source: str) -> dict[str, bytes]:
    """The data files under s3://bucket/prefix, read with boto3's default credential chain (IRSA on the
    cluster) and endpoint settings: `AWS_ENDPOINT_URL_S3` points it at MinIO (the SDKs' service-specific
    endpoint variable, https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html; botocore
    1.44.8 reads it in botocore/configprovider.py, `ConfiguredEndpointProvider._get_service_env_var_name`)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client("s3")
    files = {}
    for name in DATA_FILES:
        key = f"{prefix}/{name}" if prefix else name
        try:
            files[name] = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            raise DataError(f"{source}: cannot read s3://{bucket}/{key}: {code or err}") from None
        except BotoCoreError as err:
            raise DataError(f"{source}: cannot read s3://{bucket}/{key}: {err}") from None
    return files
