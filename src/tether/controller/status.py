"""An Application's status as plain data (Argo CD's shape), and the writer that sends it only when it changed.

Status is small and holds no manifests and no secrets: per resource its key, sync status,
health, hook flag and whether prune is required; the app's sync and health; conditions;
a summary of images and external URLs; history; the operation's state. The writer keeps
what it last wrote per app and sends a JSON patch of the whole ``status`` only when the new
one differs, so a reconcile that changed nothing writes nothing.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from tether.cluster import Cluster
from tether.cluster.errors import ClusterError
from tether.diff import AppDiff
from tether.health import Health
from tether.resource import ResourceKey
from tether.secrets import REDACTOR

log = structlog.get_logger(__name__)

APP_API_VERSION = "tether.dev/v1alpha1"
MAX_MESSAGE = 1024


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def short(message: str, limit: int = MAX_MESSAGE) -> str:
    """A message fit for status: redacted, one line per line, capped."""
    text = REDACTOR.redact(str(message))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def resource_rows(
    diff: AppDiff, healths: Mapping[ResourceKey, Health | None], versions: Mapping[ResourceKey, str]
) -> list[dict[str, Any]]:
    """``status.resources``: one row per object the app has or wants, sorted by key."""
    rows = []
    for r in diff.resources:
        _group, _, version = versions.get(r.key, "").rpartition("/")
        row: dict[str, Any] = {
            "group": r.key.group,
            "version": version,
            "kind": r.key.kind,
            "name": r.key.name,
            "status": "OutOfSync" if r.counts_as_drift else "Synced",
        }
        if r.key.namespace:
            row["namespace"] = r.key.namespace
        health = healths.get(r.key)
        if health is not None:
            row["health"] = {"status": health.status.value}
            if health.message:
                row["health"]["message"] = short(health.message, 256)
        if r.status == "Extraneous" and not r.ignore_extraneous:
            row["requiresPruning"] = True
        rows.append(row)
    return rows


def summary(live_objects: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Images of the app's workloads and its external URLs (Ingress hosts, LoadBalancer addresses)."""
    images: set[str] = set()
    urls: set[str] = set()
    for obj in live_objects:
        kind = obj.get("kind")
        spec = obj.get("spec") or {}
        pod = spec.get("template", {}).get("spec") if isinstance(spec.get("template"), dict) else None
        if kind == "Pod":
            pod = spec
        if kind == "CronJob":
            pod = (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec")
        if isinstance(pod, dict):
            for section in ("initContainers", "containers"):
                for container in pod.get(section) or []:
                    if isinstance(container, dict) and isinstance(container.get("image"), str):
                        images.add(container["image"])
        if kind == "Ingress":
            tls_hosts = {h for t in spec.get("tls") or [] if isinstance(t, dict) for h in t.get("hosts") or []}
            for rule in spec.get("rules") or []:
                host = rule.get("host") if isinstance(rule, dict) else None
                if isinstance(host, str) and host:
                    urls.add(f"{'https' if host in tls_hosts else 'http'}://{host}")
        if kind == "Service" and spec.get("type") == "LoadBalancer":
            for ingress in ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
                address = ingress.get("hostname") or ingress.get("ip") if isinstance(ingress, dict) else None
                if address:
                    urls.add(f"http://{address}")
    out: dict[str, Any] = {}
    if images:
        out["images"] = sorted(images)
    if urls:
        out["externalURLs"] = sorted(urls)
    return out


def _comparable(status: Mapping[str, Any]) -> str:
    """Status as compared for "did anything change": the reconcile time alone is not a change."""
    trimmed = dict(status)
    trimmed.pop("reconciledAt", None)
    return json.dumps(trimmed, sort_keys=True, default=str)


class StatusWriter:
    """Sends an app's status when it changed; one write at a time per app, the newest wins."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self._written: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.writes = 0

    def seen(self, name: str, status: Mapping[str, Any] | None) -> None:
        """What the server holds now (from the informer at start), so an unchanged status is not rewritten."""
        if status is not None and name not in self._written:
            self._written[name] = _comparable(status)

    def forget(self, name: str) -> None:
        self._written.pop(name, None)
        self._locks.pop(name, None)

    async def write(self, name: str, status: Mapping[str, Any]) -> bool:
        """Patch ``status`` of Application ``name`` if it differs from the last one written; True if sent."""
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            wanted = _comparable(status)
            if self._written.get(name) == wanted:
                return False
            body = copy.deepcopy(dict(status))
            try:
                await self.cluster.patch(
                    APP_API_VERSION,
                    "Application",
                    name,
                    self.namespace,
                    [{"op": "add", "path": "/status", "value": body}],
                    patch_type="json",
                    subresource="status",
                )
            except ClusterError as exc:
                if exc.status == 404:
                    return False  # the app is gone
                raise
            self._written[name] = wanted
            self.writes += 1
            return True
