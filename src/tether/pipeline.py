"""Desired state of one app: Source → Render (cached) → Secrets, as plain async steps.

Used by ``tether render`` now and by diff, sync and the controller later. The render
cache sits between Source and Secrets, so it only ever sees the placeholder form; the
resolved objects exist in memory only, in the returned ``DesiredState``.

An app has one source (``spec.source``, ``desired_state``) or several (``spec.sources``,
``desired_state_of_sources``), rendered the same way: every revision is resolved, each
source that renders goes through the render cache, the objects are merged in source order
and secrets are resolved once over the result. A source with ``ref`` and no ``path`` renders
nothing; it supplies Helm value files (``$<ref>/path``) to the others, and what a render
read from it (``$<ref>//path``) is a cache input like any path of the source's own repository.
Two sources producing the same object (group, kind, namespace, name): the later one is
kept, as in Argo CD, and a ``RepeatedResourceWarning`` line says so in ``warnings``.

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
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tether.capabilities import CapabilitiesSource
from tether.errors import Reason, TetherError
from tether.model.application import DEFAULT_PROJECT_NAME
from tether.model.source import ApplicationSource, SourceType, ref_errors
from tether.render import Rendered, RenderLimits, render
from tether.render.buildenv import BuildEnv
from tether.render.cache import CacheScope, RenderCache
from tether.render.engine import CAPABILITIES_FACT, split_fact_input, split_ref_input
from tether.render.paths import check_local_size
from tether.render.versions import tool_versions
from tether.resource import NO_ORIGINS, Origins, ResourceKey
from tether.secrets import REDACTOR, Redactor, resolve_secrets
from tether.source import Credentials, GitCache, normalise_url, redact_url
from tether.source.urls import is_ssh_url

CredentialsFor = Callable[[str], Credentials | None]
"""The credentials for a repository URL (None: anonymous, or userinfo in the URL)."""

_T = TypeVar("_T")


@dataclass(frozen=True)
class DesiredState:
    """What an app should look like: objects with secrets resolved (memory only) and how they were made.

    The per-source tuples run parallel to the app's sources, ref sources included (their
    type is None when they render nothing). ``revision``, ``source_type`` and ``inputs`` are
    the first source's (``source_type`` the first rendered one's), for single-source callers.
    Only ``objects`` may hold secret values.
    """

    app: str
    revision: str | None  # commit id; None for a local directory
    source_type: SourceType
    objects: list[dict[str, Any]] = field(repr=False)
    secret_usage: Any
    inputs: tuple[str, ...]  # repository paths the render read ("$<ref>//path" in a ref source's repository)
    cache_hit: bool  # every rendered source came from the render cache
    revisions: tuple[str | None, ...] = ()
    source_types: tuple[SourceType | None, ...] = ()
    source_inputs: tuple[tuple[str, ...], ...] = ()
    warnings: tuple[str, ...] = ()  # e.g. RepeatedResourceWarning lines; never secret
    origins: Origins = NO_ORIGINS  # the repository file of each object, for error messages


@dataclass(frozen=True)
class _SourceResult:
    rendered: Rendered | None  # None: a ref-only source
    hit: bool


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
    project: str = DEFAULT_PROJECT_NAME,
    capabilities: CapabilitiesSource | None = None,
    credentials: Credentials | None = None,
    limits: RenderLimits = RenderLimits(),
) -> DesiredState:
    """Resolve the revision, render (from the cache when the app's inputs are unchanged), resolve secrets.

    ``secrets_backend`` None leaves placeholders unresolved (for showing what git says).
    Errors name fields as in ``spec.source`` (``helm.valueFiles[0]``). ``app``, ``namespace``,
    ``project`` and the commit are what Argo CD's build variables (``$ARGOCD_APP_NAME`` …) expand to;
    ``capabilities`` gives the destination cluster's to Helm (None: Helm's defaults).
    """
    return await _desired(
        app,
        (source,),
        ("",),
        git=git,
        cache=cache,
        secrets_backend=secrets_backend,
        redactor=redactor,
        namespace=namespace,
        project=project,
        capabilities=capabilities,
        credentials_for=lambda _url: credentials,
        limits=limits,
    )


async def desired_state_of_sources(
    app: str,
    sources: Sequence[ApplicationSource],
    *,
    git: GitCache | None,
    cache: RenderCache | None,
    secrets_backend: Any,
    redactor: Redactor = REDACTOR,
    namespace: str | None = None,
    project: str = DEFAULT_PROJECT_NAME,
    capabilities: CapabilitiesSource | None = None,
    credentials_for: CredentialsFor | None = None,
    limits: RenderLimits = RenderLimits(),
    fields: Sequence[str] | None = None,
    refresh: bool = False,
) -> DesiredState:
    """``desired_state`` for ``spec.sources``: every source rendered (concurrently), merged in order.

    ``refresh`` renders again whatever the cache holds and replaces its entries (a hard refresh).

    Errors name fields as ``spec.sources[i].…``, or from ``fields[i]`` when given (an app with a
    single ``spec.source`` passes ``("spec.source.",)``). A ``$ref`` no source defines, a ref name
    used twice or a ``$ref`` outside ``helm.valueFiles`` is an InvalidSpec error before anything runs.
    """
    if not sources:
        raise TetherError("spec.sources: no sources", reason=Reason.INVALID_SPEC).for_app(app)
    prefixes = tuple(fields) if fields is not None else tuple(f"spec.sources[{i}]." for i in range(len(sources)))
    if len(prefixes) != len(sources):
        raise TetherError(f"{len(prefixes)} field names for {len(sources)} sources").for_app(app)
    return await _desired(
        app,
        tuple(sources),
        prefixes,
        git=git,
        cache=cache,
        secrets_backend=secrets_backend,
        redactor=redactor,
        namespace=namespace,
        project=project,
        capabilities=capabilities,
        credentials_for=credentials_for or (lambda _url: None),
        limits=limits,
        refresh=refresh,
    )


async def _desired(
    app: str,
    sources: tuple[ApplicationSource, ...],
    prefixes: tuple[str, ...],
    *,
    git: GitCache | None,
    cache: RenderCache | None,
    secrets_backend: Any,
    redactor: Redactor,
    namespace: str | None,
    project: str,
    capabilities: CapabilitiesSource | None,
    credentials_for: CredentialsFor,
    limits: RenderLimits,
    refresh: bool = False,
) -> DesiredState:
    problems = ref_errors(sources, prefixes)
    if problems:
        raise TetherError("; ".join(problems), reason=Reason.INVALID_SPEC).for_app(app)

    async def revision_of(index: int) -> str | None:
        source = sources[index]
        if is_local_source(source.repo_url):
            return None
        if git is None:
            raise TetherError(f"{prefixes[index] or 'source.'}repoURL is a git URL but no git cache was given")
        return await git.resolve(source.repo_url, source.target_revision, credentials_for(source.repo_url))

    revisions = await _each(app, prefixes, [revision_of(i) for i in range(len(sources))])
    refs = {source.ref: index for index, source in enumerate(sources) if source.ref is not None}

    async def render_one(index: int) -> _SourceResult:
        if sources[index].ref_only:
            return _SourceResult(None, hit=False)
        used = {name: refs[name] for name in sources[index].referenced_refs()}
        return await _render_source(
            app,
            sources,
            revisions,
            index,
            used,
            prefix=prefixes[index],
            git=git,
            cache=cache,
            namespace=namespace,
            project=project,
            capabilities=capabilities,
            credentials_for=credentials_for,
            limits=limits,
            refresh=refresh,
        )

    results = await _each(app, prefixes, [render_one(i) for i in range(len(sources))])
    rendered = [result.rendered for result in results if result.rendered is not None]
    # ref-only sources contribute an empty list, so the warnings' indices are the spec's
    objects, warnings = merge_objects([r.rendered.objects if r.rendered else [] for r in results], namespace)
    usage = None
    if secrets_backend is not None:
        resolved = await resolve_secrets(objects, secrets_backend, app=app, redactor=redactor)
        objects, usage = resolved.objects, resolved.usage
    first = results[0].rendered
    origins = NO_ORIGINS
    for prefix, result in zip(prefixes, results, strict=True):
        if result.rendered is not None:
            files = result.rendered.files
            if len(sources) > 1:  # say which source, as the repositories' paths may be alike
                files = tuple(f"{file} of {prefix.rstrip('.')}" if file else "" for file in files)
            origins |= Origins.of(result.rendered.objects, files)
    return DesiredState(
        app=app,
        revision=revisions[0],
        source_type=rendered[0].source_type if rendered else SourceType.DIRECTORY,
        objects=objects,
        secret_usage=usage,
        inputs=first.inputs if first is not None else (),
        cache_hit=bool(rendered) and all(r.hit for r in results if r.rendered is not None),
        revisions=tuple(revisions),
        source_types=tuple(r.rendered.source_type if r.rendered is not None else None for r in results),
        source_inputs=tuple(r.rendered.inputs if r.rendered is not None else () for r in results),
        warnings=tuple(warnings),
        origins=origins,
    )


async def _render_source(
    app: str,
    sources: tuple[ApplicationSource, ...],
    revisions: Sequence[str | None],
    index: int,
    used: Mapping[str, int],
    *,
    prefix: str,
    git: GitCache | None,
    cache: RenderCache | None,
    namespace: str | None,
    project: str,
    capabilities: CapabilitiesSource | None,
    credentials_for: CredentialsFor,
    limits: RenderLimits,
    refresh: bool = False,
) -> _SourceResult:
    """One source through the render cache (when it and every ref it reads come from git)."""
    source = sources[index]
    commit = revisions[index]
    env = BuildEnv(
        app=app,
        namespace=namespace or "",
        project=project,
        revision=commit or "",
        repo_url=redact_url(source.repo_url),  # a credential in the URL must not reach a manifest
        path=source.path,
        target_revision=source.target_revision,
    )

    async def root_of(stack: contextlib.AsyncExitStack, at: int, trees: dict[tuple[str, str], Path]) -> Path:
        url, commit = sources[at].repo_url, revisions[at]
        if commit is None:
            root = Path(url).expanduser()
            await asyncio.to_thread(check_local_size, app, root, limits.max_checkout_bytes)
            return root
        assert git is not None  # a revision came from it
        key = (normalise_url(url), commit)
        if key not in trees:  # a ref to the source's own repository at the same commit shares its checkout
            trees[key] = await stack.enter_async_context(git.checkout(url, commit, credentials_for(url)))
        return trees[key]

    async def render_now() -> Rendered:
        async with contextlib.AsyncExitStack() as stack:
            trees: dict[tuple[str, str], Path] = {}
            root = await root_of(stack, index, trees)
            ref_roots = {name: await root_of(stack, at, trees) for name, at in used.items()}
            return await render(
                app,
                source,
                root,
                namespace=namespace,
                limits=limits,
                refs=ref_roots,
                field_prefix=prefix,
                build_env=env,
                capabilities=capabilities,
                submodules=git.submodules(root) if git is not None else None,
            )

    if cache is None or git is None or commit is None or any(revisions[at] is None for at in used.values()):
        return _SourceResult(await render_now(), hit=False)
    url = source.repo_url

    async def tree_ids(paths: Sequence[str]) -> Mapping[str, str | None]:
        async def one(name: str) -> str | None:
            fact = split_fact_input(name)
            if fact == CAPABILITIES_FACT:
                return (await capabilities()).digest if capabilities is not None else None
            if fact is not None:  # keyed on the value a build variable had in the render
                return env.variables().get(fact)
            ref, path = split_ref_input(name)
            if ref is None:
                return await git.tree_id(url, commit, path, credentials_for(url))
            if ref not in used:  # an input of an older spec: absent now, so the key cannot match
                return None
            ref_source, ref_commit = sources[used[ref]], revisions[used[ref]]
            assert ref_commit is not None
            return await git.tree_id(ref_source.repo_url, ref_commit, path, credentials_for(ref_source.repo_url))

        ids = await asyncio.gather(*(one(name) for name in paths))
        return dict(zip(paths, ids, strict=True))

    scope = CacheScope.for_app(normalise_url(url), app, source, namespace, await tool_versions())
    # single flight per (scope, revision): the refs' commits are part of what is being rendered
    flight = commit + "".join(f" ${name}={revisions[at]}" for name, at in sorted(used.items()))
    outcome = await cache.get_or_render(scope, flight, tree_ids, render_now, refresh=refresh)
    return _SourceResult(Rendered(outcome.objects, outcome.source_type, outcome.inputs, outcome.files), hit=outcome.hit)


def merge_objects(
    per_source: Sequence[Sequence[dict[str, Any]]], namespace: str | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """The objects of all sources in order; of two with the same key the later wins (Argo CD's rule).

    The key is (group, kind, namespace, name), an object without a namespace counting as in
    ``namespace`` (where it will be applied). Returns the objects and one warning per repeat,
    naming the sources by their index in the list.
    """
    kept: dict[ResourceKey, tuple[int, int, dict[str, Any]]] = {}  # key -> (position, source, object)
    warnings: list[str] = []
    position = 0
    for index, objects in enumerate(per_source):
        for obj in objects:
            key = ResourceKey.of(obj)
            if not key.namespace and namespace:
                key = ResourceKey(key.group, key.kind, namespace, key.name)
            if key in kept:
                warnings.append(
                    f"RepeatedResourceWarning: {key} is produced by spec.sources[{kept[key][1]}] and "
                    f"spec.sources[{index}]; the later one is used"
                )
            kept[key] = (position, index, obj)
            position += 1
    return [obj for _, _, obj in sorted(kept.values(), key=lambda item: item[0])], warnings


async def _each(app: str, prefixes: Sequence[str], steps: Sequence[Awaitable[_T]]) -> list[_T]:
    """Run one step per source concurrently; the first failure in source order is raised, naming its source."""
    outcomes = await asyncio.gather(*steps, return_exceptions=True)
    for prefix, outcome in zip(prefixes, outcomes, strict=True):
        if isinstance(outcome, TetherError):
            raise located(outcome.for_app(app), prefix) from outcome
        if isinstance(outcome, BaseException):
            raise outcome
    return [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]


def located(error: TetherError, prefix: str) -> TetherError:
    """``error`` with the source it belongs to (``spec.sources[1]: …``) unless it already names a field of it."""
    if not prefix or error.detail.startswith(prefix):
        return error
    return type(error).wrapping(error, prefix.rstrip("."))
