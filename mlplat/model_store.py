"""The model store: where a registered model version's bytes live, and how the demo finds them locally.

On the platform the store is the MinIO bucket `apps.model_store_uri` (`s3://mlplat-models`), and
KServe's storage initializer downloads `s3://mlplat-models/<model>/<N>` into the predictor pod. Off
the cluster (demo, tests, `mlplat serve`) the same URIs map onto a local folder named by
`MLPLAT_MODEL_STORE_ROOT`, so the registry, the manifests and the bytes all use the one canonical
`s3://` form and the registry gate compares like with like.
"""

from __future__ import annotations

import os
from pathlib import Path

from infra.contract import MODEL_STORE_URI, MODEL_VERSION_PATH, model_version_uri

ROOT_ENV = "MLPLAT_MODEL_STORE_ROOT"
# In the checkout acted on: where `mlplat demo` registers the examples.
DEMO_STORE = Path("build", "demo", "model-store")


class ModelStoreError(Exception):
    """A URI outside the store, or no local root configured; the message says which."""


# The canonical store URI of one registered model version (manifests and registry both use it).
version_uri = model_version_uri


def parse_uri(uri: str) -> tuple[str, str]:
    """`(model, version)` of a canonical version URI; anything else is an error."""
    prefix = MODEL_STORE_URI + "/"
    rest = uri.rstrip("/")[len(prefix) :] if uri.startswith(prefix) else None
    match = MODEL_VERSION_PATH.match(rest or "")
    if not match:
        raise ModelStoreError(f"{uri!r} is not a model version in the store (expected {prefix}<model>/<N>)")
    return match["model"], match["version"]


def local_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The local folder standing in for the bucket: the argument, else $MLPLAT_MODEL_STORE_ROOT."""
    value = root if root is not None else os.environ.get(ROOT_ENV)
    if not value:
        raise ModelStoreError(
            f"no local model store: set {ROOT_ENV} to the folder that holds {MODEL_STORE_URI}"
        )
    return Path(value).resolve()


def to_local(uri: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The local folder of a store URI (it may not exist yet)."""
    model, version = parse_uri(uri)
    return local_root(root) / model / version


def local_store(chosen: Path | None, checkout: Path) -> Path:
    """The store a local command (serve, monitor drift) reads: its `--model-store`, else
    $MLPLAT_MODEL_STORE_ROOT, else the demo's in the checkout acted on (not the installed one)."""
    return (chosen or Path(os.environ.get(ROOT_ENV) or checkout / DEMO_STORE)).resolve()
