"""One app's comparison: desired objects (rendered only when their inputs changed) against the live cache.

Called by the controller for every reconcile. Git is asked only for a trigger that can move
a revision (a poll, a refresh, a spec or project change, the first look); a drift event
compares the objects already in memory, so it costs no git call, no render and no ``pass``
call. The render runs in a bounded pool (``render_slots``) so helm and kustomize processes
never oversubscribe the machine.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from tether.cluster.errors import UnknownKind
from tether.controller.clusters import Destination
from tether.controller.memory import AppMemory, Declared
from tether.diff import AppDiff, diff_app
from tether.diff.migration import MIGRATION_MANAGER_ANNOTATION, app_manager
from tether.errors import TetherError
from tether.health import Health, HealthStatus, LuaChecks, aggregate, assess_async
from tether.hooks import is_hook
from tether.jsonfast import digest
from tether.model import Application
from tether.model.source import ApplicationSource
from tether.pipeline import desired_state_of_sources, is_local_source, located
from tether.render.buildenv import COMMIT_VARIABLES
from tether.render.cache import RenderCache
from tether.render.engine import CAPABILITIES_FACT, fact_input, split_fact_input
from tether.resource import NO_ORIGINS, Origins, ResourceKey
from tether.secrets import REDACTOR
from tether.source import Credentials, GitCache, normalise_url

SignatureCheck = Callable[[Application, Sequence[ApplicationSource], Sequence[str]], Awaitable[None]]

# Triggers that may move a revision or change what is rendered: they ask git (within the poll interval's listing).
GIT_REASONS = frozenset(
    {"start", "poll", "refresh", "hard-refresh", "spec", "project", "repo", "secrets", "operation", "retry", "webhook"}
)


class Desired(NamedTuple):
    """An app's desired objects (secrets resolved: memory only) and the file each came from."""

    objects: list[dict[str, Any]]
    origins: Origins


@dataclass(frozen=True)
class Comparison:
    """What one comparison found; plain data for status, autosync and events."""

    diff: AppDiff
    healths: dict[ResourceKey, Health | None]
    health: HealthStatus
    health_message: str
    versions: dict[ResourceKey, str]  # apiVersion per key, for status rows
    live: list[Mapping[str, Any]]


def spec_digest(app: Application, memory: AppMemory | None = None) -> str:
    """Digest of what a comparison depends on in the spec: sources, destination, ignoreDifferences.

    ``memory`` keeps it for the spec object it was computed from, which ``AppMemory.application``
    shares between reads of the app at one generation: a reconcile asks two or three times.
    """
    spec = app.spec
    if memory is not None and memory.digested is not None and memory.digested[0] is spec:
        return memory.digested[1]
    data = {
        "sources": [s.model_dump(by_alias=True, exclude_defaults=True, mode="json") for s in spec.sources_list()],
        "destination": spec.destination.model_dump(by_alias=True, mode="json"),
        "ignoreDifferences": spec.ignore_differences_dicts(),
    }
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    if memory is not None:
        memory.digested = (spec, digest)
    return digest


def compared_to(app: Application) -> dict[str, Any]:
    """``status.sync.comparedTo``: the sources, destination and ignoreDifferences compared."""
    spec = app.spec
    out: dict[str, Any] = {"destination": spec.destination.model_dump(by_alias=True, exclude_defaults=True)}
    sources = [s.model_dump(by_alias=True, exclude_defaults=True, mode="json") for s in spec.sources_list()]
    if spec.multi_source:
        out["sources"] = sources
    else:
        out["source"] = sources[0]
    if spec.ignore_differences:
        out["ignoreDifferences"] = spec.ignore_differences_dicts()
    return out


def inputs_by_source(
    sources: Sequence[ApplicationSource], source_inputs: Sequence[Sequence[str]]
) -> tuple[tuple[str, ...] | None, ...]:
    """Each source's paths in its own repository, ``$<ref>//path`` inputs moved to the ref source they name.

    None for a source whose render used a build variable of the commit (``$ARGOCD_APP_REVISION``):
    every new commit changes its output, whatever files it touched. Other build variables are
    not paths and do not move with commits, so they are left out.
    """
    own: list[set[str]] = [set() for _ in sources]
    per_commit: set[int] = set()
    by_ref = {s.ref: i for i, s in enumerate(sources) if s.ref}
    for index, inputs in enumerate(source_inputs[: len(sources)]):
        for path in inputs:
            variable = split_fact_input(path)
            if variable is not None:
                if variable in COMMIT_VARIABLES:
                    per_commit.add(index)
                continue
            if path.startswith("$") and "//" in path:
                name, _, inner = path[1:].partition("//")
                if name in by_ref:
                    own[by_ref[name]].add(inner)
                continue
            own[index].add(path)
    return tuple(None if index in per_commit else tuple(sorted(paths)) for index, paths in enumerate(own))


class Comparer:
    """Shared pieces every comparison uses: the git cache, the render cache and pool, `pass`, Lua."""

    def __init__(
        self,
        *,
        git: GitCache,
        render_cache: RenderCache | None,
        render_slots: asyncio.Semaphore,
        secrets_backend: Any,
        credentials_for: Callable[[str], Credentials | None],
        lua: LuaChecks | None = None,
        signature_check: SignatureCheck | None = None,
    ) -> None:
        self.git = git
        # checks the resolved commits before anything renders (projects with signatureKeys)
        self.signature_check = signature_check
        self.render_cache = render_cache
        self.render_slots = render_slots
        self.secrets_backend = secrets_backend
        self.credentials_for = credentials_for
        self.lua = lua
        self.compares = 0  # diffs run (``compare``); a status-only watch event costs a ``judge``, not one

    def forget_refs(self, sources: Sequence[ApplicationSource]) -> None:
        """Drop the remembered listings of these sources' repositories: the next resolve asks each server."""
        for source in sources:
            if not is_local_source(source.repo_url):
                self.git.forget_refs(source.repo_url)

    async def resolve(self, sources: Sequence[ApplicationSource], *, multi: bool = True) -> tuple[str, ...]:
        """Each source's commit (cached listings: one ls-remote per repository per poll interval).

        An error names the source's field, as render errors do: ``spec.sources[1]``, or ``spec.source``
        for an app that is not ``multi`` (a single ``spec.source``).
        """

        async def one(index: int, source: ApplicationSource) -> str:
            field = f"spec.sources[{index}]" if multi else "spec.source"
            problem = source.unsupported()
            if problem is not None:  # not git: say so, instead of what git makes of the URL, and retry nothing
                raise TetherError(f"{field}.{problem[0]}: {problem[1]}", reason="InvalidSpec")
            if is_local_source(source.repo_url):
                return ""
            url = source.repo_url
            try:
                return await self.git.resolve(url, source.target_revision, self.credentials_for(url))
            except TetherError as exc:
                raise located(exc, field) from None

        return tuple(await asyncio.gather(*(one(i, s) for i, s in enumerate(sources))))

    async def desired(
        self,
        app: Application,
        memory: AppMemory,
        reasons: frozenset[str],
        destination: Destination,
        *,
        sources: Sequence[ApplicationSource] | None = None,
        remember: bool = True,
    ) -> Desired:
        """The app's desired objects: from memory when nothing that feeds them changed, else rendered.

        ``sources`` overrides the spec's (a sync to a pinned revision); such a render is not
        remembered as the app's desired state. The destination's capabilities count as a change
        when the last render used them (Helm) and the cluster now serves other APIs; they are
        read only when git is asked too and a render uses them, so drift and plain YAML never
        cost a discovery request.
        """
        digest = spec_digest(app, memory)
        pinned = sources is not None
        sources = tuple(sources if sources is not None else app.spec.sources_list())
        hard = "hard-refresh" in reasons
        if (
            not pinned
            and memory.desired is not None
            and not (reasons & GIT_REASONS)
            and memory.spec_digest == digest
            and memory.rendered_generation == memory.secrets_generation
        ):
            return Desired(memory.desired, memory.origins)
        if hard:
            self.forget_refs(sources)
        revisions = await self.resolve(sources, multi=app.spec.multi_source)
        if self.signature_check is not None:
            await self.signature_check(app, sources, revisions)
        if (
            not pinned
            and not hard
            and memory.desired is not None
            and memory.spec_digest == digest
            and memory.revisions == revisions
            and memory.rendered_generation == memory.secrets_generation
            and (not memory.capabilities or memory.capabilities == (await destination.capabilities()).digest)
        ):
            return Desired(memory.desired, memory.origins)
        generation = memory.secrets_generation
        async with self.render_slots:
            state = await desired_state_of_sources(
                app.name,
                sources,
                git=self.git,
                cache=self.render_cache,
                refresh=hard,
                secrets_backend=self.secrets_backend,
                redactor=REDACTOR,
                namespace=app.spec.destination.namespace or None,
                project=app.spec.project,
                capabilities=destination.capabilities,
                credentials_for=self.credentials_for,
                fields=None if app.spec.multi_source else ("spec.source.",),
            )
        if remember:
            memory.desired, memory.origins = state.objects, state.origins
            memory.declared = declared_metadata(state.objects)
            memory.revisions = tuple(r or "" for r in state.revisions)
            memory.source_types = tuple(t.value if t is not None else "" for t in state.source_types)
            memory.spec_digest = digest
            memory.rendered_generation = generation
            memory.repos = frozenset(normalise_url(s.repo_url) for s in sources if not is_local_source(s.repo_url))
            memory.render_warnings = tuple(state.warnings)
            memory.inputs = inputs_by_source(sources, state.source_inputs)
            used = any(fact_input(CAPABILITIES_FACT) in inputs for inputs in state.source_inputs)
            memory.capabilities = (await destination.capabilities()).digest if used else ""
            memory.moved = None
            usage = state.secret_usage
            memory.secret_entries = frozenset(usage.entries) if usage is not None else frozenset()
        return Desired(state.objects, state.origins)

    async def compare(
        self,
        app: Application,
        desired: Sequence[Mapping[str, Any]],
        destination: Destination,
        extra_kinds: Sequence[tuple[str, str]],
        origins: Origins = NO_ORIGINS,
    ) -> Comparison:
        """Diff against the destination's live cache, then each object's health from the same cache."""
        self.compares += 1
        diff = await diff_app(
            app.name,
            desired,
            cluster=destination.cluster,
            cache=destination.cache,
            ignore_differences=app.spec.ignore_differences_dicts(),
            namespace=app.spec.destination.namespace or None,
            extra_kinds=extra_kinds,
            dry_runs=destination.dry_runs,
            text=False,
            dry_run_missing=False,
            csa_manager=app_manager(app.spec.sync_options, app.annotation(MIGRATION_MANAGER_ANNOTATION)),
            origins=origins,
        )
        return await self.judge(diff, desired, destination)

    async def judge(self, diff: AppDiff, desired: Sequence[Mapping[str, Any]], destination: Destination) -> Comparison:
        """Health (and the summary's live objects) of a diff's objects, read from the live cache now.

        Also the whole of a "health" reconcile: a watch event that changed only an object's
        status cannot change what drifts, so the last diff stands and only health is judged again.
        """
        healths: dict[ResourceKey, Health | None] = {}
        versions: dict[ResourceKey, str] = {}
        live_objects: list[Mapping[str, Any]] = []
        named = {
            (k.group, k.kind, k.name): str(o.get("apiVersion") or "")
            for o in desired
            if not is_hook(o)
            for k in (ResourceKey.of(o),)
        }
        for r in diff.resources:
            live = destination.cache.peek(r.key)  # read only: judged and summarised, never changed
            version = named.get((r.key.group, r.key.kind, r.key.name))
            if version is None and live is not None:
                version = str(live.get("apiVersion") or "")
            versions[r.key] = version or ""
            if live is not None:
                live_objects.append(live)
            if r.status == "Extraneous":
                continue
            if live is None:
                healths[r.key] = Health(HealthStatus.MISSING, "")
            else:
                healths[r.key] = await assess_async(live, lua=self.lua)
        status = aggregate(list(healths.values())) if healths else HealthStatus.HEALTHY
        worst = [
            f"{k.kind} {k.name}: {h.message}"
            for k, h in healths.items()
            if h is not None and h.status is status and h.message
        ]
        return Comparison(
            diff=diff,
            healths=healths,
            health=status,
            health_message=worst[0] if worst and status is not HealthStatus.HEALTHY else "",
            versions=versions,
            live=live_objects,
        )


def declared_metadata(objects: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str, str], Declared]:
    """Per (group, kind, name) of the desired objects, the annotation and label keys their manifests set
    (objects of one kind and name in several namespaces pool theirs)."""
    out: dict[tuple[str, str, str], Declared] = {}
    for obj in objects:
        key = ResourceKey.of(obj)
        meta = obj.get("metadata") or {}
        annotations, labels = out.get((key.group, key.kind, key.name), (frozenset(), frozenset()))
        out[(key.group, key.kind, key.name)] = (
            annotations | set(meta.get("annotations") or ()),
            labels | set(meta.get("labels") or ()),
        )
    return out


def fingerprint(obj: Mapping[str, Any], declared: Declared | None = None) -> str:
    """What of a live object a comparison can see: everything but its status and server bookkeeping.

    Two watch events with the same fingerprint differ only in status, so the second needs a new
    health judgement, not a new diff (Argo CD's ``ignoreResourceUpdates`` idea, built in).
    ``declared`` (``declared_metadata``) narrows annotations and labels to the keys the manifest
    sets: the diff never reports a key it does not set (server-side apply leaves other writers'
    keys alone), so the Deployment controller's ``deployment.kubernetes.io/revision`` on every new
    Deployment, or a ``kubectl annotate`` of another key, asks for no diff. None: every key counts.
    """
    meta = dict(obj.get("metadata") or {})
    for noise in ("resourceVersion", "managedFields", "generation"):
        meta.pop(noise, None)
    if declared is not None:
        for field_name, keys in zip(("annotations", "labels"), declared, strict=True):
            values = meta.get(field_name) or {}
            meta[field_name] = {k: v for k, v in values.items() if k in keys}
    body = {k: v for k, v in obj.items() if k not in ("status", "metadata")}
    body["metadata"] = meta
    return digest(body)


async def scopes(destination: Destination, desired: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, bool]]:
    """(group, kind, namespaced) of every desired kind, for a project's resource rules."""
    seen: dict[tuple[str, str], bool] = {}
    for obj in desired:
        api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
        if (api_version, kind) in seen:
            continue
        try:
            seen[(api_version, kind)] = (await destination.cluster.resource(api_version, kind)).namespaced
        except UnknownKind:
            seen[(api_version, kind)] = True
    return [(a.rpartition("/")[0], k, namespaced) for (a, k), namespaced in seen.items()]
