"""Discovery's caching rules on plain data: one fetch per group version, refetched only on a miss;
the listing of everything served from aggregated discovery, whose resources refresh the cache."""

from __future__ import annotations

import pytest

from tether.cluster import discovery as discovery_module
from tether.cluster.discovery import AGGREGATED, Discovery
from tether.cluster.errors import UnknownKind


class Served:
    """What a server lists per group version; counts how often each path is asked for."""

    def __init__(self) -> None:
        self.lists: dict[str, list[dict]] = {
            "/api/v1": [
                {"name": "configmaps", "kind": "ConfigMap", "namespaced": True, "verbs": ["get"]},
                {"name": "pods/status", "kind": "Pod", "namespaced": True, "verbs": ["get"]},
            ],
        }
        self.asked: list[str] = []

    async def get_json(self, path: str, accept: str) -> dict | None:
        self.asked.append(path)
        resources = self.lists.get(path)
        return None if resources is None else {"resources": resources}


def resource(plural: str, kind: str, *, namespaced: bool = True) -> dict:
    """One resource as aggregated discovery lists it."""
    return {
        "resource": plural,
        "responseKind": {"group": "", "version": "", "kind": kind},
        "scope": "Namespaced" if namespaced else "Cluster",
        "verbs": ["get", "list", "watch"],
        "subresources": [{"subresource": "status", "verbs": ["get"]}],
    }


class Aggregated:
    """A server with aggregated discovery (``APIGroupDiscoveryList``): groups, versions in order of preference."""

    def __init__(self) -> None:
        self.core = [{"version": "v1", "resources": [resource("configmaps", "ConfigMap")]}]
        self.groups: dict[str, list[dict]] = {
            "autoscaling": [
                {"version": "v2", "resources": [resource("horizontalpodautoscalers", "HorizontalPodAutoscaler")]},
                {"version": "v1", "resources": [resource("horizontalpodautoscalers", "HorizontalPodAutoscaler")]},
            ],
            "example.com": [{"version": "v1", "resources": [resource("widgets", "Widget", namespaced=False)]}],
        }
        self.asked: list[str] = []

    async def get_json(self, path: str, accept: str) -> dict | None:
        self.asked.append(path)
        if accept != AGGREGATED:
            return {"resources": []}  # only the listing is asked for here
        if path == "/api":
            items = [{"metadata": {}, "versions": self.core}]
        else:
            items = [{"metadata": {"name": name}, "versions": versions} for name, versions in self.groups.items()]
        return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "items": items}


async def test_a_hit_is_served_from_the_cache() -> None:
    served = Served()
    discovery = Discovery(served.get_json)
    first = await discovery.lookup("v1", "ConfigMap")
    again = await discovery.lookup("v1", "ConfigMap")
    assert first == again and first.path("ns", "x") == "/api/v1/namespaces/ns/configmaps/x"
    assert served.asked == ["/api/v1"]


async def test_a_miss_refetches_so_a_new_crd_becomes_usable() -> None:
    served = Served()
    discovery = Discovery(served.get_json)
    with pytest.raises(UnknownKind, match="Widget"):
        await discovery.lookup("example.com/v1", "Widget")
    served.lists["/apis/example.com/v1"] = [
        {"name": "widgets", "kind": "Widget", "namespaced": False, "verbs": ["get"]}
    ]
    widget = await discovery.lookup("example.com/v1", "Widget")
    assert widget.plural == "widgets" and widget.path(None, "w") == "/apis/example.com/v1/widgets/w"
    assert served.asked == ["/apis/example.com/v1", "/apis/example.com/v1"]


async def test_subresources_are_not_kinds() -> None:
    discovery = Discovery(Served().get_json)
    with pytest.raises(UnknownKind):
        await discovery.lookup("v1", "Pod")


async def test_the_listing_is_one_request_per_root_and_serves_lookups_too() -> None:
    served = Aggregated()
    discovery = Discovery(served.get_json)
    kinds = {f"{info.api_version}/{info.kind}" for info in await discovery.served()}
    assert kinds == {"v1/ConfigMap", "autoscaling/v2/HorizontalPodAutoscaler", "example.com/v1/Widget"}
    assert sorted(await discovery.api_versions()) == [
        "autoscaling/v1",
        "autoscaling/v1/HorizontalPodAutoscaler",
        "autoscaling/v2",
        "autoscaling/v2/HorizontalPodAutoscaler",
        "example.com/v1",
        "example.com/v1/Widget",
        "v1",
        "v1/ConfigMap",
    ]
    widget = await discovery.lookup("example.com/v1", "Widget")
    assert not widget.namespaced and widget.path(None, "w") == "/apis/example.com/v1/widgets/w"
    preferred = await discovery.preferred("autoscaling/v1", "HorizontalPodAutoscaler")
    assert preferred.version == "v2"
    assert sorted(served.asked) == ["/api", "/apis"]  # no request per group version, none for the lookups


async def test_a_kind_added_to_a_known_group_version_is_listed_when_the_listing_is_read_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served = Aggregated()
    discovery = Discovery(served.get_json)
    assert "example.com/v1/Gadget" not in await discovery.api_versions()
    served.groups["example.com"][0]["resources"].append(resource("gadgets", "Gadget"))
    assert "example.com/v1/Gadget" not in await discovery.api_versions()  # the listing is reused a while
    monkeypatch.setattr(discovery_module, "SERVED_TTL", 0.0)
    assert "example.com/v1/Gadget" in await discovery.api_versions()
    assert "Gadget" in {info.kind for info in await discovery.served()}
    asked = len(served.asked)
    assert (await discovery.lookup("example.com/v1", "Gadget")).plural == "gadgets"
    assert len(served.asked) == asked


async def test_a_stale_group_version_is_skipped_rather_than_failing_the_listing() -> None:
    served = Aggregated()
    served.groups["metrics.example.com"] = [{"version": "v1beta1", "freshness": "Stale"}]
    discovery = Discovery(served.get_json)
    names = await discovery.api_versions()
    assert "metrics.example.com/v1beta1" not in names and "example.com/v1/Widget" in names


async def test_a_server_without_aggregated_discovery_is_read_per_group_version() -> None:
    served = Served()
    served.lists["/apis/apps/v1"] = [{"name": "deployments", "kind": "Deployment", "namespaced": True, "verbs": []}]
    listings = {"/api": {"versions": ["v1"]}, "/apis": {"groups": [_group("apps", "v1")]}}
    plain = served.get_json

    async def get_json(path: str, accept: str) -> dict | None:
        if path in listings:
            served.asked.append(path)
            return listings[path]
        return await plain(path, accept)

    discovery = Discovery(get_json)
    assert {f"{i.api_version}/{i.kind}" for i in await discovery.served()} == {"v1/ConfigMap", "apps/v1/Deployment"}
    assert sorted(served.asked) == ["/api", "/api/v1", "/apis", "/apis/apps/v1"]


def _group(name: str, version: str) -> dict:
    group_version = f"{name}/{version}"
    return {
        "name": name,
        "versions": [{"groupVersion": group_version, "version": version}],
        "preferredVersion": {"groupVersion": group_version, "version": version},
    }
