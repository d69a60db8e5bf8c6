"""Discovery's caching rule on plain data: one fetch per group version, refetched only on a miss."""

from __future__ import annotations

import pytest

from tether.cluster.discovery import Discovery
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

    async def get_json(self, path: str) -> dict | None:
        self.asked.append(path)
        resources = self.lists.get(path)
        return None if resources is None else {"resources": resources}


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
