"""Argo CD's parameter override files: ``.argocd-source.yaml`` and ``.argocd-source-<app>.yaml``.

Kept in the app path, they hold part of a source spec (Helm parameters, kustomize images …);
Argo CD Image Updater's git write-back writes the second. Each is merged into the source as a
JSON merge patch (RFC 7386), the generic file first, and the result is the spec that renders.
``repoURL``, ``path``, ``targetRevision`` and ``chart`` keep the Application's values, as in
Argo CD; so do ``ref`` and ``name``, which say where the source sits among several. Keys match
fields whatever their case, as Go's ``encoding/json`` matches them (Image Updater writes
``forcestring``). The files are in the app path, so a change to them is a change of the
render's inputs like any other.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from tether.model.source import ApplicationSource
from tether.render.errors import render_error
from tether.render.manifests import ManifestError, load_yaml
from tether.render.paths import Checkout

_KEPT = ("repo_url", "path", "target_revision", "chart", "ref", "name")


def override_files(app: str) -> tuple[str, str]:
    """The file names Argo CD reads in the app path, in the order it merges them."""
    return ".argocd-source.yaml", f".argocd-source-{app}.yaml"


def merge_overrides(checkout: Checkout, app_dir: Path, source: ApplicationSource) -> ApplicationSource:
    """``source`` with the app path's override files merged in; unchanged when there are none."""
    merged: dict[str, Any] | None = None  # the spec as JSON, made only once a file is found
    result = source
    for name in override_files(checkout.app):
        where = checkout.relative(app_dir / name)
        path = checkout.resolve(app_dir, name, what=where, must_exist=False)
        if path is None or path.is_dir():
            continue
        try:
            patch = load_yaml(checkout.read_text(path, what=where))
        except ManifestError as exc:
            raise render_error(checkout.app, where, str(exc)) from None
        if patch is None:
            continue
        if not isinstance(patch, dict):
            raise render_error(checkout.app, where, "must be a YAML mapping (part of a source spec)")
        if merged is None:
            merged = source.model_dump(by_alias=True, exclude_defaults=True, mode="json")
        merged = merge_patch(merged, _fold_keys(ApplicationSource, patch))
        try:
            result = ApplicationSource.model_validate(merged)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise render_error(checkout.app, where, f"not a valid source spec once merged: {problems}") from None
    if result is source:
        return source
    return result.model_copy(update={field: getattr(source, field) for field in _KEPT})


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, ``null`` removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _fold_keys(model: type[BaseModel], data: Any) -> Any:
    """``data`` with each key renamed to the field alias it equals without regard to case, recursively."""
    if not isinstance(data, dict):
        return data
    fields = {(info.alias or name): info for name, info in model.model_fields.items()}
    by_lower = {alias.lower(): alias for alias in fields}
    out: dict[str, Any] = {}
    for key, value in data.items():
        alias = key if key in fields else by_lower.get(str(key).lower(), str(key))
        if alias in out or (alias != key and alias in data):
            alias = key  # an exact match wins, as in Go
        nested = _model_in(fields[alias].annotation) if alias in fields else None
        if nested is not None and isinstance(value, list):
            value = [_fold_keys(nested, item) for item in value]
        elif nested is not None:
            value = _fold_keys(nested, value)
        out[alias] = value
    return out


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds: itself, optional, or the items of a tuple or list of it."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, tuple, list):
        for argument in typing.get_args(annotation):
            found = _model_in(argument)
            if found is not None:
                return found
    return None
