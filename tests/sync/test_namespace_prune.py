"""Prune never deletes another app's objects through their Namespace (issue 7, section 5)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli import tether_async
from tests.cluster.wait import eventually
from tests.sync.helpers import cluster_scoped, configmap
from tether.cluster import Cluster
from tether.devcluster.cluster import ClusterState
from tether.resource import ResourceKey, mark
from tether.sync import OperationPhase, ResourceAction, ResultStatus, SyncOptions, SyncResult, sync_app
from tether.sync.contents import in_the_way

pytestmark = pytest.mark.cluster

FORCE = {"argocd.argoproj.io/sync-options": "PruneNamespaceContents=true"}


def namespace_obj(name: str, **annotations: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "annotations": dict(annotations)}}


async def sync(kube: Cluster, app: str, desired: list[dict[str, Any]], **options: Any) -> SyncResult:
    return await sync_app(app, desired, cluster=kube, options=SyncOptions(timeout=60, **options))


async def gone(kube: Cluster, name: str) -> None:
    await eventually(lambda: kube.get("v1", "Namespace", name), lambda ns: ns is None, timeout=60)


# ----------------------------------------------------------------------------- pure judgement


def _live(kind: str, name: str, namespace: str, *, owner: str | None = None, **meta: Any) -> dict[str, Any]:
    obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": namespace, **meta}}
    return mark(obj, owner) if owner else obj


def test_in_the_way_sorts_out_who_owns_what() -> None:
    ns = "shop"
    objects = [
        _live("ConfigMap", "kube-root-ca.crt", ns),  # every namespace has it
        _live("ServiceAccount", "default", ns),
        _live("ConfigMap", "theirs", ns, owner="b"),
        _live("ConfigMap", "doomed", ns, owner="a"),
        _live("ConfigMap", "kept", ns, owner="a"),  # desired, or Prune=false: not pruned by this sync
        _live("ConfigMap", "hand-made", ns),
        _live("Pod", "web-1", ns, ownerReferences=[{"kind": "ReplicaSet", "name": "web"}]),
        _live("Service", "web", ns, owner="a"),
        _live("Endpoints", "web", ns),
    ]
    doomed = {ResourceKey("", "ConfigMap", ns, "doomed"), ResourceKey("", "Service", ns, "web")}
    found = {(b.key.name, b.why) for b in in_the_way(objects, app="a", doomed=doomed)}
    assert found == {
        ("theirs", "app b"),
        ("kept", "still wanted by this app"),
        ("hand-made", "not managed by any app"),
    }
    assert in_the_way(objects[:2] + objects[3:4], app="a", doomed=doomed) == []


# ----------------------------------------------------------------------------- against the devcluster


async def test_pruning_a_namespace_with_another_apps_objects_is_skipped_until_forced(kube: Cluster, app: str) -> None:
    other = f"{app}-b"
    ns = f"t-nsprune-{secrets.token_hex(3)}"
    async with cluster_scoped(kube, namespace_obj(ns)):
        first = await sync(kube, app, [namespace_obj(ns), configmap("a-cfg", ns)], namespace=ns)
        assert first.phase is OperationPhase.SUCCEEDED, first.message
        b = await sync(kube, other, [configmap("b-one", ns), configmap("b-two", ns)], namespace=ns)
        assert b.phase is OperationPhase.SUCCEEDED, b.message

        # A drops its namespace and its ConfigMap from git, and prunes.
        result = await sync(kube, app, [configmap("elsewhere", "default")], namespace=ns, prune=True)
        try:
            assert result.phase is OperationPhase.SUCCEEDED, result.message
            skipped = result.find("Namespace", ns)
            assert skipped is not None
            assert (skipped.action, skipped.status) == (ResourceAction.PRUNE_SKIPPED, ResultStatus.PRUNE_SKIPPED)
            assert sorted(skipped.blocked_by) == [
                f"ConfigMap {ns}/b-one (app {other})",
                f"ConfigMap {ns}/b-two (app {other})",
            ]
            assert "PruneNamespaceContents=true" in skipped.message and f"b-one (app {other})" in skipped.message
            assert f"not pruned, still holding objects that are not pruned with them: {ns}" in result.message
            # A's own ConfigMap in it was pruned; B's objects and the namespace are untouched
            assert result.find("ConfigMap", "a-cfg").action is ResourceAction.PRUNED
            assert await kube.get("v1", "Namespace", ns) is not None
            assert (await kube.get("v1", "Namespace", ns))["metadata"].get("deletionTimestamp") is None
            assert await kube.get("v1", "ConfigMap", "b-one", ns) is not None
            assert await kube.get("v1", "ConfigMap", "b-two", ns) is not None

            # the dry run tells the same before anything is done
            dry = await sync(kube, app, [configmap("elsewhere", "default")], namespace=ns, prune=True, dry_run=True)
            assert dry.find("Namespace", ns).action is ResourceAction.PRUNE_SKIPPED
            assert len(dry.find("Namespace", ns).blocked_by) == 2

            # the explicit option, app-wide here, lets it go, and B's objects with it
            forced = await sync(
                kube,
                app,
                [configmap("elsewhere", "default")],
                namespace=ns,
                prune=True,
                prune_namespace_contents=True,
            )
            assert forced.phase is OperationPhase.SUCCEEDED, forced.message
            assert forced.find("Namespace", ns).action is ResourceAction.PRUNED
            await gone(kube, ns)
            assert await kube.get("v1", "ConfigMap", "b-one", ns) is None
        finally:
            await kube.delete("v1", "ConfigMap", "elsewhere", "default", propagation="Background")


async def test_the_per_namespace_annotation_allows_it_and_an_unmanaged_object_blocks(kube: Cluster, app: str) -> None:
    guarded, forced = f"t-nsg-{secrets.token_hex(3)}", f"t-nsf-{secrets.token_hex(3)}"
    async with cluster_scoped(kube, namespace_obj(guarded), namespace_obj(forced)):
        desired = [namespace_obj(guarded), namespace_obj(forced, **FORCE), configmap("keep", "default")]
        first = await sync(kube, app, desired, namespace="default")
        assert first.phase is OperationPhase.SUCCEEDED, first.message
        # Objects of nobody, made by hand, in both.
        await kube.apply(configmap("by-hand", guarded))
        await kube.apply(configmap("by-hand", forced))
        try:
            result = await sync(kube, app, [configmap("keep", "default")], namespace="default", prune=True)
            assert result.phase is OperationPhase.SUCCEEDED, result.message
            held = result.find("Namespace", guarded)
            assert held.action is ResourceAction.PRUNE_SKIPPED
            assert held.blocked_by == [f"ConfigMap {guarded}/by-hand (not managed by any app)"]
            assert result.find("Namespace", forced).action is ResourceAction.PRUNED
            await gone(kube, forced)
            assert await kube.get("v1", "ConfigMap", "by-hand", guarded) is not None
        finally:
            await kube.delete("v1", "ConfigMap", "keep", "default", propagation="Background")


async def test_a_namespace_holding_only_what_the_app_prunes_is_deleted(kube: Cluster, app: str) -> None:
    ns = f"t-nsown-{secrets.token_hex(3)}"
    async with cluster_scoped(kube, namespace_obj(ns)):
        first = await sync(kube, app, [namespace_obj(ns), configmap("one", ns), configmap("two", ns)], namespace=ns)
        assert first.phase is OperationPhase.SUCCEEDED, first.message
        result = await sync(kube, app, [configmap("other", "default")], namespace=ns, prune=True)
        try:
            assert result.phase is OperationPhase.SUCCEEDED, result.message
            assert result.find("Namespace", ns).action is ResourceAction.PRUNED
            assert result.find("Namespace", ns).blocked_by == []
            await gone(kube, ns)
        finally:
            await kube.delete("v1", "ConfigMap", "other", "default", propagation="Background")


async def test_a_namespace_with_objects_the_app_still_wants_is_kept(kube: Cluster, app: str) -> None:
    ns = f"t-nswant-{secrets.token_hex(3)}"
    async with cluster_scoped(kube, namespace_obj(ns)):
        first = await sync(kube, app, [namespace_obj(ns), configmap("wanted", ns)], namespace=ns)
        assert first.phase is OperationPhase.SUCCEEDED, first.message
        # git drops the Namespace but still has the ConfigMap in it
        result = await sync(kube, app, [configmap("wanted", ns)], namespace=ns, prune=True)
        assert result.phase is OperationPhase.SUCCEEDED, result.message
        held = result.find("Namespace", ns)
        assert held.action is ResourceAction.PRUNE_SKIPPED
        assert held.blocked_by == [f"ConfigMap {ns}/wanted (still wanted by this app)"]
        assert await kube.get("v1", "ConfigMap", "wanted", ns) is not None


async def test_cli_json_reports_prune_skipped_with_the_objects_in_the_way(
    kube: Cluster, devcluster: ClusterState, app: str, tmp_path: Path
) -> None:
    ns = f"t-nscli-{secrets.token_hex(3)}"
    source = tmp_path / "app"
    source.mkdir()
    (source / "ns.yaml").write_text(yaml.safe_dump(namespace_obj(ns)))
    (source / "cm.yaml").write_text(yaml.safe_dump(configmap("a-cfg", ns)))
    common = ["--app", app, "--dest-namespace", ns, "--kubeconfig", devcluster.kubeconfig, "--timeout", "60"]
    async with cluster_scoped(kube, namespace_obj(ns)):
        code, out, err = await tether_async("sync", str(source), *common)
        assert code == 0, err + out
        await kube.apply(mark(configmap("b-cfg", ns), f"{app}-b"))
        (source / "ns.yaml").unlink()
        (source / "cm.yaml").write_text(yaml.safe_dump(configmap("a-cfg", "default")))
        try:
            code, out, err = await tether_async("sync", str(source), *common, "--prune", "-o", "json")
            assert code == 0, err + out
            data = json.loads(out)
            held = next(r for r in data["resources"] if r["kind"] == "Namespace")
            assert held["action"] == "pruneSkipped" and held["status"] == "PruneSkipped"
            assert held["blockedBy"] == [f"ConfigMap {ns}/b-cfg (app {app}-b)"]
            assert await kube.get("v1", "ConfigMap", "b-cfg", ns) is not None
        finally:
            await kube.delete("v1", "ConfigMap", "a-cfg", "default", propagation="Background")
