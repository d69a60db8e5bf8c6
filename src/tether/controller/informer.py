"""A list-then-watch view of one kind in one namespace: the controller's own objects (Applications,
Projects, cluster and repository Secrets), kept whole and handed to a callback on every change.

The shared ``LiveCache`` only keeps objects Tether applied (selected by its label); the
controller's inputs carry no such label, so they get this small informer of their own. A
watch that ends resumes from the last resourceVersion; an expired one (HTTP 410) lists
again and reports every difference, so no change is lost. Failures back off (0.5 s to 30 s).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import structlog

from tether.cluster import Cluster
from tether.cluster.errors import ClusterError, WatchExpired

log = structlog.get_logger(__name__)

Handler = Callable[[str, dict[str, Any] | None, dict[str, Any] | None], None]  # name, old, new


class Informer:
    """Objects of ``kind`` in ``namespace`` by name; ``on_change(name, old, new)`` after every change."""

    def __init__(
        self,
        cluster: Cluster,
        api_version: str,
        kind: str,
        namespace: str,
        on_change: Handler,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> None:
        self.cluster, self.api_version, self.kind, self.namespace = cluster, api_version, kind, namespace
        self.label_selector, self.field_selector = label_selector, field_selector
        self.on_change = on_change
        self.objects: dict[str, dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self.healthy = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"informer {self.kind}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def get(self, name: str) -> dict[str, Any] | None:
        return self.objects.get(name)

    async def _list(self) -> str:
        items, version = await self.cluster.list(
            self.api_version,
            self.kind,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
        )
        fresh = {str(item["metadata"]["name"]): item for item in items}
        old = self.objects
        self.objects = fresh
        for name in set(old) | set(fresh):
            if old.get(name, {}).get("metadata", {}).get("resourceVersion") != fresh.get(name, {}).get(
                "metadata", {}
            ).get("resourceVersion"):
                self.on_change(name, old.get(name), fresh.get(name))
        self.synced.set()
        return version

    async def _run(self) -> None:
        pause = 0.5
        version: str | None = None
        while True:
            try:
                if version is None:
                    version = await self._list()
                self.healthy = True
                async for event in self.cluster.watch(
                    self.api_version,
                    self.kind,
                    self.namespace,
                    resource_version=version,
                    label_selector=self.label_selector,
                    field_selector=self.field_selector,
                ):
                    obj = event.object
                    meta = obj.get("metadata") or {}
                    version = str(meta.get("resourceVersion") or version)
                    if event.type == "BOOKMARK":
                        continue
                    name = str(meta.get("name") or "")
                    old = self.objects.get(name)
                    if event.type == "DELETED":
                        self.objects.pop(name, None)
                        self.on_change(name, old, None)
                    else:
                        self.objects[name] = obj
                        self.on_change(name, old, obj)
                pause = 0.5
            except asyncio.CancelledError:
                raise
            except WatchExpired:
                version = None
            except ClusterError as exc:
                if self.healthy:
                    log.warning("informer failing", kind=self.kind, error=str(exc))
                self.healthy = False
                await asyncio.sleep(pause * random.uniform(0.8, 1.2))
                pause = min(pause * 2, 30.0)
                version = None
            except Exception as exc:  # a bug must not end the controller's view of its own objects
                log.error("informer error", kind=self.kind, error=repr(exc))
                self.healthy = False
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)
                version = None
