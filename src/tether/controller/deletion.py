"""Deleting an Application: with the resources finalizer, its objects go first, in reverse wave order,
then its ``PostDelete`` hooks run, then the finalizer is removed. Without it, objects stay.

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
from tether.errors import TetherError
from tether.health import HealthStatus, assess_async
from tether.hooks import POST_DELETE, hook_types, wave
from tether.model import Application
from tether.resource import ResourceKey, annotation_options, mark

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
    """Run the deletion of ``app`` (being deleted) one step further; idempotent across restarts."""
    finalizers = list((obj.get("metadata") or {}).get("finalizers") or [])
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
        live = [o for o in (cache.get(k) for k in cache.owned_keys(app.name)) if o is not None and _deleted_with_app(o)]
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
        await _post_delete_hooks(c, app, destination)
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


def _deleted_with_app(obj: dict[str, Any]) -> bool:
    """Whether deleting the app deletes ``obj``: everything it owns (hooks a sync kept included), but
    PostDelete hooks (they run after), ``Delete=false`` objects and helm's ``resource-policy: keep``."""
    if POST_DELETE in hook_types(obj):
        return False
    if annotation_options(obj, "sync-options").get("Delete", "").strip().lower() == "false":
        return False
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get("helm.sh/resource-policy", "")).strip().lower() != "keep"


async def _post_delete_hooks(c: Controller, app: Application, destination: Any) -> None:
    """Apply the app's PostDelete hooks and wait for each to finish (Argo CD: after every resource is gone).

    The hooks come from a fresh render, or from the last good one when the repository no longer renders
    (a broken commit must not skip a cleanup job). With neither, deletion goes on and a Warning Event says
    no hook could run: blocking it forever on a repository that is gone would be worse.
    """
    memory = c.memory_of(app.name)
    last_good = memory.desired
    try:
        desired = await c.comparer.desired(app, memory, frozenset({"start"}), destination)
    except TetherError as exc:
        if last_good is None:
            message = short(f"PostDelete hooks not run: the app does not render: {exc}", 500)
            log.warning("cannot render the app for its PostDelete hooks; none run", app=app.name, error=str(exc))
            obj = c.apps.get(app.name)
            if obj is not None:
                c.events.emit(obj, "PostDeleteHooksSkipped", message, warning=True)
            return
        log.warning("the app does not render; its PostDelete hooks come from the last good render", app=app.name)
        desired = last_good
    hooks = [o for o in desired if POST_DELETE in hook_types(o)]
    if not hooks:
        return
    placed = await assign_namespaces(
        hooks, cluster=destination.cluster, namespace=app.spec.destination.namespace or None
    )
    for hook in placed:
        meta = hook.setdefault("metadata", {})
        if not meta.get("name"):
            meta["name"] = f"{meta.pop('generateName', app.name + '-')}postdelete".lower()
        applied = await destination.cluster.apply(mark(hook, app.name), force=True)
        key = ResourceKey.of(applied)
        await destination.cache.ensure([applied])

        async def finished(live: dict[str, Any] | None) -> bool:
            if live is None:
                return False
            health = await assess_async(live)
            return health is not None and health.status in (HealthStatus.HEALTHY, HealthStatus.DEGRADED)

        await destination.cache.wait_for(key, finished, timeout=DELETE_TIMEOUT)
        await destination.cluster.delete(
            applied["apiVersion"], applied["kind"], key.name, key.namespace or None, propagation="Background"
        )
