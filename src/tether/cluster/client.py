"""One connection to one Kubernetes API server, speaking plain dicts.

Built on kubernetes_asyncio for configuration and authentication (kubeconfig, in-cluster,
exec plugins), but requests are made by REST path from our own discovery, so every kind —
including CRDs applied a moment ago — works the same way. Every call has a timeout.

Budgets are per ``Cluster``, shared by every caller (see docs/cluster.md for the defaults and
why): one token bucket (``qps``/``burst``) for every request and watch, a semaphore for reads
and one for writes, and two connection pools: requests use at most ``max_reads + max_writes``
(+2 for probes) connections, so a write always finds one; watches have a pool of their own
without a limit, so a hundred open watches never starve a write. Every request sent is
counted by verb in ``cluster.requests`` (dry runs apart), for tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import aiohttp
import structlog
import yarl

from tether import jsonfast
from tether.cluster.discovery import Discovery, ResourceInfo
from tether.cluster.errors import ClusterError, ClusterUnreachable, WatchExpired, not_found_status
from tether.cluster.kubeconfig import KubeconfigError, check_kubeconfig, default_location
from tether.cluster.requests import RequestCounter
from tether.errors import TetherError

if TYPE_CHECKING:
    # Imported where a connection is made: the package loads every generated model (~0.3 s), which
    # commands that never connect (render, import, --help) should not pay for.
    from kubernetes_asyncio.client import ApiClient

log = structlog.get_logger(__name__)

FIELD_MANAGER = "tether"
# The API server names a write that gives no fieldManager (merge patches: status, finalizers) after the
# User-Agent; it must not be FIELD_MANAGER, whose entries in managedFields mean "applied by Tether".
USER_AGENT = "tether-client"
DEFAULT_TIMEOUT = 30.0
# Opening a connection (TCP, then the TLS handshake) has a shorter limit of its own, as client-go's
# 10 s TLS handshake timeout: a server that takes connections and never answers is known within
# seconds, not after a whole request timeout. Waiting for a pooled connection does not count.
CONNECT_TIMEOUT = 10.0
# Defaults per cluster; the reasons are in docs/cluster.md.
DEFAULT_QPS, DEFAULT_BURST = 200.0, 400
DEFAULT_MAX_READS, DEFAULT_MAX_WRITES = 32, 32
PROBE_CONNECTIONS = 2
# HTTP 429 answers are retried this many times, after the server's retryAfterSeconds (capped).
MAX_THROTTLED, MAX_RETRY_AFTER = 10, 10.0
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
# A server that does not answer: requests and probes retry for RETRY_FOR seconds in all,
# probing /readyz (PROBE_TIMEOUT each) with a pause doubling from PROBE_FIRST to PROBE_MAX.
RETRY_FOR = 12.0
PROBE_TIMEOUT = 3.0
PROBE_FIRST, PROBE_MAX = 0.5, 4.0
# An answer (a response, a watch line) this recent proves the server is up: no probe needed.
FRESH = 2.0
# Methods safe to send again when the first try may or may not have reached the server.
_METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, application/json"
_IDEMPOTENT = frozenset({"GET", "PATCH", "DELETE"})


def _environment_read_once(api: ApiClient, host: str) -> None:
    """Read the proxy variables once, not on every request.

    kubernetes_asyncio's session trusts the environment, so aiohttp reads ``~/.netrc`` and the
    proxy variables for each request (7 % of the controller's CPU when a fleet syncs). The
    answer for this server is taken now and the per-request lookup turned off. A kubeconfig's
    ``proxy-url`` still wins.
    """
    rest = api.rest_client
    session = rest.pool_manager
    if not hasattr(session, "_trust_env"):
        return  # an aiohttp without the attribute: leave it as it is
    if not rest.proxy:
        try:
            proxy, auth = aiohttp.helpers.get_env_proxy_for_url(yarl.URL(host))
            if auth is not None:
                proxy = proxy.with_user(auth.login).with_password(auth.password)
            rest.proxy = str(proxy)
        except LookupError:
            pass
    session._trust_env = False


class _NoAnswer(Exception):
    """A request got no HTTP answer. ``unsent``: it certainly never reached the server."""

    def __init__(self, message: str, *, unsent: bool) -> None:
        super().__init__(message)
        self.unsent = unsent


class RateLimiter:
    """Token bucket: at most ``qps`` requests a second on average, bursts up to ``burst``."""

    def __init__(self, qps: float, burst: int) -> None:
        self.qps, self.burst = qps, burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.qps)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.qps)

    def empty(self) -> None:
        """Spend the saved-up burst: what is asked next goes out at ``qps``."""
        self._tokens = 0.0
        self._stamp = time.monotonic()


@dataclass(frozen=True)
class WatchEvent:
    """One event of a watch: ADDED, MODIFIED, DELETED or BOOKMARK, and the object."""

    type: str
    object: dict[str, Any]


def describe(obj: Mapping[str, Any]) -> str:
    """``Kind namespace/name`` of an object, for messages."""
    meta = obj.get("metadata") or {}
    name = meta.get("name") or meta.get("generateName", "") + "*"
    namespace = meta.get("namespace")
    return f"{obj.get('kind', '?')} {namespace + '/' if namespace else ''}{name}"


class Cluster:
    """A destination cluster. Create with ``await Cluster.connect(...)``; close when done."""

    def __init__(
        self,
        api: ApiClient,
        *,
        qps: float = DEFAULT_QPS,
        burst: int = DEFAULT_BURST,
        timeout: float = DEFAULT_TIMEOUT,
        name: str,
        retry_for: float = RETRY_FOR,
        max_reads: int = DEFAULT_MAX_READS,
        max_writes: int = DEFAULT_MAX_WRITES,
        watch_api: ApiClient | None = None,
    ) -> None:
        self._api = api
        self._watch_api = watch_api
        self.name = name
        self.server = api.configuration.host
        self.timeout = timeout
        self.retry_for = retry_for
        self.limiter = RateLimiter(qps, burst)
        self.reads = asyncio.Semaphore(max_reads)
        self.writes = asyncio.Semaphore(max_writes)
        self.max_reads, self.max_writes = max_reads, max_writes
        self.requests = RequestCounter()
        self.open_watches = 0
        self.discovery = Discovery(self._get_json)
        self._last_answer = float("-inf")
        self._probe: asyncio.Task[None] | None = None
        self._down: str | None = None  # why the last probe loop gave up, until the server answers again
        self._borrowed = False  # a ``sibling``: the connections belong to another Cluster

    @classmethod
    async def connect(
        cls,
        kubeconfig: str | Path | None = None,
        context: str | None = None,
        *,
        in_cluster: bool = False,
        config: Mapping[str, Any] | None = None,
        name: str | None = None,
        qps: float = DEFAULT_QPS,
        burst: int = DEFAULT_BURST,
        timeout: float = DEFAULT_TIMEOUT,
        retry_for: float = RETRY_FOR,
        max_reads: int = DEFAULT_MAX_READS,
        max_writes: int = DEFAULT_MAX_WRITES,
    ) -> Cluster:
        """Connect through a kubeconfig (and context), a kubeconfig already parsed (``config``, e.g.
        from a cluster Secret; ``name`` names the cluster), or the in-cluster service account.

        ``qps``/``burst`` and ``max_reads``/``max_writes`` bound this cluster's traffic as a
        whole, whatever the number of callers (docs/cluster.md says why the defaults).

        A kubeconfig is checked first (``check_kubeconfig``), so a malformed one is a
        ``KubeconfigError`` naming the file and the field, never a traceback from the library.
        """
        from kubernetes_asyncio import config as kube_config
        from kubernetes_asyncio.client import ApiClient, Configuration

        configuration = Configuration()
        where = "in-cluster config" if in_cluster else f"kubeconfig {kubeconfig or '(default)'}"
        try:
            if in_cluster:
                kube_config.load_incluster_config(client_configuration=configuration)
                name = "in-cluster"
            elif config is not None:
                where = f"cluster {name or '(unnamed)'}"
                await kube_config.load_kube_config_from_dict(
                    dict(config), context=context, client_configuration=configuration
                )
                name = name or context or "current-context"
            else:
                check_kubeconfig(kubeconfig, context)
                await kube_config.load_kube_config(
                    config_file=str(kubeconfig) if kubeconfig else default_location(),
                    context=context,
                    client_configuration=configuration,
                    persist_config=False,
                )
                name = name or context or "current-context"
            # Two pools on one configuration (so refreshed tokens serve both): requests get exactly
            # the connections their semaphores allow, watches an unlimited pool of their own.
            configuration.connection_pool_maxsize = max_reads + max_writes + PROBE_CONNECTIONS
            api = ApiClient(configuration)
            configuration.connection_pool_maxsize = 0  # aiohttp: 0 is no limit
            watch_api = ApiClient(configuration)
            for client in (api, watch_api):
                _environment_read_once(client, configuration.host or "")
        except ClusterError:
            raise
        except Exception as exc:  # the library's own errors, whatever their type: one line, never a traceback
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise KubeconfigError(f"cannot load {where}{f' context {context!r}' if context else ''}: {detail}") from exc
        return cls(
            api,
            qps=qps,
            burst=burst,
            timeout=timeout,
            name=name,
            retry_for=retry_for,
            max_reads=max_reads,
            max_writes=max_writes,
            watch_api=watch_api,
        )

    def sibling(self, name: str, *, qps: float, burst: int, max_writes: int = 4) -> Cluster:
        """Another view of this cluster over the same connections, with a rate limit of its own: for
        traffic that must never spend the main budget (the controller's Events). Closing it closes nothing."""
        twin = Cluster(
            self._api,
            qps=qps,
            burst=burst,
            timeout=self.timeout,
            name=name,
            retry_for=self.retry_for,
            max_reads=max_writes,
            max_writes=max_writes,
            watch_api=self._watch_api,
        )
        twin.discovery = self.discovery
        twin._borrowed = True
        return twin

    async def close(self) -> None:
        if self._borrowed:
            return
        if self._probe is not None and not self._probe.done():
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
        await self._api.close()
        if self._watch_api is not None:
            await self._watch_api.close()

    async def __aenter__(self) -> Cluster:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ----------------------------------------------------------------- transport

    async def _request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,
        accept: str = "application/json",
        what: str,
        verb: str = "GET",
        dry_run: bool = False,
    ) -> tuple[int, dict[str, Any]]:
        """One API call (counted as ``verb``, once per attempt sent), retried while the server does not answer, for ``retry_for`` seconds at most.

        A request that surely never reached the server, or is safe to repeat (GET, PATCH —
        server-side apply —, DELETE), is sent again once the server answers a probe; a POST or
        PUT that may have reached it is not: the error says its outcome is unknown. When the
        server stays silent, ``ClusterUnreachable`` ends the wait.
        """
        loop = asyncio.get_running_loop()
        first_failure: float | None = None
        pause = PROBE_FIRST / 2
        slots = self.reads if method == "GET" else self.writes
        throttled = 0
        while True:
            if self._down is not None:
                self._probe_in_background()
                raise ClusterUnreachable(f"{what}: not sent: {self._down} (probing again in the background)")
            try:
                async with slots:
                    await self.limiter.acquire()
                    self.requests.count(verb, dry_run)
                    result = await self._send(
                        method, path, query, body, content_type, accept, timeout or self.timeout, what
                    )
            except _NoAnswer as exc:
                self._last_answer = float("-inf")
                first_failure = first_failure if first_failure is not None else loop.time()
                try:
                    await self.ensure_reachable()
                except ClusterUnreachable as gone:
                    raise ClusterUnreachable(f"{exc}; {gone}") from None
                if not exc.unsent and method not in _IDEMPOTENT:
                    raise ClusterError(
                        f"{exc}; the server answers again, but whether this {method} took effect is unknown"
                    ) from None
                if loop.time() - first_failure >= self.retry_for:
                    raise ClusterError(f"{exc} (still failing after {self.retry_for:g}s)") from None
                await asyncio.sleep(pause)
                pause = min(PROBE_MAX, pause * 2)
                continue
            self.answered()
            if result[0] == 429 and throttled < MAX_THROTTLED:
                # Not processed (API priority and fairness, or a CRD's storage still starting):
                # safe to send again after the pause the server asks for, as client-go does.
                throttled += 1
                await asyncio.sleep(_retry_after(result[1]))
                continue
            return result

    async def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None,
        body: Any,
        content_type: str,
        accept: str,
        timeout: float,
        what: str,
    ) -> tuple[int, dict[str, Any]]:
        """Send one request; ``_NoAnswer`` when no HTTP answer came back.

        Straight to the library's aiohttp session, with the library's auth headers (refreshed
        tokens included): its generic path walks every body to "sanitise" it and encodes it again,
        which on a fleet's status and Event writes cost more than the rest of the request.
        """
        params = [
            (k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (query or {}).items() if v is not None
        ]
        headers = {"Content-Type": content_type, "Accept": accept, "User-Agent": USER_AGENT}
        rest = self._api.rest_client
        connect = min(timeout, CONNECT_TIMEOUT)
        try:
            await self._api.update_params_for_auth(headers, params, ["BearerToken"])
            url = f"{self._api.configuration.host}{path}{'?' + urlencode(params) if params else ''}"
            data = body if body is None or isinstance(body, bytes) else _json_body(body)
            response = await rest.pool_manager.request(
                method,
                url,
                headers=headers,
                data=data,
                timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=connect),
                proxy=rest.proxy,
                proxy_headers=rest.proxy_headers,
                server_hostname=rest.server_hostname,
            )
            async with response:
                raw = await _read_body(response.content, MAX_RESPONSE_BYTES)
                status = response.status
        except aiohttp.ConnectionTimeoutError:
            raise _NoAnswer(
                f"{what}: cannot reach the cluster at {self.server}: no connection (TCP and TLS) within {connect:g}s",
                unsent=True,
            ) from None
        except TimeoutError:
            raise _NoAnswer(f"{what}: no answer from {self.server} within {timeout:g}s", unsent=False) from None
        except aiohttp.ClientConnectorError as exc:
            raise _NoAnswer(f"{what}: cannot reach the cluster at {self.server}: {exc}", unsent=True) from None
        except aiohttp.ClientError as exc:
            raise _NoAnswer(f"{what}: cannot reach the cluster at {self.server}: {exc}", unsent=False) from None
        if raw is None:
            raise ClusterError(f"{what}: response larger than {MAX_RESPONSE_BYTES} bytes")
        try:
            payload = jsonfast.loads(raw) if raw else {}
        except ValueError:
            payload = {"message": raw[:500].decode("utf-8", errors="replace")}
        return status, payload

    # ----------------------------------------------------------------- reachability

    def answered(self) -> None:
        """Note that the server just answered (a response, a watch line): it is up."""
        self._last_answer = time.monotonic()
        self._down = None

    def _probe_in_background(self) -> asyncio.Task[None]:
        """Keep one probe loop running while the cluster is down: requests fail at once meanwhile (an app
        on a dead cluster holds no worker for a timeout each time it is compared), and the first answer
        (a probe's, or a watch's) ends the outage for every caller."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._probe_until_answer(), name=f"tether-probe {self.name}")
            self._probe.add_done_callback(lambda task: task.cancelled() or task.exception())
        return self._probe

    async def ensure_reachable(self) -> None:
        """Return once the server answers; raise ``ClusterUnreachable`` when it has not for ``retry_for`` s.

        Free when the server answered in the last ``FRESH`` seconds. Otherwise one probe loop
        per cluster (shared by every caller) asks ``/readyz``, so an outage costs one request
        every few seconds whatever the number of waiting tasks, and is logged once.
        """
        if time.monotonic() - self._last_answer < FRESH:
            return
        await asyncio.shield(self._probe_in_background())

    async def _probe_until_answer(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline, pause, attempts = started + self.retry_for, PROBE_FIRST, 0
        while True:
            attempts += 1
            # the last probe may end up to a second past the budget rather than be too short to mean anything
            error = await self._probe_once(max(1.0, min(PROBE_TIMEOUT, deadline - loop.time())))
            if error is None:
                self.answered()
                if attempts > 1:
                    log.info(
                        "cluster answers again",
                        cluster=self.name,
                        server=self.server,
                        after_seconds=round(loop.time() - started, 1),
                        attempts=attempts,
                    )
                return
            if attempts == 1:
                log.warning(
                    "cluster not answering; retrying",
                    cluster=self.name,
                    server=self.server,
                    error=error,
                    retry_for_seconds=self.retry_for,
                )
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning("cluster unreachable", cluster=self.name, server=self.server, attempts=attempts)
                self._down = (
                    f"the cluster at {self.server} has not answered for {self.retry_for:g}s"
                    f" ({attempts} probes of /readyz; last: {error})"
                )
                raise ClusterUnreachable(self._down)
            await asyncio.sleep(min(pause, remaining))
            pause = min(PROBE_MAX, pause * 2)

    async def _probe_once(self, timeout: float) -> str | None:
        """None when ``/readyz`` answers below HTTP 500, else what went wrong (bypasses the rate limit)."""
        self.requests.count("GET")
        try:
            response = await self._api.call_api(
                "/readyz",
                "GET",
                header_params={"Accept": "text/plain"},
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=timeout,
            )
            async with response:
                await _read_body(response.content, 1 << 16)
                status = response.status
        except TimeoutError:
            return f"no answer within {timeout:g}s"
        except aiohttp.ClientError as exc:
            return str(exc) or type(exc).__name__
        if status >= 500:
            return f"/readyz: HTTP {status}"
        self.answered()
        return None

    def _watch_client(self) -> ApiClient:
        """The watches' own client (its own unlimited pool); made on first use when not given."""
        if self._watch_api is None:
            from kubernetes_asyncio.client import ApiClient

            configuration = self._api.configuration
            before, configuration.connection_pool_maxsize = configuration.connection_pool_maxsize, 0
            try:
                self._watch_api = ApiClient(configuration)
            finally:
                configuration.connection_pool_maxsize = before
        return self._watch_api

    async def _get_json(self, path: str, accept: str) -> dict[str, Any] | None:
        status, payload = await self._request("GET", path, accept=accept, what=f"discovery {path}")
        if status == 404:
            return None
        if status >= 400:
            raise ClusterError.from_status(f"discovery {path}", status, payload)
        return payload

    # ----------------------------------------------------------------- reads

    async def version(self) -> dict[str, Any]:
        """The server's /version: gitVersion, major, minor."""
        status, payload = await self._request("GET", "/version", what="GET /version")
        if status >= 400:
            raise ClusterError.from_status("GET /version", status, payload)
        return payload

    async def resource(self, api_version: str, kind: str) -> ResourceInfo:
        """How to reach ``kind`` of ``api_version``; discovery is refreshed once on a miss."""
        return await self.discovery.lookup(api_version, kind)

    async def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        info = await self.resource(api_version, kind)
        what = f"get {kind} {_ref(namespace, name)}"
        status, payload = await self._request("GET", info.path(namespace, name), what=what)
        if status == 404:
            return None
        if status >= 400:
            raise ClusterError.from_status(what, status, payload)
        return payload

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 500,
    ) -> tuple[list[dict[str, Any]], str]:
        """All objects (paged), with each item's apiVersion/kind filled in, and the list's resourceVersion."""
        info = await self.resource(api_version, kind)
        items: list[dict[str, Any]] = []
        token: str | None = None
        what = f"list {kind}{' in ' + namespace if namespace else ''}"
        while True:
            status, payload = await self._request(
                "GET",
                info.path(namespace),
                what=what,
                query={
                    "labelSelector": label_selector,
                    "fieldSelector": field_selector,
                    "limit": limit,
                    "continue": token,
                },
                verb="LIST",
            )
            if status >= 400:
                raise ClusterError.from_status(what, status, payload)
            for item in payload.get("items") or []:
                item.setdefault("apiVersion", info.api_version)
                item.setdefault("kind", info.kind)
                items.append(item)
            token = (payload.get("metadata") or {}).get("continue")
            if not token:
                return items, (payload.get("metadata") or {}).get("resourceVersion", "")

    async def list_metadata(
        self, api_version: str, kind: str, namespace: str | None = None, *, limit: int = 500
    ) -> builtins.list[dict[str, Any]]:
        """Every object's apiVersion, kind and metadata only (a PartialObjectMetadataList), paged.

        For finding out what exists (what a Namespace still holds) without fetching bodies.
        """
        info = await self.resource(api_version, kind)
        items: builtins.list[dict[str, Any]] = []
        token: str | None = None
        what = f"list {kind} metadata{' in ' + namespace if namespace else ''}"
        while True:
            status, payload = await self._request(
                "GET",
                info.path(namespace),
                what=what,
                query={"limit": limit, "continue": token},
                accept=_METADATA_LIST,
                verb="LIST",
            )
            if status >= 400:
                raise ClusterError.from_status(what, status, payload)
            for item in payload.get("items") or []:
                items.append(
                    {"apiVersion": info.api_version, "kind": info.kind, "metadata": item.get("metadata") or {}}
                )
            token = (payload.get("metadata") or {}).get("continue")
            if not token:
                return items

    async def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        resource_version: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
        opened: Callable[[], None] | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """Stream events after ``resource_version`` with bookmarks; raises ``WatchExpired`` on 410.

        The server ends the stream after ``timeout_seconds``; the caller resumes from the last
        resourceVersion it saw (bookmarks keep that fresh), so no event is lost between watches.
        ``opened`` is called once the server has accepted the watch (how a caller learns that a
        failing watch works again before any event arrives).
        """
        info = await self.resource(api_version, kind)
        what = f"watch {kind}{' in ' + namespace if namespace else ''}"
        await self.limiter.acquire()
        self.requests.count("WATCH")
        query = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", str(timeout_seconds)),
        ]
        query += [("labelSelector", label_selector)] if label_selector else []
        query += [("fieldSelector", field_selector)] if field_selector else []
        try:
            response = await self._watch_client().call_api(
                info.path(namespace),
                "GET",
                query_params=query,
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=aiohttp.ClientTimeout(
                    connect=self.timeout,
                    sock_connect=min(self.timeout, CONNECT_TIMEOUT),
                    sock_read=timeout_seconds + 30,
                ),
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ClusterError(f"{what}: cannot reach the cluster at {self.server}: {exc}") from exc
        self.open_watches += 1  # one live stream on the watch pool, for measurements
        try:
            async with response:
                self.answered()
                if response.status >= 400:
                    raw = await _read_body(response.content, 1 << 20) or b""
                    payload = jsonfast.loads(raw) if raw.startswith(b"{") else {"message": raw.decode(errors="replace")}
                    if response.status == 410:
                        raise WatchExpired(f"{what}: resourceVersion {resource_version} is too old")
                    raise ClusterError.from_status(what, response.status, payload)
                if opened is not None:
                    opened()
                try:
                    async for line in response.content:
                        self.answered()
                        if not line.strip():
                            continue
                        event = jsonfast.loads(line)
                        if event.get("type") == "ERROR":
                            status = event.get("object") or {}
                            if status.get("code") == 410:
                                raise WatchExpired(f"{what}: {status.get('message', 'expired')}")
                            raise ClusterError.from_status(what, int(status.get("code") or 500), status)
                        obj = event.get("object") or {}
                        obj.setdefault("apiVersion", info.api_version)
                        obj.setdefault("kind", info.kind)
                        yield WatchEvent(event["type"], obj)
                except (TimeoutError, aiohttp.ClientError) as exc:
                    raise ClusterError(f"{what}: stream broken: {exc}") from exc
                except ValueError as exc:
                    raise ClusterError(f"{what}: unreadable event: {exc}") from exc
        finally:
            self.open_watches -= 1

    # ----------------------------------------------------------------- writes

    async def _target(self, obj: Mapping[str, Any]) -> tuple[ResourceInfo, str | None, str]:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        meta = obj.get("metadata") or {}
        if not api_version or not kind:
            raise TetherError(f"{describe(obj)}: apiVersion and kind are required")
        info = await self.resource(api_version, kind)
        namespace = meta.get("namespace") if info.namespaced else None
        if info.namespaced and not namespace:
            raise TetherError(f"{describe(obj)}: a namespaced {kind} needs metadata.namespace")
        return info, namespace, meta.get("name", "")

    async def apply(
        self,
        obj: Mapping[str, Any],
        *,
        dry_run: bool = False,
        force: bool = False,
        field_manager: str = FIELD_MANAGER,
        validate: bool = True,
    ) -> dict[str, Any]:
        """Server-side apply (``dry_run`` → ``dryRun=All``): the object as the server would store it."""
        info, namespace, name = await self._target(obj)
        if not name:
            raise TetherError(f"{describe(obj)}: server-side apply needs metadata.name")
        return await self._write(
            "PATCH",
            info.path(namespace, name),
            _apply_body(obj),
            f"{'dry-run ' if dry_run else ''}apply {describe(obj)}",
            _write_query(field_manager, dry_run, validate, force=force),
            content_type=APPLY_CONTENT_TYPE,
            verb="APPLY",
            dry_run=dry_run,
        )

    async def create(
        self,
        obj: Mapping[str, Any],
        *,
        dry_run: bool = False,
        field_manager: str = FIELD_MANAGER,
        validate: bool = True,
    ) -> dict[str, Any]:
        """POST a new object (also how ``generateName`` objects, like hooks, are made)."""
        info, namespace, _ = await self._target(obj)
        return await self._write(
            "POST",
            info.path(namespace),
            dict(obj),
            f"{'dry-run ' if dry_run else ''}create {describe(obj)}",
            _write_query(field_manager, dry_run, validate),
            verb="CREATE",
            dry_run=dry_run,
        )

    async def replace(
        self,
        obj: Mapping[str, Any],
        *,
        dry_run: bool = False,
        field_manager: str = FIELD_MANAGER,
        validate: bool = True,
    ) -> dict[str, Any]:
        """PUT the whole object (``Replace=true``); creates it when it does not exist."""
        info, namespace, name = await self._target(obj)
        current = await self.get(obj["apiVersion"], obj["kind"], name, namespace)
        if current is None:
            return await self.create(obj, dry_run=dry_run, field_manager=field_manager, validate=validate)
        body = json.loads(json.dumps(obj))
        body.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
        return await self._write(
            "PUT",
            info.path(namespace, name),
            body,
            f"{'dry-run ' if dry_run else ''}replace {describe(obj)}",
            _write_query(field_manager, dry_run, validate),
            verb="UPDATE",
            dry_run=dry_run,
        )

    async def _write(
        self,
        method: str,
        path: str,
        body: Any,
        what: str,
        query: Mapping[str, Any],
        *,
        content_type: str = "application/json",
        verb: str,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        status, payload = await self._request(
            method, path, body=body, query=query, content_type=content_type, what=what, verb=verb, dry_run=dry_run
        )
        if status >= 400:
            raise ClusterError.from_status(what, status, payload)
        return payload

    async def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: Mapping[str, Any] | builtins.list[Any],
        *,
        patch_type: str = "merge",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """A merge or JSON patch (drift in tests, finalizers, an Application's ``status`` subresource)."""
        info = await self.resource(api_version, kind)
        content_type = {
            "merge": "application/merge-patch+json",
            "json": "application/json-patch+json",
            "strategic": "application/strategic-merge-patch+json",
        }[patch_type]
        return await self._write(
            "PATCH",
            info.path(namespace, name) + (f"/{subresource}" if subresource else ""),
            patch,
            f"patch {kind} {_ref(namespace, name)}",
            {},
            content_type=content_type,
            verb="PATCH",
        )

    async def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Foreground",
        dry_run: bool = False,
    ) -> bool:
        """Delete an object; False if it was already gone."""
        info = await self.resource(api_version, kind)
        what = f"delete {kind} {_ref(namespace, name)}"
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        if dry_run:
            body["dryRun"] = ["All"]
        status, payload = await self._request(
            "DELETE",
            info.path(namespace if info.namespaced else None, name),
            body=body,
            what=what,
            verb="DELETE",
            dry_run=dry_run,
        )
        if status == 404 and not_found_status(payload):
            return False
        if status >= 400:
            raise ClusterError.from_status(what, status, payload)
        return True


def _write_query(field_manager: str, dry_run: bool, validate: bool, *, force: bool = False) -> dict[str, Any]:
    """Query parameters every write takes: who writes, whether for real, how strictly fields are checked."""
    return {
        "fieldManager": field_manager,
        "force": force or None,
        "dryRun": "All" if dry_run else None,
        "fieldValidation": "Strict" if validate else "Ignore",
    }


async def _read_body(stream: aiohttp.StreamReader, cap: int) -> bytes | None:
    """The whole body, or None when it is larger than ``cap`` bytes (never read past the cap)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await stream.read(1 << 16)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)


def _retry_after(payload: Mapping[str, Any]) -> float:
    """The pause a 429 Status asks for (``details.retryAfterSeconds``), 1 s when it names none."""
    details = payload.get("details") if isinstance(payload, Mapping) else None
    seconds = details.get("retryAfterSeconds") if isinstance(details, Mapping) else None
    return min(MAX_RETRY_AFTER, float(seconds)) if isinstance(seconds, int | float) and seconds > 0 else 1.0


def _json_body(body: Any) -> bytes:
    """A request body as compact JSON; dates and times (YAML timestamps) in ISO 8601, as the library sent them."""
    return json.dumps(body, separators=(",", ":"), default=_iso).encode("ascii")


def _iso(value: Any) -> str:
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    raise TypeError(f"cannot send a {type(value).__name__} in a request body")


def _ref(namespace: str | None, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


# Exactly kubectl's: the API server counts a PATCH as APPLY in its metrics only for this exact value.
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"


def _apply_body(obj: Mapping[str, Any]) -> bytes:
    """The apply body as UTF-8 JSON (JSON is YAML). Serialised here, not by the client library, whose
    ASCII escaping turns a character outside the BMP into a surrogate pair (``\\ud83d\\ude00``) that the
    API server's YAML decoder refuses; ``_send`` passes the bytes to aiohttp as they are."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
