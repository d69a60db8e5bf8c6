"""What one render is asked to do: which app, which source spec, with which limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tether.capabilities import Capabilities
from tether.model.source import ApplicationSource
from tether.render.limits import RenderLimits
from tether.render.paths import Checkout


@dataclass(frozen=True)
class RenderRequest:
    """``namespace`` is the destination namespace (Helm's ``--namespace`` unless ``helm.namespace``).

    ``refs`` are the checkouts of the ref sources this source's ``$<ref>/…`` value files read,
    by ref name. ``field_prefix`` starts the field names in errors: ``""`` for a single ``spec.source``,
    ``spec.sources[1].`` for one of several, so a message says which source is meant.
    """

    app: str
    source: ApplicationSource
    namespace: str | None = None
    limits: RenderLimits = RenderLimits()
    refs: Mapping[str, Checkout] = field(default_factory=dict)
    field_prefix: str = ""
    capabilities: Capabilities | None = None  # the destination's; None renders with the tools' defaults
