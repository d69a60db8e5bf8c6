"""Which renderer an app needs, decided the way Argo CD decides it.

An explicit section in the spec (``helm``, ``kustomize``, ``directory``) wins. Otherwise
only the files directly in the app directory count, visited in name order with the last
match winning (Argo CD's discovery walk): a name ending in ``Chart.yaml`` means Helm, a
``kustomization.yaml`` / ``kustomization.yml`` / ``Kustomization`` means Kustomize (so
Kustomize wins when both are present); anything else, including ``*.jsonnet`` files, is a
directory app — Argo CD evaluates Jsonnet as part of directory apps.
"""

from __future__ import annotations

import os
from pathlib import Path

from tether.model.source import ApplicationSource, SourceType
from tether.render.errors import render_error

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def detect_type(app_dir: Path) -> SourceType:
    """The source type the files directly in ``app_dir`` call for."""
    found = SourceType.DIRECTORY
    for entry in sorted(os.scandir(app_dir), key=lambda e: e.name):
        if entry.is_dir(follow_symlinks=False):
            continue
        if entry.name.endswith("Chart.yaml"):
            found = SourceType.HELM
        if entry.name in KUSTOMIZATION_NAMES:
            found = SourceType.KUSTOMIZE
    return found


def source_type(app: str, source: ApplicationSource, app_dir: Path) -> SourceType:
    """The explicit type of the spec if any, else the detected one; unsupported sources are refused."""
    problem = source.unsupported()
    if problem is not None:
        raise render_error(app, f"source.{problem[0]}", problem[1])
    try:
        explicit = source.explicit_type()
    except ValueError as exc:
        raise render_error(app, "source", str(exc)) from None
    if explicit is SourceType.PLUGIN:
        raise render_error(app, "source.plugin", "config management plugins are not supported")
    return explicit or detect_type(app_dir)
