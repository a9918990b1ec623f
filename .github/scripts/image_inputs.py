"""Which changes reach the mlplat-monitor image, whether its tag moved with them, and whether the registry
already holds that tag, for monitor-image.yml.

A published tag is never overwritten (the registry refuses it too when its tags are immutable: ECR's
IMMUTABLE setting), so a change to what the image copies must come with a new tag
(`IMAGES["mlplat-monitor"]` in infra/versions.py), or the cluster keeps running the old content. Pull
requests are held to that before they merge (`require-new-tag`); on main, a tag already published is
left alone when none of the image's inputs changed since the previous push (`changed`), and only then.

What the image's inputs are is read from the Dockerfile (its `COPY` sources, the Dockerfile itself and
the ignore files that decide what the build context holds), their one owner. One kind of change is not
an input: a promotion's edit of an overlay that exists before and after it (`mlplat promote` and
`rollback` write only PROMOTION_FILES there: they rewrite model-version.yaml and kustomization.yaml, a
canary start adds canary.yaml and canary-route.yaml, its completion or abort deletes them). The image
renders an overlay only for the namespace, InferenceService name and team the drift job labels its
scores with, which a promotion does not change; without this every promotion pull request would have to
publish a new image. An overlay added or removed (its kustomization.yaml) is an input: the drift job of
that environment renders it.

Standard library only: the workflow runs it with the runner's Python, before any virtualenv.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

DOCKERFILE = "images/monitor/Dockerfile"
VERSIONS = "infra/versions.py"
IMAGE_KEY = "mlplat-monitor"
# What decides the build context's content besides the files: BuildKit reads the ignore file named after
# the Dockerfile, beside it, and only when that is absent the one at the context's root ("A
# Dockerfile-specific ignore-file takes precedence over the .dockerignore file at the root of the build
# context if both exist": https://docs.docker.com/build/concepts/context/#filename-and-location). Both
# count: adding, editing or removing either can change what a COPY takes.
IGNORE_FILES = (f"{DOCKERFILE}.dockerignore", ".dockerignore")
# mlplat/promote.py WRITABLE, the only files promote and rollback write (a test holds the two equal).
PROMOTION_FILES = frozenset({"model-version.yaml", "canary.yaml", "canary-route.yaml", "kustomization.yaml"})
_OVERLAY_FILE = re.compile(r"(?P<overlay>apps/[^/]+/overlays/[^/]+)/(?P<name>[^/]+)")
KUSTOMIZATION = "kustomization.yaml"
# containerd's resolver answers a 404 for the manifest with "<ref>: not found" (errdefs.ErrNotFound;
# containerd core/remotes/docker/resolver.go `Resolve`), which `docker buildx imagetools inspect` prints
# as its error (docker/buildx util/imagetools/inspect.go returns the resolver's error as it is). Refused
# credentials, a network failure or any other status are other messages: those stop the job instead of
# passing for "not published". `docker manifest inspect` cannot tell them apart: it reports a refused
# login as "no such manifest" too (docker/cli cli/registry/client/fetcher.go `continueOnError`).
_NOT_FOUND = re.compile(r": not found\s*$")


class InputError(Exception):
    """A revision, the Dockerfile or infra/versions.py cannot be read; the message says which."""


def _git(*args: str) -> str:
    result = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise InputError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def instructions(dockerfile: str) -> list[str]:
    """The Dockerfile's instructions, each on one line: a line ending in `\\` (the default escape
    character) continues on the next, so `COPY a \\` + `b /dest/` is one COPY of a and b, and a comment
    line inside such an instruction is dropped (https://docs.docker.com/reference/dockerfile/#escape)."""
    joined, pending = [], ""
    for line in dockerfile.splitlines():
        if pending and line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
        else:
            joined.append(pending + line)
            pending = ""
    return [*joined, pending] if pending else joined


def sources(dockerfile: str) -> list[str]:
    """The Dockerfile, the ignore files, and what its `COPY` instructions take from the build context
    (not from another stage)."""
    found = [DOCKERFILE, *IGNORE_FILES]
    for instruction in instructions(dockerfile):
        words = instruction.split()
        if words[:1] and words[0].upper() == "COPY" and not any(w.startswith("--from=") for w in words):
            found += [w for w in words[1:-1] if not w.startswith("--")]
    return found


def is_input(path: str, copied: Sequence[str]) -> bool:
    return any(path == source or path.startswith(source.rstrip("/") + "/") for source in copied)


def overlays(revision: str) -> set[str]:
    """The overlay folders (apps/<app>/overlays/<env>) that hold their kustomization at a revision."""
    listed = _git("ls-tree", "-r", "--name-only", revision, "--", "apps").splitlines()
    return {m["overlay"] for m in map(_OVERLAY_FILE.fullmatch, listed) if m and m["name"] == KUSTOMIZATION}


def promotion_edit(path: str, kept: set[str]) -> bool:
    """A file a promotion writes (rewritten, added or deleted), in an overlay `kept` at both revisions."""
    match = _OVERLAY_FILE.fullmatch(path)
    return match is not None and match["name"] in PROMOTION_FILES and match["overlay"] in kept


def changed_inputs(base: str, head: str = "HEAD") -> list[str]:
    """The image inputs that differ between two revisions (a promotion's overlay edits left out)."""
    copied = sources(_git("show", f"{head}:{DOCKERFILE}"))
    kept = overlays(base) & overlays(head)
    paths = _git("diff", "--name-only", "--no-renames", base, head).splitlines()
    return [path for path in paths if is_input(path, copied) and not promotion_edit(path, kept)]


def image_at(revision: str) -> str:
    """IMAGES["mlplat-monitor"] as infra/versions.py gives it at a revision (standard library only)."""
    source = _git("show", f"{revision}:{VERSIONS}")
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "versions_at_revision.py"
        path.write_text(source, encoding="utf-8")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise InputError(f"{revision}:{VERSIONS}: cannot load it")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # any failure of that revision's file is reported, not raised
            raise InputError(f"{revision}:{VERSIONS}: cannot run it ({err})") from None
        finally:
            sys.modules.pop(spec.name, None)
    images = getattr(module, "IMAGES", None)
    if not isinstance(images, dict) or not isinstance(images.get(IMAGE_KEY), str):
        raise InputError(f"{revision}:{VERSIONS}: no IMAGES[{IMAGE_KEY!r}] string")
    return str(images[IMAGE_KEY])


def require_new_tag(base_ref: str) -> int:
    """A pull request that changes the image's inputs must name a tag its base does not."""
    base = _git("merge-base", base_ref, "HEAD").strip()
    changed = changed_inputs(base)
    image = image_at("HEAD")
    if changed and image == image_at(base):
        listed = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
        print(
            f"::error::this pull request changes what the mlplat-monitor image copies ({listed}) but keeps "
            f"its tag {image}: a published tag is never overwritten, so the change would never reach the "
            f'cluster. Bump IMAGES["{IMAGE_KEY}"] in {VERSIONS} and newTag in '
            "apps/components/inference-logging/kustomization.yaml."
        )
        return 1
    print(f"{image}: " + ("a new tag for the changed inputs" if changed else "no image input changed"))
    return 0


def changed_since(before: str) -> int:
    """The inputs changed since the previous push to main, one per line; a revision this history does not
    hold (a first push, a rewritten branch) counts as every input changed."""
    known = subprocess.run(
        ["git", "cat-file", "-e", f"{before}^{{commit}}"], capture_output=True, check=False
    )
    if known.returncode != 0:
        print(f"(every input: {before} is not a commit of this history)")
        return 0
    print("\n".join(changed_inputs(before)))
    return 0


def registry_state(image: str) -> int:
    """`published` or `absent`, from the registry itself; anything else it answers stops the job."""
    result = subprocess.run(
        ["docker", "buildx", "imagetools", "inspect", image], capture_output=True, text=True, check=False
    )
    if result.returncode == 0:
        print("published")
        return 0
    if _NOT_FOUND.search(result.stderr.strip()):
        print("absent")
        return 0
    print(f"::error::cannot tell whether {image} is published: {result.stderr.strip()}", file=sys.stderr)
    return 1


def main(argv: Sequence[str]) -> int:
    """Usage: image_inputs.py require-new-tag BASE_REF | changed BEFORE | registry-state IMAGE"""
    commands = {
        "require-new-tag": require_new_tag,
        "changed": changed_since,
        "registry-state": registry_state,
    }
    if len(argv) != 3 or argv[1] not in commands:
        print(main.__doc__, file=sys.stderr)
        return 2
    try:
        return commands[argv[1]](argv[2])
    except InputError as err:
        print(f"::error::{err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
