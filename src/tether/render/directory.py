"""Directory apps: plain YAML/JSON manifests plus Jsonnet files, as Argo CD reads them.

Files named ``*.yaml``, ``*.yml``, ``*.json`` or ``*.jsonnet`` directly in the app
directory (or below it with ``recurse``) are read in name order. ``exclude`` and
``include`` globs match the path relative to the app directory. A symlinked manifest
must point inside the repository (checked before the globs, as Argo CD does); symlinks to
missing or non-regular files are skipped. A manifest symlink that loops (``a.yaml ->
b.yaml -> a.yaml``) is an error naming the file, and so, with ``recurse``, is a symlinked
directory that loops or leads back to a directory holding it: a loop is a mistake or an
attack, never a file to skip quietly. Symlinked directories are not followed and
``.git`` directories are never entered. A YAML/JSON file that is not a set of Kubernetes
objects is an error naming the file: exclude it if it is not meant to be applied.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from tether.model.source import DirectorySource
from tether.render.errors import render_error
from tether.render.glob import GlobSyntaxError, glob_match
from tether.render.jsonnet import evaluate_jsonnet
from tether.render.manifests import ManifestError, objects_from_json, objects_from_yaml
from tether.render.paths import Checkout, is_symlink_loop
from tether.render.request import RenderRequest

MANIFEST_NAME = re.compile(r"^.*\.(yaml|yml|json|jsonnet)$")


async def render_directory(checkout: Checkout, app_dir: Path, request: RenderRequest) -> list[dict[str, Any]]:
    """All objects of a directory app, in file order; any bad file fails the whole render."""
    spec = request.source.directory or DirectorySource()
    files = list(manifest_files(checkout, app_dir, spec))
    jsonnet_files = [real for _, real in files if real.name.endswith(".jsonnet")]
    evaluated: dict[Path, list[dict[str, Any]]] = {}
    if jsonnet_files:
        evaluated = await evaluate_jsonnet(checkout, app_dir, jsonnet_files, spec.jsonnet, request)
    objects: list[dict[str, Any]] = []
    for relative, real in files:
        if real.name.endswith(".jsonnet"):
            objects.extend(evaluated[real])
            continue
        text = checkout.read_text(real, what=f"manifest {_shown(checkout, app_dir, relative)}")
        try:
            objects.extend(objects_from_json(text) if real.name.endswith(".json") else objects_from_yaml(text))
        except ManifestError as exc:
            raise render_error(request.app, f"manifest {_shown(checkout, app_dir, relative)}", str(exc)) from None
    return objects


def manifest_files(checkout: Checkout, app_dir: Path, spec: DirectorySource) -> Iterator[tuple[str, Path]]:
    """(path relative to the app dir, real path) of every manifest file the app includes."""
    for relative, entry in _walk(app_dir, spec.recurse):
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
        yield relative, real


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
