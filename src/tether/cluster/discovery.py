"""Which REST path serves a given apiVersion/kind, learned from the server and cached.

A lookup fetches its group/version on first use and again on a miss, so a CRD that was applied
earlier in the same sync becomes usable without restarting anything. The listing of everything
served (``served``, ``api_versions``) is one aggregated-discovery request per root (Kubernetes
1.27+, as kubectl and helm read it), whose resources replace the cached ones: a kind added to a
group version already known shows up at the next listing, not only after a lookup misses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from tether.cluster.errors import ClusterError, ClusterUnreachable, UnknownKind

SERVED_TTL = 10.0  # seconds a listing of the served groups is reused by ``served``
# Aggregated discovery (apidiscovery.k8s.io v2, or v2beta1 on 1.27–1.29): every group version with
# its resources in one answer per root. A server without it answers the plain listing, read per group.
AGGREGATED = ",".join(
    [
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
        "application/json",
    ]
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ResourceInfo:
    """One served resource type."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: frozenset[str]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """REST path of the collection (or of one object when ``name`` is given)."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


@dataclass(frozen=True)
class _Listing:
    """What the server serves: each group's preferred version, every version, and (aggregated) their resources."""

    preferred: list[str]
    versions: list[str]
    resources: dict[str, dict[str, ResourceInfo]] | None  # None: a plain listing, resources read per group


def split_api_version(api_version: str) -> tuple[str, str]:
    """``apps/v1`` → (``apps``, ``v1``); ``v1`` → (``""``, ``v1``)."""
    group, _, version = api_version.rpartition("/")
    return group, version


class Discovery:
    """Cache of resource lists per group/version, refreshed on a miss."""

    def __init__(self, get_json: Callable[[str, str], Awaitable[dict[str, Any] | None]]) -> None:
        """``get_json(path, accept)`` answers a discovery GET, or None for a 404."""
        self._get_json = get_json
        self._by_group_version: dict[str, dict[str, ResourceInfo]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._preferred_versions: dict[str, str] = {}
        self._groups_lock = asyncio.Lock()
        self._served: tuple[float, _Listing] | None = None
        self._listing: asyncio.Future[_Listing] | None = None

    async def lookup(self, api_version: str, kind: str) -> ResourceInfo:
        known = self._by_group_version.get(api_version, {})
        if kind in known:
            return known[kind]
        refreshed = await self._refresh(api_version)
        if kind in refreshed:
            return refreshed[kind]
        raise UnknownKind(
            f"the cluster does not serve kind {kind!r} in apiVersion {api_version!r}"
            " (is its CustomResourceDefinition installed?)"
        )

    async def preferred(self, api_version: str, kind: str) -> ResourceInfo:
        """``kind`` in the version its group prefers, so one watch serves every version a manifest names.

        Raises ``UnknownKind`` when ``api_version`` does not serve ``kind``. When the preferred
        version lacks the kind (it exists only in an older version), the named version is it.
        """
        info = await self.lookup(api_version, kind)
        version = await self._preferred_version(info.group)
        if version is None or version == info.version:
            return info
        try:
            return await self.lookup(f"{info.group}/{version}" if info.group else version, kind)
        except UnknownKind:
            return info

    async def _preferred_version(self, group: str) -> str | None:
        """The group's preferred version from ``/apis`` (core: ``v1``); fetched again for a group not seen yet."""
        if not group:
            return "v1"
        if group in self._preferred_versions:
            return self._preferred_versions[group]
        async with self._groups_lock:
            if group not in self._preferred_versions:
                groups = await self._get_json("/apis", "application/json") or {}
                for entry in groups.get("groups") or []:
                    version = (entry.get("preferredVersion") or {}).get("version")
                    if entry.get("name") and version:
                        self._preferred_versions[str(entry["name"])] = str(version)
        return self._preferred_versions.get(group)

    async def served(self) -> list[ResourceInfo]:
        """Every resource type the server serves, in the preferred version of each API group.

        The listing is reused for ``SERVED_TTL`` seconds (and shared by callers at the same
        time): a controller starting a hundred syncs asks once, not twice per sync. ``invalidate``
        forgets it, as after a CRD was applied.
        """
        listing = await self._groups()
        known = await self._resources(listing)
        return [info for api_version in listing.preferred for info in known.get(api_version, {}).values()]

    async def api_versions(self) -> list[str]:
        """Every served group version and ``group/version/Kind``, sorted: helm's ``.Capabilities.APIVersions``.

        All the versions a group serves, not only the preferred one, as helm lists them from a live cluster.
        """
        listing = await self._groups()
        known = await self._resources(listing, every_version=True)
        names = set(known)
        names.update(f"{api_version}/{kind}" for api_version, kinds in known.items() for kind in kinds)
        return sorted(names)

    async def _groups(self) -> _Listing:
        loop = asyncio.get_running_loop()
        if self._served is not None and loop.time() - self._served[0] < SERVED_TTL:
            return self._served[1]
        if self._listing is None or self._listing.done():
            self._listing = asyncio.ensure_future(self._list_groups())
        listing = await asyncio.shield(self._listing)
        self._served = (loop.time(), listing)
        return listing

    async def _resources(self, listing: _Listing, *, every_version: bool = False) -> dict[str, dict[str, ResourceInfo]]:
        """The resources of each listed group version, skipping groups that cannot be read now."""
        versions = listing.versions if every_version else listing.preferred
        if listing.resources is not None:
            return {v: listing.resources[v] for v in versions if v in listing.resources}
        known = {v: self._by_group_version[v] for v in versions if v in self._by_group_version}
        missing = [v for v in versions if v not in known]
        # read at once: a cold start asks for some twenty groups
        results = await asyncio.gather(*(self._refresh(v) for v in missing), return_exceptions=True)
        for api_version, result in zip(missing, results, strict=True):
            if isinstance(result, dict):
                known[api_version] = result
            elif isinstance(result, ClusterError) and not isinstance(result, ClusterUnreachable):
                # An aggregated API that is down, or a CRD deleted a moment ago: skip the
                # group rather than fail every caller (Argo CD does the same).
                log.warning("discovery skipped a group version", api_version=api_version, error=str(result))
            else:
                raise result
        return known

    async def _list_groups(self) -> _Listing:
        core, groups = await asyncio.gather(self._get_json("/api", AGGREGATED), self._get_json("/apis", AGGREGATED))
        core, groups = core or {}, groups or {}
        if core.get("kind") == groups.get("kind") == "APIGroupDiscoveryList":
            return self._aggregated([*(core.get("items") or []), *(groups.get("items") or [])])
        preferred = list(core.get("versions") or [])
        versions = list(preferred)
        for group in groups.get("groups") or []:
            if (group.get("preferredVersion") or {}).get("groupVersion"):
                preferred.append(str(group["preferredVersion"]["groupVersion"]))
            versions += [str(v["groupVersion"]) for v in group.get("versions") or [] if v.get("groupVersion")]
        return _Listing(preferred=preferred, versions=versions, resources=None)

    def _aggregated(self, items: list[dict[str, Any]]) -> _Listing:
        """An ``APIGroupDiscoveryList``'s groups (versions in order of preference), cached for lookups too."""
        preferred: list[str] = []
        versions: list[str] = []
        resources: dict[str, dict[str, ResourceInfo]] = {}
        for item in items:
            group = str((item.get("metadata") or {}).get("name") or "")
            for rank, entry in enumerate(item.get("versions") or []):
                version = str(entry.get("version") or "")
                if not version:
                    continue
                api_version = f"{group}/{version}" if group else version
                versions.append(api_version)
                if rank == 0:
                    preferred.append(api_version)
                    if group:
                        self._preferred_versions[group] = version
                if entry.get("freshness") == "Stale":
                    # An aggregated API whose discovery failed: skip it rather than fail every caller.
                    log.warning("discovery skipped a stale group version", api_version=api_version)
                    continue
                kinds: dict[str, ResourceInfo] = {}
                for resource in entry.get("resources") or []:
                    kind = (resource.get("responseKind") or {}).get("kind")
                    if not kind or not resource.get("resource"):
                        continue
                    kinds[str(kind)] = ResourceInfo(
                        group=group,
                        version=version,
                        kind=str(kind),
                        plural=str(resource["resource"]),
                        namespaced=resource.get("scope") == "Namespaced",
                        verbs=frozenset(resource.get("verbs") or ()),
                    )
                resources[api_version] = kinds
        self._by_group_version.update(resources)
        return _Listing(preferred=preferred, versions=versions, resources=resources)

    def invalidate(self, api_version: str | None = None) -> None:
        """Forget cached discovery (all of it, or one group/version)."""
        self._served = None
        if api_version is None:
            self._by_group_version.clear()
            self._preferred_versions.clear()
        else:
            self._by_group_version.pop(api_version, None)

    async def _refresh(self, api_version: str) -> dict[str, ResourceInfo]:
        lock = self._locks.setdefault(api_version, asyncio.Lock())
        before = self._by_group_version.get(api_version)
        async with lock:
            if self._by_group_version.get(api_version) is not before:
                return self._by_group_version[api_version]  # another task refreshed it meanwhile
            group, version = split_api_version(api_version)
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            payload = await self._get_json(path, "application/json")
            resources: dict[str, ResourceInfo] = {}
            for entry in (payload or {}).get("resources", []):
                if "/" in entry.get("name", ""):
                    continue  # subresources such as deployments/status
                resources[entry["kind"]] = ResourceInfo(
                    group=group,
                    version=version,
                    kind=entry["kind"],
                    plural=entry["name"],
                    namespaced=bool(entry.get("namespaced")),
                    verbs=frozenset(entry.get("verbs") or ()),
                )
            self._by_group_version[api_version] = resources
            return resources
