"""Request accounting and per-cluster budgets against the real devcluster."""

from __future__ import annotations

import asyncio
import time

from tether.cluster import Cluster, LiveCache
from tether.resource import ResourceKey, mark


def config_map(namespace: str, name: str) -> dict:
    return mark({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}}, "acct")


async def test_every_request_is_counted_by_verb_with_dry_runs_apart(kube: Cluster, namespace: str) -> None:
    await kube.resource("v1", "ConfigMap")  # discovery out of the way
    before = kube.requests.snapshot()
    await kube.apply(config_map(namespace, "a"), dry_run=True)
    await kube.apply(config_map(namespace, "a"))
    await kube.get("v1", "ConfigMap", "a", namespace)
    await kube.list("v1", "ConfigMap", namespace)
    await kube.patch("v1", "ConfigMap", "a", namespace, {"data": {"x": "1"}})
    await kube.replace({**config_map(namespace, "a"), "data": {"x": "2"}})  # a GET, then the PUT
    await kube.create(config_map(namespace, "b"), dry_run=True)
    await kube.delete("v1", "ConfigMap", "a", namespace, dry_run=True)
    await kube.delete("v1", "ConfigMap", "a", namespace)
    spent = kube.requests.snapshot() - before
    assert spent.as_dict() == {
        "APPLY": 1,
        "APPLY(dry-run)": 1,
        "CREATE(dry-run)": 1,
        "DELETE": 1,
        "DELETE(dry-run)": 1,
        "GET": 2,
        "LIST": 1,
        "PATCH": 1,
        "UPDATE": 1,
    }
    assert spent.writes == 4 and spent.dry_runs == 3 and spent.reads == 3


async def test_a_watched_cache_reads_without_writing(kube: Cluster, namespace: str) -> None:
    await kube.apply(config_map(namespace, "c"))
    async with LiveCache(kube, namespace=namespace) as cache:
        before = kube.requests.snapshot()
        await cache.track("v1", "ConfigMap")
        await cache.ensure([config_map(namespace, "c")])  # labelled: served by the watch, no GET
        spent = kube.requests.snapshot() - before
    assert spent.writes == 0 and spent.dry_runs == 0
    assert spent.of("LIST") == 1 and spent.of("WATCH") == 1 and spent.of("GET") == 0, str(spent)


async def test_qps_is_shared_by_every_caller_of_one_cluster(devcluster) -> None:
    async with await Cluster.connect(devcluster.kubeconfig, qps=20, burst=5) as cluster:
        await cluster.resource("v1", "Namespace")
        await asyncio.sleep(0.3)  # the bucket refills to its burst
        started = time.monotonic()
        # 25 callers at once, one request each: 5 from the burst, 20 more at 20 a second.
        await asyncio.gather(*(cluster.get("v1", "Namespace", "default") for _ in range(25)))
        assert time.monotonic() - started >= 0.9


async def test_reads_never_exceed_the_cluster_concurrency(devcluster) -> None:
    async with await Cluster.connect(devcluster.kubeconfig, qps=1000, burst=1000, max_reads=3) as cluster:
        await cluster.resource("v1", "Namespace")
        peak = 0

        async def watch_slots() -> None:
            nonlocal peak
            while True:
                peak = max(peak, cluster.max_reads - cluster.reads._value)
                await asyncio.sleep(0)

        spy = asyncio.create_task(watch_slots())
        try:
            await asyncio.gather(*(cluster.get("v1", "Namespace", "default") for _ in range(40)))
        finally:
            spy.cancel()
        assert peak == 3


def unlabelled(namespace: str, name: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}}


async def test_objects_in_a_missing_namespace_cost_no_get_once_namespaces_are_watched(
    kube: Cluster, namespace: str
) -> None:
    async with LiveCache(kube) as cache:
        await cache.track("v1", "ConfigMap")
        await cache.track_namespaces()
        before = kube.requests.snapshot()
        await cache.ensure([unlabelled(f"{namespace}-nowhere", "a"), unlabelled(f"{namespace}-nowhere", "b")])
        assert (kube.requests.snapshot() - before).as_dict() == {}
        await kube.apply(unlabelled(namespace, "present"))
        before = kube.requests.snapshot()
        await cache.ensure([unlabelled(namespace, "present"), unlabelled(namespace, "absent")])
        # The namespace exists: its unlabelled objects are asked for, one GET each, and found or not.
        assert (kube.requests.snapshot() - before).as_dict() == {"GET": 2}
        assert cache.get(ResourceKey("", "ConfigMap", namespace, "present")) is not None


async def test_a_recent_absence_stands_for_absent_for_seconds(kube: Cluster, namespace: str) -> None:
    async with LiveCache(kube) as cache:
        await cache.track("v1", "ConfigMap")
        wanted = [unlabelled(namespace, "later")]
        await cache.ensure(wanted)
        before = kube.requests.snapshot()
        await cache.ensure(wanted, absent_for=30.0)  # the sync that follows a comparison
        assert (kube.requests.snapshot() - before).as_dict() == {}
        await cache.ensure(wanted)  # without it, an unlabelled name is always asked for again
        assert (kube.requests.snapshot() - before).as_dict() == {"GET": 1}
        await kube.apply(unlabelled(namespace, "later"))
        await cache.ensure(wanted, absent_for=30.0)  # the last GET found nothing; it still stands
        assert cache.get(ResourceKey("", "ConfigMap", namespace, "later")) is None
        await cache.ensure(wanted)
        assert cache.get(ResourceKey("", "ConfigMap", namespace, "later")) is not None
