"""argocd-example-apps' sync-waves, pre-post-sync and helm-hooks, synced into the devcluster.

The order is taken from raw watches started before the sync (ADDED events, ordered by the
resourceVersion etcd gave each creation), not from Tether's own account.
"""

from __future__ import annotations

import pytest

from tests.cluster.wait import eventually
from tests.render.helpers import CORPUS
from tests.sync.helpers import Recorder, load_yaml, position
from tether.cluster import Cluster
from tether.model.source import ApplicationSource
from tether.pipeline import desired_state
from tether.sync import OperationPhase, Phase, ResourceAction, SyncOptions, sync_app

pytestmark = pytest.mark.cluster

KINDS = [("batch/v1", "Job"), ("v1", "Service"), ("apps/v1", "ReplicaSet"), ("apps/v1", "Deployment")]


async def render(app: str, path: str, namespace: str) -> list[dict]:
    source = ApplicationSource.model_validate({"repoURL": str(CORPUS), "path": path})
    state = await desired_state(app, source, git=None, cache=None, secrets_backend=None, namespace=namespace)
    return state.objects


async def jobs(kube: Cluster, namespace: str) -> dict[str, dict]:
    items, _ = await kube.list("batch/v1", "Job", namespace)
    return {j["metadata"]["name"]: j for j in items}


async def test_sync_waves_run_hooks_and_waves_in_order(kube: Cluster, namespace: str, app: str) -> None:
    desired = load_yaml(CORPUS / "sync-waves" / "manifests.yaml")
    async with Recorder(kube, namespace, KINDS) as seen:
        result = await sync_app(app, desired, cluster=kube, options=SyncOptions(namespace=namespace, timeout=90))
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    order = seen.added()
    steps = [
        position(order, "Job", "upgrade-sql-schema"),  # PreSync hook (generateName)
        position(order, "Service", "backend"),  # Sync wave 0: Service before ReplicaSet (kind order)
        position(order, "ReplicaSet", "backend"),
        position(order, "Job", "maint-page-up"),  # Sync hook, wave 1
        position(order, "Service", "frontend"),  # wave 2
        position(order, "ReplicaSet", "frontend"),
        position(order, "Job", "maint-page-down"),  # Sync hook, wave 3
    ]
    assert steps == sorted(steps), order

    # The waves really waited: the frontend was created only once the backend was ready.
    backend_ready = next(
        o
        for o in seen.objects
        if o["kind"] == "ReplicaSet"
        and o["metadata"]["name"] == "backend"
        and (o.get("status") or {}).get("readyReplicas") == 1
    )
    frontend = seen.first("ADDED", "ReplicaSet", "frontend")
    assert frontend is not None and int(backend_ready["metadata"]["resourceVersion"]) < frontend.resource_version

    upgrade = next(r for r in result.resources if r.name.startswith("upgrade-sql-schema"))
    assert (upgrade.phase, upgrade.action, upgrade.hook_phase) == (
        Phase.PRE_SYNC,
        ResourceAction.HOOK,
        OperationPhase.SUCCEEDED,
    )
    assert result.find("ReplicaSet", "frontend").wave == 2

    # BeforeHookCreation (the default) keeps hooks after the sync; the next sync replaces them.
    before = await jobs(kube, namespace)
    assert {"maint-page-up", "maint-page-down"} <= set(before)
    again = await sync_app(app, desired, cluster=kube, options=SyncOptions(namespace=namespace, timeout=90))
    assert again.phase is OperationPhase.SUCCEEDED, again.message
    after = await jobs(kube, namespace)
    assert after["maint-page-up"]["metadata"]["uid"] != before["maint-page-up"]["metadata"]["uid"]
    assert len([n for n in after if n.startswith("upgrade-sql-schema")]) == 2  # generateName: a new one each sync
    assert again.find("ReplicaSet", "backend").action is ResourceAction.UNCHANGED


async def test_pre_post_sync_hooks_run_around_the_app_and_are_deleted_on_success(
    kube: Cluster, namespace: str, app: str
) -> None:
    desired = await render(app, "pre-post-sync", namespace)
    async with Recorder(kube, namespace, KINDS) as seen:
        result = await sync_app(app, desired, cluster=kube, options=SyncOptions(namespace=namespace, timeout=90))
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    order = seen.added()
    before = position(order, "Job", "pre-post-sync-before")
    service = position(order, "Service", "pre-post-sync-kustomize-guestbook-ui")
    deploy = position(order, "Deployment", "pre-post-sync-kustomize-guestbook-ui")
    after = position(order, "Job", "pre-post-sync-after")
    assert before < service < deploy < after, order
    # The PostSync hook started only once the Deployment was healthy.
    assert result.find("Deployment", "pre-post-sync-kustomize-guestbook-ui").health == "Healthy"
    # HookSucceeded: both hooks are deleted once they succeeded.
    await eventually(lambda: jobs(kube, namespace), lambda found: not found, timeout=30)
    assert all(e.type != "DELETED" or e.kind == "Job" for e in seen.events)
    for name in ("pre-post-sync-before", "pre-post-sync-after"):
        hook = result.find("Job", name)
        assert (
            hook is not None
            and hook.hook_phase is OperationPhase.SUCCEEDED
            and "deleted (HookSucceeded)" in hook.message
        )


async def test_helm_hooks_map_to_phases_and_weights(kube: Cluster, namespace: str, app: str) -> None:
    desired = await render(app, "helm-hooks", namespace)
    async with Recorder(kube, namespace, KINDS) as seen:
        result = await sync_app(app, desired, cluster=kube, options=SyncOptions(namespace=namespace, timeout=90))
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    order = seen.added()
    steps = [
        position(order, "Job", "upgrade-sql-schema"),  # pre-install, weight -2
        position(order, "Job", "maint-page-up"),  # pre-install, weight -1
        position(order, "ReplicaSet", "frontend"),  # plain resource, wave 0
        position(order, "Service", "frontend"),  # hook-weight 2 is its wave, so after the ReplicaSet
        position(order, "Job", "maint-page-down"),  # post-install
    ]
    assert steps == sorted(steps), order
    assert result.find("Job", "maint-page-down").phase is Phase.POST_SYNC
    assert result.find("Service", "frontend").wave == 2
    # before-hook-creation keeps the hooks until the next sync
    assert {"maint-page-up", "maint-page-down"} <= set(await jobs(kube, namespace))
