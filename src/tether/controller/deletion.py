"""Deleting an Application: with the resources finalizer, its ``PreDelete`` hooks run first (Argo CD 3.3),
then its objects go, in reverse wave order, then its ``PostDelete`` hooks run, then the finalizer is
removed. Without it, objects stay.

A ``PreDelete`` hook that fails stops the deletion before anything is deleted (a backup that did
not happen must not be followed by the data going): ``DeletionError`` says which hook, and the
deletion waits until the hook succeeds or someone deletes it (then it runs again).

Finalizers: ``resources-finalizer.tether.dev`` and Argo CD's
``resources-finalizer.argocd.argoproj.io`` (foreground cascade, as Argo CD), and their
``/background`` forms. A step that fails leaves the finalizer in place and shows a
``DeletionError`` condition; the next reconcile tries again.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from itertools import groupby
from typing import TYPE_CHECKING, Any

import structlog

from tether.cluster.errors import ClusterError
from tether.controller import conditions as cond
from tether.controller.audit import AuditEntry, AuditResource
from tether.controller.status import APP_API_VERSION, now_iso, short
from tether.diff import assign_namespaces
from tether.errors import Reason, TetherError
from tether.health import HealthStatus, assess_async
from tether.hooks import POST_DELETE, PRE_DELETE, hook_types, wave
from tether.model import Application
from tether.resource import ResourceKey, annotation_options, mark
from tether.sync.run import RUN_ANNOTATION

if TYPE_CHECKING:
    from tether.controller.controller import Controller

log = structlog.get_logger(__name__)

FINALIZERS = (
    "resources-finalizer.tether.dev",
    "resources-finalizer.argocd.argoproj.io",
    "resources-finalizer.tether.dev/background",
    "resources-finalizer.argocd.argoproj.io/background",
)
DELETE_TIMEOUT = 300.0


async def delete_app(c: Controller, app: Application, obj: dict[str, Any]) -> None:
    """Run the deletion of ``app`` (being deleted) one step further; idempotent across restarts.

    The Application is read from the API server first: the informer's copy can still show our
    finalizer just after a pass removed it (a reconcile queued meanwhile then runs against the
    app's ghost), and a pass run on that copy would find its PreDelete hooks' objects gone and
    run them again.
    """
    if any(f in FINALIZERS for f in _finalizers(obj)):
        try:
            fresh = await c.home.get(APP_API_VERSION, "Application", app.name, app.namespace)
        except ClusterError as exc:
            log.warning("cannot read the app being deleted", app=app.name, error=str(exc))
            c.queue.add_after(app.name, "deleting", c._backoff(app.name))
            return
        if fresh is None or (fresh.get("metadata") or {}).get("uid") != app.metadata.uid:
            return  # gone: the informer's deletion event follows
        obj = fresh
    finalizers = _finalizers(obj)
    ours = [f for f in finalizers if f in FINALIZERS]
    if not ours:
        c.memory.pop(app.name, None)
        return
    background = all(f.endswith("/background") for f in ours)
    memory = c.memory_of(app.name)
    if memory.operating and memory.operation is not None:
        # A sync still applying objects would leave some behind: end it first (its state is saved).
        memory.terminate_requested = True
        c.operations.terminate(app.name)
        await asyncio.wait([memory.operation], timeout=60)
    started = datetime.now(UTC)
    deleted: list[ResourceKey] = []
    try:
        destination = await c.registry.resolve(app.spec.destination.server or None, app.spec.destination.name or None)
        cache = destination.cache
        await cache.track_all()
        hooks = await _deletion_hooks(c, app, destination)
        await _pre_delete_hooks(app, destination, hooks[PRE_DELETE])
        owned = [o for o in (cache.get(k) for k in cache.owned_keys(app.name)) if o is not None]
        live = [o for o in owned if _deleted_with_app(o)]
        for _, group in groupby(sorted(live, key=wave, reverse=True), key=wave):
            members = list(group)
            deleted += [ResourceKey.of(o) for o in members]
            await asyncio.gather(
                *(
                    destination.cluster.delete(
                        o["apiVersion"],
                        o["kind"],
                        o["metadata"]["name"],
                        o["metadata"].get("namespace"),
                        propagation="Background" if background else "Foreground",
                    )
                    for o in members
                )
            )
            await asyncio.gather(
                *(cache.wait_for(ResourceKey.of(o), lambda x: x is None, timeout=DELETE_TIMEOUT) for o in members)
            )
        await _post_delete_hooks(destination, hooks[POST_DELETE])
        # the PreDelete hooks' objects go last: until then they say, across restarts, that they ran
        for hook in [o for o in owned if PRE_DELETE in hook_types(o)]:
            await _delete(destination, hook)
    except (TetherError, TimeoutError) as exc:
        message = short(f"deleting the app's resources: {exc}")
        log.warning("deletion failed", app=app.name, error=message)
        now = now_iso()
        await c.update_status(
            app.name,
            lambda s: s.__setitem__(
                "conditions",
                cond.set_condition(
                    s.get("conditions") or [], cond.DELETION_ERROR, "True", "DeletionFailed", message, now
                ),
            ),
        )
        c.queue.add_after(app.name, "deleting", c._backoff(app.name))
        return
    remaining = [f for f in finalizers if f not in FINALIZERS]
    try:
        await c.home.patch(
            APP_API_VERSION,
            "Application",
            app.name,
            app.namespace,
            [
                {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
                {"op": "replace", "path": "/metadata/finalizers", "value": remaining},
            ],
            patch_type="json",
        )
    except ClusterError as exc:
        if not exc.not_found:
            c.queue.add_after(app.name, "deleting", 1.0)
        return
    c.events.emit(obj, "ResourceDeleted", f"Deleted the resources of application {app.name}")
    finished = datetime.now(UTC)
    await c.audit_record(
        AuditEntry(
            app=f"{app.namespace}/{app.name}",
            operation_id=f"{app.name}-delete-{app.metadata.uid or finished.timestamp()}",
            kind="delete",
            initiated_by="unknown",
            automated=False,
            revisions=tuple(memory.revisions),
            phase="Succeeded",
            message=f"deleted {len(deleted)} resource(s) of application {app.name}",
            started_at=started,
            finished_at=finished,
            resources=tuple(
                AuditResource(
                    group=k.group,
                    kind=k.kind,
                    namespace=k.namespace or None,
                    name=k.name,
                    action="pruned",
                    status="Pruned",
                )
                for k in deleted
            ),
        )
    )


def _finalizers(obj: dict[str, Any]) -> list[str]:
    return list((obj.get("metadata") or {}).get("finalizers") or [])


def _deleted_with_app(obj: dict[str, Any]) -> bool:
    """Whether deleting the app deletes ``obj`` with its other objects: everything it owns (hooks a sync
    kept included), but deletion hooks (PostDelete runs after, PreDelete goes last), ``Delete=false``
    objects and helm's ``resource-policy: keep``."""
    if {PRE_DELETE, POST_DELETE} & set(hook_types(obj)):
        return False
    if annotation_options(obj, "sync-options").get("Delete", "").strip().lower() == "false":
        return False
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get("helm.sh/resource-policy", "")).strip().lower() != "keep"


async def _deletion_hooks(c: Controller, app: Application, destination: Any) -> dict[str, list[dict[str, Any]]]:
    """The app's PreDelete and PostDelete hooks, placed in their namespaces and named, by kind of hook.

    They come from a fresh render at what ``targetRevision`` names now, or from the last good one
    when the repository no longer renders (a broken commit must not skip a backup or a cleanup job).
    With neither, a Warning Event says no hook could run and there are none: blocking the deletion
    forever on a repository that is gone would be worse. A ``generateName`` hook gets a fixed name,
    so a later pass finds the one it made.

    Hooks are code run in the cluster, so the project must allow them as it must allow what a sync
    writes (the app's sources and destination, the kinds, the namespaces they name): any violation
    raises ``TetherError`` before a hook runs or an object is deleted, PostDelete hooks included.
    """
    memory = c.memory_of(app.name)
    last_good = memory.desired
    c.comparer.forget_refs(app.spec.sources_list())  # as Argo CD: the app as its repository holds it now
    try:
        desired = (await c.comparer.desired(app, memory, frozenset({"start"}), destination)).objects
    except TetherError as exc:
        if last_good is None:
            message = short(f"deletion hooks not run: the app does not render: {exc}", 500)
            log.warning("cannot render the app for its deletion hooks; none run", app=app.name, error=str(exc))
            obj = c.apps.get(app.name)
            if obj is not None:
                c.events.emit(obj, "DeletionHooksSkipped", message, warning=True)
            return {PRE_DELETE: [], POST_DELETE: []}
        log.warning("the app does not render; its deletion hooks come from the last good render", app=app.name)
        desired = last_good
    found: dict[str, list[dict[str, Any]]] = {}
    for kind in (PRE_DELETE, POST_DELETE):
        hooks = [o for o in desired if kind in hook_types(o)]
        placed = await assign_namespaces(
            hooks, cluster=destination.cluster, namespace=app.spec.destination.namespace or None
        )
        for hook in placed:
            meta = hook.setdefault("metadata", {})
            if not meta.get("name"):
                meta["name"] = f"{meta.pop('generateName', app.name + '-')}{kind}".lower()
        found[kind] = [mark(hook, app.name) for hook in placed]
    every = found[PRE_DELETE] + found[POST_DELETE]
    if every:
        project = c._project(app)
        forbidden = (
            [project]
            if isinstance(project, str)
            else project.app_violations(app.spec, destination.server, destination.name)
            + await c.resource_violations(app, project, destination, every)
        )
        if forbidden:
            raise TetherError(
                f"deletion hooks not run and nothing deleted: {'; '.join(forbidden)}", reason=Reason.INVALID_SPEC
            )
    return found


async def _finished(live: dict[str, Any] | None) -> bool:
    if live is None:
        return False
    health = await assess_async(live)
    return health is not None and health.status in (HealthStatus.HEALTHY, HealthStatus.DEGRADED)


async def _pre_delete_hooks(app: Application, destination: Any, hooks: list[dict[str, Any]]) -> None:
    """Run the app's PreDelete hooks and wait for them; raise ``TetherError`` naming a hook that failed.

    A hook this deletion already created (``RUN_ANNOTATION`` says so) is waited for, not created
    again, so a deletion resumed after a restart or a failed step never runs one twice. An instance
    a sync left (a hook that is also PreSync, say) is replaced.
    """
    if not hooks:
        return
    cache = destination.cache
    await cache.ensure(hooks)
    keys = []
    for hook in hooks:
        key = ResourceKey.of(hook)
        live = cache.get(key)
        if (
            live is not None
            and ((live.get("metadata") or {}).get("annotations") or {}).get(RUN_ANNOTATION) != PRE_DELETE
        ):
            await _delete(destination, live)
            live = await cache.wait_for(key, lambda x: x is None, timeout=DELETE_TIMEOUT)
        if live is None:
            hook["metadata"]["annotations"] = {
                **(hook["metadata"].get("annotations") or {}),
                RUN_ANNOTATION: PRE_DELETE,
            }
            await destination.cluster.create(hook)
            log.info("PreDelete hook created", app=app.name, hook=str(key))
        keys.append(key)
    failed = []
    for key in keys:
        done = await cache.wait_for(key, _finished, timeout=DELETE_TIMEOUT)
        health = await assess_async(done or {})
        if health is not None and health.status is HealthStatus.DEGRADED:
            failed.append(f"{key}: {health.message or 'failed'}")
    if failed:
        raise TetherError(
            f"PreDelete hook failed, so nothing is deleted ({'; '.join(failed)}); "
            "the deletion goes on once the hook succeeds, or after the hook is deleted (it then runs again)"
        )


async def _post_delete_hooks(destination: Any, hooks: list[dict[str, Any]]) -> None:
    """Apply the app's PostDelete hooks and wait for each to finish (Argo CD: after every resource is gone)."""
    for hook in hooks:
        applied = await destination.cluster.apply(hook, force=True)
        await destination.cache.ensure([applied])
        await destination.cache.wait_for(ResourceKey.of(applied), _finished, timeout=DELETE_TIMEOUT)
        await _delete(destination, applied)


async def _delete(destination: Any, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    await destination.cluster.delete(
        obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace") or None, propagation="Background"
    )
