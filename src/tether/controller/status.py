"""An Application's status as plain data (Argo CD's shape), and the writer that sends it only when it changed.

Status is small and holds no manifests and no secrets: per resource its key, sync status,
health, hook flag and whether prune is required; the app's sync and health; conditions;
a summary of images and external URLs; history; the operation's state. The writer keeps
what it last wrote per app and sends a JSON patch of the whole ``status`` only when the new
one differs, so a reconcile that changed nothing writes nothing.

A status *in motion* (an operation running, or health Progressing) is not final: what the
controller's own loop writes of it waits ``settle`` seconds, and whatever the app has reached
by then is what goes out. A sync that finishes and turns Healthy within that time costs one
write instead of three, and an app that stays in motion is written at most once per ``settle``.
A settled status is written at once, so the end of an operation is never late. Writers that
need the server to hold a state before they go on (a sync's run id before its hooks, a manual
operation's result before its field is cleared) write at once whatever the status.

An operation that has to wait for a sync slot (``queued``) is announced when it starts, as
Argo CD writes ``operationState`` when an operation processor takes the operation, not when it
is requested: its held status waits for ``started`` and then ``settle`` more, or ``queued_hold``
seconds in all, so a long queue still shows where the app stands. Under load most apps then
cost one status write instead of two.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from tether.cluster import Cluster
from tether.cluster.errors import ClusterError
from tether.diff import AppDiff
from tether.health import Health
from tether.jsonfast import canonical
from tether.resource import ResourceKey, json_copy
from tether.secrets import REDACTOR

log = structlog.get_logger(__name__)

APP_API_VERSION = "tether.dev/v1alpha1"
MAX_MESSAGE = 1024
MOVING_PHASES = frozenset({"Running", "Terminating"})
QUEUED_HOLD = 30.0  # seconds at most that a queued operation's announcement waits for its start

# (sync status, health status) as last written: what an Event about a transition compares.
Standing = tuple[str | None, str | None]


_now: tuple[int, str] = (-1, "")


def now_iso() -> str:
    """The time as status writes it (UTC, whole seconds); formatted once a second, since every
    reconcile asks for it and the answer changes only once a second."""
    global _now
    second = int(time.time())
    if _now[0] != second:
        _now = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)))
    return _now[1]


def parse_time(text: str) -> datetime | None:
    """A status time (``2026-01-02T03:04:05Z``, as ``now_iso`` writes it) as an aware datetime; None
    when it is not one. A time without a zone is UTC, the only zone status times are written in."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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


def _comparable(status: Mapping[str, Any]) -> bytes:
    """Status as compared for "did anything change": the reconcile time alone is not a change."""
    trimmed = dict(status)
    trimmed.pop("reconciledAt", None)
    return canonical(trimmed)


def standing(status: Mapping[str, Any] | None) -> Standing:
    """The app's sync and health status in ``status``."""
    status = status or {}
    return (status.get("sync") or {}).get("status"), (status.get("health") or {}).get("status")


def in_motion(status: Mapping[str, Any]) -> bool:
    """Whether ``status`` is on its way somewhere: an operation running, or health Progressing."""
    return (status.get("operationState") or {}).get("phase") in MOVING_PHASES or standing(status)[1] == "Progressing"


class StatusWriter:
    """Sends an app's status when it changed; one write at a time per app, the newest wins.

    ``on_written(name, before, after)`` hears of every status the server accepted, with the
    (sync, health) it replaced: the controller's Events describe transitions of written
    status, as Argo CD's do, so a state that never reached the server makes no Event either.
    """

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        *,
        settle: float = 0.0,
        queued_hold: float = QUEUED_HOLD,
        on_written: Callable[[str, Standing, Mapping[str, Any]], None] | None = None,
    ) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.settle = settle
        self.queued_hold = queued_hold
        self.on_written = on_written
        self._written: dict[str, bytes] = {}
        self._standing: dict[str, Standing] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, Mapping[str, Any]] = {}  # statuses in motion, written when their wait ends
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._queued: dict[str, asyncio.Event] = {}  # apps whose operation waits for a slot; set when it starts
        self.writes = 0
        self.settled = 0  # statuses in motion that a newer one replaced before they were written

    def seen(self, name: str, status: Mapping[str, Any] | None) -> None:
        """What the server holds now (from the informer at start), so an unchanged status is not rewritten."""
        if status is not None and name not in self._written:
            self._written[name] = _comparable(status)
            self._standing[name] = standing(status)

    def forget(self, name: str) -> None:
        self._written.pop(name, None)
        self._standing.pop(name, None)
        self._locks.pop(name, None)
        self._waiting.pop(name, None)
        self.started(name)
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def queued(self, name: str) -> None:
        """``name``'s operation waits for a sync slot: a status held for it waits for ``started``."""
        self._queued.setdefault(name, asyncio.Event())

    def started(self, name: str) -> None:
        """``name``'s operation has its slot (or will not run): what is held settles from now."""
        event = self._queued.pop(name, None)
        if event is not None:
            event.set()

    def ended(self, name: str) -> None:
        """``name``'s operation ended, and the reconcile queued after it writes the app's status.

        A status still held from before shows the operation running: out of date, it is dropped
        rather than written. Under a burst that reconcile may wait seconds in the queue, and the
        held status would otherwise go out meanwhile, one more write for each app for nothing.
        """
        self.started(name)
        if self._waiting.pop(name, None) is not None:
            timer = self._timers.pop(name, None)
            if timer is not None:
                timer.cancel()  # still waiting: it had not taken the status to send

    @property
    def waiting(self) -> int:
        """Statuses in motion not yet written."""
        return len(self._waiting)

    async def write(self, name: str, status: Mapping[str, Any], *, settle: bool = False) -> bool:
        """Patch ``status`` of Application ``name`` if it differs from the last one written; True if sent.

        With ``settle``, a status in motion is held for ``self.settle`` seconds (see the module
        docstring) and False is returned; a later call replaces what is held.
        """
        if settle and self.settle > 0 and in_motion(status):
            if name in self._waiting:
                self.settled += 1
            self._waiting[name] = status
            if name not in self._timers:
                self._timers[name] = asyncio.create_task(self._after_wait(name), name=f"status {name}")
            return False
        self._waiting.pop(name, None)
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()
        return await self._send(name, status)

    async def close(self) -> None:
        """Write every status still held, now (shutdown)."""
        for name in list(self._waiting):
            status = self._waiting.get(name)
            if status is not None:
                await self.write(name, status)

    async def _after_wait(self, name: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(self.queued_hold, self.settle)
        await asyncio.sleep(self.settle)
        queued = self._queued.get(name)
        if queued is not None:
            try:
                await asyncio.wait_for(queued.wait(), deadline - loop.time())
                await asyncio.sleep(min(self.settle, max(0.0, deadline - loop.time())))
            except TimeoutError:
                pass
        self._timers.pop(name, None)
        status = self._waiting.pop(name, None)
        if status is None:
            return
        try:
            await self._send(name, status)
        except ClusterError as exc:
            log.warning("status write failed", app=name, error=str(exc))

    async def _send(self, name: str, status: Mapping[str, Any]) -> bool:
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            wanted = _comparable(status)
            if self._written.get(name) == wanted:
                return False
            body = json_copy(dict(status))
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
            before = self._standing.get(name, (None, None))
            self._standing[name] = standing(body)
            if self.on_written is not None:
                self.on_written(name, before, body)
            return True
