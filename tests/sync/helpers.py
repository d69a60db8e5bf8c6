"""Helpers for sync tests against the devcluster: objects, corpus files, and a recorder of watch events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tether.cluster import Cluster, ClusterError

FAIL_LABEL = "pod-container-running-failed.stage.kwok.x-k8s.io"


def load_yaml(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def configmap(
    name: str, namespace: str, *, wave: int | None = None, data: dict[str, str] | None = None, **annotations: str
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "annotations": dict(annotations)}
    if wave is not None:
        meta["annotations"]["argocd.argoproj.io/sync-wave"] = str(wave)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {"k": "v"}}


def job(
    name: str,
    namespace: str,
    *,
    fail: bool = False,
    hook: str | None = None,
    wave: int | None = None,
    delete_policy: str | None = None,
) -> dict[str, Any]:
    """A Job kwok completes at once, or (``fail``) whose pod fails after a second or two."""
    annotations: dict[str, str] = {}
    if hook:
        annotations["argocd.argoproj.io/hook"] = hook
    if wave is not None:
        annotations["argocd.argoproj.io/sync-wave"] = str(wave)
    if delete_policy:
        annotations["argocd.argoproj.io/hook-delete-policy"] = delete_policy
    labels = {FAIL_LABEL: "true"} if fail else {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]},
            },
        },
    }


def deployment(name: str, namespace: str, *, replicas: int = 2, wave: int | None = None, **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    annotations = {"argocd.argoproj.io/sync-wave": str(wave)} if wave is not None else {}
    body: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}},
    }
    body.update(spec)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": body,
    }


@dataclass(frozen=True)
class Seen:
    """One watch event: its type, the object's kind and name, and its resourceVersion (etcd's global order)."""

    type: str
    kind: str
    name: str
    resource_version: int
    uid: str


class Recorder:
    """Raw ``kube.watch`` per kind, started before a sync; events are ordered by resourceVersion.

    Every write to etcd gets the next revision, whatever the kind, so sorting ADDED events by
    their object's resourceVersion gives the true order of creation across kinds.
    """

    def __init__(self, kube: Cluster, namespace: str | None, kinds: Sequence[tuple[str, str]]) -> None:
        self.kube, self.namespace, self.kinds = kube, namespace, kinds
        self.events: list[Seen] = []
        self.objects: list[dict[str, Any]] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def _watch(self, api_version: str, kind: str, resource_version: str) -> None:
        async for event in self.kube.watch(api_version, kind, self.namespace, resource_version=resource_version):
            if event.type == "BOOKMARK":
                continue
            meta = event.object.get("metadata") or {}
            self.objects.append(event.object)
            self.events.append(
                Seen(event.type, kind, meta.get("name", ""), int(meta.get("resourceVersion") or 0), meta.get("uid", ""))
            )

    async def __aenter__(self) -> Recorder:
        for api_version, kind in self.kinds:
            _, resource_version = await self.kube.list(api_version, kind, self.namespace)
            self._tasks.append(asyncio.create_task(self._watch(api_version, kind, resource_version)))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.sleep(0.5)  # let the last events arrive
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, ClusterError):
                await task

    def added(self) -> list[tuple[str, str]]:
        """(kind, name) of every ADDED event, in creation order."""
        return [(e.kind, e.name) for e in sorted(self.events, key=lambda e: e.resource_version) if e.type == "ADDED"]

    def first(self, type_: str, kind: str, name_prefix: str) -> Seen | None:
        for event in sorted(self.events, key=lambda e: e.resource_version):
            if event.type == type_ and event.kind == kind and event.name.startswith(name_prefix):
                return event
        return None


def position(order: list[tuple[str, str]], kind: str, prefix: str) -> int:
    """Index of the first (kind, name starting with prefix) in ``order``; fails the test when absent."""
    for index, (k, name) in enumerate(order):
        if k == kind and name.startswith(prefix):
            return index
    raise AssertionError(f"{kind} {prefix}* was never created; created: {order}")


@contextlib.asynccontextmanager
async def cluster_scoped(kube: Cluster, *objects: dict[str, Any]) -> AsyncIterator[None]:
    """Delete cluster-scoped objects a test made (namespaces of CreateNamespace, CRDs) afterwards."""
    try:
        yield
    finally:
        for obj in objects:
            with contextlib.suppress(ClusterError):
                await kube.delete(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], propagation="Background")
