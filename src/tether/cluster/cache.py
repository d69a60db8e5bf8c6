"""A watch-backed, in-memory view of the live objects Tether cares about on one cluster.

Diffs, prune and health waits read from here instead of asking the API server again, so a
reconcile that finds nothing changed costs no request. What it holds:

- every object carrying the label ``tether.dev/app`` of each type it tracks. A type is
  tracked after ``await cache.track(api_version, kind)`` (or ``ensure``/``track_all``):
  one label-selected LIST, then one WATCH with bookmarks for that type (cluster-wide, or
  in the cache's namespace). When the server ends the stream the watch resumes from the
  last resourceVersion seen (bookmarks keep it fresh); on HTTP 410 (``WatchExpired``) the
  type is listed again, its content replaced, and synthetic ADDED/MODIFIED/DELETED changes
  are emitted for every difference, so a restart never drops an event silently.
- the objects desired manifests name that do not carry the label (a pre-existing
  unmanaged object with the same name, so a diff sees it). These are fetched with one GET
  each by ``ensure`` and refreshed on demand, i.e. on every later ``ensure``: there are few
  of them (after the first sync every desired object carries the label), and a watch per
  name would hold a connection per object.

Public surface::

    cache = LiveCache(cluster, namespace=None)          # or: async with LiveCache(...) as cache
    await cache.track("apps/v1", "Deployment")            # list + watch; returns once listed
    await cache.track_all()                               # every served list/watch kind (prune, CLI)
    await cache.ensure(desired_objects)                   # track their types, GET unlabelled ones
    cache.get(ResourceKey(...)) -> dict | None            # a deep copy; None when absent
    await cache.at_least(key, rv, api_version=...)        # as of resourceVersion rv or later
    cache.owned_by("app") -> list[dict]                   # tracking id names the app (resource.owner_app)
    cache.tracks(key) -> bool                             # whether key's type is watched
    sub = cache.subscribe(maxsize=1024)                   # async for change in sub: ... ; sub.close()
    await cache.wait_for(key, predicate, timeout=60.0)    # woken by watch events, not polling
    await cache.close()                                   # cancels every task

Changes are ``CacheEvent(type, key, object)`` with type ADDED, MODIFIED, DELETED, or RESYNC
(the subscriber's bounded queue overflowed: re-read what you need from the cache).

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
import copy
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from tether.cluster.client import Cluster, WatchEvent
from tether.cluster.discovery import split_api_version
from tether.cluster.errors import ClusterError, ClusterUnreachable, UnknownKind, WatchExpired
from tether.errors import TetherError
from tether.resource import APP_LABEL, ResourceKey, owner_app

log = structlog.get_logger(__name__)

ADDED, MODIFIED, DELETED, RESYNC = "ADDED", "MODIFIED", "DELETED", "RESYNC"
DEFAULT_QUEUE = 1024
WATCH_TIMEOUT_SECONDS = 300
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0
ENSURE_CONCURRENCY = 16
CATCH_UP_TIMEOUT = 5.0
HEARTBEAT = 5.0
REPORT_EVERY = 60.0
# Kinds never worth watching for owned objects: high churn, and nobody applies them from git.
UNTRACKED_KINDS = frozenset({"Event"})


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
    """The labelled objects of one (apiVersion, kind[, namespace]): a LIST, then a resuming WATCH."""

    def __init__(self, cache: LiveCache, api_version: str, kind: str, namespace: str | None) -> None:
        self.cache, self.api_version, self.kind, self.namespace = cache, api_version, kind, namespace
        self.group = split_api_version(api_version)[0]
        self.objects: dict[ResourceKey, dict[str, Any]] = {}
        self.resource_version = ""
        self.relists = 0
        self.task: asyncio.Task[None] | None = None
        self.what = f"{kind}.{api_version}{' in ' + namespace if namespace else ''}"

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
        """Replace this type's content with a fresh LIST, emitting a change for every difference."""
        items, resource_version = await self.cache.cluster.list(
            self.api_version, self.kind, self.namespace, label_selector=APP_LABEL
        )
        fresh = {ResourceKey.of(item): item for item in items}
        self.replace(fresh)
        self.resource_version = resource_version
        self.relists += 1
        log.debug("cache listed", type=self.what, objects=len(fresh), resource_version=resource_version)

    def replace(self, fresh: dict[ResourceKey, dict[str, Any]]) -> None:
        old, self.objects = self.objects, fresh
        for key, obj in old.items():
            if key not in fresh:
                self.cache._emit(DELETED, key, obj)
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None:
                self.cache._forget_unmanaged(key)
                self.cache._emit(ADDED, key, obj)
            elif _rv(before) != _rv(obj):
                self.cache._emit(MODIFIED, key, obj)

    def apply(self, event: WatchEvent) -> None:
        obj = event.object
        rv = _rv(obj)
        if event.type == "BOOKMARK":
            self.resource_version = rv or self.resource_version
            return
        key = ResourceKey.of(obj)
        if event.type in (ADDED, MODIFIED):
            self.objects[key] = obj
            self.cache._forget_unmanaged(key)
            self.cache._emit(event.type, key, obj)
        elif event.type == DELETED:
            self.objects.pop(key, None)
            self.cache._forget_unmanaged(key)
            self.cache._emit(DELETED, key, obj)
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
                    label_selector=APP_LABEL,
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


def _older(have: str, want: str) -> bool:
    """Whether resourceVersion ``have`` predates ``want``; etcd's are integers, anything else is compared for equality."""
    if have.isdigit() and want.isdigit():
        return int(have) < int(want)
    return have != want


class LiveCache:
    """Live objects of one cluster, kept current by watches. See the module docstring."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        namespace: str | None = None,
        watch_timeout: int = WATCH_TIMEOUT_SECONDS,
    ) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.watch_timeout = watch_timeout
        self._watches: dict[tuple[str, str, str | None], _TypeWatch] = {}
        self._starting: dict[tuple[str, str, str | None], asyncio.Task[_TypeWatch]] = {}
        self._unmanaged: dict[ResourceKey, dict[str, Any]] = {}
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

        Raises ``UnknownKind`` when the cluster does not serve the kind, ``ClusterError`` when the
        first LIST fails. Tracking the same type again is free.
        """
        if self._closed:
            raise TetherError(f"live cache of cluster {self.cluster.name!r} is closed")
        info = await self.cluster.resource(api_version, kind)
        scope = (namespace or self.namespace) if info.namespaced else None
        if (api_version, kind, None) in self._watches or (api_version, kind, scope) in self._watches:
            return
        ref = (api_version, kind, scope)
        starting = self._starting.get(ref)
        if starting is None:
            starting = self._starting[ref] = asyncio.create_task(self._start(ref))
        try:
            await asyncio.shield(starting)
        finally:
            if starting.done():
                self._starting.pop(ref, None)

    async def _start(self, ref: tuple[str, str, str | None]) -> _TypeWatch:
        watch = _TypeWatch(self, *ref)
        await watch.start()
        self._watches[ref] = watch
        return watch

    async def track_all(self, namespace: str | None = None) -> list[tuple[str, str]]:
        """Track every kind the cluster serves with list and watch (its preferred version), except Events.

        This is how prune and ``tether diff`` find owned objects of kinds no longer in git.
        Costs one LIST and one open WATCH per kind. Returns the (apiVersion, kind) pairs tracked.
        """
        infos = [
            info
            for info in await self.cluster.discovery.served()
            if {"list", "watch"} <= info.verbs and info.kind not in UNTRACKED_KINDS
        ]
        results = await asyncio.gather(
            *(self.track(info.api_version, info.kind, namespace) for info in infos), return_exceptions=True
        )
        tracked = []
        for info, result in zip(infos, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, ClusterError) or isinstance(result, ClusterUnreachable):
                    raise result
                log.warning("cache cannot track kind", kind=info.kind, api_version=info.api_version, error=str(result))
            else:
                tracked.append((info.api_version, info.kind))
        return tracked

    async def ensure(self, objects: Iterable[Mapping[str, Any]]) -> None:
        """Make every object named in ``objects`` known: track its type, GET it when it lacks the label.

        Kinds the cluster does not serve (CRD not installed yet) are skipped: such objects
        cannot exist, and ``get`` answers None for them. Unlabelled objects are fetched again on
        every call (refresh on demand).
        """
        wanted: dict[ResourceKey, str] = {}
        types: set[tuple[str, str]] = set()
        for obj in objects:
            api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
            if not api_version or not kind or not (obj.get("metadata") or {}).get("name"):
                continue
            types.add((api_version, kind))
            wanted[ResourceKey.of(obj)] = api_version
        served: set[tuple[str, str]] = set()
        ordered = sorted(types)
        results = await asyncio.gather(*(self.track(a, k) for a, k in ordered), return_exceptions=True)
        for (api_version, kind), result in zip(ordered, results, strict=True):
            if isinstance(result, UnknownKind):
                log.debug("cache: kind not served; its objects are absent", kind=kind, api_version=api_version)
            elif isinstance(result, BaseException):
                raise result
            else:
                served.add((api_version, kind))
        limit = asyncio.Semaphore(ENSURE_CONCURRENCY)

        async def refresh(key: ResourceKey, api_version: str) -> None:
            async with limit:
                live = await self.cluster.get(api_version, key.kind, key.name, key.namespace or None)
            if self._labelled(key) is not None:
                return  # the watch delivered it meanwhile, and is fresher
            before = self._unmanaged.get(key)
            if live is None:
                if before is not None:
                    del self._unmanaged[key]
                    self._emit(DELETED, key, before)
                return
            live.setdefault("apiVersion", api_version)
            live.setdefault("kind", key.kind)
            self._unmanaged[key] = live
            if before is None or _rv(before) != _rv(live):
                self._emit(MODIFIED if before else ADDED, key, live)

        await asyncio.gather(
            *(
                refresh(key, api_version)
                for key, api_version in wanted.items()
                if (api_version, key.kind) in served and self._labelled(key) is None
            )
        )

    # ----------------------------------------------------------------- reads

    def tracks(self, key: ResourceKey) -> bool:
        """Whether a watch covers ``key``'s type and namespace (so ``get`` is authoritative for it)."""
        return any(watch.covers(key) for watch in self._watches.values())

    def get(self, key: ResourceKey) -> dict[str, Any] | None:
        """The live object (a deep copy), or None when it does not exist or is not tracked."""
        obj = self._labelled(key)
        if obj is None:
            obj = self._unmanaged.get(key)
        return copy.deepcopy(obj) if obj is not None else None

    def owned_by(self, app: str) -> list[dict[str, Any]]:
        """Every cached object whose tracking id names ``app`` (and describes the object itself), by key."""
        found: dict[ResourceKey, dict[str, Any]] = {}
        for key, obj in self._unmanaged.items():
            if owner_app(obj) == app:
                found[key] = obj
        for watch in self._watches.values():
            for key, obj in watch.objects.items():
                if owner_app(obj) == app:
                    found[key] = obj
        return [copy.deepcopy(found[key]) for key in sorted(found)]

    async def at_least(
        self, key: ResourceKey, resource_version: str, *, api_version: str, timeout: float = CATCH_UP_TIMEOUT
    ) -> dict[str, Any] | None:
        """The object as of ``resource_version`` or later (a deep copy; None if it is gone since).

        For comparing with something the server just answered (a dry run, a write): a
        watched object waits for its watch event; an unlabelled one, or a watch that does not
        deliver within ``timeout``, is fetched again with one GET.
        """

        def fresh(obj: dict[str, Any] | None) -> bool:
            return obj is not None and not _older(_rv(obj), resource_version)

        current = self.get(key)
        if fresh(current):
            return current
        if self._labelled(key) is not None or (current is None and self.tracks(key)):
            try:
                return await self.wait_for(key, fresh, timeout)
            except WaitTimeout:
                log.info("cache behind the server; fetching", object=str(key), resource_version=resource_version)
        live = await self.cluster.get(api_version, key.kind, key.name, key.namespace or None)
        if live is not None and self._labelled(key) is None:
            live.setdefault("apiVersion", api_version)
            live.setdefault("kind", key.kind)
            self._unmanaged[key] = live
        return copy.deepcopy(live) if live is not None else None

    def _labelled(self, key: ResourceKey) -> dict[str, Any] | None:
        for watch in self._watches.values():
            if watch.covers(key):
                obj = watch.objects.get(key)
                if obj is not None:
                    return obj
        return None

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
        predicate: Callable[[dict[str, Any] | None], bool],
        timeout: float = 60.0,
    ) -> dict[str, Any] | None:
        """Wait until ``predicate(get(key))`` holds, re-checking on each change of ``key``.

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
                if predicate(current):
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
        tasks: list[asyncio.Task[Any]] = [watch.task for watch in self._watches.values() if watch.task is not None]
        tasks += list(self._starting.values())
        for watch in self._watches.values():
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
