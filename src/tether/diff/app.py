"""Diff one app: every desired object against the live cache, plus live objects the app owns but git dropped."""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from tether.cluster import Cluster, ClusterError, LiveCache, UnknownKind
from tether.cluster.errors import without_request
from tether.diff.compare import changed_paths, unified
from tether.diff.dryrun import DryRuns
from tether.diff.errors import DiffError
from tether.diff.ignore import IgnoreRule, parse_ignore_differences, strip_ignored
from tether.diff.jq import DEFAULT_TIMEOUT, JqRunner
from tether.diff.masking import mask_secret
from tether.diff.migration import CSA_MANAGER, manager_for, released, without_released
from tether.diff.normalise import is_secret, normalise
from tether.errors import TetherError
from tether.hooks import is_hook
from tether.resource import NO_ORIGINS, Origins, ResourceKey, annotation_options, json_copy, mark, owner_app
from tether.secrets import REDACTOR, Redactor

log = structlog.get_logger(__name__)

SYNCED, OUT_OF_SYNC, MISSING, EXTRANEOUS = "Synced", "OutOfSync", "Missing", "Extraneous"
SERVER_SIDE, CLIENT_SIDE = "server-side", "client-side"
DRY_RUN_CONCURRENCY = 8
DRY_RUN_MODE = "apply-force"  # server-side apply, forced: the DryRuns mode a comparison's outcomes are stored under


@dataclass(frozen=True)
class ResourceDiff:
    """How one object differs. ``live`` and ``predicted`` are normalised and Secret-masked."""

    key: ResourceKey
    status: str
    changed: list[str] = field(default_factory=list)
    live: dict[str, Any] | None = field(default=None, repr=False)
    predicted: dict[str, Any] | None = field(default=None, repr=False)
    diff: str = field(default="", repr=False)
    owner: str | None = None
    shared_with: str | None = None
    ignore_extraneous: bool = False
    comparison: str = SERVER_SIDE
    note: str | None = None
    error: str | None = None
    file: str = ""  # the repository file the desired object came from ("" when not known)

    @property
    def counts_as_drift(self) -> bool:
        """Whether this object keeps the app out of sync (an IgnoreExtraneous leftover does not)."""
        if self.status == EXTRANEOUS:
            return not self.ignore_extraneous
        return self.status != SYNCED

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.key.group,
            "kind": self.key.kind,
            "namespace": self.key.namespace,
            "name": self.key.name,
            "status": self.status,
            "changed": list(self.changed),
            "live": self.live,
            "predicted": self.predicted,
            "diff": self.diff,
            "owner": self.owner,
            "sharedWith": self.shared_with,
            "ignoreExtraneous": self.ignore_extraneous,
            "comparison": self.comparison,
            "note": self.note,
            "error": self.error,
            "file": self.file,
        }


@dataclass(frozen=True)
class AppDiff:
    """Every object of one app that is desired or owned, and whether the app as a whole is in sync."""

    app: str
    resources: list[ResourceDiff]

    @property
    def in_sync(self) -> bool:
        return not any(r.counts_as_drift for r in self.resources)

    @property
    def out_of_sync(self) -> list[ResourceDiff]:
        return [r for r in self.resources if r.counts_as_drift]

    @property
    def errors(self) -> list[str]:
        return [f"{r.key}{f' ({r.file})' if r.file else ''}: {r.error}" for r in self.resources if r.error]

    def text(self) -> str:
        """Each drifting object's header and unified YAML diff; Secrets masked."""
        parts = []
        for r in self.out_of_sync:
            header = f"===== {r.key} ({r.status}{', ' + r.comparison if r.comparison != SERVER_SIDE else ''}) ====="
            lines = [header]
            if r.shared_with:
                lines.append(f"# shared: the live object's tracking id names app {r.shared_with!r}")
            if r.note:
                lines.append(f"# {r.note}")
            if r.error:
                lines.append(f"# error: {r.error}")
            if r.diff:
                lines.append(r.diff)
            parts.append("\n".join(lines))
        return "\n\n".join(parts) + ("\n" if parts else "")

    def to_dict(self) -> dict[str, Any]:
        return {"app": self.app, "inSync": self.in_sync, "resources": [r.to_dict() for r in self.resources]}


async def assign_namespaces(
    objects: Iterable[Mapping[str, Any]], *, cluster: Cluster, namespace: str | None
) -> list[dict[str, Any]]:
    """Copies placed as the server would place them, so their keys match live objects.

    Namespaced kinds without a namespace get ``namespace``; cluster-scoped kinds lose any
    namespace they name. A kind the cluster does not serve yet (CRD not installed) is taken
    to be namespaced, as most custom resources are.
    """
    placed = []
    scopes: dict[tuple[str, str], bool] = {}
    for obj in objects:
        out = json_copy(dict(obj))
        api_version, kind = str(out.get("apiVersion") or ""), str(out.get("kind") or "")
        meta = out.setdefault("metadata", {})
        if api_version and kind:
            if (api_version, kind) not in scopes:
                try:
                    scopes[(api_version, kind)] = (await cluster.resource(api_version, kind)).namespaced
                except UnknownKind:
                    scopes[(api_version, kind)] = True
            if not scopes[(api_version, kind)]:
                meta.pop("namespace", None)
            elif not meta.get("namespace") and namespace:
                meta["namespace"] = namespace
        placed.append(out)
    return placed


async def diff_app(
    app: str,
    desired: Sequence[Mapping[str, Any]],
    *,
    cluster: Cluster,
    cache: LiveCache,
    ignore_differences: Iterable[Mapping[str, Any] | IgnoreRule] = (),
    namespace: str | None = None,
    jq_timeout: float = DEFAULT_TIMEOUT,
    extra_kinds: Iterable[tuple[str, str]] = (),
    redactor: Redactor = REDACTOR,
    dry_runs: DryRuns | None = None,
    text: bool = True,
    dry_run_missing: bool = True,
    csa_manager: str | None = CSA_MANAGER,
    origins: Origins = NO_ORIGINS,
) -> AppDiff:
    """Compare ``app``'s desired objects with the cluster, server-side (see the package docstring).

    ``namespace`` is the destination namespace for objects that name none. ``extra_kinds``
    are (apiVersion, kind) pairs to look for extraneous objects in beyond the desired ones
    (e.g. kinds the app applied before); every kind the cache already tracks counts too.
    ``redactor`` knows the secret values and which fields came from placeholders (recorded
    by ``resolve_secrets``): those fields are masked on both sides, and every string of the
    result is redacted, so the result can be printed as it is, as text or JSON.
    ``text`` False leaves out each drifting object's unified YAML diff (the controller's status
    needs only which objects drift, and the YAML costs more than the comparison).
    ``dry_run_missing`` False compares an object the cluster lacks client-side, with no dry run:
    it is Missing whatever the server would say, and the sync dry-runs it before writing (the
    controller's choice; ``tether diff`` shows the server's defaults and refusals).
    ``dry_runs`` keeps each dry-run outcome (mode ``"apply-force"``, keyed on the marked
    object and the live resourceVersion it met) and reuses it while neither changed, so a
    comparison that finds nothing changed sends no write request; share it with the sync.
    ``csa_manager`` is the client-side apply manager whose fields a sync would move to Tether
    (``tether.diff.migration``; None: ``ClientSideApplyMigration=false``): what that removes is drift.
    ``origins`` (``DesiredState.origins``) gives each object's file, for its result and its errors.
    Raises ``DiffError`` naming the app, the object and its file when the diff cannot be computed.
    """
    try:
        rules = parse_ignore_differences(ignore_differences)
    except DiffError as exc:
        raise exc.for_app(app) from None
    try:
        objects = [o for o in await assign_namespaces(desired, cluster=cluster, namespace=namespace) if not is_hook(o)]
        keys = _check(app, objects)
        await cache.ensure(objects)
        for api_version, kind in extra_kinds:
            try:
                await cache.track(api_version, kind)
            except UnknownKind:
                pass
    except DiffError as exc:
        raise exc.for_app(app) from None
    except TetherError as exc:
        raise DiffError.wrapping(exc).for_app(app) from exc

    store = dry_runs if dry_runs is not None else DryRuns()  # within one diff at least, no-ops are predicted
    limit = asyncio.Semaphore(DRY_RUN_CONCURRENCY)
    async with JqRunner(jq_timeout) as jq:

        async def one(obj: dict[str, Any]) -> ResourceDiff:
            async with limit:
                return await _diff_desired(
                    app,
                    obj,
                    cluster=cluster,
                    cache=cache,
                    rules=rules,
                    jq=jq,
                    redactor=redactor,
                    dry_runs=store,
                    text=text,
                    dry_run_missing=dry_run_missing,
                    csa_manager=manager_for(obj, csa_manager),
                    origins=origins,
                )

        tasks = [asyncio.create_task(one(o)) for o in objects]
        try:
            results = list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:  # one failure (a runaway jq expression…) ends the whole diff
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
    results += [
        _extraneous(app, live, redactor)
        for live in cache.owned_view(app)
        if ResourceKey.of(live) not in keys and not is_hook(live)
    ]
    report = AppDiff(app, sorted(results, key=lambda r: r.key))
    log.info(
        "app diffed", app=app, in_sync=report.in_sync, objects=len(report.resources), drifting=len(report.out_of_sync)
    )
    return report


def _check(app: str, objects: Sequence[Mapping[str, Any]]) -> set[ResourceKey]:
    keys: set[ResourceKey] = set()
    for index, obj in enumerate(objects):
        key = ResourceKey.of(obj)
        if not obj.get("apiVersion") or not key.kind or not key.name:
            raise DiffError(f"desired object #{index} ({key}) needs apiVersion, kind and metadata.name").for_app(app)
        if key in keys:
            raise DiffError(f"{key} is desired twice").for_app(app)
        keys.add(key)
    return keys


async def _diff_desired(
    app: str,
    obj: dict[str, Any],
    *,
    cluster: Cluster,
    cache: LiveCache,
    rules: Sequence[IgnoreRule],
    jq: JqRunner,
    redactor: Redactor,
    dry_runs: DryRuns | None,
    text: bool = True,
    dry_run_missing: bool = True,
    csa_manager: str | None = None,
    origins: Origins = NO_ORIGINS,
) -> ResourceDiff:
    key = ResourceKey.of(obj)
    live_raw = await _live_as(cache, key, str(obj["apiVersion"]))
    marked = mark(obj, app)
    comparison, note, error = SERVER_SIDE, None, None
    predicted_raw: Mapping[str, Any] | None = None
    try:
        if live_raw is not None or dry_run_missing:
            predicted_raw, live_raw = await _dry_run(
                key, marked, live_raw, cluster=cluster, cache=cache, dry_runs=dry_runs
            )
    except UnknownKind:
        note = f"kind {key.kind} is not served by the cluster (CRD not installed yet?): compared client-side"
    except ClusterError as exc:
        if exc.status == 404:
            note = f"namespace {key.namespace!r} does not exist yet: compared client-side"
        elif exc.status in REFUSALS:
            error = _scrub(without_request(exc), obj, redactor)
            note = "the server rejected the dry run: compared client-side"
        else:
            raise _object_error(app, origins.named(key), exc, obj, redactor) from None
    except TetherError as exc:
        raise _object_error(app, origins.named(key), exc, obj, redactor) from None
    if predicted_raw is None:
        comparison = CLIENT_SIDE
        predicted_raw = overlay(live_raw, marked) if live_raw is not None else marked
    if live_raw is not None:
        gone = released(live_raw, marked, csa_manager)
        if gone:  # the sync moves a client-side apply's fields to Tether first; its apply then removes these
            predicted_raw = without_released(predicted_raw, gone)

    live: dict[str, Any] | None = normalise(live_raw) if live_raw is not None else None
    predicted: dict[str, Any] | None = normalise(predicted_raw)
    try:
        live, predicted = await strip_ignored(live, predicted, key, rules, managed_from=live_raw, jq=jq, app=app)
    except DiffError as exc:
        exc.args = (_scrub(str(exc), obj, redactor),)  # keep the type (JqTimeout…), lose any Secret value
        raise
    changed = changed_paths(live, predicted) if live is not None else []
    if live is None:
        status = MISSING
    elif changed or error:
        status = OUT_OF_SYNC
    else:
        status = SYNCED
    owner = owner_app(live_raw) if live_raw is not None else None
    masked_live, masked_predicted = _masked(live, predicted, key, redactor)
    return ResourceDiff(
        key=key,
        status=status,
        changed=changed,
        live=masked_live,
        predicted=masked_predicted,
        diff=unified(masked_live, masked_predicted, str(key)) if text and status != SYNCED else "",
        owner=owner,
        shared_with=owner if owner and owner != app else None,
        comparison=comparison,
        note=note,
        error=error,
        file=origins.file(key),
    )


def _object_error(app: str, named: str, cause: TetherError, obj: Mapping[str, Any], redactor: Redactor) -> DiffError:
    """The diff of one object failed: the object (``Origins.named``), the cause's message without the object's
    secrets (the server's answer alone when there is one: the request's own naming would repeat the object),
    the cause's reason."""
    error = DiffError(
        _scrub(f"{named}: {without_request(cause)}", obj, redactor), reason=cause.reason, retryable=cause.retryable
    )
    return error.for_app(cause.app or app)


REFUSALS = (400, 422)  # the server judged the object itself: the same object meeting the same live one is refused again


async def _dry_run(
    key: ResourceKey,
    marked: dict[str, Any],
    live_raw: Mapping[str, Any] | None,
    *,
    cluster: Cluster,
    cache: LiveCache,
    dry_runs: DryRuns | None,
) -> tuple[Mapping[str, Any], Mapping[str, Any] | None]:
    """The server's prediction for ``marked`` and the live object it was computed against.

    A stored outcome for the same marked object and the live resourceVersion the cache
    holds is reused (a stored refusal is raised again) without a request. Otherwise one
    dry run is sent; when it saw a newer object than the cache held, the cache catches up
    to that version, and the outcome is stored under the version the server actually met.
    """
    live_rv = _rv(live_raw)
    if dry_runs is not None:
        stored = dry_runs.lookup(key, DRY_RUN_MODE, marked, live_raw)
        if isinstance(stored, ClusterError):
            raise stored
        if stored is not None:
            return stored, live_raw
    try:
        predicted = await cluster.apply(marked, dry_run=True, force=True)
    except ClusterError as exc:
        if dry_runs is not None and exc.status in REFUSALS and not isinstance(exc, UnknownKind):
            dry_runs.put(key, DRY_RUN_MODE, marked, live_rv, exc)
        raise
    basis = _rv(predicted)
    if basis and basis != live_rv:
        # The dry run saw a newer object than the cache holds (a controller wrote a moment ago).
        await cache.at_least(key, basis, api_version=str(marked["apiVersion"]))
        live_raw = await _live_as(cache, key, str(marked["apiVersion"]))
    if dry_runs is not None:
        # Keyed on the version the server met (``basis``); a dry run of an absent object has none.
        dry_runs.put(key, DRY_RUN_MODE, marked, basis or live_rv, json_copy(predicted))
    return predicted, live_raw


async def _live_as(cache: LiveCache, key: ResourceKey, api_version: str) -> Mapping[str, Any] | None:
    """The live object in the version the manifest names (the cache watches the server's preferred one),
    so an ``autoscaling/v1`` manifest is compared with a v1 live object, as its v1 dry run is.

    Not a copy: a diff only reads the live object (``normalise`` and ``overlay`` make new ones)."""
    live = cache.peek(key)
    if live is not None and live.get("apiVersion") != api_version:
        return await cache.get_as(key, api_version)
    return live


def _rv(obj: Mapping[str, Any] | None) -> str | None:
    """An object's resourceVersion, or None (absent object, or a dry-run create that has none)."""
    if obj is None:
        return None
    return str((obj.get("metadata") or {}).get("resourceVersion") or "") or None


def _masked(
    live: dict[str, Any] | None, predicted: dict[str, Any] | None, key: ResourceKey, redactor: Redactor
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Both sides with every secret field masked by structure (Secret data, placeholder fields,
    on the live side too), then any registered value left elsewhere masked by text."""
    fields = redactor.fields.of(key)
    if fields or is_secret(live) or is_secret(predicted):
        live, predicted = mask_secret(live, predicted, fields)
    return redactor.redact_any(live), redactor.redact_any(predicted)  # copies, whatever was masked


def _extraneous(app: str, live_raw: Mapping[str, Any], redactor: Redactor) -> ResourceDiff:
    key = ResourceKey.of(live_raw)
    masked, _ = _masked(normalise(live_raw), None, key, redactor)
    return ResourceDiff(
        key=key,
        status=EXTRANEOUS,
        live=masked,
        diff=unified(masked, None, str(key)),
        owner=app,
        ignore_extraneous="IgnoreExtraneous" in annotation_options(live_raw, "compare-options"),
    )


def overlay(live: Any, desired: Any) -> Any:
    """Desired laid over live, roughly as a server-side apply would: maps merge, same-length lists of maps merge item by item."""
    if isinstance(live, dict) and isinstance(desired, dict):
        merged = copy.deepcopy(live)
        for name, value in desired.items():
            merged[name] = overlay(live.get(name), value)
        return merged
    if (
        isinstance(live, list)
        and isinstance(desired, list)
        and len(live) == len(desired)
        and all(isinstance(i, dict) for i in live + desired)
    ):
        return [overlay(a, b) for a, b in zip(live, desired, strict=True)]
    return copy.deepcopy(desired)


def _scrub(text: str, obj: Mapping[str, Any], redactor: Redactor) -> str:
    """A message about ``obj`` without any value the redactor knows, nor any of ``obj``'s own
    Secret values (written in git, so unknown to the redactor) in any form: plain, base64,
    JSON- or Go-escaped as an API server error quotes them."""
    text = redactor.redact(text)
    if not is_secret(obj):
        return text
    local = Redactor()
    for name in ("data", "stringData"):
        values = obj.get(name)
        for value in values.values() if isinstance(values, dict) else ():
            value = str(value)
            local.add(value)
            if name == "data":
                try:
                    local.add(base64.b64decode(value, validate=True).decode("utf-8"))
                except (binascii.Error, UnicodeDecodeError):
                    pass
    return local.redact(text)
