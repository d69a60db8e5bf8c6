"""Small helpers for render tests: write a file tree, render it, compare object sets."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tether.capabilities import Capabilities, CapabilitiesSource
from tether.model.source import ApplicationSource
from tether.render import Rendered, render

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "argocd-example-apps"


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path -> text) under ``root``; returns ``root``."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def symlink(root: Path, rel: str, target: str | os.PathLike[str]) -> None:
    link = root / rel
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)


async def render_local(
    root: Path, path: str = "", app: str = "app", namespace: str | None = None, **spec: Any
) -> Rendered:
    source = ApplicationSource.model_validate({"repoURL": str(root), "path": path, **spec})
    return await render(app, source, root, namespace=namespace)


def given(capabilities: Capabilities) -> CapabilitiesSource:
    """A capabilities source that answers ``capabilities``, as a destination would."""

    async def source() -> Capabilities:
        return capabilities

    return source


def object_set(objects: list[dict[str, Any]]) -> list[str]:
    """Objects as a sorted list of canonical JSON: equal lists mean equal object sets."""
    return sorted(json.dumps(o, sort_keys=True) for o in objects)


def names(objects: list[dict[str, Any]]) -> list[str]:
    return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objects)


def manifest(kind: str, name: str, **extra: Any) -> str:
    api = "apps/v1" if kind == "Deployment" else "v1"
    body = {"apiVersion": api, "kind": kind, "metadata": {"name": name}, **extra}
    return json.dumps(body) + "\n"
