"""App of apps through the running controller: a parent whose manifests are Tether Applications, children
that reconcile by themselves, a child pruned with its objects; and Argo CD's app-of-apps example chart,
converted by `tether import`, accepted by the API server and run as an app of apps from the git server."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli import tether_async
from tests.controller.conftest import API, application, eventually
from tests.controller.test_loop import app_status, configmap, synced_healthy
from tests.render.helpers import CORPUS
from tether.cluster import Cluster, ClusterError
from tether.controller.controller import Controller
from tether.devcluster.gitserver import GitHttpServer

pytestmark = pytest.mark.cluster

HELM = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "helm"
OUR_FINALIZER = "resources-finalizer.tether.dev"


def child(name: str, namespace: str, repo_url: str, path: str, *, finalizer: bool = False) -> str:
    app = application(name, namespace, repo_url, path, namespace, syncPolicy={"automated": {"prune": True}})
    if finalizer:
        app["metadata"]["finalizers"] = [OUR_FINALIZER]
    return yaml.safe_dump(app)


async def apps_in(kube: Cluster, namespace: str) -> dict[str, dict[str, Any]]:
    listed, _ = await kube.list(API, "Application", namespace)
    return {a["metadata"]["name"]: a for a in listed}


async def tear_down(kube: Cluster, namespace: str, parent: str) -> None:
    """Parent first (no finalizer: its children stay), then the children, each with its own finalizer run
    by the controller; whatever is still there after that loses its finalizers so the namespace can go."""
    with contextlib.suppress(ClusterError):
        await kube.delete(API, "Application", parent, namespace, propagation="Background")
        await eventually(lambda: kube.get(API, "Application", parent, namespace), lambda o: o is None, timeout=20)
    for name in await apps_in(kube, namespace):
        with contextlib.suppress(ClusterError):
            await kube.delete(API, "Application", name, namespace, propagation="Background")
    with contextlib.suppress(AssertionError):
        await eventually(lambda: apps_in(kube, namespace), lambda apps: not apps, timeout=30)
    for name in await apps_in(kube, namespace):
        with contextlib.suppress(ClusterError):
            await kube.patch(API, "Application", name, namespace, {"metadata": {"finalizers": None}})


async def test_a_parent_app_creates_children_that_reconcile_and_prunes_a_child_with_its_objects(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    repo.commit(
        "v1",
        files={
            "children/a.yaml": child("child-a", namespace, repo.url, "a"),
            "children/b.yaml": child("child-b", namespace, repo.url, "b", finalizer=True),
            "a/cm.yaml": configmap("from-a", "a1"),
            "a2/cm.yaml": configmap("from-a2", "a2"),
            "b/cm.yaml": configmap("from-b", "b1"),
        },
    )
    await kube.apply(
        application("parent", namespace, repo.url, "children", namespace, syncPolicy={"automated": {"prune": True}})
    )
    try:
        # the children appear as the parent's resources and sync by themselves
        for name in ("child-a", "child-b"):
            await eventually(lambda n=name: app_status(kube, namespace, n), synced_healthy, timeout=45)
        parent = await eventually(lambda: app_status(kube, namespace, "parent"), synced_healthy, timeout=20)
        rows = {(r["kind"], r["name"]): r for r in parent["resources"]}
        assert set(rows) == {("Application", "child-a"), ("Application", "child-b")}
        assert all(r.get("group") == "tether.dev" and r.get("status") == "Synced" for r in rows.values())
        children = await apps_in(kube, namespace)
        assert children["child-b"]["metadata"]["finalizers"] == [OUR_FINALIZER]
        assert children["child-a"]["metadata"]["labels"]["tether.dev/app"] == "parent"
        for cm, owner in (("from-a", "child-a"), ("from-b", "child-b")):
            live = await kube.get("v1", "ConfigMap", cm, namespace)
            assert live is not None and live["metadata"]["labels"]["tether.dev/app"] == owner

        # the parent manages its children like any resource: a child's spec changed in git reaches the child,
        # which then syncs its new path (and prunes the old one)
        repo.commit("a moves", files={"children/a.yaml": child("child-a", namespace, repo.url, "a2")})
        await eventually(lambda: kube.get("v1", "ConfigMap", "from-a2", namespace), lambda o: o is not None, timeout=30)
        await eventually(lambda: kube.get("v1", "ConfigMap", "from-a", namespace), lambda o: o is None, timeout=30)

        # a child removed from git is pruned; its finalizer takes its objects with it
        dropped = repo.commit("drop b", files={"children/b.yaml": None})
        await eventually(lambda: kube.get(API, "Application", "child-b", namespace), lambda o: o is None, timeout=45)
        assert await kube.get("v1", "ConfigMap", "from-b", namespace) is None
        # the parent's status still says Synced at the old commit until its new one is written
        parent = await eventually(
            lambda: app_status(kube, namespace, "parent"),
            lambda s: synced_healthy(s) and (s.get("sync") or {}).get("revision") == dropped,
            timeout=20,
        )
        parent = await eventually(
            lambda: app_status(kube, namespace, "parent"),
            lambda s: [r["name"] for r in s["resources"]] == ["child-a"],
            timeout=10,
        )
        assert synced_healthy(parent)
        assert await kube.get("v1", "ConfigMap", "from-a2", namespace) is not None
        assert synced_healthy(await app_status(kube, namespace, "child-a"))
    finally:
        await tear_down(kube, namespace, "parent")


async def test_a_child_that_cannot_compare_leaves_its_parent_healthy(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"children/broken.yaml": child("broken", namespace, repo.url, "no/such/path")})
    await kube.apply(application("parent", namespace, repo.url, "children", namespace, syncPolicy={"automated": {}}))
    try:
        broken = await eventually(
            lambda: app_status(kube, namespace, "broken"),
            lambda s: any(c.get("type") == "ComparisonError" for c in s.get("conditions") or []),
            timeout=30,
        )
        assert "no/such/path" in str(broken["conditions"])
        parent = await eventually(
            lambda: app_status(kube, namespace, "parent"),
            lambda s: (s.get("sync") or {}).get("status") == "Synced" and bool(s.get("health")),
            timeout=20,
        )
        await asyncio.sleep(2)  # the child's status changes reach the parent through its watch
        parent = await app_status(kube, namespace, "parent")
        row = next(r for r in parent["resources"] if r["kind"] == "Application")
        assert not (row.get("health") or {}).get("status"), row
        assert parent["health"]["status"] == "Healthy", parent["health"]
    finally:
        await tear_down(kube, namespace, "parent")


async def render_chart(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        str(HELM), "template", "apps", str(CORPUS / "apps"), *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0
    return out.decode()


async def tether_import(tmp_path: Path, rendered: str, namespace: str) -> list[dict[str, Any]]:
    source = tmp_path / "argocd-apps.yaml"
    source.write_text(rendered)
    code, out, err = await tether_async("import", str(source), "--namespace", namespace, timeout=60)
    assert code == 0, err
    return [doc for doc in yaml.safe_load_all(out) if doc]


async def test_imported_example_apps_are_accepted_and_run_as_an_app_of_apps(
    controller: Controller,
    kube: Cluster,
    namespace: str,
    git_server: GitHttpServer,
    unique_repo_name: str,
    tmp_path: Path,
) -> None:
    # the whole chart as it is: every converted Application is one the API server accepts unchanged
    converted = await tether_import(tmp_path, await render_chart(), namespace)
    assert len(converted) == 14
    for obj in converted:
        stored = await kube.apply(obj, dry_run=True)
        assert stored["apiVersion"] == API and stored["metadata"]["namespace"] == namespace
        assert stored["spec"] == obj["spec"] and stored["metadata"]["finalizers"] == [OUR_FINALIZER]

    # three of its apps, pointed at a copy of the corpus on the git server and at the test's namespace
    corpus = git_server.create_repo(f"{unique_repo_name}-corpus", from_dir=CORPUS)
    picked = [
        {"name": "guestbook", "namespace": namespace},
        {"name": "kustomize-guestbook", "namespace": namespace},
        {"name": "helm-guestbook", "namespace": namespace, "tool": {"helm": {"releaseName": "helm-guestbook"}}},
    ]
    rendered = await render_chart(
        "--set",
        f"config.spec.source.repoURL={corpus.url}",
        "--set",
        "config.spec.source.targetRevision=HEAD",
        "--set-json",
        f"applications={json.dumps(picked)}",
    )
    children = await tether_import(tmp_path, rendered, namespace)
    names = sorted(c["metadata"]["name"] for c in children)
    assert names == ["example.guestbook", "example.helm-guestbook", "example.kustomize-guestbook"]
    parent_repo = git_server.create_repo(unique_repo_name)
    parent_repo.commit("apps", files={"apps/apps.yaml": yaml.safe_dump_all(children)})
    await kube.apply(application("apps", namespace, parent_repo.url, "apps", namespace, syncPolicy={"automated": {}}))
    try:
        for name in names:
            status = await eventually(lambda n=name: app_status(kube, namespace, n), synced_healthy, timeout=60)
            assert status["sync"]["revision"] == corpus.head
        assert (await app_status(kube, namespace, "example.helm-guestbook"))["sourceType"] == "Helm"
        assert (await app_status(kube, namespace, "example.kustomize-guestbook"))["sourceType"] == "Kustomize"
        for deployment in ("guestbook-ui", "kustomize-guestbook-ui", "helm-guestbook"):
            live = await kube.get("apps/v1", "Deployment", deployment, namespace)
            assert live is not None, deployment
            assert (live.get("status") or {}).get("availableReplicas") == live["spec"]["replicas"]
        assert synced_healthy(await app_status(kube, namespace, "apps"))
    finally:
        await tear_down(kube, namespace, "apps")
    # the children's finalizer (carried over by the importer) took their Deployments with them
    for deployment in ("guestbook-ui", "kustomize-guestbook-ui", "helm-guestbook"):
        assert await kube.get("apps/v1", "Deployment", deployment, namespace) is None
