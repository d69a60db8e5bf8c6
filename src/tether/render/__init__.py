"""Manifests from a checked-out path: directory (YAML, JSON, Jsonnet), Kustomize, Helm.

``render`` produces the placeholder form of an app's objects and the repository paths
they depend on; ``RenderCache`` keeps those results keyed by what the output depends on
so a commit that leaves an app's inputs alone does not render it again.
"""

from tether.render.engine import Rendered, render
from tether.render.errors import RenderError
from tether.render.limits import RenderLimits

__all__ = ["RenderError", "RenderLimits", "Rendered", "render"]
