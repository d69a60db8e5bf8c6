"""One render: a checked-out directory plus a source spec in, Kubernetes objects out.

The output is all objects or an error — never part of them. It is the *placeholder
form*: secrets are resolved later, in memory, by ``tether.secrets``. Alongside the
objects comes the list of repository paths the render read, which the render cache turns
into tree ids to decide later commits without checking them out.

A source of a multi-source app may read Helm value files from other sources' repositories
(``$<ref>/…``): their checkouts come in ``refs`` and what was read there joins the inputs as
``$<ref>//<path>``, so the cache can ask that repository for the path's tree id.

Argo CD's parameter override files in the app path (``.argocd-source.yaml``,
``.argocd-source-<app>.yaml``) are merged into the spec first (``tether.render.overrides``).
With a ``BuildEnv``, Argo CD's build variables (``$ARGOCD_APP_NAME`` …) are then expanded in
the spec (``tether.render.buildenv``). With ``Capabilities``, Helm (and kustomize's Helm
inflation) see the destination cluster's version and API versions, as in Argo CD.

Inputs that are not repository content are *facts*, named ``//<name>``: each build variable
the spec used, and ``//capabilities`` for a Helm or kustomize render that was given them.
The cache keys a fact on its value, so a render that used ``$ARGOCD_APP_REVISION`` is redone
at every commit, and a chart is rendered again when its cluster serves new APIs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.capabilities import CapabilitiesSource
from tether.model.source import ApplicationSource, SourceType
from tether.render.buildenv import BuildEnv, expand_source
from tether.render.detect import source_type
from tether.render.directory import render_directory
from tether.render.errors import render_error
from tether.render.helm import render_helm
from tether.render.kustomize import render_kustomize
from tether.render.limits import RenderLimits
from tether.render.overrides import merge_overrides
from tether.render.paths import Checkout
from tether.render.request import RenderRequest

_RENDERERS = {
    SourceType.DIRECTORY: render_directory,
    SourceType.HELM: render_helm,
    SourceType.KUSTOMIZE: render_kustomize,
}


_CAPABLE = (SourceType.HELM, SourceType.KUSTOMIZE)  # the renders that run Helm, and so ask for capabilities
CAPABILITIES_FACT = "capabilities"
"""The fact of the destination's ``Capabilities``, keyed on their digest."""


@dataclass(frozen=True)
class Rendered:
    """Objects (placeholder form), the type used, the repository paths the output depends on, and the
    repository file each object came from ("" where the tool does not say: ``tether.resource.Origins``)."""

    objects: list[dict[str, Any]]
    source_type: SourceType
    inputs: tuple[str, ...]
    files: tuple[str, ...] = ()


async def render(
    app: str,
    source: ApplicationSource,
    root: Path,
    *,
    namespace: str | None = None,
    limits: RenderLimits = RenderLimits(),
    refs: Mapping[str, Path] | None = None,
    field_prefix: str = "",
    build_env: BuildEnv | None = None,
    capabilities: CapabilitiesSource | None = None,
    submodules: Mapping[str, str] | None = None,
) -> Rendered:
    """Render ``source.path`` of the repository checked out at ``root`` for ``app``.

    ``refs`` maps ref names to the checked-out roots of those sources (``$<ref>/…`` value files);
    ``field_prefix`` (``spec.sources[1].``) starts field names in errors; ``build_env`` gives
    the build variables their values (without it they are left as written); ``capabilities``
    gives the destination cluster's to a Helm or kustomize render (without it, the tools' defaults);
    ``submodules`` (``GitCache.submodules``) are the checkout's git submodules, which are not fetched:
    a render that read one fails, naming it, instead of rendering without its files.
    """
    checkout = Checkout(app=app, root=root)
    ref_checkouts = {name: Checkout(app=app, root=ref_root) for name, ref_root in (refs or {}).items()}
    app_dir = checkout.app_dir(source.path)
    source = merge_overrides(checkout, app_dir, source)
    used: frozenset[str] = frozenset()
    if build_env is not None:
        source, used = expand_source(source, build_env)
    kind = source_type(app, source, app_dir)
    cluster = await capabilities() if capabilities is not None and kind in _CAPABLE else None
    request = RenderRequest(
        app=app,
        source=source,
        namespace=namespace,
        limits=limits,
        refs=ref_checkouts,
        field_prefix=field_prefix,
        capabilities=cluster,
    )
    manifests = await _RENDERERS[kind](checkout, app_dir, request)
    shallow = None  # a directory app without recurse reads only its own files, never a subdirectory's
    if kind is SourceType.DIRECTORY and not (source.directory and source.directory.recurse):
        shallow = checkout.relative(app_dir)
    own_inputs = checkout.input_paths()
    read = _submodule_read(own_inputs, submodules or {}, shallow)
    if read is not None:
        path, commit = read
        raise render_error(
            app,
            f"{field_prefix or 'spec.source.'}path",
            f"the render reads git submodule {path!r} (commit {commit[:12]}), and Tether does not fetch "
            "submodules: put its files in the repository itself",
        )
    inputs = own_inputs + tuple(
        ref_input(name, path) for name, ref in sorted(ref_checkouts.items()) for path in ref.input_paths()
    )
    if build_env is not None:
        inputs += tuple(fact_input(name) for name in sorted(used & build_env.variables().keys()))
    if cluster is not None:
        inputs += (fact_input(CAPABILITIES_FACT),)
    return Rendered(objects=manifests.objects, source_type=kind, inputs=inputs, files=manifests.files)


def _submodule_read(
    inputs: tuple[str, ...], submodules: Mapping[str, str], shallow: str | None
) -> tuple[str, str] | None:
    """(path, commit) of a submodule at, above or under a path the render read (under ``shallow``, which
    was read without its subdirectories, only at or above it), if there is one."""
    for read in inputs:
        whole = "" if read == "." else read
        for path, commit in submodules.items():
            if path == whole or whole.startswith(path + "/"):
                return path, commit
            if read != shallow and (not whole or path.startswith(whole + "/")):
                return path, commit
    return None


def ref_input(ref: str, path: str) -> str:
    """The input name of ``path`` in ref source ``ref``'s repository: ``$values//envs/prod.yaml``.

    The double slash keeps it apart from the source's own paths: those are normalised
    (``app/x``, ``.``) and never hold ``//``, even in a directory that happens to be named ``$values``.
    """
    return f"${ref}//{path}"


def fact_input(name: str) -> str:
    """The input name of a fact (``//ARGOCD_APP_REVISION``, ``//capabilities``); no repository path starts with ``//``."""
    return f"//{name}"


def split_fact_input(name: str) -> str | None:
    """The fact an input name stands for, or None for a repository path."""
    return name[2:] if name.startswith("//") else None


def split_ref_input(name: str) -> tuple[str | None, str]:
    """(ref, path) of an input name; ``(None, name)`` for a path in the source's own repository."""
    head, separator, path = name.partition("//")
    if separator and head.startswith("$") and "/" not in head:
        return head[1:], path
    return None, name
