"""One render: a checked-out directory plus a source spec in, Kubernetes objects out.

The output is all objects or an error — never part of them. It is the *placeholder
form*: secrets are resolved later, in memory, by ``tether.secrets``. Alongside the
objects comes the list of repository paths the render read, which the render cache turns
into tree ids to decide later commits without checking them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.model.source import ApplicationSource, SourceType
from tether.render.detect import source_type
from tether.render.directory import render_directory
from tether.render.helm import render_helm
from tether.render.kustomize import render_kustomize
from tether.render.limits import RenderLimits
from tether.render.paths import Checkout
from tether.render.request import RenderRequest

_RENDERERS = {
    SourceType.DIRECTORY: render_directory,
    SourceType.HELM: render_helm,
    SourceType.KUSTOMIZE: render_kustomize,
}


@dataclass(frozen=True)
class Rendered:
    """Objects (placeholder form), the type used, and the repository paths the output depends on."""

    objects: list[dict[str, Any]]
    source_type: SourceType
    inputs: tuple[str, ...]


async def render(
    app: str,
    source: ApplicationSource,
    root: Path,
    *,
    namespace: str | None = None,
    limits: RenderLimits = RenderLimits(),
) -> Rendered:
    """Render ``source.path`` of the repository checked out at ``root`` for ``app``."""
    checkout = Checkout(app=app, root=root)
    app_dir = checkout.app_dir(source.path)
    kind = source_type(app, source, app_dir)
    request = RenderRequest(app=app, source=source, namespace=namespace, limits=limits)
    objects = await _RENDERERS[kind](checkout, app_dir, request)
    return Rendered(objects=objects, source_type=kind, inputs=checkout.input_paths())
