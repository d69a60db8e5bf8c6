"""Deleting an Application through the running controller: with the resources finalizer its objects go in
reverse wave order, then its PostDelete hook runs, then the Application is gone; without it, objects stay."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.controller.conftest import API, application, eventually, project, running_controller
from tests.controller.test_loop import app_status, synced_healthy
from tests.sync.helpers import Recorder, job
from tether.cluster import Cluster
from tether.controller.controller import Controller
from tether.controller.deletion import delete_app
from tether.devcluster.gitserver import GitHttpServer
from tether.devcluster.passstore import PassStore
from tether.model import Application

pytestmark = pytest.mark.cluster

HOLD = "test.tether.dev/hold"


def waved(name: str, wave: int) -> str:
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"
        f"  annotations:\n    tether.dev/sync-wave: '{wave}'\ndata:\n  value: {name}\n"
    )


def post_delete_job(name: str) -> str:
    hook = job(name, "", hook="PostDelete")
    del hook["metadata"]["namespace"]
    return yaml.safe_dump(hook)


async def live(kube: Cluster, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    return await kube.get("batch/v1" if kind == "Job" else "v1", kind, name, namespace)


async def deletion_error(kube: Cluster, namespace: str, name: str) -> str:
    """Delete the Application and return the message of the DeletionError condition its deletion stops at."""
    await kube.delete(API, "Application", name, namespace, propagation="Background")
    status = await eventually(
        lambda: app_status(kube, namespace, name),
        lambda s: any(c.get("type") == "DeletionError" for c in s.get("conditions") or []),
        timeout=60,
    )
    return str(next(c["message"] for c in status["conditions"] if c["type"] == "DeletionError"))


async def test_the_finalizer_deletes_resources_in_reverse_wave_order_then_runs_post_delete_hooks(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    repo.commit(
        "v1",
        files={
            "app/early.yaml": waved("early", 0),
            "app/late.yaml": waved("late", 1),
            "app/cleanup.yaml": post_delete_job("cleanup"),
        },
    )
    app = application("doomed", namespace, repo.url, "app", namespace, syncPolicy={"automated": {"prune": True}})
    app["metadata"]["finalizers"] = ["resources-finalizer.tether.dev"]
    await kube.apply(app)
    status = await eventually(lambda: app_status(kube, namespace, "doomed"), synced_healthy, timeout=30)
    assert {r["name"] for r in status["resources"]} == {"early", "late"}  # the PostDelete hook is no resource
    assert await live(kube, "Job", "cleanup", namespace) is None  # and it does not run in a sync

    # hold the higher wave with a finalizer of our own: the lower wave must wait for it to be gone
    await kube.patch("v1", "ConfigMap", "late", namespace, {"metadata": {"finalizers": [HOLD]}})
    async with Recorder(kube, namespace, [("v1", "ConfigMap"), ("batch/v1", "Job")]) as seen:
        await kube.delete(API, "Application", "doomed", namespace, propagation="Background")
        await eventually(
            lambda: live(kube, "ConfigMap", "late", namespace),
            lambda o: bool((o or {}).get("metadata", {}).get("deletionTimestamp")),
            timeout=30,
        )
        await asyncio.sleep(3)
        early = await live(kube, "ConfigMap", "early", namespace)
        assert early is not None and not early["metadata"].get("deletionTimestamp"), "wave 0 went before wave 1"
        assert await live(kube, "Job", "cleanup", namespace) is None, "PostDelete ran before the resources went"
        assert await kube.get(API, "Application", "doomed", namespace) is not None

        await kube.patch("v1", "ConfigMap", "late", namespace, {"metadata": {"finalizers": None}})
        await eventually(lambda: kube.get(API, "Application", "doomed", namespace), lambda o: o is None, timeout=60)
    order = [(e.type, e.kind, e.name) for e in sorted(seen.events, key=lambda e: e.resource_version)]
    deleted_late = order.index(("DELETED", "ConfigMap", "late"))
    deleted_early = order.index(("DELETED", "ConfigMap", "early"))
    added_hook = order.index(("ADDED", "Job", "cleanup"))
    assert deleted_late < deleted_early < added_hook, order
    # the hook ran to completion before the finalizer came off, and was cleaned up afterwards
    completed = [
        o
        for o in seen.objects
        if o.get("kind", "Job") == "Job"
        and (o.get("metadata") or {}).get("name") == "cleanup"
        and any(c.get("type") == "Complete" for c in (o.get("status") or {}).get("conditions") or [])
    ]
    assert completed, "the PostDelete Job never completed"
    assert completed[0]["metadata"]["labels"]["tether.dev/app"] == "doomed"
    await eventually(lambda: live(kube, "Job", "cleanup", namespace), lambda o: o is None, timeout=30)
    assert await live(kube, "ConfigMap", "early", namespace) is None


@pytest.mark.parametrize("finalizer", [None, "resources-finalizer.argocd.argoproj.io"])
async def test_without_our_finalizer_resources_stay_and_argo_cds_finalizer_is_honoured(
    controller: Controller,
    kube: Cluster,
    namespace: str,
    git_server: GitHttpServer,
    unique_repo_name: str,
    finalizer: str | None,
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"app/kept.yaml": waved("kept", 0), "app/cleanup.yaml": post_delete_job("cleanup")})
    app = application("left", namespace, repo.url, "app", namespace, syncPolicy={"automated": {}})
    if finalizer:
        app["metadata"]["finalizers"] = [finalizer]
    await kube.apply(app)
    await eventually(lambda: app_status(kube, namespace, "left"), synced_healthy, timeout=30)
    async with Recorder(kube, namespace, [("batch/v1", "Job")]) as seen:
        await kube.delete(API, "Application", "left", namespace, propagation="Background")
        await eventually(lambda: kube.get(API, "Application", "left", namespace), lambda o: o is None, timeout=30)
        await asyncio.sleep(2)
    kept = await live(kube, "ConfigMap", "kept", namespace)
    if finalizer is None:
        assert kept is not None and not kept["metadata"].get("deletionTimestamp")
        assert kept["data"]["value"] == "kept"
        assert seen.events == []  # no PostDelete hook without the finalizer
    else:
        assert kept is None
        assert [(e.type, e.name) for e in seen.events][:1] == [("ADDED", "cleanup")]


async def test_post_delete_hooks_come_from_the_last_good_render_when_the_repository_no_longer_renders(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"app/kept.yaml": waved("kept", 0), "app/cleanup.yaml": post_delete_job("cleanup")})
    app = application("broke", namespace, repo.url, "app", namespace, syncPolicy={"automated": {}})
    app["metadata"]["finalizers"] = ["resources-finalizer.tether.dev"]
    await kube.apply(app)
    await eventually(lambda: app_status(kube, namespace, "broke"), synced_healthy, timeout=30)
    repo.commit("broken", files={"app/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: [x]\n"})
    await eventually(
        lambda: app_status(kube, namespace, "broke"),
        lambda s: any(c.get("type") == "ComparisonError" for c in s.get("conditions") or []),
        timeout=30,
    )
    async with Recorder(kube, namespace, [("batch/v1", "Job")]) as seen:
        await kube.delete(API, "Application", "broke", namespace, propagation="Background")
        await eventually(lambda: kube.get(API, "Application", "broke", namespace), lambda o: o is None, timeout=60)
    assert await live(kube, "ConfigMap", "kept", namespace) is None
    assert [(e.type, e.name) for e in seen.events][:1] == [("ADDED", "cleanup")]  # the hook still ran


async def test_the_finalizer_deletes_hooks_a_sync_left_behind(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    """A PreSync hook Job with the default policy (BeforeHookCreation) stays after its sync, labelled with the app;
    the app's deletion must take it too, or it is orphaned for ever."""
    hook = job("migrate", "", hook="PreSync")
    del hook["metadata"]["namespace"]
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"app/migrate.yaml": yaml.safe_dump(hook), "app/kept.yaml": waved("kept", 0)})
    app = application("hooked", namespace, repo.url, "app", namespace, syncPolicy={"automated": {}})
    app["metadata"]["finalizers"] = ["resources-finalizer.tether.dev"]
    await kube.apply(app)
    await eventually(lambda: app_status(kube, namespace, "hooked"), synced_healthy, timeout=30)
    left = await live(kube, "Job", "migrate", namespace)
    assert left is not None and left["metadata"]["labels"]["tether.dev/app"] == "hooked"
    await kube.delete(API, "Application", "hooked", namespace, propagation="Background")
    await eventually(lambda: kube.get(API, "Application", "hooked", namespace), lambda o: o is None, timeout=30)
    assert await live(kube, "ConfigMap", "kept", namespace) is None
    await eventually(lambda: live(kube, "Job", "migrate", namespace), lambda o: o is None, timeout=10)


async def test_the_finalizer_keeps_objects_marked_delete_false(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    kept = yaml.safe_load(waved("kept", 0))
    kept["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] = "Delete=false"
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"app/kept.yaml": yaml.safe_dump(kept), "app/gone.yaml": waved("gone", 0)})
    app = application("keeper", namespace, repo.url, "app", namespace, syncPolicy={"automated": {}})
    app["metadata"]["finalizers"] = ["resources-finalizer.tether.dev"]
    await kube.apply(app)
    await eventually(lambda: app_status(kube, namespace, "keeper"), synced_healthy, timeout=30)
    await kube.delete(API, "Application", "keeper", namespace, propagation="Background")
    await eventually(lambda: kube.get(API, "Application", "keeper", namespace), lambda o: o is None, timeout=30)
    assert await live(kube, "ConfigMap", "gone", namespace) is None
    assert await live(kube, "ConfigMap", "kept", namespace) is not None


def pre_delete_job(name: str, *, fail: bool = False, helm: bool = False) -> str:
    hook = job(name, "", hook=None if helm else "PreDelete", fail=fail)
    del hook["metadata"]["namespace"]
    if helm:  # Helm's form, which Argo CD reads as PreDelete too
        hook["metadata"]["annotations"]["helm.sh/hook"] = "pre-delete"
    return yaml.safe_dump(hook)


@pytest.mark.parametrize("helm", [False, True], ids=["argocd", "helm"])
async def test_pre_delete_hooks_run_before_anything_is_deleted_and_a_failed_one_stops_the_deletion(
    controller: Controller,
    kube: Cluster,
    namespace: str,
    git_server: GitHttpServer,
    unique_repo_name: str,
    helm: bool,
) -> None:
    name = "guarded-helm" if helm else "guarded"  # the app label is per cluster: one name per parametrisation
    repo = git_server.create_repo(unique_repo_name)
    repo.commit(
        "v1",
        files={"app/kept.yaml": waved("data", 0), "app/backup.yaml": pre_delete_job("backup", fail=True, helm=helm)},
    )
    app = application(name, namespace, repo.url, "app", namespace, syncPolicy={"automated": {}})
    app["metadata"]["finalizers"] = ["resources-finalizer.tether.dev"]
    await kube.apply(app)
    status = await eventually(lambda: app_status(kube, namespace, name), synced_healthy, timeout=30)
    assert {r["name"] for r in status["resources"]} == {"data"}  # the hook is no resource
    assert await live(kube, "Job", "backup", namespace) is None  # and it does not run in a sync

    # the hook fails: nothing is deleted, and the condition says which hook and what to do
    message = await deletion_error(kube, namespace, name)
    assert f"Job.batch {namespace}/backup" in message and "nothing is deleted" in message, message
    await asyncio.sleep(2)
    assert await live(kube, "ConfigMap", "data", namespace) is not None
    assert await kube.get(API, "Application", name, namespace) is not None

    # the hook is fixed in git and its failed run deleted: it runs again, succeeds, and the deletion goes on
    repo.commit("fixed", files={"app/backup.yaml": pre_delete_job("backup", helm=helm)})
    async with Recorder(kube, namespace, [("v1", "ConfigMap"), ("batch/v1", "Job")]) as seen:
        await kube.delete("batch/v1", "Job", "backup", namespace, propagation="Background")
        await eventually(lambda: kube.get(API, "Application", name, namespace), lambda o: o is None, timeout=90)
    order = [(e.type, e.kind, e.name) for e in sorted(seen.events, key=lambda e: e.resource_version)]
    completed = [
        i
        for i, o in enumerate(sorted(seen.objects, key=lambda o: int(o["metadata"]["resourceVersion"])))
        if (o.get("metadata") or {}).get("name") == "backup"
        and any(c.get("type") == "Complete" for c in (o.get("status") or {}).get("conditions") or [])
    ]
    assert completed, "the PreDelete Job never completed"
    assert ("DELETED", "ConfigMap", "data") in order
    added = [i for i, e in enumerate(order) if e == ("ADDED", "Job", "backup")]
    assert added and added[-1] < order.index(("DELETED", "ConfigMap", "data")), order
    assert await live(kube, "ConfigMap", "data", namespace) is None
    await eventually(lambda: live(kube, "Job", "backup", namespace), lambda o: o is None, timeout=30)


async def test_a_deletion_hook_the_project_forbids_runs_nowhere_and_deletes_nothing(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    """A hook is code run in the cluster: a commit cannot use the delete to get past its project."""
    name, binding = "hook-bounded", f"{namespace}-grant"
    await kube.apply(
        project(
            "hook-bounded",
            namespace,
            sourceRepos=["*"],
            destinations=[{"server": "*", "namespace": namespace}],
            clusterResourceWhitelist=[],  # no cluster-scoped kind at all
        )
    )
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"app/kept.yaml": waved("kept", 0)})
    app = application(name, namespace, repo.url, "app", namespace, project="hook-bounded")
    app["spec"]["syncPolicy"] = {"automated": {}}
    app["metadata"]["finalizers"] = ["resources-finalizer.tether.dev"]
    await kube.apply(app)
    await eventually(lambda: app_status(kube, namespace, name), synced_healthy, timeout=30)

    grant = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": binding, "annotations": {"argocd.argoproj.io/hook": "PostDelete"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}],
    }
    repo.commit("a hook that grants cluster-admin", files={"app/grant.yaml": yaml.safe_dump(grant)})
    message = await deletion_error(kube, namespace, name)
    assert "deletion hooks not run and nothing deleted" in message and "ClusterRoleBinding" in message, message
    await asyncio.sleep(2)
    rbac = "rbac.authorization.k8s.io/v1"
    assert await kube.get(rbac, "ClusterRoleBinding", binding, None) is None
    assert await live(kube, "ConfigMap", "kept", namespace) is not None

    repo.commit("the hook removed", files={"app/grant.yaml": None})  # the next pass deletes the app
    await eventually(lambda: kube.get(API, "Application", name, namespace), lambda o: o is None, timeout=90)
    assert await live(kube, "ConfigMap", "kept", namespace) is None
    assert await kube.get(rbac, "ClusterRoleBinding", binding, None) is None


async def test_a_pass_on_a_stale_copy_of_a_deleted_app_runs_no_hook_again(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    """The informer can still show the finalizer just after the last pass removed it: a reconcile queued
    meanwhile must not take the app's ghost for an app whose PreDelete hooks never ran."""
    name = "ghost"
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"app/kept.yaml": waved("haunted", 0), "app/backup.yaml": pre_delete_job("backup")})
    app = application(name, namespace, repo.url, "app", namespace, syncPolicy={"automated": {}})
    app["metadata"]["finalizers"] = ["resources-finalizer.tether.dev"]
    await kube.apply(app)
    await eventually(lambda: app_status(kube, namespace, name), synced_healthy, timeout=30)
    stale = await kube.get(API, "Application", name, namespace)
    await kube.delete(API, "Application", name, namespace, propagation="Background")
    await eventually(lambda: kube.get(API, "Application", name, namespace), lambda o: o is None, timeout=90)
    await eventually(lambda: live(kube, "Job", "backup", namespace), lambda o: o is None, timeout=30)

    stale["metadata"]["deletionTimestamp"] = "2026-12-03T00:00:00Z"  # as the informer last saw it
    async with Recorder(kube, namespace, [("batch/v1", "Job")]) as seen:
        await delete_app(controller, Application.from_object(stale), stale)
        await asyncio.sleep(1)
    assert seen.events == [], seen.events  # no hook made again
    assert await live(kube, "ConfigMap", "haunted", namespace) is None


async def test_a_deletion_waiting_for_its_objects_holds_up_no_other_app(
    kube: Cluster,
    crds_installed: None,
    namespace: str,
    git_server: GitHttpServer,
    unique_repo_name: str,
    pass_store: PassStore,
    tmp_path: Path,
) -> None:
    """A deletion pass runs beside the workers, as an operation does: with a single worker, an app created
    while another app's deletion waits for an object held by a finalizer still syncs at once."""
    repo = git_server.create_repo(unique_repo_name)
    repo.commit(
        "v1", files={"slow-doomed/held.yaml": waved("held", 0), "beside-doomed/c.yaml": waved("beside-doomed", 0)}
    )
    async with running_controller(kube, namespace, tmp_path, pass_store, max_compares=1):
        app = application("slow-doomed", namespace, repo.url, "slow-doomed", namespace, syncPolicy={"automated": {}})
        app["metadata"]["finalizers"] = ["resources-finalizer.argocd.argoproj.io"]
        await kube.apply(app)
        await eventually(lambda: app_status(kube, namespace, "slow-doomed"), synced_healthy, timeout=30)
        await kube.patch("v1", "ConfigMap", "held", namespace, {"metadata": {"finalizers": [HOLD]}})
        await kube.delete(API, "Application", "slow-doomed", namespace, propagation="Background")
        await eventually(
            lambda: live(kube, "ConfigMap", "held", namespace),
            lambda o: bool((o or {}).get("metadata", {}).get("deletionTimestamp")),
            timeout=30,
        )
        await kube.apply(
            application("beside-doomed", namespace, repo.url, "beside-doomed", namespace, syncPolicy={"automated": {}})
        )
        await eventually(lambda: app_status(kube, namespace, "beside-doomed"), synced_healthy, timeout=20)
        assert await kube.get(API, "Application", "slow-doomed", namespace) is not None  # still waiting for "held"
        await kube.patch("v1", "ConfigMap", "held", namespace, {"metadata": {"finalizers": None}})
        await eventually(
            lambda: kube.get(API, "Application", "slow-doomed", namespace), lambda o: o is None, timeout=30
        )
