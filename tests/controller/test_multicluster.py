"""Multi-cluster: an app whose destination is a second devcluster, reached only through a cluster Secret."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.controller.conftest import API, application, eventually, running_controller
from tests.controller.test_loop import app_status, configmap, synced_healthy
from tether.cluster import Cluster
from tether.controller.controller import Controller
from tether.devcluster.cluster import ClusterState
from tether.devcluster.gitserver import GitHttpServer
from tether.devcluster.passstore import PassStore

pytestmark = pytest.mark.cluster

FINALIZER = "resources-finalizer.tether.dev"


@pytest.fixture
async def remote_namespace(second_kube: Cluster, namespace: str) -> AsyncIterator[str]:
    """The test's namespace made on the second cluster too (the app's destination there)."""
    await second_kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        yield namespace
    finally:
        await second_kube.delete("v1", "Namespace", namespace, propagation="Background")


def _home_configmap(namespace: str) -> dict[str, Any]:
    """An unmanaged ConfigMap of the same name on the controller's own cluster, which deletion must not touch."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "remote", "namespace": namespace},
        "data": {"value": "home"},
    }


def cluster_secret(name: str, namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": f"cluster-{name}",
            "namespace": namespace,
            "labels": {"tether.dev/secret-type": "cluster"},
        },
        "stringData": {"name": name, **data},
    }


def condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


async def value_on(cluster: Cluster, name: str, namespace: str) -> str | None:
    live = await cluster.get("v1", "ConfigMap", name, namespace)
    return None if live is None else (live.get("data") or {}).get("value")


async def test_an_app_syncs_into_a_second_cluster_named_by_a_kubeconfig_secret(
    controller: Controller,
    kube: Cluster,
    second_kube: Cluster,
    second_devcluster: ClusterState,
    namespace: str,
    remote_namespace: str,
    git_server: GitHttpServer,
    unique_repo_name: str,
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    first = repo.commit("v1", files={"app/remote.yaml": configmap("remote", "one")})
    auto = {"automated": {"prune": True, "selfHeal": True}}
    far = application("far", namespace, repo.url, "app", namespace, syncPolicy=auto)
    far["spec"]["destination"] = {"name": "second", "namespace": remote_namespace}
    await kube.apply(far)
    lost = application("lost", namespace, repo.url, "app", namespace, syncPolicy=auto)
    lost["spec"]["destination"] = {"name": "nowhere", "namespace": namespace}
    await kube.apply(lost)

    # before any Secret names "second", the app is an invalid spec that names the missing cluster
    status = await eventually(
        lambda: app_status(kube, namespace, "far"), lambda s: condition(s, "InvalidSpecError") is not None, timeout=30
    )
    assert "'second'" in condition(status, "InvalidSpecError")["message"]
    assert await value_on(second_kube, "remote", remote_namespace) is None

    # the Secret arrives: the watch on cluster Secrets picks it up without a restart and the app syncs there
    kubeconfig = Path(second_devcluster.kubeconfig).read_text()
    data = {"server": second_devcluster.server, "kubeconfig": kubeconfig}
    await kube.apply(cluster_secret("second", namespace, data))
    status = await eventually(lambda: app_status(kube, namespace, "far"), synced_healthy, timeout=30)
    assert condition(status, "InvalidSpecError") is None
    assert status["sync"]["revision"] == first
    assert status["sync"]["comparedTo"]["destination"]["name"] == "second"
    assert await value_on(second_kube, "remote", remote_namespace) == "one"
    assert await kube.get("v1", "ConfigMap", "remote", namespace) is None  # not on the controller's own cluster
    live = await second_kube.get("v1", "ConfigMap", "remote", remote_namespace)
    assert live["metadata"]["labels"]["tether.dev/app"] == "far"

    # drift on the second cluster is seen through that cluster's watch and healed
    await second_kube.patch("v1", "ConfigMap", "remote", remote_namespace, {"data": {"value": "drifted"}})
    await eventually(lambda: value_on(second_kube, "remote", remote_namespace), lambda v: v == "one", timeout=20)

    # a commit reaches the second cluster
    repo.commit("v2", files={"app/remote.yaml": configmap("remote", "two")})
    await eventually(lambda: value_on(second_kube, "remote", remote_namespace), lambda v: v == "two", timeout=30)

    # a destination no Secret names stays an InvalidSpecError naming it, and nothing is applied for it
    status = await eventually(
        lambda: app_status(kube, namespace, "lost"), lambda s: condition(s, "InvalidSpecError") is not None, timeout=30
    )
    message = condition(status, "InvalidSpecError")["message"]
    assert "'nowhere'" in message and "not configured" in message
    assert "operationState" not in status

    # the Secret goes: the app is an invalid spec again, and what it put on the second cluster stays there
    await kube.delete("v1", "Secret", "cluster-second", namespace)
    status = await eventually(
        lambda: app_status(kube, namespace, "far"), lambda s: condition(s, "InvalidSpecError") is not None, timeout=30
    )
    assert "'second'" in condition(status, "InvalidSpecError")["message"]
    await asyncio.sleep(2)
    assert await value_on(second_kube, "remote", remote_namespace) == "two"


async def test_an_app_syncs_into_a_second_cluster_named_by_a_bearer_token_config(
    controller: Controller,
    kube: Cluster,
    second_kube: Cluster,
    second_devcluster: ClusterState,
    namespace: str,
    remote_namespace: str,
    git_server: GitHttpServer,
    unique_repo_name: str,
) -> None:
    """Argo CD's ``config`` JSON: ``bearerToken`` plus ``tlsClientConfig.caData`` (the devcluster's admin token)."""
    kubeconfig = yaml.safe_load(Path(second_devcluster.kubeconfig).read_text())
    token = kubeconfig["users"][0]["user"]["token"]
    ca_data = kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"]
    config = {"bearerToken": token, "tlsClientConfig": {"insecure": False, "caData": ca_data}}
    await kube.apply(
        cluster_secret("token", namespace, {"server": second_devcluster.server, "config": json.dumps(config)})
    )
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"app/remote.yaml": configmap("remote", "token")})
    # by server URL this time: the Secret's server is what the destination names
    app = application("by-server", namespace, repo.url, "app", remote_namespace, syncPolicy={"automated": {}})
    app["spec"]["destination"]["server"] = second_devcluster.server
    await kube.apply(app)
    status = await eventually(lambda: app_status(kube, namespace, "by-server"), synced_healthy, timeout=30)
    assert await value_on(second_kube, "remote", remote_namespace) == "token"
    assert await kube.get("v1", "ConfigMap", "remote", namespace) is None
    assert token not in json.dumps(status)
    events, _ = await kube.list("v1", "Event", namespace)
    assert token not in json.dumps(events)

    # deleting it with the resources finalizer deletes its objects on the second cluster, not on the first
    home = _home_configmap(namespace)
    await kube.apply(home)
    await kube.patch(API, "Application", "by-server", namespace, {"metadata": {"finalizers": [FINALIZER]}})
    await kube.delete(API, "Application", "by-server", namespace, propagation="Background")
    await eventually(lambda: kube.get(API, "Application", "by-server", namespace), lambda o: o is None, timeout=30)
    assert await value_on(second_kube, "remote", remote_namespace) is None
    assert await value_on(kube, "remote", namespace) == home["data"]["value"]


@pytest.fixture
def dead_server() -> str:
    """The address of a cluster that is gone: nothing listens there any more."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return f"https://127.0.0.1:{sock.getsockname()[1]}"


async def test_apps_on_an_unreachable_cluster_hold_up_no_app_on_another(
    kube: Cluster,
    crds_installed: None,
    namespace: str,
    git_server: GitHttpServer,
    unique_repo_name: str,
    pass_store: PassStore,
    tmp_path: Path,
    dead_server: str,
) -> None:
    """Once the cluster is known not to answer, its apps' comparisons fail at once, naming it, instead of each
    holding a worker while the cluster is probed again: an app on the controller's own cluster, created while
    they keep retrying, syncs at once."""
    config = {"bearerToken": "not-a-secret", "tlsClientConfig": {"insecure": True}}
    await kube.apply(cluster_secret("gone", namespace, {"server": dead_server, "config": json.dumps(config)}))
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"app/c.yaml": configmap("c", "v1"), "home/c.yaml": configmap("home", "v1")})
    async with running_controller(kube, namespace, tmp_path, pass_store, max_compares=2):
        far = [f"gone-{i}" for i in range(8)]
        for name in far:
            app = application(name, namespace, repo.url, "app", namespace, syncPolicy={"automated": {}})
            app["spec"]["destination"] = {"name": "gone", "namespace": namespace}
            await kube.apply(app)
        for name in far:
            status = await eventually(
                lambda name=name: app_status(kube, namespace, name),
                lambda s: condition(s, "ComparisonError") is not None,
                timeout=45,
            )
            assert dead_server in (condition(status, "ComparisonError") or {}).get("message", "")
        await kube.apply(
            application("beside-gone", namespace, repo.url, "home", namespace, syncPolicy={"automated": {}})
        )
        await eventually(lambda: app_status(kube, namespace, "beside-gone"), synced_healthy, timeout=10)
