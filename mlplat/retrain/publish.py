"""Putting a registered version's bytes in the model store before MLflow names them.

`register` writes the model folder (with its card) at the version's canonical store key,
`s3://mlplat-models/<model>/<N>/` (infra/contract.py), and only then creates the MLflow version whose
source is that URI: a version never points at bytes that are not there. On the cluster the store is
the MinIO bucket itself, written as the pipelines' `model-publisher` user (infra/services/minio.py);
off the cluster (demo, tests) it is the local folder `MLPLAT_MODEL_STORE_ROOT` names
(mlplat/model_store.py). Both behave alike:

- nothing at the key yet: write every file;
- some or all files there with the same bytes (a retried step after a crash between the upload and
  the registration, or midway through the upload): write only what is missing, register as usual;
- any file there with other bytes, or a file the model does not have: refuse and write nothing. That
  key belongs to another model (another run's, a hand upload) and a version must name it alone
  (`OccupiedKey`: `register` then records that model as its own version and moves to the next number,
  steps.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from infra.contract import MODEL_STORE_URI
from mlplat import example_models, model_store


class StoreConflict(Exception):
    """The version's key holds other bytes: publishing would overwrite another model."""


class OccupiedKey(StoreConflict):
    """The key already holds files of another model (found when listing it, before writing anything)."""


class StoreUnavailable(Exception):
    """The store could not be read or written (credentials, endpoint, TLS); the message says which."""


def version_files(folder: Path) -> dict[str, bytes]:
    """Every file below `folder`, by its relative POSIX path (the object key below the version)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    """The inverse of version_files: each file at its relative path below `folder`."""
    for name, body in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(body)


class Store(Protocol):
    """Where one version's files go: read what is there, add what is missing."""

    def where(self, model: str, version: str) -> str: ...

    def read(self, model: str, version: str) -> dict[str, bytes]: ...

    def add(self, model: str, version: str, files: dict[str, bytes]) -> None: ...


@dataclass(frozen=True)
class LocalStore:
    """The local stand-in for the bucket (`MLPLAT_MODEL_STORE_ROOT`)."""

    root: Path

    def where(self, model: str, version: str) -> str:
        return str(self.root / model / version)

    def read(self, model: str, version: str) -> dict[str, bytes]:
        folder = self.root / model / version
        return version_files(folder) if folder.is_dir() else {}

    def add(self, model: str, version: str, files: dict[str, bytes]) -> None:
        target = self.root / model / version
        merged = {**self.read(model, version), **files}
        # Whole-folder rename: a reader never sees half a model (example_models.atomic_save).
        example_models.atomic_save(target, lambda path: write_files(path, merged))


@dataclass(frozen=True)
class S3Store:
    """The model store bucket over the S3 API (MinIO on the cluster), through a boto3 S3 client."""

    client: Any
    bucket: str = MODEL_STORE_URI.removeprefix("s3://")

    def where(self, model: str, version: str) -> str:
        return f"s3://{self.bucket}/{model}/{version}/"

    def read(self, model: str, version: str) -> dict[str, bytes]:
        prefix = f"{model}/{version}/"
        # ListObjectsV2 returns at most 1000 keys a page; the paginator follows ContinuationToken
        # (botocore 1.44.8 botocore/data/s3/2006-03-01/paginators-1.json, ListObjectsV2).
        found = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                body = self.client.get_object(Bucket=self.bucket, Key=entry["Key"])["Body"].read()
                found[entry["Key"].removeprefix(prefix)] = body
        return found

    def add(self, model: str, version: str, files: dict[str, bytes]) -> None:
        for name, body in sorted(files.items()):
            # If-None-Match: * makes the write conditional on the key being free, so even a writer racing
            # this one cannot be overwritten: MinIO answers 412 PreconditionFailed when the object exists
            # (minio/minio 43a74029, the chart's RELEASE.2024-12-18: cmd/object-handlers.go PutObjectHandler
            # sets CheckPrecondFn on If-None-Match; cmd/object-handlers-common.go isETagEqual matches "*").
            self.client.put_object(
                Bucket=self.bucket, Key=f"{model}/{version}/{name}", Body=body, IfNoneMatch="*"
            )


def s3_client() -> Any:
    """boto3's S3 client from the environment, as the fetch step's (mlplat/retrain/data.py): the access
    key pair, `AWS_ENDPOINT_URL` (MinIO) and `AWS_CA_BUNDLE` (the internal CA). botocore 1.44.8 reads
    both in botocore/configprovider.py (`ca_bundle` <- AWS_CA_BUNDLE; `ConfiguredEndpointProvider`
    <- AWS_ENDPOINT_URL, https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html)."""
    import boto3

    return boto3.client("s3")


def store_for(root: Path | None) -> Store:
    """The local folder when one is named (argument or `MLPLAT_MODEL_STORE_ROOT`), else the bucket."""
    if root is not None or os.environ.get(model_store.ROOT_ENV):
        return LocalStore(model_store.local_root(root))
    return S3Store(s3_client())


def publish(store: Store, model: str, version: str, files: dict[str, bytes]) -> bool:
    """Put `files` at the version's key; True when anything was written, False when all was there.
    A key holding anything else is a StoreConflict and nothing is written."""
    from botocore.exceptions import BotoCoreError, ClientError

    where = store.where(model, version)
    try:
        present = store.read(model, version)
        foreign = sorted(name for name, body in present.items() if files.get(name) != body)
        if foreign:
            raise OccupiedKey(
                f"{where} already holds a different model ({', '.join(foreign[:3])} differ or are not this "
                f"model's) that no registered version names: a run that stopped between its upload and its "
                f"registration, or a hand upload, left it; nothing was overwritten"
            )
        missing = {name: body for name, body in files.items() if name not in present}
        if missing:
            store.add(model, version, missing)
    except (BotoCoreError, ClientError) as err:
        if isinstance(err, ClientError) and err.response.get("Error", {}).get("Code") == "PreconditionFailed":
            raise StoreConflict(
                f"{where}: another writer put a file there meanwhile; nothing was overwritten"
            ) from None
        raise StoreUnavailable(f"model store {where}: {err}") from None
    return bool(missing)
