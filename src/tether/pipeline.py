"""Desired state of one app: Source → Render (cached) → Secrets, as plain async steps.

Used by ``tether render`` now and by diff, sync and the controller later. The render
cache sits between Source and Secrets, so it only ever sees the placeholder form; the
resolved objects exist in memory only, in the returned ``DesiredState``.

A source whose ``repoURL`` is a local directory is rendered straight from the working
tree: no git, no revision and no render cache (the files may change under us at any
moment and there is no tree id to key on; local renders are for people at a terminal).
A local directory above ``limits.max_checkout_bytes`` is refused before anything is read,
as the git cache refuses a checkout above its limit. ``local_repository`` finds the
repository a local directory belongs to: inside a git work tree, the work tree's root is
the repository root (so ``../base`` of a kustomization resolves as it does from git).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.errors import TetherError
from tether.model.source import ApplicationSource, SourceType
from tether.render import Rendered, RenderLimits, render
from tether.render.cache import CacheScope, RenderCache
from tether.render.paths import check_local_size
from tether.render.versions import tool_versions
from tether.secrets import REDACTOR, Redactor, resolve_secrets
from tether.source import Credentials, GitCache, normalise_url
from tether.source.urls import is_ssh_url


@dataclass(frozen=True)
class DesiredState:
    """What an app should look like: objects with secrets resolved (memory only) and how they were made."""

    app: str
    revision: str | None  # commit id; None for a local directory
    source_type: SourceType
    objects: list[dict[str, Any]] = field(repr=False)
    secret_usage: Any
    inputs: tuple[str, ...]  # repository paths the render read
    cache_hit: bool


def is_local_source(repo_url: str) -> bool:
    """Whether ``repoURL`` names a directory on this machine rather than a git remote."""
    if "://" in repo_url or is_ssh_url(repo_url):
        return False
    return Path(repo_url).expanduser().is_dir()


def local_repository(directory: str | Path) -> tuple[Path, str]:
    """(repository root, POSIX path of ``directory`` in it) for a local directory.

    Inside a git work tree (a ``.git`` directory or file in it or above it) the root is the
    work tree's root, as a checkout of the same repository would have it; otherwise the
    directory is its own root (path ``""``).
    """
    start = Path(directory).expanduser().resolve()
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            inside = start.relative_to(candidate).as_posix()
            return candidate, "" if inside == "." else inside
    return start, ""


async def desired_state(
    app: str,
    source: ApplicationSource,
    *,
    git: GitCache | None,
    cache: RenderCache | None,
    secrets_backend: Any,
    redactor: Redactor = REDACTOR,
    namespace: str | None = None,
    credentials: Credentials | None = None,
    limits: RenderLimits = RenderLimits(),
) -> DesiredState:
    """Resolve the revision, render (from the cache when the app's inputs are unchanged), resolve secrets.

    ``secrets_backend`` None leaves placeholders unresolved (for showing what git says).
    """
    revision: str | None = None
    hit = False
    if is_local_source(source.repo_url):
        root = Path(source.repo_url).expanduser()
        await asyncio.to_thread(check_local_size, app, root, limits.max_checkout_bytes)
        rendered = await render(app, source, root, namespace=namespace, limits=limits)
    elif git is None:
        raise TetherError("source.repoURL is a git URL but no git cache was given").for_app(app)
    else:
        url = source.repo_url
        revision = await git.resolve(url, source.target_revision, credentials)
        commit = revision

        async def render_commit() -> Rendered:
            async with git.checkout(url, commit, credentials) as tree:
                return await render(app, source, tree, namespace=namespace, limits=limits)

        if cache is None:
            rendered = await render_commit()
        else:

            async def tree_ids(paths: Sequence[str]) -> Mapping[str, str | None]:
                ids = await asyncio.gather(*(git.tree_id(url, commit, p, credentials) for p in paths))
                return dict(zip(paths, ids, strict=True))

            scope = CacheScope.for_app(normalise_url(url), app, source, namespace, await tool_versions())
            outcome = await cache.get_or_render(scope, commit, tree_ids, render_commit)
            rendered = Rendered(outcome.objects, outcome.source_type, outcome.inputs)
            hit = outcome.hit
    objects, usage = rendered.objects, None
    if secrets_backend is not None:
        resolved = await resolve_secrets(objects, secrets_backend, app=app, redactor=redactor)
        objects, usage = resolved.objects, resolved.usage
    return DesiredState(
        app=app,
        revision=revision,
        source_type=rendered.source_type,
        objects=objects,
        secret_usage=usage,
        inputs=rendered.inputs,
        cache_hit=hit,
    )
