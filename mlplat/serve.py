"""`mlplat serve APP`: serve exactly the artifact an environment's manifest names, off the cluster.

The InferenceService is rendered for the environment, its `storageUri` is resolved through the model
store mapping to a local folder, and that MLflow model is loaded with `mlflow.pyfunc` inside a
`kserve.Model` and served by the KServe model server on loopback. It speaks the V2 Open Inference
Protocol REST API (`POST /v2/models/<name>/infer`, per-column inputs as the pandas codec of
`kserve-mlserver`) and V1 (`POST /v1/models/<name>:predict`). GPU apps are refused: there is no GPU
here and the Hugging Face runtime needs one.

`--variant canary` serves the environment's canary (`spec.canary`, written by `mlplat promote --canary`)
instead of the stable predictor: its own registered artifact, under the same model name, as KServe runs
it beside the stable Deployment. Two `mlplat serve` processes on two ports put both side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from infra import contract
from mlplat import checkout, loopback, model_store
from mlplat.promote import REPO, Refused, UsageError, check_app, check_env, render_inference_service

VARIANTS = ("stable", "canary")


class NotServable(Exception):
    """The app cannot be served here (GPU, unsupported format, artifact missing); the message says why."""


def servable_model(doc: dict[str, Any]) -> dict[str, Any]:
    """The predictor's model spec if it is a CPU MLflow model; otherwise say why not."""
    model = (doc.get("spec") or {}).get("predictor", {}).get("model") or {}
    resources = model.get("resources") or {}
    wants_gpu = any("nvidia.com/gpu" in (resources.get(k) or {}) for k in ("requests", "limits"))
    name = doc["metadata"]["name"]
    if wants_gpu:
        raise NotServable(
            f"{name} requests nvidia.com/gpu and this machine has no GPU; it runs on the cluster"
        )
    fmt = (model.get("modelFormat") or {}).get("name")
    if fmt != "mlflow":
        raise NotServable(f"{name} has model format {fmt!r}; `mlplat serve` serves MLflow models only")
    return dict(model)


def variant_model(doc: dict[str, Any], variant: str, where: str) -> dict[str, Any]:
    """The model spec the variant's predictor runs. A canary is its own predictor entry merged over the
    stable one, as KServe v0.20.0 builds it (pkg/controller/v1beta1/inferenceservice/components/
    predictor.go buildCanaryPredictor: a copy of the stable predictor, the canary's fields on top), so
    the stable predictor's GPU request and format hold for the canary too."""
    stable = servable_model(doc)
    if variant == "stable":
        return stable
    canaries = (doc.get("spec") or {}).get("canary") or []
    if not canaries:
        raise UsageError(
            f"{where} has no canary (spec.canary); `mlplat promote --to prod --canary PERCENT` writes one"
        )
    if not isinstance(canaries, list) or len(canaries) > 1:
        raise NotServable(f"{where}: spec.canary is not a list of one canary; `mlplat serve` serves one")
    predictor = canaries[0].get("predictor") if isinstance(canaries[0], dict) else None
    canary_model = predictor.get("model") if isinstance(predictor, dict) else None
    if not isinstance(canary_model, dict):
        raise NotServable(f"{where}: spec.canary[0].predictor.model is missing or not a mapping")
    merged = {**doc, "spec": {"predictor": {"model": {**stable, **canary_model}}}}
    return servable_model(merged)


def resolve_artifact(storage_uri: str, store_root: Path) -> Path:
    try:
        path = model_store.to_local(storage_uri, store_root)
    except model_store.ModelStoreError as err:
        raise NotServable(str(err)) from None
    if not (path / "MLmodel").is_file():
        raise NotServable(f"{storage_uri} maps to {path}, which holds no MLflow model (run `mlplat demo`)")
    return path


def build_model(name: str, path: Path) -> Any:
    """A loaded `kserve.Model` around the MLflow pyfunc at `path`."""
    # KServe parses sys.argv when imported; keep our own arguments away from its parser.
    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        import kserve
        from kserve.utils.utils import get_predict_response
    finally:
        sys.argv = argv
    import mlflow.pyfunc
    import pandas as pd

    class MlflowPyfuncModel(kserve.Model):  # type: ignore[misc]
        """The pyfunc flavour, as the `kserve-mlserver` runtime loads it on the cluster."""

        def __init__(self) -> None:
            super().__init__(name)
            self._pyfunc: Any = None
            self._columns: list[str] | None = None

        def load(self) -> bool:
            self._pyfunc = mlflow.pyfunc.load_model(str(path))
            schema = self._pyfunc.metadata.get_input_schema()
            self._columns = schema.input_names() if schema is not None else None
            self.ready = True
            return True

        def _frame(self, payload: Any) -> pd.DataFrame:
            if isinstance(payload, kserve.InferRequest):
                return payload.as_dataframe()
            if isinstance(payload, bytes | str):  # V1 bodies sent without a JSON content type
                payload = json.loads(payload)
            instances = payload.get("instances", payload.get("inputs"))
            rows_are_lists = instances and not isinstance(instances[0], dict)
            return pd.DataFrame(instances, columns=self._columns if rows_are_lists else None)

        async def predict(self, payload: Any, headers: Any = None, response_headers: Any = None) -> Any:
            result = self._pyfunc.predict(self._frame(payload))
            return get_predict_response(payload, result, self.name)

    model = MlflowPyfuncModel()
    model.load()
    return model


def serve(
    app: str, env: str, port: int, store_root: Path, repo_root: Path = REPO, variant: str = "stable"
) -> None:
    """Render, resolve, load, then block serving on 127.0.0.1:`port` until SIGINT/SIGTERM."""
    rendered = render_inference_service(repo_root, app, env)
    spec = variant_model(rendered.doc, variant, rendered.target)
    path = resolve_artifact(spec["storageUri"], store_root)
    # The canary keeps the InferenceService's name: KServe builds it from a copy of the whole
    # InferenceService (predictor.go reconcileCanaryDeployments, isvc.DeepCopy()), so clients call the
    # same /v2/models/<name>/infer on either side.
    name = rendered.doc["metadata"]["name"]
    model = build_model(name, path)
    print(
        f"serving {app} ({env}, {variant}) {spec['storageUri']} from {path} "
        f"on http://127.0.0.1:{port}/v2/models/{name}"
    )
    import kserve

    # gRPC off: nothing here speaks it, and its fixed default port would collide between servers.
    kserve.ModelServer(http_port=port, enable_grpc=False, workers=1).start([model])


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve a CPU app's model with the KServe model server locally"
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", help="app folder under apps/")
    parser.add_argument(
        "--env", default="dev", help="environment whose manifest names the model (default dev)"
    )
    parser.add_argument(
        "--port", type=loopback.tcp_port, default=8080, help="HTTP port on 127.0.0.1 (default 8080)"
    )
    parser.add_argument(
        "--variant",
        choices=VARIANTS,
        default="stable",
        help="the stable predictor (default) or the environment's canary (spec.canary)",
    )
    parser.add_argument(
        "--model-store",
        type=Path,
        default=None,
        help=f"local folder of {contract.MODEL_STORE_URI} (default ${model_store.ROOT_ENV}, else build/demo/model-store)",
    )
    checkout.add_option(parser, "--repo-root", argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    root = checkout.root(args)
    try:
        check_env(args.env)
        check_app(root, args.app)
        serve(
            args.app, args.env, args.port, model_store.local_store(args.model_store, root), root, args.variant
        )
    except UsageError as err:
        print(f"mlplat serve: {err}", file=sys.stderr)
        return 2
    except (Refused, NotServable) as err:
        print(f"mlplat serve: refused: {err}", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    """`python -m mlplat.serve`: what the demo and the tests start, independent of the CLI's command list.
    Options only as spelled out, as under `mlplat serve` (entrypoint.without_abbreviations)."""
    parser = argparse.ArgumentParser(prog="mlplat serve", description=__doc__, allow_abbrev=False)
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
