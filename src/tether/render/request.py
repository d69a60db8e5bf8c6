"""What one render is asked to do: which app, which source spec, with which limits."""

from __future__ import annotations

from dataclasses import dataclass

from tether.model.source import ApplicationSource
from tether.render.limits import RenderLimits


@dataclass(frozen=True)
class RenderRequest:
    """``namespace`` is the destination namespace (Helm's ``--namespace`` unless ``helm.namespace``)."""

    app: str
    source: ApplicationSource
    namespace: str | None = None
    limits: RenderLimits = RenderLimits()
