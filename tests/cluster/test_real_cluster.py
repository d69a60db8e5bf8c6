"""The devcluster is a real Kubernetes: workloads run on kwok nodes, through Tether's adapter."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cluster.test_connections import CRD, crd, established
from tests.cluster.wait import eventually
from tether.capabilities import read_capabilities
from tether.cluster import Cluster, ClusterError, ClusterUnreachable, UnknownKind, discovery
from tether.cluster import client as client_module


def deployment(namespace: str, name: str = "web", replicas: int = 2) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }


async def test_version_is_the_pinned_release(kube: Cluster) -> None:
    version = await kube.version()
    assert version["gitVersion"] == "v1.36.3"
    assert (version["major"], version["minor"]) == ("1", "36")


async def test_capabilities_list_every_served_version_and_kind_as_helm_does(kube: Cluster) -> None:
    found = await read_capabilities(kube)
    version = (await kube.version())["gitVersion"]
    assert found.kube_version and version.lstrip("v").startswith(found.kube_version)
    served = set(found.api_versions)
    assert {"v1", "v1/Pod", "apps/v1", "apps/v1/Deployment", "batch/v1/Job"} <= served
    # every version a group serves, not only the preferred one (autoscaling serves v1 and v2)
    assert {"autoscaling/v1", "autoscaling/v2", "autoscaling/v2/HorizontalPodAutoscaler"} <= served
    assert not any(name.endswith("/status") for name in served)  # subresources are not kinds


async def test_a_second_kind_in_a_known_group_version_is_listed_without_a_lookup_miss(
    kube: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CRD added to a group version discovery already holds reaches ``served`` and helm's APIVersions."""
    monkeypatch.setattr(discovery, "SERVED_TTL", 0.0)  # each listing asks the server (the default reuses it 10 s)
    group = f"d{secrets.token_hex(4)}.example.com"
    first, second = crd(group, 0), crd(group, 1)

    async def listed() -> set[str]:
        names = {f"{info.api_version}/{info.kind}" for info in await kube.discovery.served()}
        ours = {name for name in names if name.startswith(group)}
        # only this test's kinds: another worker's CRD may come or go between the two requests
        assert ours <= set(await kube.discovery.api_versions())
        return ours

    try:
        await kube.apply(first)
        await eventually(lambda: kube.get(*CRD, first["metadata"]["name"]), established)
        assert await eventually(listed, lambda names: bool(names)) == {f"{group}/v1/Gadget0"}
        await kube.apply(second)
        await eventually(lambda: kube.get(*CRD, second["metadata"]["name"]), established)
        assert await eventually(listed, lambda names: len(names) == 2, timeout=30) == {
            f"{group}/v1/Gadget0",
            f"{group}/v1/Gadget1",
        }
        assert (await kube.resource(f"{group}/v1", "Gadget1")).plural == "gadget1s"
    finally:
        for obj in (first, second):
            await kube.delete(*CRD, obj["metadata"]["name"], propagation="Background")


async def test_two_fake_nodes_are_ready(kube: Cluster) -> None:
    nodes, _ = await kube.list("v1", "Node")
    ready = [n for n in nodes if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])]
    assert len(ready) == 2


async def test_deployment_becomes_available_with_two_ready_pods(kube: Cluster, namespace: str) -> None:
    await kube.apply(deployment(namespace))
    live = await eventually(
        lambda: kube.get("apps/v1", "Deployment", "web", namespace),
        lambda d: d is not None and d.get("status", {}).get("readyReplicas") == 2,
    )
    conditions = {c["type"]: c["status"] for c in live["status"]["conditions"]}
    assert conditions["Available"] == "True"
    pods, _ = await kube.list("v1", "Pod", namespace, label_selector="app=web")
    assert len(pods) == 2
    assert all(p["status"]["phase"] == "Running" for p in pods)
    assert {p["spec"]["nodeName"] for p in pods} <= {"kwok-node-0", "kwok-node-1"}


async def test_job_runs_to_complete(kube: Cluster, namespace: str) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "once", "namespace": namespace},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}},
    }
    await kube.apply(job)
    live = await eventually(
        lambda: kube.get("batch/v1", "Job", "once", namespace),
        lambda j: any(
            c["type"] == "Complete" and c["status"] == "True" for c in (j or {}).get("status", {}).get("conditions", [])
        ),
    )
    assert live["status"]["succeeded"] == 1


async def test_deleting_a_namespace_finishes(kube: Cluster) -> None:
    await kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t-doomed"}})
    await kube.apply(deployment("t-doomed", replicas=1))
    await eventually(
        lambda: kube.get("apps/v1", "Deployment", "web", "t-doomed"),
        lambda d: (d or {}).get("status", {}).get("readyReplicas") == 1,
    )
    assert await kube.delete("v1", "Namespace", "t-doomed")
    await eventually(lambda: kube.get("v1", "Namespace", "t-doomed"), lambda ns: ns is None, timeout=90)


async def test_server_side_dry_run_apply_changes_nothing(kube: Cluster, namespace: str) -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": namespace},
        "data": {"k": "one"},
    }
    created = await kube.apply(cm)
    preview = await kube.apply({**cm, "data": {"k": "two"}}, dry_run=True)
    assert preview["data"] == {"k": "two"}
    live = await kube.get("v1", "ConfigMap", "cfg", namespace)
    assert live["data"] == {"k": "one"}
    assert live["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    missing = {**cm, "metadata": {"name": "never", "namespace": namespace}}
    await kube.apply(missing, dry_run=True)
    assert await kube.get("v1", "ConfigMap", "never", namespace) is None


async def test_applied_objects_are_owned_by_the_tether_field_manager(kube: Cluster, namespace: str) -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "owned", "namespace": namespace},
        "data": {"a": "1"},
    }
    live = await kube.apply(cm)
    assert {m["manager"] for m in live["metadata"]["managedFields"]} == {"tether"}


async def test_unknown_kind_and_bad_object_give_clear_errors(kube: Cluster, namespace: str) -> None:
    with pytest.raises(UnknownKind, match="Widget"):
        await kube.apply(
            {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": namespace}}
        )
    bad = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "bad", "namespace": namespace},
        "data": {"k": 1},
        "bogus": True,
    }
    with pytest.raises(ClusterError, match=r"ConfigMap .*/bad"):
        await kube.apply(bad)


def kubeconfig_for(tmp_path: Path, cluster: str) -> Path:
    """A kubeconfig with one context on ``cluster`` (the YAML flow mapping of its ``cluster`` entry) and a token."""
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        f"clusters: [{{name: x, cluster: {cluster}}}]\n"
        "users: [{name: x, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: x, user: x}}]\n"
    )
    return config


async def test_unreachable_cluster_is_a_clear_error(tmp_path) -> None:
    config = kubeconfig_for(tmp_path, "{server: 'https://127.0.0.1:9'}")
    async with await Cluster.connect(config, timeout=5, retry_for=2) as client:
        started = time.monotonic()
        with pytest.raises(ClusterUnreachable, match="cannot reach the cluster at https://127.0.0.1:9") as raised:
            await client.version()
        # retried for the budget, then given up: not at once, and not for long
        assert 2 <= time.monotonic() - started < 6
        assert "has not answered for 2s" in str(raised.value) and raised.value.reason == "ClusterUnreachable"


async def test_requests_are_held_to_the_client_qps(devcluster) -> None:
    async with await Cluster.connect(devcluster.kubeconfig, qps=10, burst=2) as slow:
        started = time.monotonic()
        await asyncio.gather(*(slow.version() for _ in range(12)))
        # two from the burst, then ten more at 10 a second
        assert time.monotonic() - started >= 0.9


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A loopback port that takes connections and never says a byte (no HTTP answer, no TLS handshake)."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def test_a_server_that_never_answers_times_out_with_a_clear_error(tmp_path, silent_port: int) -> None:
    config = kubeconfig_for(tmp_path, f"{{server: 'http://127.0.0.1:{silent_port}'}}")
    async with await Cluster.connect(config, timeout=0.5, retry_for=1) as client:
        started = time.monotonic()
        with pytest.raises(ClusterUnreachable, match=r"no answer from .* within 0.5s"):
            await client.get("v1", "ConfigMap", "x", "default")
        assert time.monotonic() - started < 5


async def test_a_server_that_takes_connections_and_never_shakes_hands_is_given_up_on_soon(
    tmp_path, silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a connection has its own limit (client-go's TLS handshake timeout), far below a request's."""
    monkeypatch.setattr(client_module, "CONNECT_TIMEOUT", 1.0)
    config = kubeconfig_for(tmp_path, f"{{server: 'https://127.0.0.1:{silent_port}', insecure-skip-tls-verify: true}}")
    async with await Cluster.connect(config, timeout=30, retry_for=1) as client:
        started = time.monotonic()
        with pytest.raises(ClusterUnreachable, match=r"no connection \(TCP and TLS\) within 1s"):
            await client.get("v1", "ConfigMap", "x", "default")
        # the connection's limit, then the probes' budget: not the request's 30 s
        assert time.monotonic() - started < 6
