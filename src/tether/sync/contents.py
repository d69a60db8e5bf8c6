"""What a Namespace still holds, and what of it deleting the Namespace would take along.

Deleting a Namespace deletes everything in it, whoever owns it. So before prune deletes a
Namespace, every namespaced kind the server lists is listed in it (metadata only, one LIST
per kind: a Namespace prune is rare, and correctness beats the cost), and each object is
judged by ``in_the_way``. The live cache is not enough here: it only holds objects carrying
the app label, and the objects that matter most are those of nobody or of another app.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tether.cluster import Cluster, ClusterError, ClusterUnreachable, UnknownKind
from tether.resource import ResourceKey, owner_app

LIST_CONCURRENCY = 8
# Kinds never counted: events describe other objects and vanish with them; metrics are computed.
IGNORED_KINDS = frozenset({"Event"})
IGNORED_GROUPS = frozenset({"events.k8s.io", "metrics.k8s.io"})
# What Kubernetes' own controllers put into every namespace: it belongs to the namespace.
SYSTEM_OBJECTS = frozenset({("", "ConfigMap", "kube-root-ca.crt"), ("", "ServiceAccount", "default")})


@dataclass(frozen=True)
class InTheWay:
    """An object that deleting its Namespace would delete, and whose it is."""

    key: ResourceKey
    why: str

    def __str__(self) -> str:
        return f"{self.key} ({self.why})"


async def namespace_contents(cluster: Cluster, namespace: str) -> tuple[list[dict[str, Any]], list[InTheWay]]:
    """Every object in ``namespace`` (apiVersion, kind, metadata), and the kinds that could not be listed.

    A kind the server refuses to list (RBAC, an aggregated API that is down) is returned as an
    ``InTheWay`` with name ``*``: what it holds is unknown, so it must count as occupied.
    ``ClusterUnreachable`` propagates.
    """
    infos = [
        info
        for info in await cluster.discovery.served()
        if info.namespaced
        and "list" in info.verbs
        and info.kind not in IGNORED_KINDS
        and info.group not in IGNORED_GROUPS
    ]
    limit = asyncio.Semaphore(LIST_CONCURRENCY)

    async def listed(api_version: str, kind: str) -> list[dict[str, Any]]:
        async with limit:
            return await cluster.list_metadata(api_version, kind, namespace)

    results = await asyncio.gather(*(listed(info.api_version, info.kind) for info in infos), return_exceptions=True)
    objects: list[dict[str, Any]] = []
    unlisted: list[InTheWay] = []
    for info, result in zip(infos, results, strict=True):
        if isinstance(result, ClusterUnreachable):
            raise result
        if isinstance(result, UnknownKind):
            continue  # no longer served: it holds nothing
        if isinstance(result, ClusterError):
            unlisted.append(InTheWay(ResourceKey(info.group, info.kind, namespace, "*"), f"cannot be listed: {result}"))
        elif isinstance(result, BaseException):
            raise result
        else:
            objects.extend(result)
    return objects, unlisted


def in_the_way(objects: Iterable[Mapping[str, Any]], *, app: str, doomed: set[ResourceKey]) -> list[InTheWay]:
    """The objects a Namespace deletion must not take along, with why (pure).

    In the way: objects of another app; objects of ``app`` that this sync does not prune
    (``doomed``), i.e. still desired or kept by ``Prune=false``; and objects of no app.
    Not in the way: what Kubernetes puts in every namespace, objects that have an owner
    reference (they follow their owner, which is judged itself), and the Endpoints of a Service.
    """
    objects = list(objects)
    services = {ResourceKey.of(o).name for o in objects if (o.get("kind"), _group(o)) == ("Service", "")}
    found: list[InTheWay] = []
    for obj in objects:
        key = ResourceKey.of(obj)
        if (key.group, key.kind, key.name) in SYSTEM_OBJECTS:
            continue
        owner = owner_app(obj)
        if owner is not None and owner != app:
            found.append(InTheWay(key, f"app {owner}"))
        elif owner == app:
            if key not in doomed:
                found.append(InTheWay(key, "still wanted by this app"))
        elif not _follows_another(obj, key, services):
            found.append(InTheWay(key, "not managed by any app"))
    return sorted(found, key=lambda item: (item.why, item.key))


def _follows_another(obj: Mapping[str, Any], key: ResourceKey, services: set[str]) -> bool:
    """Whether an unmanaged object goes with another one: it has an owner, or is a Service's Endpoints."""
    if (obj.get("metadata") or {}).get("ownerReferences"):
        return True
    return (key.group, key.kind) == ("", "Endpoints") and key.name in services


def _group(obj: Mapping[str, Any]) -> str:
    return str(obj.get("apiVersion") or "").rpartition("/")[0]
