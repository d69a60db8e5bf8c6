"""Prune deletes exactly what this app owns and git dropped; nothing else, and never everything by accident."""

from __future__ import annotations

import pytest

from tests.cluster.wait import eventually
from tests.sync.helpers import Recorder, configmap, deployment
from tether.cluster import Cluster
from tether.resource import mark
from tether.sync import OperationPhase, ResourceAction, ResultStatus, SyncOptions, sync_app

pytestmark = pytest.mark.cluster


async def sync(kube: Cluster, app: str, desired: list[dict], namespace: str, **options) -> object:
    result = await sync_app(app, desired, cluster=kube, options=SyncOptions(namespace=namespace, timeout=60, **options))
    return result


async def names(kube: Cluster, namespace: str) -> set[str]:
    items, _ = await kube.list("v1", "ConfigMap", namespace)
    return {i["metadata"]["name"] for i in items if i["metadata"]["name"] != "kube-root-ca.crt"}


async def test_prune_deletes_exactly_the_removed_object(kube: Cluster, namespace: str, app: str) -> None:
    first = await sync(
        kube, app, [configmap("a", namespace), configmap("b", namespace), configmap("c", namespace)], namespace
    )
    assert first.phase is OperationPhase.SUCCEEDED, first.message
    without_prune = await sync(kube, app, [configmap("a", namespace), configmap("c", namespace)], namespace)
    assert without_prune.phase is OperationPhase.SUCCEEDED
    skipped = without_prune.find("ConfigMap", "b")
    assert skipped.action is ResourceAction.PRUNE_SKIPPED and "requires pruning" in skipped.message
    assert await names(kube, namespace) == {"a", "b", "c"}

    result = await sync(kube, app, [configmap("a", namespace), configmap("c", namespace)], namespace, prune=True)
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    pruned = result.find("ConfigMap", "b")
    assert (pruned.action, pruned.status) == (ResourceAction.PRUNED, ResultStatus.PRUNED)
    assert await names(kube, namespace) == {"a", "c"}
    assert [r.name for r in result.resources if r.action is ResourceAction.PRUNED] == ["b"]


async def test_prune_never_touches_objects_of_another_app_or_with_a_copied_id(
    kube: Cluster, namespace: str, app: str
) -> None:
    await kube.apply(mark(configmap("theirs", namespace), "other-app"))
    copied = mark(configmap("original", namespace), app)  # this app's id, copied onto another object
    copied["metadata"]["name"] = "impostor"
    await kube.apply(copied)
    await sync(kube, app, [configmap("mine", namespace)], namespace)
    result = await sync(kube, app, [configmap("new", namespace)], namespace, prune=True)
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    assert await names(kube, namespace) == {"theirs", "impostor", "new"}
    assert {r.name for r in result.resources if r.action is ResourceAction.PRUNED} == {"mine"}


async def test_an_empty_desired_state_prunes_nothing_unless_allow_empty(
    kube: Cluster, namespace: str, app: str
) -> None:
    await sync(kube, app, [configmap("a", namespace), configmap("b", namespace)], namespace)
    refused = await sync(kube, app, [], namespace, prune=True)
    assert refused.phase is OperationPhase.FAILED
    assert "allowEmpty" in refused.message and app in refused.message
    assert await names(kube, namespace) == {"a", "b"}

    allowed = await sync(kube, app, [], namespace, prune=True, allow_empty=True)
    assert allowed.phase is OperationPhase.SUCCEEDED, allowed.message
    assert await names(kube, namespace) == set()


async def test_prune_false_keeps_the_object_and_reports_it(kube: Cluster, namespace: str, app: str) -> None:
    keep = configmap("keep", namespace, **{"argocd.argoproj.io/sync-options": "Prune=false"})
    await sync(kube, app, [keep, configmap("go", namespace)], namespace)
    result = await sync(kube, app, [configmap("other", namespace)], namespace, prune=True)
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    kept = result.find("ConfigMap", "keep")
    assert (kept.action, kept.status) == (ResourceAction.PRUNE_SKIPPED, ResultStatus.PRUNE_SKIPPED)
    assert "Prune=false" in kept.message
    assert await names(kube, namespace) == {"keep", "other"}


async def test_prune_goes_in_reverse_wave_order_and_prune_last_after_everything(
    kube: Cluster, namespace: str, app: str
) -> None:
    await sync(
        kube, app, [configmap("old-early", namespace, wave=-1), configmap("old-late", namespace, wave=1)], namespace
    )
    desired = [configmap("new-0", namespace, wave=0), configmap("new-1", namespace, wave=1)]
    async with Recorder(kube, namespace, [("v1", "ConfigMap")]) as seen:
        result = await sync(kube, app, desired, namespace, prune=True)
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    events = [
        (e.type, e.name)
        for e in sorted(seen.events, key=lambda e: e.resource_version)
        if e.type in ("ADDED", "DELETED")
    ]
    # waves -1 and 1 swap for prune: old-late goes first (wave -1), old-early in wave 1 after new-1 is applied
    assert events.index(("DELETED", "old-late")) < events.index(("ADDED", "new-0"))
    assert events.index(("ADDED", "new-1")) < events.index(("DELETED", "old-early"))

    await sync(kube, app, desired + [configmap("old", namespace, wave=0)], namespace)
    last = [configmap("new-2", namespace, wave=2)] + desired
    async with Recorder(kube, namespace, [("v1", "ConfigMap")]) as seen:
        result = await sync(kube, app, last, namespace, prune=True, prune_last=True)
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    events = [
        (e.type, e.name)
        for e in sorted(seen.events, key=lambda e: e.resource_version)
        if e.type in ("ADDED", "DELETED")
    ]
    assert events[-1] == ("DELETED", "old") and ("ADDED", "new-2") in events
    assert result.find("ConfigMap", "old").wave == 3


async def test_prune_propagation_policy_orphan_leaves_dependents(kube: Cluster, namespace: str, app: str) -> None:
    await sync(kube, app, [deployment("web", namespace, replicas=1)], namespace)
    replicasets = await eventually(lambda: kube.list("apps/v1", "ReplicaSet", namespace), lambda r: len(r[0]) == 1)
    result = await sync(
        kube, app, [configmap("x", namespace)], namespace, prune=True, prune_propagation_policy="orphan"
    )
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    assert await kube.get("apps/v1", "Deployment", "web", namespace) is None
    rs_name = replicasets[0][0]["metadata"]["name"]
    orphan = await kube.get("apps/v1", "ReplicaSet", rs_name, namespace)
    assert orphan is not None and not orphan["metadata"].get("ownerReferences")
