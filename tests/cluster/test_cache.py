"""LiveCache against the real devcluster: list+watch, resume, relist after 410, ownership, ensure, waits."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from tests.cluster.wait import eventually
from tether.cluster import CacheEvent, Cluster, LiveCache, UnknownKind, WaitTimeout
from tether.resource import APP_LABEL, ResourceKey, mark


def config_map(namespace: str, name: str, app: str | None = "shop", **data: str) -> dict:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}
    return mark(obj, app) if app else obj


def key(namespace: str, name: str) -> ResourceKey:
    return ResourceKey("", "ConfigMap", namespace, name)


@pytest.fixture
async def cache(kube: Cluster, namespace: str) -> AsyncIterator[LiveCache]:
    live = LiveCache(kube, namespace=namespace, watch_timeout=5)
    try:
        yield live
    finally:
        await live.close()


async def drain(subscription, until, timeout: float = 20.0) -> list[CacheEvent]:
    """Events from ``subscription`` until ``until(events)`` holds."""
    events: list[CacheEvent] = []

    async def collect() -> None:
        async for event in subscription:
            events.append(event)
            if until(events):
                return

    try:
        await asyncio.wait_for(collect(), timeout)
    except TimeoutError:
        raise AssertionError(f"events so far: {[(e.type, e.key) for e in events]}") from None
    return events


async def test_list_then_watch_sees_create_update_delete(kube: Cluster, namespace: str, cache: LiveCache) -> None:
    await kube.apply(config_map(namespace, "before", v="0"))
    await cache.track("v1", "ConfigMap")
    assert cache.get(key(namespace, "before"))["data"] == {"v": "0"}  # from the initial list
    sub = cache.subscribe()

    await kube.apply(config_map(namespace, "web", v="1"))
    assert (await cache.wait_for(key(namespace, "web"), lambda o: o is not None, timeout=20))["data"] == {"v": "1"}
    await kube.apply(config_map(namespace, "web", v="2"))
    await cache.wait_for(key(namespace, "web"), lambda o: o is not None and o["data"] == {"v": "2"}, timeout=20)
    await kube.delete("v1", "ConfigMap", "web", namespace)
    assert await cache.wait_for(key(namespace, "web"), lambda o: o is None, timeout=20) is None

    events = await drain(sub, lambda es: any(e.type == "DELETED" for e in es))
    assert {e.key for e in events} == {key(namespace, "web")}
    # A foreground delete first marks the object (a MODIFIED with deletionTimestamp), then removes it.
    assert [e.type for e in events][:2] == ["ADDED", "MODIFIED"] and events[-1].type == "DELETED"
    assert events[0].object["data"] == {"v": "1"} and events[1].object["data"] == {"v": "2"}
    sub.close()


async def test_watch_resumes_after_the_server_ends_the_stream(kube: Cluster, namespace: str) -> None:
    async with LiveCache(kube, namespace=namespace, watch_timeout=1) as cache:
        await cache.track("v1", "ConfigMap")
        await asyncio.sleep(3)  # the server has closed the first watch (timeoutSeconds=1) at least once
        await kube.apply(config_map(namespace, "late", v="x"))
        await cache.wait_for(key(namespace, "late"), lambda o: o is not None, timeout=20)


@pytest.fixture
async def widget_kind(kube: Cluster) -> AsyncIterator[str]:
    """A namespaced custom kind made for one test; returns its apiVersion.

    The API server starts the watch cache of a new CRD at the CRD's creation, so a watch
    from resourceVersion 1 gets a real 410 (a built-in kind's cache can still serve it).
    """
    group = f"w{secrets.token_hex(4)}.cache.tether.dev"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
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
    await kube.apply(crd)

    async def served() -> bool:
        try:
            await kube.resource(f"{group}/v1", "Widget")
            return True
        except UnknownKind:
            return False

    await eventually(served, bool, timeout=30)
    try:
        yield f"{group}/v1"
    finally:
        await kube.delete(
            "apiextensions.k8s.io/v1", "CustomResourceDefinition", f"widgets.{group}", propagation="Background"
        )


def widget(api_version: str, namespace: str, name: str, size: int) -> dict:
    return mark(
        {
            "apiVersion": api_version,
            "kind": "Widget",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"size": size},
        },
        "shop",
    )


async def test_relist_after_410_loses_nothing(
    kube: Cluster, namespace: str, cache: LiveCache, widget_kind: str
) -> None:
    group = widget_kind.split("/")[0]

    def wkey(name: str) -> ResourceKey:
        return ResourceKey(group, "Widget", namespace, name)

    for name in ("kept", "changed", "deleted"):
        await kube.apply(widget(widget_kind, namespace, name, 1))
    await cache.track(widget_kind, "Widget")
    watch = cache._covering(group, "Widget", namespace)
    assert watch.relists == 1
    sub = cache.subscribe()

    watch.stop()  # nothing is watched while the cluster changes
    await kube.apply(widget(widget_kind, namespace, "changed", 2))
    await kube.delete(widget_kind, "Widget", "deleted", namespace, propagation="Background")
    await kube.apply(widget(widget_kind, namespace, "created", 1))
    watch.resume("1")  # older than this kind's watch cache: a real 410, so the cache lists again

    events = await drain(sub, lambda es: len(es) >= 3)
    assert watch.relists == 2
    assert sorted((e.type, e.key.name) for e in events) == [
        ("ADDED", "created"),
        ("DELETED", "deleted"),
        ("MODIFIED", "changed"),
    ]
    assert cache.get(wkey("changed"))["spec"] == {"size": 2}
    assert cache.get(wkey("deleted")) is None
    assert cache.get(wkey("kept"))["spec"] == {"size": 1}
    # The watch runs again after the relist.
    await kube.apply(widget(widget_kind, namespace, "after", 1))
    await cache.wait_for(wkey("after"), lambda o: o is not None, timeout=20)
    sub.close()


async def test_resuming_from_an_old_version_the_server_still_holds_replays_to_the_same_state(
    kube: Cluster, namespace: str, cache: LiveCache
) -> None:
    await kube.apply(config_map(namespace, "changed", v="1"))
    await cache.track("v1", "ConfigMap")
    watch = cache._covering("", "ConfigMap", namespace)
    watch.stop()
    await kube.apply(config_map(namespace, "changed", v="2"))
    await kube.apply(config_map(namespace, "created", v="1"))
    watch.resume("1")
    await cache.wait_for(key(namespace, "created"), lambda o: o is not None, timeout=20)
    await cache.wait_for(key(namespace, "changed"), lambda o: o is not None and o["data"] == {"v": "2"}, timeout=20)


async def test_owned_by_trusts_the_tracking_id_of_the_object_itself(
    kube: Cluster, namespace: str, cache: LiveCache
) -> None:
    await kube.apply(config_map(namespace, "a1", app="shop"))
    await kube.apply(config_map(namespace, "a2", app="shop"))
    await kube.apply(config_map(namespace, "b1", app="blog"))
    copied = config_map(namespace, "copy", app=None)
    copied["metadata"]["labels"] = {APP_LABEL: "shop"}
    copied["metadata"]["annotations"] = {
        "tether.dev/tracking-id": f"shop:/ConfigMap:{namespace}/a1"
    }  # names another object
    await kube.apply(copied)
    await cache.track("v1", "ConfigMap")
    assert [o["metadata"]["name"] for o in cache.owned_by("shop")] == ["a1", "a2"]
    assert [o["metadata"]["name"] for o in cache.owned_by("blog")] == ["b1"]
    assert cache.owned_by("nobody") == []


async def test_ensure_fetches_unlabelled_named_objects_and_refreshes_them_on_demand(
    kube: Cluster, namespace: str, cache: LiveCache
) -> None:
    await kube.apply(config_map(namespace, "legacy", app=None, v="1"))
    desired = [
        config_map(namespace, "legacy", app=None, v="2"),
        config_map(namespace, "absent", app=None),
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": namespace}},
    ]
    await cache.ensure(desired)
    assert cache.tracks(key(namespace, "legacy"))
    assert cache.get(key(namespace, "legacy"))["data"] == {"v": "1"}
    assert cache.get(key(namespace, "absent")) is None
    assert cache.get(ResourceKey("example.com", "Widget", namespace, "w")) is None  # kind not served: skipped

    await kube.apply(config_map(namespace, "legacy", app=None, v="3"))
    await cache.ensure(desired)
    assert cache.get(key(namespace, "legacy"))["data"] == {"v": "3"}
    await kube.delete("v1", "ConfigMap", "legacy", namespace, propagation="Background")
    await cache.ensure(desired)
    assert cache.get(key(namespace, "legacy")) is None


async def test_an_object_losing_the_label_leaves_the_cache(kube: Cluster, namespace: str, cache: LiveCache) -> None:
    await kube.apply(config_map(namespace, "web"))
    await cache.track("v1", "ConfigMap")
    assert cache.get(key(namespace, "web")) is not None
    await kube.patch("v1", "ConfigMap", "web", namespace, {"metadata": {"labels": {APP_LABEL: None}}})
    await cache.wait_for(key(namespace, "web"), lambda o: o is None, timeout=20)


async def test_wait_for_times_out_with_the_last_state(kube: Cluster, namespace: str, cache: LiveCache) -> None:
    await kube.apply(config_map(namespace, "web", v="1"))
    await cache.track("v1", "ConfigMap")
    with pytest.raises(WaitTimeout) as caught:
        await cache.wait_for(
            key(namespace, "web"), lambda o: o is not None and o["data"] == {"v": "never"}, timeout=0.5
        )
    assert caught.value.last["data"] == {"v": "1"}
    assert "ConfigMap" in str(caught.value) and "web" in str(caught.value)


async def test_close_cancels_every_watch_and_ends_subscriptions(kube: Cluster, namespace: str) -> None:
    cache = LiveCache(kube, namespace=namespace)
    await cache.track("v1", "ConfigMap")
    await cache.track("apps/v1", "Deployment")
    tasks = [w.task for scoped in cache._watches.values() for w in scoped.values()]
    sub = cache.subscribe()
    await cache.close()
    assert all(t is not None and t.done() for t in tasks)
    assert [e async for e in sub] == []


async def test_cluster_wide_tracking_and_track_all(kube: Cluster, namespace: str) -> None:
    async with LiveCache(kube) as cache:
        tracked = await cache.track_all()
        assert ("apps/v1", "Deployment") in tracked and ("v1", "ConfigMap") in tracked
        # Events and Argo CD's default exclusions are left out
        assert not {"Event", "Endpoints", "EndpointSlice", "Lease"} & {kind for _, kind in tracked}
        await kube.apply(config_map(namespace, "anywhere"))
        await cache.wait_for(key(namespace, "anywhere"), lambda o: o is not None, timeout=20)
        assert key(namespace, "anywhere") in {ResourceKey.of(o) for o in cache.owned_by("shop")}


async def test_an_excluded_kind_a_manifest_names_is_still_tracked(kube: Cluster, namespace: str) -> None:
    endpoints = mark(
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "external", "namespace": namespace},
            "subsets": [{"addresses": [{"ip": "10.1.2.3"}], "ports": [{"port": 5432}]}],
        },
        "shop",
    )
    await kube.apply(endpoints)
    async with LiveCache(kube) as cache:
        await cache.track_all()
        endpoints_key = ResourceKey("", "Endpoints", namespace, "external")
        assert cache.get(endpoints_key) is None  # not watched by track_all
        await cache.ensure([endpoints])  # an app's manifest names it: its kind is tracked
        live = cache.get(endpoints_key)
        assert live is not None and live["subsets"][0]["ports"][0]["port"] == 5432
        assert endpoints_key in {ResourceKey.of(o) for o in cache.owned_by("shop")}


async def test_at_least_waits_for_the_watch_or_fetches_unlabelled_objects(
    kube: Cluster, namespace: str, cache: LiveCache
) -> None:
    await kube.apply(config_map(namespace, "legacy", app=None, v="1"))
    await cache.ensure([config_map(namespace, "legacy", app=None), config_map(namespace, "ours")])
    written = await kube.apply(config_map(namespace, "legacy", app=None, v="2"))
    assert cache.get(key(namespace, "legacy"))["data"] == {"v": "1"}  # unlabelled: not watched
    fresh = await cache.at_least(key(namespace, "legacy"), written["metadata"]["resourceVersion"], api_version="v1")
    assert fresh["data"] == {"v": "2"} and cache.get(key(namespace, "legacy"))["data"] == {"v": "2"}

    written = await kube.apply(config_map(namespace, "ours", v="3"))
    fresh = await cache.at_least(key(namespace, "ours"), written["metadata"]["resourceVersion"], api_version="v1")
    assert fresh["data"] == {"v": "3"}


async def test_a_subscriber_that_falls_behind_gets_resync(kube: Cluster, namespace: str, cache: LiveCache) -> None:
    await cache.track("v1", "ConfigMap")
    sub = cache.subscribe(maxsize=2)
    for index in range(5):
        await kube.apply(config_map(namespace, f"c{index}"))
    await cache.wait_for(key(namespace, "c4"), lambda o: o is not None, timeout=20)
    first = await asyncio.wait_for(sub.get(), 5)
    assert first.type == "RESYNC" and first.key is None
    sub.close()

    async def rest() -> list[CacheEvent]:
        return [e async for e in sub]

    leftover = await asyncio.wait_for(rest(), 5)  # closing ends the iteration instead of blocking
    assert all(e.type in ("ADDED", "MODIFIED") for e in leftover)
