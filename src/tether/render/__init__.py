"""Manifests from a checked-out path: directory (YAML, JSON, Jsonnet), Kustomize, Helm.

``render`` produces the placeholder form of an app's objects and the repository paths
they depend on; ``RenderCache`` keeps those results keyed by what the output depends on
so a commit that leaves an app's inputs alone does not render it again.
"""

# After the names above: the cache module imports ``Rendered`` from the engine.
from tether.render.cache import CachedRender, CacheScope, RenderCache, RenderStats
from tether.render.engine import Rendered, render
from tether.render.errors import RenderError
from tether.render.limits import RenderLimits

__all__ = [
    "CacheScope",
    "CachedRender",
    "RenderCache",
    "RenderError",
    "RenderLimits",
    "RenderStats",
    "Rendered",
    "render",
]
