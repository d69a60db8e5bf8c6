"""A watch-backed, in-memory view of the live objects Tether cares about on one cluster.

One ``LiveCache`` per cluster, shared by every app: diffs, prune, health waits and the
resource tree read from here instead of asking the API server again, so a reconcile that
finds nothing changed costs no request. What it holds:

- **Managed objects**: every object carrying the label ``tether.dev/app`` of each kind it
  tracks, in full (``managedFields`` included: a diff's ``managedFieldsManagers`` rule reads
  them). A kind is tracked after ``track``/``ensure``/``track_all``: one LIST, then one WATCH
  with bookmarks, resumed from the last resourceVersion when the server ends the stream; on
  HTTP 410 the kind is listed again and synthetic ADDED/MODIFIED/DELETED changes are emitted
  for every difference, so a restart never drops an event silently.
- **One watch per group and kind**, at the version the server prefers, whatever version a
  manifest names: objects are keyed by (group, kind, namespace, name). ``get`` returns the
  preferred version; ``get_as(key, api_version)`` the object in the version a manifest names
  (one GET, reused while the resourceVersion holds). A cluster-wide watch replaces narrower
  ones of its kind.
- **Unmanaged objects a manifest names** (a pre-existing object without the label, so a diff
  sees it): one GET each by ``ensure``, refreshed on every later ``ensure``. They are dropped
  when no ``ensure`` has named them for ``unmanaged_ttl`` seconds (default 10 minutes), so a
  name seen once does not stay cached forever.
- **Descendants** (after ``track_tree``): ReplicaSets, Pods, Jobs and EndpointSlices are
  watched without a label selector, and those without the label are kept only as small
  ``TreeNode`` records (key, uid, owner uids, health), not as objects. ``tree(app)`` walks
  an app's managed objects down through ownerReferences.

Indexes by app (tracking id / label), by namespace and by owner uid answer ``owned_by``,
``in_namespace``, ``children`` and ``tree`` without scanning the cache.

Public surface::

    cache = LiveCache(cluster, namespace=None)          # or: async with LiveCache(...) as cache
    await cache.track("apps/v1", "Deployment")            # list + watch; returns once listed
    await cache.track_all()                               # every served list/watch kind (prune, CLI)
    await cache.track_tree()                              # descendant kinds, for tree()
    await cache.ensure(desired_objects)                   # track their kinds, GET unlabelled ones
    await cache.track_namespaces()                        # all Namespaces: objects in a missing one need no GET
    cache.get(ResourceKey(...)) -> dict | None            # a deep copy, preferred version; None when absent
    cache.peek(ResourceKey(...)) -> Mapping | None        # the same, not copied: never to be changed
    cache.owned_view("app") -> list[Mapping]              # owned_by, not copied: never to be changed
    await cache.get_as(key, "autoscaling/v1")             # the same object in the version named
    await cache.at_least(key, rv, api_version=...)        # as of resourceVersion rv or later
    cache.owned_by("app") -> list[dict]                   # deep copies of that app's objects only
    cache.owned_keys("app") -> list[ResourceKey]          # the same, keys only (no copy)
    cache.in_namespace("ns") / cache.children(uid)        # keys, from the indexes
    cache.tree("app") -> list[TreeNode]                   # managed objects and descendants, with health
    await cache.details(node)                             # one GET: the full object of a tree node
    cache.tracks(key) -> bool                             # whether key's kind is watched
    cache.stats() -> dict[str, int]                       # watches, objects, unmanaged, nodes
    sub = cache.subscribe(maxsize=1024)                   # async for change in sub: ... ; sub.close()
    await cache.wait_for(key, predicate, timeout=60.0)    # woken by watch events, not polling
    await cache.close()                                   # cancels every task

Changes are ``CacheEvent(type, key, object)`` with type ADDED, MODIFIED, DELETED, or RESYNC
(the subscriber's bounded queue overflowed: re-read what you need from the cache). They are
emitted for managed and named unmanaged objects; descendant nodes change silently.

Watch errors are retried with exponential backoff (0.5 s to 30 s, jittered). They are logged
once per outage, not once per retry: one warning when the first watch fails, a reminder with
the count every ``REPORT_EVERY`` seconds while any still fails, and one "recovered after N
failures" line when the last failing watch is accepted by the server again.

A wait never outlives the cluster: when a watch fails, or nothing has been heard for
``HEARTBEAT`` seconds, ``wait_for`` asks ``Cluster.ensure_reachable`` (free while the server
answers; else a shared, bounded probe) and ends with ``ClusterUnreachable`` when the server
is gone, instead of waiting out its own timeout on a silent watch.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from tether.cluster.client import Cluster, WatchEvent
from tether.cluster.discovery import ResourceInfo
from tether.cluster.errors import ClusterError, ClusterUnreachable, UnknownKind, WatchExpired
from tether.cluster.index import Facts, Index, owner_uids
from tether.cluster.tree import DESCENDANT_KINDS, TreeNode, node_of
from tether.errors import TetherError
from tether.health.lua_checks import LuaChecks
from tether.resource import APP_LABEL, ResourceKey, json_copy, owner_app

log = structlog.get_logger(__name__)

ADDED, MODIFIED, DELETED, RESYNC = "ADDED", "MODIFIED", "DELETED", "RESYNC"
DEFAULT_QUEUE = 1024
WATCH_TIMEOUT_SECONDS = 300
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0
CATCH_UP_TIMEOUT = 5.0
HEARTBEAT = 5.0
REPORT_EVERY = 60.0
# Unmanaged objects a manifest named are forgotten after this long without being named again.
UNMANAGED_TTL = 600.0
# Objects held in a second version for get_as (the oldest goes first).
MAX_VERSIONS = 1024
# What ``track_all`` leaves out: Events, and Argo CD's default ``resource.exclusions`` (groups x
# kinds), objects the control plane and add-ons make and churn and nobody applies from git. A kind
# a manifest names is still tracked on demand, so an app that applies one still sees it.
UNTRACKED: tuple[tuple[frozenset[str], frozenset[str]], ...] = (
    (frozenset({"", "events.k8s.io"}), frozenset({"Event"})),
    (frozenset({"", "discovery.k8s.io"}), frozenset({"Endpoints", "EndpointSlice"})),
    (frozenset({"coordination.k8s.io"}), frozenset({"Lease"})),
    (frozenset({"certificates.k8s.io"}), frozenset({"CertificateSigningRequest"})),
    (frozenset({"cert-manager.io"}), frozenset({"CertificateRequest"})),
    (frozenset({"cilium.io"}), frozenset({"CiliumIdentity", "CiliumEndpoint", "CiliumEndpointSlice"})),
    (
        frozenset({"kyverno.io", "reports.kyverno.io", "wgpolicyk8s.io"}),
        frozenset(
            {
                "PolicyReport",
                "ClusterPolicyReport",
                "EphemeralReport",
                "ClusterEphemeralReport",
                "AdmissionReport",
                "ClusterAdmissionReport",
                "BackgroundScanReport",
                "ClusterBackgroundScanReport",
                "UpdateRequest",
            }
        ),
    ),
)


def untracked(group: str, kind: str) -> bool:
    """Whether ``track_all`` leaves ``group``/``kind`` out (``UNTRACKED``)."""
    return any(group in groups and kind in kinds for groups, kinds in UNTRACKED)


@dataclass(frozen=True)
class CacheEvent:
    """One change seen by the cache. ``object`` is the new state (the last state for DELETED)."""

    type: str
    key: ResourceKey | None
    object: dict[str, Any] | None = field(default=None, repr=False)


class WaitTimeout(TetherError):
    """``wait_for`` gave up; ``last`` is the last state seen (None when absent)."""

    def __init__(self, message: str, last: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.last = last


class Subscription:
    """A bounded queue of changes for one consumer. On overflow it is emptied and holds one RESYNC."""

    def __init__(self, cache: LiveCache, maxsize: int) -> None:
        self._cache = cache
        self._queue: asyncio.Queue[CacheEvent | None] = asyncio.Queue(maxsize=max(2, maxsize))
        self.closed = False

    def _offer(self, event: CacheEvent | None) -> None:
        if self.closed:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            while not self._queue.empty():
                self._queue.get_nowait()
            self._queue.put_nowait(CacheEvent(RESYNC, None) if event is not None else None)
            if event is not None:
                log.warning("cache subscriber fell behind; sent RESYNC", cluster=self._cache.cluster.name)

    async def get(self) -> CacheEvent:
        """The next change; raises ``StopAsyncIteration`` once the subscription or cache is closed."""
        if self.closed and self._queue.empty():
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is None:
            self.closed = True
            raise StopAsyncIteration
        return event

    def __aiter__(self) -> AsyncIterator[CacheEvent]:
        return self

    async def __anext__(self) -> CacheEvent:
        return await self.get()

    def close(self) -> None:
        """Stop receiving changes; a pending ``get`` ends."""
        if not self.closed:
            self._cache._subscribers.discard(self)
            self._offer(None)
            self.closed = True

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class _Backoff:
    def __init__(self) -> None:
        self.delay = BACKOFF_FIRST

    def reset(self) -> None:
        self.delay = BACKOFF_FIRST

    async def sleep(self) -> None:
        await asyncio.sleep(self.delay * random.uniform(0.8, 1.2))
        self.delay = min(BACKOFF_MAX, self.delay * 2)


class _TypeWatch:
    """The objects of one group/kind (in one namespace or cluster-wide): a LIST, then a resuming WATCH.

    ``everything`` watches without a label selector (descendant kinds, for the tree); else
    only labelled objects. ``keys`` are the keys this watch put in the cache.
    """

    def __init__(self, cache: LiveCache, info: ResourceInfo, namespace: str | None, everything: bool) -> None:
        self.cache, self.info, self.namespace, self.everything = cache, info, namespace, everything
        self.api_version, self.kind, self.group = info.api_version, info.kind, info.group
        self.keys: set[ResourceKey] = set()
        self.resource_version = ""
        self.relists = 0
        self.task: asyncio.Task[None] | None = None
        self.what = f"{self.kind}.{self.api_version}{' in ' + namespace if namespace else ''}"

    @property
    def selector(self) -> str | None:
        return None if self.everything else APP_LABEL

    def covers(self, key: ResourceKey) -> bool:
        return (
            key.group == self.group
            and key.kind == self.kind
            and (self.namespace is None or key.namespace == self.namespace)
        )

    async def start(self) -> None:
        await self.relist()
        self.resume(self.resource_version)

    def resume(self, resource_version: str) -> None:
        """(Re)start the watch from ``resource_version``; a stale one ends in a relist."""
        self.stop()
        self.resource_version = resource_version
        self.task = asyncio.create_task(self._run(), name=f"tether-cache-watch {self.what}")

    def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
        self.task = None

    async def relist(self) -> None:
        """Replace this kind's content with a fresh LIST, emitting a change for every difference."""
        items, resource_version = await self.cache.cluster.list(
            self.api_version, self.kind, self.namespace, label_selector=self.selector
        )
        fresh = {ResourceKey.of(item): item for item in items}
        self.replace(fresh)
        self.resource_version = resource_version
        self.relists += 1
        log.debug("cache listed", type=self.what, objects=len(fresh), resource_version=resource_version)

    def replace(self, fresh: dict[ResourceKey, dict[str, Any]]) -> None:
        for key in self.keys - fresh.keys():
            self.cache._gone(self, key, None)
        for obj in fresh.values():
            self.cache._seen(self, obj)

    def apply(self, event: WatchEvent) -> None:
        obj = event.object
        rv = _rv(obj)
        if event.type == "BOOKMARK":
            self.resource_version = rv or self.resource_version
            return
        if event.type in (ADDED, MODIFIED):
            self.cache._seen(self, obj)
        elif event.type == DELETED:
            self.cache._gone(self, ResourceKey.of(obj), obj)
        self.resource_version = rv or self.resource_version

    async def _run(self) -> None:
        backoff = _Backoff()
        must_relist = False
        while True:
            try:
                if must_relist:
                    await self.relist()
                    must_relist = False
                    self.cache._watch_works(self)
                async for event in self.cache.cluster.watch(
                    self.api_version,
                    self.kind,
                    self.namespace,
                    resource_version=self.resource_version,
                    label_selector=self.selector,
                    timeout_seconds=self.cache.watch_timeout,
                    opened=lambda: self.cache._watch_works(self),
                ):
                    self.apply(event)
                    backoff.reset()
                # The server closed the stream (timeoutSeconds): resume from the last resourceVersion.
            except asyncio.CancelledError:
                raise
            except WatchExpired as exc:
                log.info("cache watch expired; listing again", type=self.what, reason=str(exc))
                must_relist = True
            except UnknownKind as exc:
                # The kind is no longer served (its CRD was deleted): so are its objects.
                log.warning("cache watch: kind no longer served", type=self.what, error=str(exc))
                self.replace({})
                must_relist = True
                await backoff.sleep()
            except Exception as exc:
                self.cache._watch_failed(self, exc)
                await backoff.sleep()


def _rv(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _labelled(obj: Mapping[str, Any]) -> bool:
    return APP_LABEL in ((obj.get("metadata") or {}).get("labels") or {})


def _facts(obj: Mapping[str, Any]) -> Facts:
    meta = obj.get("metadata") or {}
    app = owner_app(obj) or ((meta.get("labels") or {}).get(APP_LABEL) if _labelled(obj) else None)
    return Facts(
        app=str(app) if app else None,
        uid=str(meta.get("uid") or "") or None,
        owners=owner_uids(meta.get("ownerReferences") or ()),
    )


def _older(have: str, want: str) -> bool:
    """Whether resourceVersion ``have`` predates ``want``; etcd's are integers, anything else is compared for equality."""
    if have.isdigit() and want.isdigit():
        return int(have) < int(want)
    return have != want


_Scope = tuple[str, str]  # (group, kind)


class LiveCache:
    """Live objects of one cluster, kept current by watches. See the module docstring."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        namespace: str | None = None,
        watch_timeout: int = WATCH_TIMEOUT_SECONDS,
        unmanaged_ttl: float = UNMANAGED_TTL,
    ) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.watch_timeout = watch_timeout
        self.unmanaged_ttl = unmanaged_ttl
        # (group, kind) -> {namespace or None: watch}; a cluster-wide watch is alone in its dict.
        self._watches: dict[_Scope, dict[str | None, _TypeWatch]] = {}
        self._starting: dict[tuple[str, str, str | None, bool], asyncio.Task[_TypeWatch]] = {}
        self._objects: dict[ResourceKey, dict[str, Any]] = {}
        self._unmanaged: dict[ResourceKey, dict[str, Any]] = {}
        self._named_at: dict[ResourceKey, float] = {}
        self._absent_at: dict[ResourceKey, float] = {}  # when a GET last found no such object
        self._nodes: dict[ResourceKey, TreeNode] = {}
        self._versions: dict[tuple[ResourceKey, str], dict[str, Any]] = {}
        self._index = Index()
        self._subscribers: set[Subscription] = set()
        self._waiters: dict[ResourceKey, set[asyncio.Event]] = {}
        self._closed = False
        self._failing: set[str] = set()
        self._failures = 0
        self._failing_since = 0.0
        self._reported_at = 0.0

    async def __aenter__(self) -> LiveCache:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ----------------------------------------------------------------- tracking

    async def track(self, api_version: str, kind: str, namespace: str | None = None) -> None:
        """Hold every labelled ``kind`` (in ``namespace``, or the cache's, or cluster-wide); returns once listed.

        The watch is at the version the server prefers for the kind's group, whatever
        ``api_version`` says; tracking the kind again in any version is free. Raises
        ``UnknownKind`` when ``api_version`` does not serve the kind, ``ClusterError`` when the
        first LIST fails.
        """
        await self._track(api_version, kind, namespace, everything=False)

    async def track_tree(self, namespace: str | None = None) -> list[tuple[str, str]]:
        """Watch the descendant kinds (``tree.DESCENDANT_KINDS``) without a label selector, for ``tree``.

        Replaces a labelled-only watch of those kinds (one watch per kind still). Kinds the
        cluster does not serve are skipped; returns the (apiVersion, kind) pairs watched.
        """
        watched = []
        for api_version, kind in DESCENDANT_KINDS:
            try:
                await self._track(api_version, kind, namespace, everything=True)
            except UnknownKind:
                continue
            watched.append((api_version, kind))
        return watched

    async def track_namespaces(self) -> None:
        """Watch every Namespace, labelled or not (they are few), so ``ensure`` knows without a GET
        that an object in a namespace that does not exist does not exist either (a fleet's first sync)."""
        await self._track("v1", "Namespace", None, everything=True)

    def proves_absent(self, key: ResourceKey) -> bool:
        """Whether a watch of everything (``key``'s kind, or its namespace's) shows ``key`` does not exist."""
        return self._known_absent(key)

    def _known_absent(self, key: ResourceKey) -> bool:
        """Whether a watch of everything proves ``key`` absent: its own kind's, or its namespace's."""
        watch = self._watch_of(key)
        if watch is not None and watch.everything:
            return key not in self._objects and key not in self._nodes
        if not key.namespace:
            return False
        namespace = ResourceKey("", "Namespace", "", key.namespace)
        namespaces = self._watch_of(namespace)
        return (
            namespaces is not None
            and namespaces.everything
            and namespace not in self._objects
            and namespace not in self._nodes
        )

    async def _track(self, api_version: str, kind: str, namespace: str | None, *, everything: bool) -> _TypeWatch:
        if self._closed:
            raise TetherError(f"live cache of cluster {self.cluster.name!r} is closed")
        info = await self.cluster.discovery.preferred(api_version, kind)
        scope = self._scope(info, namespace)
        found = self._covering(info.group, info.kind, scope)
        if found is not None and (found.everything or not everything):
            return found
        ref = (info.group, info.kind, scope, everything)
        starting = self._starting.get(ref)
        if starting is None:
            starting = self._starting[ref] = asyncio.create_task(self._start(info, scope, everything))
        try:
            return await asyncio.shield(starting)
        finally:
            if starting.done():
                self._starting.pop(ref, None)

    async def _start(self, info: ResourceInfo, scope: str | None, everything: bool) -> _TypeWatch:
        watch = _TypeWatch(self, info, scope, everything)
        await watch.start()
        kind = (info.group, info.kind)
        found = self._covering(info.group, info.kind, scope)
        if found is not None and (found.everything or not everything):
            watch.stop()  # a wider watch started meanwhile and holds the same objects
            return found
        watches = self._watches.setdefault(kind, {})
        retired = [w for s, w in watches.items() if scope is None or s == scope]
        for old in retired:
            del watches[old.namespace]
            old.stop()
            for key in old.keys - watch.keys:
                self._gone(old, key, None)
        watches[scope] = watch
        if retired:
            log.debug("cache watch widened", type=watch.what, replaced=[w.what for w in retired])
        return watch

    def _scope(self, info: ResourceInfo, namespace: str | None) -> str | None:
        """Where a watch of ``info`` asked for ``namespace`` looks: that one, the cache's, or cluster-wide."""
        return (namespace or self.namespace) if info.namespaced else None

    def _watched(self, info: ResourceInfo, namespace: str | None) -> bool:
        """Whether ``track`` of ``info`` would return at once: a watch already holds its labelled objects."""
        return self._covering(info.group, info.kind, self._scope(info, namespace)) is not None

    def _covering(self, group: str, kind: str, namespace: str | None) -> _TypeWatch | None:
        """The watch serving ``kind`` in ``namespace`` (None: cluster-wide), if any."""
        watches = self._watches.get((group, kind))
        if not watches:
            return None
        return watches.get(None) or (watches.get(namespace) if namespace is not None else None)

    def _watch_of(self, key: ResourceKey) -> _TypeWatch | None:
        watches = self._watches.get((key.group, key.kind))
        if not watches:
            return None
        return watches.get(None) or watches.get(key.namespace)

    async def track_all(self, namespace: str | None = None) -> list[tuple[str, str]]:
        """Track every kind the cluster serves with list and watch (its preferred version), but ``UNTRACKED``.

        This is how prune and ``tether diff`` find owned objects of kinds no longer in git.
        Costs one LIST and one open WATCH per kind. Returns the (apiVersion, kind) pairs tracked.
        """
        infos = [
            info
            for info in await self.cluster.discovery.served()
            if {"list", "watch"} <= info.verbs and not untracked(info.group, info.kind)
        ]
        # Every sync asks (its prune needs every kind): kinds already watched cost no task each.
        missing = [i for i, info in enumerate(infos) if self._closed or not self._watched(info, namespace)]
        results: list[object] = [None] * len(infos)
        answers = await asyncio.gather(
            *(self.track(infos[i].api_version, infos[i].kind, namespace) for i in missing), return_exceptions=True
        )
        for i, answer in zip(missing, answers, strict=True):
            results[i] = answer
        tracked = []
        for info, result in zip(infos, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, ClusterError) or isinstance(result, ClusterUnreachable):
                    raise result
                log.warning("cache cannot track kind", kind=info.kind, api_version=info.api_version, error=str(result))
            else:
                tracked.append((info.api_version, info.kind))
        return tracked

    async def ensure(self, objects: Iterable[Mapping[str, Any]], *, absent_for: float = 0.0) -> None:
        """Make every object named in ``objects`` known: track its kind, GET it when it lacks the label.

        Kinds the cluster does not serve (CRD not installed yet) are skipped: such objects
        cannot exist, and ``get`` answers None for them. Unlabelled objects are fetched again on
        every call (refresh on demand), in the watched version, unless a watch of everything
        proves them absent (``track_namespaces``, ``track_tree``); those no call has named for
        ``unmanaged_ttl`` seconds are forgotten. ``absent_for`` trusts a GET that found no object
        for that many seconds: a sync that follows its comparison does not ask again.
        """
        self.sweep()
        wanted: set[ResourceKey] = set()
        types: set[tuple[str, str]] = set()
        for obj in objects:
            api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
            if not api_version or not kind or not (obj.get("metadata") or {}).get("name"):
                continue
            types.add((api_version, kind))
            wanted.add(ResourceKey.of(obj))
        ordered = sorted(types)
        results = await asyncio.gather(*(self.track(a, k) for a, k in ordered), return_exceptions=True)
        for (api_version, kind), result in zip(ordered, results, strict=True):
            if isinstance(result, UnknownKind):
                log.debug("cache: kind not served; its objects are absent", kind=kind, api_version=api_version)
            elif isinstance(result, BaseException):
                raise result
        now = time.monotonic()

        async def refresh(key: ResourceKey, watch: _TypeWatch) -> None:
            self._named_at[key] = now
            live = await self.cluster.get(watch.api_version, key.kind, key.name, key.namespace or None)
            if live is None:
                self._absent_at[key] = now
            else:
                self._absent_at.pop(key, None)
            if key in self._objects:
                return  # the watch delivered it meanwhile, and is fresher
            self._remember_unmanaged(key, live, watch.api_version)

        await asyncio.gather(
            *(
                refresh(key, watch)
                for key in wanted
                if key not in self._objects
                and not self._known_absent(key)
                and not (absent_for > 0 and now - self._absent_at.get(key, -math.inf) < absent_for)
                and (watch := self._watch_of(key)) is not None
            )
        )

    def sweep(self) -> int:
        """Forget unmanaged objects no ``ensure`` has named for ``unmanaged_ttl`` seconds; how many went."""
        cutoff = time.monotonic() - self.unmanaged_ttl
        stale = [key for key, at in self._named_at.items() if at < cutoff]
        for key in stale:
            del self._named_at[key]
            self._absent_at.pop(key, None)
            if self._unmanaged.pop(key, None) is not None:
                self._reindex(key)
        return len(stale)

    def _remember_unmanaged(self, key: ResourceKey, live: dict[str, Any] | None, api_version: str) -> None:
        before = self._unmanaged.get(key)
        if live is None:
            if before is not None:
                del self._unmanaged[key]
                self._reindex(key)
                self._emit(DELETED, key, before)
            return
        live.setdefault("apiVersion", api_version)
        live.setdefault("kind", key.kind)
        self._named_at.setdefault(key, time.monotonic())
        self._unmanaged[key] = live
        self._reindex(key)
        if before is None or _rv(before) != _rv(live):
            self._emit(MODIFIED if before else ADDED, key, live)

    # ----------------------------------------------------------------- what watches deliver

    def _seen(self, watch: _TypeWatch, obj: dict[str, Any]) -> None:
        """A watch or list delivered ``obj``: store it where it belongs, index it, tell who waits."""
        key = ResourceKey.of(obj)
        watch.keys.add(key)
        if _labelled(obj):
            before = self._objects.get(key)
            self._objects[key] = obj
            self._nodes.pop(key, None)
            self._forget_unmanaged(key)
            self._reindex(key)
            if before is None:
                self._emit(ADDED, key, obj)
            elif _rv(before) != _rv(obj):
                self._emit(MODIFIED, key, obj)
            return
        if not watch.everything:
            return
        lost = self._objects.pop(key, None)  # the label was removed: no longer managed
        self._nodes[key] = node_of(obj, managed=False)
        named = self._unmanaged.get(key)
        if named is not None:
            self._unmanaged[key] = obj
        self._reindex(key)
        if lost is not None:
            self._emit(DELETED, key, lost)
        if named is not None and _rv(named) != _rv(obj):
            self._emit(MODIFIED, key, obj)

    def _gone(self, watch: _TypeWatch, key: ResourceKey, obj: dict[str, Any] | None) -> None:
        """``key`` left ``watch``'s view (deleted, label removed, relisted away)."""
        watch.keys.discard(key)
        before = self._objects.pop(key, None)
        self._nodes.pop(key, None)
        named = self._unmanaged.pop(key, None) if watch.everything else None
        self._reindex(key)
        last = before or named
        if last is not None:
            self._emit(DELETED, key, obj or last)

    def _reindex(self, key: ResourceKey) -> None:
        obj = self._objects.get(key) or self._unmanaged.get(key)
        if obj is not None:
            self._index.put(key, _facts(obj))
            return
        node = self._nodes.get(key)
        if node is not None:
            self._index.put(key, Facts(app=None, uid=node.uid or None, owners=node.parents))
        else:
            self._index.drop(key)

    # ----------------------------------------------------------------- reads

    def tracks(self, key: ResourceKey) -> bool:
        """Whether a watch covers ``key``'s kind and namespace (so ``get`` is authoritative for it)."""
        return self._watch_of(key) is not None

    def get(self, key: ResourceKey) -> dict[str, Any] | None:
        """The live object (a deep copy, in the watched version), or None when absent or not tracked."""
        obj = self._objects.get(key)
        if obj is None:
            obj = self._unmanaged.get(key)
        return json_copy(obj) if obj is not None else None

    def peek(self, key: ResourceKey) -> Mapping[str, Any] | None:
        """The live object itself, not a copy: for readers that never change it (health, summaries,
        choosing what to prune), so the hot path copies only what it will modify."""
        obj = self._objects.get(key)
        return obj if obj is not None else self._unmanaged.get(key)

    async def get_as(self, key: ResourceKey, api_version: str) -> dict[str, Any] | None:
        """The live object in ``api_version`` (a deep copy); None when the cache has no such object.

        The cache holds each kind in one version; another version costs one GET, which is
        reused while the object's resourceVersion stays the same (so a diff against a manifest
        that names ``autoscaling/v1`` compares v1 with v1).
        """
        obj = self._objects.get(key) or self._unmanaged.get(key)
        if obj is None or obj.get("apiVersion") == api_version:
            return json_copy(obj) if obj is not None else None
        converted = self._versions.get((key, api_version))
        if converted is None or _rv(converted) != _rv(obj):
            converted = await self.cluster.get(api_version, key.kind, key.name, key.namespace or None)
            if converted is None:
                return None
            converted.setdefault("apiVersion", api_version)
            converted.setdefault("kind", key.kind)
            if len(self._versions) >= MAX_VERSIONS:
                self._versions.pop(next(iter(self._versions)))
            self._versions[(key, api_version)] = converted
        return json_copy(converted)

    def owned_keys(self, app: str) -> list[ResourceKey]:
        """The keys of ``app``'s objects (tracking id naming the app and describing the object), sorted."""
        return sorted(key for key in self._index.app(app) if self._owner(key) == app)

    def owned_view(self, app: str) -> list[Mapping[str, Any]]:
        """``owned_by`` without the copies: the live objects themselves, never to be changed."""
        return [live for key in self.owned_keys(app) if (live := self.peek(key)) is not None]

    def owned_by(self, app: str) -> list[dict[str, Any]]:
        """Deep copies of ``app``'s objects, by key: only that app's, found through the app index."""
        found = []
        for key in self.owned_keys(app):
            obj = self._objects.get(key) or self._unmanaged.get(key)
            if obj is not None:
                found.append(json_copy(obj))
        return found

    def _owner(self, key: ResourceKey) -> str | None:
        obj = self._objects.get(key) or self._unmanaged.get(key)
        return owner_app(obj) if obj is not None else None

    def in_namespace(self, namespace: str) -> list[ResourceKey]:
        """Keys of every cached object and tree node in ``namespace`` ("" for cluster-scoped), sorted."""
        return sorted(self._index.namespace(namespace))

    def children(self, uid: str) -> list[ResourceKey]:
        """Keys of the cached objects and tree nodes whose ownerReferences name ``uid``, sorted."""
        return sorted(self._index.children(uid))

    def tree(self, app: str, *, lua: LuaChecks | None = None) -> list[TreeNode]:
        """``app``'s managed objects, then their descendants through ownerReferences, each with its health.

        Managed objects are assessed now (with ``lua`` checks when given); descendants carry the
        health assessed when their last watch event arrived. Descendants are found only for kinds
        watched by ``track_tree``. Parents come before their children; a cycle is cut.
        """
        nodes: list[TreeNode] = []
        seen: set[ResourceKey] = set()
        queue: list[ResourceKey] = self.owned_keys(app)
        while queue:
            key = queue.pop(0)
            if key in seen:
                continue
            seen.add(key)
            node = self._node(key, lua)
            if node is None:
                continue
            nodes.append(node)
            if node.uid:
                queue.extend(sorted(self._index.children(node.uid) - seen))
        return nodes

    def _node(self, key: ResourceKey, lua: LuaChecks | None) -> TreeNode | None:
        obj = self._objects.get(key) or self._unmanaged.get(key)
        if obj is not None:
            # managed: the object carries a tracking id of its own (an EndpointSlice copies its
            # Service's labels, so the label alone does not make an object an app's)
            return node_of(obj, managed=owner_app(obj) is not None, lua=lua)
        return self._nodes.get(key)

    async def details(self, node: TreeNode) -> dict[str, Any] | None:
        """The full live object of a tree node: from the cache when held, else one GET."""
        held = self.get(node.key)
        if held is not None:
            return held
        return await self.cluster.get(node.api_version, node.key.kind, node.key.name, node.key.namespace or None)

    def stats(self) -> dict[str, int]:
        """Sizes, for benchmarks and metrics: open watches, managed and unmanaged objects, tree nodes."""
        return {
            "watches": sum(len(w) for w in self._watches.values()),
            "objects": len(self._objects),
            "unmanaged": len(self._unmanaged),
            "nodes": len(self._nodes),
            "versions": len(self._versions),
        }

    async def at_least(
        self, key: ResourceKey, resource_version: str, *, api_version: str, timeout: float = CATCH_UP_TIMEOUT
    ) -> dict[str, Any] | None:
        """The object as of ``resource_version`` or later (a deep copy, in the watched version; None if gone since).

        For comparing with something the server just answered (a dry run, a write): a
        watched object waits for its watch event; an unlabelled one, or a watch that does not
        deliver within ``timeout``, is fetched again with one GET.
        """

        def fresh(obj: dict[str, Any] | None) -> bool:
            return obj is not None and not _older(_rv(obj), resource_version)

        current = self.get(key)
        if fresh(current):
            return current
        if key in self._objects or (current is None and self.tracks(key)):
            try:
                return await self.wait_for(key, fresh, timeout)
            except WaitTimeout:
                log.info("cache behind the server; fetching", object=str(key), resource_version=resource_version)
        watch = self._watch_of(key)
        version = watch.api_version if watch is not None else api_version
        live = await self.cluster.get(version, key.kind, key.name, key.namespace or None)
        if live is not None and key not in self._objects:
            self._remember_unmanaged(key, json_copy(live), version)
        if live is not None:
            live.setdefault("apiVersion", version)
            live.setdefault("kind", key.kind)
        return live

    # ----------------------------------------------------------------- changes

    def subscribe(self, maxsize: int = DEFAULT_QUEUE) -> Subscription:
        """A bounded queue of every later change; iterate it with ``async for``, ``close()`` it when done."""
        subscription = Subscription(self, maxsize)
        if self._closed:
            subscription.close()
        else:
            self._subscribers.add(subscription)
        return subscription

    async def wait_for(
        self,
        key: ResourceKey,
        predicate: Callable[[dict[str, Any] | None], bool | Awaitable[bool]],
        timeout: float = 60.0,
    ) -> dict[str, Any] | None:
        """Wait until ``predicate(get(key))`` holds, re-checking on each change of ``key``.

        ``predicate`` may be a coroutine function (a health check that runs Lua off the event loop).
        ``predicate`` gets None while the object is absent, so waiting for a deletion works too.
        The key's type must be tracked. Raises ``WaitTimeout`` (carrying the last state) after
        ``timeout`` seconds, and ``ClusterUnreachable`` as soon as the cluster is found gone
        (checked when a watch fails and after every ``HEARTBEAT`` seconds without a change).
        """
        if not self.tracks(key):
            raise TetherError(
                f"live cache: cannot wait for {key}: its kind is not tracked (call track or ensure first)"
            )
        changed = asyncio.Event()
        self._waiters.setdefault(key, set()).add(changed)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                changed.clear()
                current = self.get(key)
                verdict = predicate(current)
                if verdict if isinstance(verdict, bool) else await verdict:
                    return current
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise WaitTimeout(f"{key}: condition not met within {timeout:g}s", current)
                if self._closed:
                    raise TetherError(f"live cache of cluster {self.cluster.name!r} closed while waiting for {key}")
                try:
                    await asyncio.wait_for(changed.wait(), min(remaining, HEARTBEAT))
                    quiet = False
                except TimeoutError:
                    quiet = True
                if quiet or self._failing:
                    await self.cluster.ensure_reachable()  # raises ClusterUnreachable when it is gone
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(changed)
                if not waiters:
                    del self._waiters[key]

    def _emit(self, type_: str, key: ResourceKey, obj: dict[str, Any]) -> None:
        event = CacheEvent(type_, key, obj)
        for subscription in list(self._subscribers):
            subscription._offer(event)
        for waiter in self._waiters.get(key, ()):
            waiter.set()

    def _forget_unmanaged(self, key: ResourceKey) -> None:
        self._unmanaged.pop(key, None)
        self._named_at.pop(key, None)
        self._absent_at.pop(key, None)

    # ----------------------------------------------------------------- watch health

    @property
    def watch_failures(self) -> int:
        """Failed watch attempts in the current outage (0 when every watch works)."""
        return self._failures

    def _watch_failed(self, watch: _TypeWatch, exc: Exception) -> None:
        """Count a failed watch; log the first of an outage and then once per ``REPORT_EVERY``; wake waits."""
        now = time.monotonic()
        first = not self._failing
        self._failing.add(watch.what)
        self._failures += 1
        if first:
            self._failing_since = self._reported_at = now
            log.warning(
                "cache watch failing; retrying with backoff, logged again only while it lasts",
                cluster=self.cluster.name,
                type=watch.what,
                error=str(exc),
            )
        elif now - self._reported_at >= REPORT_EVERY:
            self._reported_at = now
            log.warning(
                "cache watches still failing",
                cluster=self.cluster.name,
                failures=self._failures,
                failing_types=len(self._failing),
                seconds=round(now - self._failing_since, 1),
                error=str(exc),
            )
        else:
            log.debug("cache watch failed again", cluster=self.cluster.name, type=watch.what, error=str(exc))
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.set()  # a wait checks whether the cluster is still there

    def _watch_works(self, watch: _TypeWatch) -> None:
        """The server accepted ``watch`` again; when it was the last failing one, the outage is over."""
        if watch.what not in self._failing:
            return
        self._failing.discard(watch.what)
        if not self._failing:
            log.info(
                "cache watches recovered",
                cluster=self.cluster.name,
                failures=self._failures,
                seconds=round(time.monotonic() - self._failing_since, 1),
            )
            self._failures = 0

    # ----------------------------------------------------------------- lifecycle

    async def close(self) -> None:
        """Cancel every watch, end every subscription, wake every waiter."""
        self._closed = True
        watches = [watch for scoped in self._watches.values() for watch in scoped.values()]
        tasks: list[asyncio.Task[Any]] = [watch.task for watch in watches if watch.task is not None]
        tasks += list(self._starting.values())
        for watch in watches:
            watch.stop()
        for task in self._starting.values():
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._starting.clear()
        for subscription in list(self._subscribers):
            subscription.close()
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.set()
