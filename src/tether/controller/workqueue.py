"""One work queue keyed by app: triggers for the same app coalesce, and no app is worked on twice at once.

The semantics of client-go's workqueue, which controllers are built on: an app added while it
is queued is not queued twice (its reasons merge); an app added while a worker holds it is
queued again once the worker is done, so no trigger is lost; ``add_after`` delays a trigger
(polls, backoffs) without a task per app.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Iterable


class WorkQueue:
    """Apps waiting for a reconcile, each with the set of reasons it was asked for."""

    def __init__(self) -> None:
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        self._reasons: dict[str, set[str]] = {}  # queued or dirty-while-processing -> reasons
        self._queued: set[str] = set()
        self._processing: set[str] = set()
        self._delayed: list[tuple[float, int, str, str]] = []
        self._counter = itertools.count()
        self._wake = asyncio.Event()
        self._closed = False
        self.adds = 0  # triggers received, coalesced or not (for tests and metrics)

    def __len__(self) -> int:
        return len(self._queued)

    def add(self, app: str, reason: str) -> None:
        """Ask for a reconcile of ``app``; merges with a pending one."""
        if self._closed:
            return
        self.adds += 1
        self._reasons.setdefault(app, set()).add(reason)
        if app in self._queued or app in self._processing:
            return
        self._queued.add(app)
        self._ready.put_nowait(app)

    def add_many(self, apps: Iterable[str], reason: str) -> None:
        for app in apps:
            self.add(app, reason)

    def add_after(self, app: str, reason: str, delay: float) -> None:
        """Ask for a reconcile of ``app`` in ``delay`` seconds."""
        if delay <= 0:
            self.add(app, reason)
            return
        due = asyncio.get_running_loop().time() + delay
        heapq.heappush(self._delayed, (due, next(self._counter), app, reason))
        self._wake.set()

    async def get(self) -> tuple[str, frozenset[str]]:
        """The next app and why it was asked for; the caller must call ``done(app)`` afterwards."""
        app = await self._ready.get()
        self._queued.discard(app)
        self._processing.add(app)
        return app, frozenset(self._reasons.pop(app, set()))

    def done(self, app: str) -> None:
        """The worker finished ``app``; queue it again if it was asked for meanwhile."""
        self._processing.discard(app)
        if app in self._reasons and app not in self._queued and not self._closed:
            self._queued.add(app)
            self._ready.put_nowait(app)

    def forget(self, app: str) -> None:
        """Drop pending reasons of an app that is gone (a queued entry is then a no-op)."""
        self._reasons.pop(app, None)

    async def run_timers(self) -> None:
        """Move delayed triggers to the queue when they are due (one task for the whole queue)."""
        loop = asyncio.get_running_loop()
        while not self._closed:
            now = loop.time()
            while self._delayed and self._delayed[0][0] <= now:
                _, _, app, reason = heapq.heappop(self._delayed)
                self.add(app, reason)
            timeout = (self._delayed[0][0] - now) if self._delayed else None
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    def close(self) -> None:
        self._closed = True
        self._wake.set()
