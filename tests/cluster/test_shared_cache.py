"""The shared live cache against the real devcluster: one watch per kind, indexes, the resource tree, growth."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, TypeVar

import pytest

from tests.cluster.wait import eventually
from tether.cluster import Cluster, LiveCache
from tether.resource import ResourceKey, mark

T = TypeVar("T")


def hpa_v1(namespace: str, name: str, app: str | None = "scale") -> dict:
    obj = {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1,
            "maxReplicas": 3,
            "targetCPUUtilizationPercentage": 70,
        },
    }
    return mark(obj, app) if app else obj


async def test_one_watch_per_kind_whatever_version_a_manifest_names(kube: Cluster, namespace: str) -> None:
    await kube.apply(hpa_v1(namespace, "web"))
    hpa = ResourceKey("autoscaling", "HorizontalPodAutoscaler", namespace, "web")
    async with LiveCache(kube, namespace=namespace) as cache:
        tracked = await cache.track_all()
        watches = cache.stats()["watches"]
        assert watches == len({(a.rpartition("/")[0], k) for a, k in tracked})  # one per group/kind
        before = kube.requests.snapshot()
        await cache.ensure([hpa_v1(namespace, "web")])
        await cache.track("autoscaling/v1", "HorizontalPodAutoscaler")
        spent = kube.requests.snapshot() - before
        assert cache.stats()["watches"] == watches and spent.of("WATCH") == 0 and spent.of("LIST") == 0, str(spent)

        live = cache.get(hpa)
        assert live is not None and live["apiVersion"] == "autoscaling/v2"  # the version the server prefers
        assert live["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
        as_v1 = await cache.get_as(hpa, "autoscaling/v1")
        assert as_v1 is not None and as_v1["apiVersion"] == "autoscaling/v1"
        assert as_v1["spec"]["targetCPUUtilizationPercentage"] == 70
        assert as_v1["metadata"]["uid"] == live["metadata"]["uid"]
        assert as_v1["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]
        again = kube.requests.snapshot()
        await cache.get_as(hpa, "autoscaling/v1")  # reused while the resourceVersion holds
        assert (kube.requests.snapshot() - again).total == 0

        # A change made through either version reaches the one watch.
        await kube.apply({**hpa_v1(namespace, "web"), "spec": {**hpa_v1(namespace, "web")["spec"], "maxReplicas": 5}})
        changed = await cache.wait_for(hpa, lambda o: o is not None and o["spec"]["maxReplicas"] == 5, timeout=20)
        assert changed is not None and changed["apiVersion"] == "autoscaling/v2"
        assert (await cache.get_as(hpa, "autoscaling/v1") or {})["spec"]["maxReplicas"] == 5


async def test_ensure_first_then_track_all_still_one_watch(
    kube: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await kube.apply(hpa_v1(namespace, "api"))
    opened: Counter[tuple[str, str]] = Counter()  # WATCH requests sent, by group/kind
    real_watch = kube.watch

    def watch(api_version: str, kind: str, *args: Any, **kwargs: Any) -> Any:
        opened[(api_version.rpartition("/")[0], kind)] += 1
        return real_watch(api_version, kind, *args, **kwargs)

    monkeypatch.setattr(kube, "watch", watch)
    async with LiveCache(kube, namespace=namespace) as cache:
        await cache.ensure([hpa_v1(namespace, "api")])
        await eventually(lambda: _value(sum(opened.values())), lambda n: n >= 1, timeout=10)
        assert opened == {("autoscaling", "HorizontalPodAutoscaler"): 1}
        tracked = await cache.track_all()
        kinds = {(a.rpartition("/")[0], k) for a, k in tracked}
        assert cache.stats()["watches"] == len(kinds)
        # Each watch task sends its WATCH once it runs, which may be after track_all returns.
        await eventually(lambda: _value(set(opened)), lambda seen: kinds <= seen, timeout=30)
        await asyncio.sleep(0.5)
        assert opened[("autoscaling", "HorizontalPodAutoscaler")] == 1
        # A CRD another test deletes meanwhile ends its watch, which is then opened again;
        # the kinds the API server itself serves must have been watched exactly once.
        built_in = {key: n for key, n in opened.items() if "." not in key[0] or key[0].endswith(".k8s.io")}
        assert built_in and all(n == 1 for n in built_in.values()), built_in


async def _value(value: T) -> T:
    return value


def deployment(namespace: str, name: str, app: str) -> dict:
    labels = {"run": name}
    return mark(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "c", "image": "example.invalid/web:1"}]},
                },
            },
        },
        app,
    )


def service(namespace: str, name: str, app: str) -> dict:
    return mark(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"run": name}, "ports": [{"port": 80}]},
        },
        app,
    )


def job(namespace: str, name: str, app: str) -> dict:
    return mark(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "template": {
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "example.invalid/j:1"}]}
                }
            },
        },
        app,
    )


async def test_the_tree_of_an_app_follows_owner_references_with_health(kube: Cluster, namespace: str) -> None:
    async with LiveCache(kube, namespace=namespace) as cache:
        await cache.track_tree()
        objects = [deployment(namespace, "web", "shop"), service(namespace, "web", "shop"), job(namespace, "m", "shop")]
        await cache.ensure(objects)
        await kube.apply(deployment(namespace, "other", "elsewhere"))
        for obj in objects:
            await kube.apply(obj)

        def kinds_of(nodes: list) -> list[str]:
            return sorted(n.key.kind for n in nodes)

        async def tree() -> list:
            return cache.tree("shop")

        want = ["Deployment", "EndpointSlice", "Job", "Pod", "Pod", "Pod", "ReplicaSet", "Service"]
        nodes = await eventually(tree, lambda ns: kinds_of(ns) == want, timeout=60)
        by_uid = {n.uid: n for n in nodes}
        for node in nodes:
            assert all(parent in by_uid for parent in node.parents)  # every descendant hangs off this app
        assert sorted(n.key.kind for n in nodes if n.managed) == ["Deployment", "Job", "Service"]
        pods = [n for n in nodes if n.key.kind == "Pod"]
        assert {by_uid[p.parents[0]].key.kind for p in pods} == {"ReplicaSet", "Job"}
        assert all(p.health in {"Healthy", "Progressing", "Degraded", "Unknown"} for p in pods)
        assert all(node.key.name != "other" and not node.key.name.startswith("other-") for node in nodes)
        assert nodes[0].to_json()["key"]["kind"] == nodes[0].key.kind

        # The indexes answer without a scan: children by owner uid, objects by namespace.
        deploy = next(n for n in nodes if n.key.kind == "Deployment")
        assert [k.kind for k in cache.children(deploy.uid)] == ["ReplicaSet"]
        assert {n.key for n in nodes} <= set(cache.in_namespace(namespace))
        assert cache.owned_keys("shop") == sorted(ResourceKey.of(o) for o in objects)

        # Descendants are nodes, not copies of objects; details cost one GET.
        # Full copies: the managed objects, the other app's Deployment, and the EndpointSlice (it
        # copies its Service's labels, the tracking label included). Pods and ReplicaSets are nodes.
        assert cache.stats()["objects"] == 5 and cache.stats()["nodes"] >= 4
        before = kube.requests.snapshot()
        detail = await cache.details(pods[0])
        assert detail is not None and detail["metadata"]["uid"] == pods[0].uid
        assert (kube.requests.snapshot() - before).of("GET") == 1


async def test_unmanaged_objects_named_once_are_forgotten(kube: Cluster, namespace: str) -> None:
    legacy = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "legacy", "namespace": namespace}}
    await kube.apply(legacy)
    async with LiveCache(kube, namespace=namespace, unmanaged_ttl=0.5) as cache:
        await cache.ensure([legacy])
        assert cache.get(ResourceKey.of(legacy)) is not None and cache.stats()["unmanaged"] == 1
        await asyncio.sleep(0.3)
        await cache.ensure([legacy])  # named again: kept, its clock restarts
        await asyncio.sleep(0.3)
        assert cache.sweep() == 0 and cache.stats()["unmanaged"] == 1
        await asyncio.sleep(0.3)
        await cache.ensure([])  # nobody named it for longer than the TTL
        assert cache.get(ResourceKey.of(legacy)) is None and cache.stats()["unmanaged"] == 0
