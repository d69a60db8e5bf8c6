"""Many watches must not starve writes: more than 100 watched kinds (real CRDs), then a write."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio.client import ApiClient

from tests.cluster.wait import eventually
from tether.cluster import Cluster, ClusterError, LiveCache
from tether.resource import ResourceKey, mark

KINDS = 110
CRD = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")


def crd(group: str, index: int) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadget{index}s.{group}"},
        "spec": {
            "group": group,
            "scope": "Cluster",
            "names": {"plural": f"gadget{index}s", "singular": f"gadget{index}", "kind": f"Gadget{index}"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }


def established(obj: dict | None) -> bool:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


@pytest.fixture(scope="module")
async def many_kinds(kube: Cluster) -> AsyncIterator[str]:
    """KINDS cluster-scoped kinds in one throwaway group, established; deleted afterwards. Yields the group."""
    group = f"c{secrets.token_hex(4)}.conn.tether.dev"
    crds = [mark(crd(group, index), "conn-test") for index in range(KINDS)]
    try:
        async with LiveCache(kube) as cache:
            await cache.track(*CRD)
            await asyncio.gather(*(kube.apply(obj) for obj in crds))
            await asyncio.gather(*(cache.wait_for(ResourceKey.of(obj), established, timeout=60) for obj in crds))
        yield group
    finally:
        await asyncio.gather(
            *(kube.delete(*CRD, obj["metadata"]["name"], propagation="Background") for obj in crds),
            return_exceptions=True,
        )


async def test_a_write_completes_promptly_with_more_than_100_watches_open(
    devcluster, many_kinds: str, namespace: str
) -> None:
    group = many_kinds
    # A cluster of its own, with the default pool sizes, so the measurement is the product's.
    async with await Cluster.connect(devcluster.kubeconfig) as cluster, LiveCache(cluster) as cache:
        await asyncio.gather(*(cache.track(f"{group}/v1", f"Gadget{index}") for index in range(KINDS)))
        await cache.track("v1", "ConfigMap")

        async def open_watches() -> int:
            return cluster.open_watches

        await eventually(open_watches, lambda n: n >= KINDS + 1, timeout=30)  # every stream accepted
        assert cache.stats()["watches"] == KINDS + 1

        started = time.monotonic()
        written = await cluster.apply(
            mark({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w", "namespace": namespace}}, "c")
        )
        elapsed = time.monotonic() - started
        assert elapsed < 2.0, f"a write took {elapsed:.2f}s with {cluster.open_watches} watches open"
        # ... and the watches are alive: the write comes back through one of them.
        key = ResourceKey("", "ConfigMap", namespace, "w")
        seen = await cache.wait_for(key, lambda o: o is not None, timeout=20)
        assert seen is not None and seen["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"]
        assert cluster.open_watches >= KINDS + 1


async def test_measure_one_shared_pool_starves_the_write(devcluster, many_kinds: str, namespace: str) -> None:
    """The measurement behind the separate pool: watches and requests on one pool of 100 (the library's
    default, what Tether had before) leave a write without a connection once 100 watches are open."""
    group = many_kinds
    async with await Cluster.connect(devcluster.kubeconfig, timeout=3, retry_for=3) as fresh:
        configuration = fresh._api.configuration
        configuration.connection_pool_maxsize = 100
        shared = ApiClient(configuration)
        cluster = Cluster(shared, name="one-pool", watch_api=shared, timeout=3, retry_for=3)
        try:
            async with LiveCache(cluster) as cache:
                # Exactly as many kinds as the pool holds: each list still finds a connection (at most
                # 99 watches are open while it runs), and the hundredth watch fills the pool. More kinds
                # than that would starve the later lists too, which is the same finding, less clearly.
                pool = configuration.connection_pool_maxsize
                await asyncio.gather(*(cache.track(f"{group}/v1", f"Gadget{index}") for index in range(pool)))

                async def open_watches() -> int:
                    return cluster.open_watches

                await eventually(open_watches, lambda n: n >= 100, timeout=30)
                started = time.monotonic()
                with pytest.raises(ClusterError):
                    await cluster.apply(
                        mark(
                            {
                                "apiVersion": "v1",
                                "kind": "ConfigMap",
                                "metadata": {"name": "s", "namespace": namespace},
                            },
                            "c",
                        )
                    )
                assert time.monotonic() - started >= 3.0  # it waited for a connection until its timeout
        finally:
            await shared.close()
