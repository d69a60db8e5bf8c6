"""Directory apps: plain YAML/JSON manifests plus Jsonnet files, as Argo CD reads them.

Files named ``*.yaml``, ``*.yml``, ``*.json`` or ``*.jsonnet`` directly in the app
directory (or below it with ``recurse``) are read in name order. ``exclude`` and
``include`` globs match the path relative to the app directory. A symlinked manifest
must point inside the repository (checked before the globs, as Argo CD does); symlinks to
missing or non-regular files are skipped. A manifest symlink that loops (``a.yaml ->
b.yaml -> a.yaml``) is an error naming the file, and so, with ``recurse``, is a symlinked
directory that loops or leads back to a directory holding it: a loop is a mistake or an
attack, never a file to skip quietly. Symlinked directories are not followed and
``.git`` directories are never entered.

Which files count follows Argo CD's ``findManifests``:

* a file containing ``+argocd:skip-file-rendering`` anywhere (a YAML or Jsonnet comment)
  is skipped, after the include/exclude globs;
* a YAML file that is not a Kubernetes object (a values file, CI config: its first
  document has no apiVersion/kind, or it is not YAML at all) is skipped with a warning,
  unless it looks like a manifest (it holds ``apiVersion:``, ``kind:`` and ``metadata:``)
  or an earlier document of it was an object: then it is an error naming the file;
* a JSON file must hold one Kubernetes object; anything else is an error naming it.

The bounded loader's limits (alias bombs, depth, size, non-JSON tags) and its checks of an
object's fields are errors whatever the file looks like.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import structlog

from tether.model.source import DirectorySource
from tether.render.errors import render_error
from tether.render.glob import GlobSyntaxError, glob_match
from tether.render.jsonnet import evaluate_jsonnet
from tether.render.manifests import (
    ManifestError,
    Manifests,
    YamlSyntaxError,
    flatten_checked,
    is_kube_object,
    load_yaml_documents,
    objects_from_json,
)
from tether.render.overrides import override_files
from tether.render.paths import Checkout, is_symlink_loop
from tether.render.request import RenderRequest

log = structlog.get_logger(__name__)

MANIFEST_NAME = re.compile(r"^.*\.(yaml|yml|json|jsonnet)$")
SKIP_MARKER = "+argocd:skip-file-rendering"
_MANIFEST_WORDS = ("apiVersion:", "kind:", "metadata:")


async def render_directory(checkout: Checkout, app_dir: Path, request: RenderRequest) -> Manifests:
    """All objects of a directory app, in file order; any bad file fails the whole render."""
    spec = request.source.directory or DirectorySource()
    files = list(manifest_files(checkout, app_dir, spec))
    jsonnet_files = [real for _, real in files if real.name.endswith(".jsonnet")]
    evaluated: dict[Path, list[dict[str, Any]]] = {}
    if jsonnet_files:
        evaluated = await evaluate_jsonnet(checkout, app_dir, jsonnet_files, spec.jsonnet, request)
    objects: list[dict[str, Any]] = []
    origins: list[str] = []
    for relative, real in files:
        shown = _shown(checkout, app_dir, relative)
        if real.name.endswith(".jsonnet"):
            found = evaluated[real]
        else:
            text = checkout.read_text(real, what=f"manifest {shown}")
            try:
                found = objects_from_json(text) if real.name.endswith(".json") else _yaml_objects(text)
            except _NotManifest as exc:
                log.warning(
                    "skipped a file that is not a Kubernetes manifest", app=request.app, file=shown, why=str(exc)
                )
                continue
            except ManifestError as exc:
                raise render_error(request.app, f"manifest {shown}", str(exc)) from None
        objects.extend(found)
        origins.extend([shown] * len(found))
    return Manifests(objects, tuple(origins))


class _NotManifest(Exception):
    """A YAML file Argo CD would skip: not an object, and nothing in it looks like one."""


def _yaml_objects(text: str) -> list[dict[str, Any]]:
    """The objects of a YAML manifest file; ``_NotManifest`` when the file is something else."""
    objects: list[dict[str, Any]] = []
    try:
        for number, document in enumerate(load_yaml_documents(text), start=1):
            if document is None:
                continue
            if not is_kube_object(document):
                raise YamlSyntaxError(
                    f"document {number} is not a Kubernetes object (a mapping with apiVersion and kind)"
                )
            objects.extend(flatten_checked([document], where=f"document {number}"))
    except YamlSyntaxError as exc:
        if objects or all(word in text for word in _MANIFEST_WORDS):
            raise  # a manifest gone wrong, not some other YAML: Argo CD fails here too
        raise _NotManifest(str(exc)) from None
    return objects


def manifest_files(checkout: Checkout, app_dir: Path, spec: DirectorySource) -> Iterator[tuple[str, Path]]:
    """(path relative to the app dir, real path) of every manifest file the app includes.

    The app's parameter override files (``.argocd-source.yaml`` …) are part of its spec, not manifests.
    """
    overrides = override_files(checkout.app)
    for relative, entry in _walk(app_dir, spec.recurse):
        if relative in overrides:
            continue
        looped = (spec.recurse or MANIFEST_NAME.match(entry.name)) and entry.is_symlink() and is_symlink_loop(entry)
        if looped:
            raise render_error(checkout.app, f"manifest {_shown(checkout, app_dir, relative)}", "is a symlink loop")
        if not MANIFEST_NAME.match(entry.name):
            continue
        real = entry
        if entry.is_symlink():
            real = Path(os.path.realpath(entry))
            if not checkout.contains(real):
                raise render_error(
                    checkout.app,
                    f"manifest {_shown(checkout, app_dir, relative)}",
                    "is a symlink that points outside the repository",
                )
            if not real.is_file():
                continue  # missing or not a regular file: skipped, as Argo CD does
            checkout.record(real)
        elif not entry.is_file():
            continue
        if spec.exclude and _matches(checkout, "directory.exclude", spec.exclude, relative):
            continue
        if spec.include and not _matches(checkout, "directory.include", spec.include, relative):
            continue
        if _has_skip_marker(checkout, real, _shown(checkout, app_dir, relative)):
            continue
        yield relative, real


def _has_skip_marker(checkout: Checkout, path: Path, shown: str) -> bool:
    """Whether the file opts out of rendering with Argo CD's ``+argocd:skip-file-rendering`` marker."""
    return SKIP_MARKER in checkout.read_text(path, what=f"manifest {shown}")


def _walk(app_dir: Path, recurse: bool) -> Iterator[tuple[str, Path]]:
    """Non-directory entries in lexical order, descending (depth first) only with ``recurse``."""

    def visit(directory: Path, prefix: PurePosixPath | None) -> Iterator[tuple[str, Path]]:
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            relative = prefix / entry.name if prefix else PurePosixPath(entry.name)
            if entry.is_dir(follow_symlinks=False):
                if recurse and entry.name != ".git":
                    yield from visit(Path(entry.path), relative)
                continue
            yield str(relative), Path(entry.path)

    yield from visit(app_dir, None)


def _matches(checkout: Checkout, field: str, pattern: str, relative: str) -> bool:
    try:
        return glob_match(pattern, relative)
    except GlobSyntaxError as exc:
        raise render_error(checkout.app, f"source.{field}", str(exc)) from None


def _shown(checkout: Checkout, app_dir: Path, relative: str) -> str:
    return checkout.relative(app_dir / relative)
