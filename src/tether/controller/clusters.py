"""Destination clusters: the one Tether runs in (``in-cluster``) and one per cluster Secret.

A cluster Secret lives in the controller namespace, labelled ``tether.dev/secret-type: cluster``
(Argo CD's ``argocd.argoproj.io/secret-type: cluster`` is read too). Its keys: ``name``,
``server``, and either ``kubeconfig`` (a whole kubeconfig, YAML) or ``config`` (Argo CD's JSON:
``bearerToken`` plus ``tlsClientConfig`` with ``caData`` / ``insecure`` / ``certData`` /
``keyData``). Each destination gets one ``Cluster`` connection, one shared ``LiveCache`` and
one ``DryRuns`` store, made on first use and dropped when its Secret changes or goes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from tether.capabilities import Capabilities, read_capabilities
from tether.cluster import Cluster, LiveCache
from tether.cluster.cache import CacheEvent
from tether.cluster.errors import ClusterError
from tether.diff.dryrun import DryRuns
from tether.errors import Reason, TetherError
from tether.render.manifests import ManifestError, load_yaml

log = structlog.get_logger(__name__)

IN_CLUSTER = "in-cluster"
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
SECRET_TYPE_LABELS = ("tether.dev/secret-type", "argocd.argoproj.io/secret-type")
CLUSTER_SELECTOR = "tether.dev/secret-type=cluster"
NAMESPACE_WATCH_TIMEOUT = 10.0  # seconds: the Namespace watch is an optimisation, never a reason to wait long
CAPABILITIES_TTL = 60.0  # seconds the cluster's version and API versions are reused for renders


class ClusterConfigError(TetherError):
    """A cluster Secret that cannot be used; the message names the Secret and key, never a credential."""

    reason = Reason.INVALID_SPEC


@dataclass
class Destination:
    """One destination cluster and what every app on it shares."""

    name: str
    server: str
    cluster: Cluster
    cache: LiveCache
    dry_runs: DryRuns = field(default_factory=lambda: DryRuns(predict=True))
    listener: asyncio.Task[None] | None = None
    warming: asyncio.Task[None] | None = None
    _capabilities: tuple[float, Capabilities] | None = field(default=None, repr=False)
    _reading: asyncio.Future[Capabilities] | None = field(default=None, repr=False)

    @property
    def servers(self) -> set[str]:
        return {self.server.rstrip("/"), str(self.cluster.server or "").rstrip("/")}

    async def capabilities(self) -> Capabilities:
        """The cluster's version and API versions, for Helm; read at most every ``CAPABILITIES_TTL`` seconds.

        Callers at the same time share one read. When a read fails, the last one stands if there
        is one (a render should not fail for a discovery hiccup); otherwise the error is raised.
        """
        loop = asyncio.get_running_loop()
        known = self._capabilities
        if known is not None and loop.time() - known[0] < CAPABILITIES_TTL:
            return known[1]
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(read_capabilities(self.cluster))
        try:
            found = await asyncio.shield(self._reading)
        except ClusterError as exc:
            if known is None:
                raise
            log.info("cluster capabilities not read again; the last stand", cluster=self.name, error=str(exc))
            return known[1]
        self._capabilities = (loop.time(), found)
        return found


async def _warm(destination: Destination) -> None:
    """Track every kind as soon as an app names the cluster, while its first render runs.

    Every sync's prune needs ``track_all``; started here, the first sync of a cold start does not
    wait for some sixty LISTs after its render (Argo CD, too, holds a full cache of each cluster
    that has apps). A failure is only logged: the sync's own ``track_all`` tries again.
    """
    try:
        await destination.cache.track_all()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.info("cache warm-up incomplete", cluster=destination.name, error=str(exc) or type(exc).__name__)


def _decoded(secret: Mapping[str, Any], key: str) -> str | None:
    data = secret.get("data") or {}
    string_data = secret.get("stringData") or {}
    if key in string_data:
        return str(string_data[key])
    if key not in data:
        return None
    try:
        return base64.b64decode(str(data[key]), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        name = (secret.get("metadata") or {}).get("name")
        raise ClusterConfigError(f"cluster Secret {name!r}: data.{key} is not base64 of UTF-8 text") from None


def cluster_config(secret: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(name, server, kubeconfig as a dict) from a cluster Secret; ``ClusterConfigError`` if unusable."""
    secret_name = (secret.get("metadata") or {}).get("name")
    server = (_decoded(secret, "server") or "").strip()
    name = (_decoded(secret, "name") or "").strip() or server
    if not server:
        raise ClusterConfigError(f"cluster Secret {secret_name!r}: data.server is missing")
    kubeconfig = _decoded(secret, "kubeconfig")
    if kubeconfig is not None:
        try:
            loaded = load_yaml(kubeconfig)
        except ManifestError as exc:
            raise ClusterConfigError(f"cluster Secret {secret_name!r}: data.kubeconfig: {exc}") from None
        if not isinstance(loaded, dict):
            raise ClusterConfigError(f"cluster Secret {secret_name!r}: data.kubeconfig is not a kubeconfig mapping")
        return name, server, loaded
    raw = _decoded(secret, "config")
    if raw is None:
        raise ClusterConfigError(f"cluster Secret {secret_name!r}: set data.kubeconfig or data.config")
    try:
        config = json.loads(raw)
    except ValueError as exc:
        raise ClusterConfigError(f"cluster Secret {secret_name!r}: data.config is not JSON: {exc.args[0]}") from None
    if not isinstance(config, dict):
        raise ClusterConfigError(f"cluster Secret {secret_name!r}: data.config must be a JSON object")
    tls = config.get("tlsClientConfig") or {}
    entry: dict[str, Any] = {"server": server}
    if tls.get("caData"):
        entry["certificate-authority-data"] = tls["caData"]
    if tls.get("insecure"):
        entry["insecure-skip-tls-verify"] = True
    user: dict[str, Any] = {}
    if config.get("bearerToken"):
        user["token"] = config["bearerToken"]
    if config.get("username"):
        user["username"], user["password"] = config["username"], config.get("password", "")
    if tls.get("certData") and tls.get("keyData"):
        user["client-certificate-data"], user["client-key-data"] = tls["certData"], tls["keyData"]
    if not user:
        raise ClusterConfigError(f"cluster Secret {secret_name!r}: data.config has no bearerToken or client cert")
    return (
        name,
        server,
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": entry}],
            "users": [{"name": name, "user": user}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
        },
    )


class ClusterRegistry:
    """Every destination by name and server; ``on_event(destination, change)`` for each live-cache change."""

    def __init__(self, home: Cluster, on_event: Callable[[Destination, CacheEvent], None]) -> None:
        self.home = home
        self.on_event = on_event
        self._secrets: dict[str, tuple[str, str, dict[str, Any]] | ClusterConfigError] = {}
        self._open: dict[str, Destination] = {}
        self._connecting: dict[str, asyncio.Future[Destination]] = {}

    # --- the Secrets, from the controller's informer
    def secret_changed(self, secret_name: str, secret: Mapping[str, Any] | None) -> list[str]:
        """Record a cluster Secret's new content (None: deleted); returns the destination names to drop."""
        old = self._secrets.pop(secret_name, None)
        if secret is not None:
            try:
                self._secrets[secret_name] = cluster_config(secret)
            except ClusterConfigError as exc:
                self._secrets[secret_name] = exc
        dropped = [old[0]] if isinstance(old, tuple) else []
        return dropped

    async def drop(self, name: str) -> None:
        destination = self._open.pop(name, None)
        if destination is not None:
            await self._close(destination)

    # --- lookups
    def _configured(self, server: str | None, name: str | None) -> tuple[str, str, dict[str, Any]] | None:
        for entry in self._secrets.values():
            if isinstance(entry, ClusterConfigError):
                continue
            if (name and entry[0] == name) or (server and entry[1].rstrip("/") == server.rstrip("/")):
                return entry
        return None

    def describe(self, server: str | None, name: str | None) -> str:
        return f"name {name!r}" if name else f"server {server!r}"

    async def resolve(self, server: str | None, name: str | None) -> Destination:
        """The destination an app names by ``server`` or ``name``; connects on first use."""
        if name == IN_CLUSTER or (not name and (server or "").rstrip("/") in self._home_servers()):
            key, config = IN_CLUSTER, None
        else:
            found = self._configured(server, name)
            if found is None:
                broken = [str(e) for e in self._secrets.values() if isinstance(e, ClusterConfigError)]
                hint = f" (unusable cluster Secrets: {'; '.join(broken)})" if broken else ""
                raise ClusterConfigError(
                    f"destination cluster {self.describe(server, name)} is not configured: "
                    f"no cluster Secret labelled {CLUSTER_SELECTOR} names it{hint}"
                )
            key, config = found[0], found
        if key in self._open:
            return self._open[key]
        future = self._connecting.get(key)
        if future is None:
            future = asyncio.ensure_future(self._connect(key, config))
            self._connecting[key] = future
            future.add_done_callback(lambda _: self._connecting.pop(key, None))
        return await asyncio.shield(future)

    def _home_servers(self) -> set[str]:
        return {IN_CLUSTER_SERVER, str(self.home.server or "").rstrip("/")}

    def opened(self) -> list[Destination]:
        return list(self._open.values())

    async def _connect(self, key: str, config: tuple[str, str, dict[str, Any]] | None) -> Destination:
        if config is None:
            cluster, server = self.home, IN_CLUSTER_SERVER
        else:
            cluster = await Cluster.connect(config=config[2], name=config[0])
            server = config[1]
        destination = Destination(name=key, server=server, cluster=cluster, cache=LiveCache(cluster))
        try:  # an optimisation only: without it, objects in a missing namespace cost a GET each
            await asyncio.wait_for(destination.cache.track_namespaces(), NAMESPACE_WATCH_TIMEOUT)
        except (TetherError, TimeoutError) as exc:
            log.info("namespaces not watched", cluster=key, error=str(exc) or type(exc).__name__)
        destination.listener = asyncio.create_task(self._listen(destination), name=f"cache events {key}")
        destination.warming = asyncio.create_task(_warm(destination), name=f"cache warm-up {key}")
        self._open[key] = destination
        log.info("destination connected", cluster=key, server=server)
        return destination

    async def _listen(self, destination: Destination) -> None:
        subscription = destination.cache.subscribe(maxsize=4096)
        try:
            async for change in subscription:
                self.on_event(destination, change)
        finally:
            subscription.close()

    async def _close(self, destination: Destination) -> None:
        tasks = [task for task in (destination.listener, destination.warming) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await destination.cache.close()
        if destination.cluster is not self.home:
            await destination.cluster.close()

    async def close(self) -> None:
        for destination in list(self._open.values()):
            await self._close(destination)
        self._open.clear()
