"""Kubernetes Events about Applications, at a rate the API server can bear, never in the caller's way.

Core ``v1`` Events (what ``kubectl describe`` and ``kubectl get events`` show), bounded the way
client-go's recorder bounds them:

- the same (object, type, reason, message) again within ``SERIES_WINDOW`` (10 minutes) of its
  last occurrence is one Event whose ``count`` and ``lastTimestamp`` are patched, and
  occurrences that arrive while a write for it is under way are folded into the next patch;
- a token bucket per object (burst 25, one token back every 5 minutes: client-go's spam
  filter) drops what goes beyond it;
- at most ``max_pending`` writes wait at once, ``concurrency`` of them in flight;
- while ``hold`` is on (the controller holds Events from when sync operations queue for a
  slot until the apps they synced have settled), writes wait, ``max_hold`` seconds at most, so
  a fleet's burst of syncs does not share the API server with its Events, and the Events go
  out, none lost, when the burst is over: at the client's steady rate, not in one burst.

Messages are masked by the redactor and capped at 1 KiB before anything else sees them, so
a secret never reaches the server, the dedup cache or a log. ``emit`` is synchronous and
never raises: the write happens in a background task with a timeout, a failure is logged
once per outage, and ``drain``/``close`` flush what is pending (tests, shutdown; what ``close``
cannot write within its timeout is dropped, counted and logged).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from tether.cluster import Cluster
from tether.cluster.errors import ClusterError
from tether.secrets import REDACTOR

log = structlog.get_logger(__name__)

SERIES_WINDOW = 600.0
MAX_MESSAGE_BYTES = 1024
MAX_REASON = 128
CACHE_SIZE = 4096
WRITE_TIMEOUT = 10.0
CLOSE_TIMEOUT = 5.0
MAX_HOLD = 120.0  # seconds at most that a hold delays an Event
ELLIPSIS = "…"
NORMAL, WARNING = "Normal", "Warning"

_SeriesKey = tuple[str, str, str, str, str, str, str, str]
_ObjectKey = tuple[str, str, str, str, str]


@dataclass
class _Series:
    """One Event on the server and the occurrences it stands for."""

    name: str
    namespace: str
    involved: dict[str, str]
    type: str
    reason: str
    message: str
    first: float
    last: float
    count: int = 1
    written: int = 0  # the count the server has
    created: bool = False
    busy: bool = False


@dataclass
class _Bucket:
    """client-go's spam filter for one object: ``burst`` tokens, one back every ``refill`` seconds."""

    tokens: float
    stamp: float

    def take(self, now: float, burst: int, refill: float) -> bool:
        if refill > 0:
            self.tokens = min(float(burst), self.tokens + max(0.0, now - self.stamp) / refill)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class _Outage:
    """Whether writes are failing now, so an outage is logged once, and its end once."""

    failing: bool = False
    failures: int = 0
    started: float = 0.0


class EventRecorder:
    """Emits Events about Applications through ``cluster``; see the module docstring for the limits."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        component: str = "tether-controller",
        burst: int = 25,
        refill_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
        max_pending: int = 4096,
        concurrency: int = 4,
        write_timeout: float = WRITE_TIMEOUT,
        max_hold: float = MAX_HOLD,
    ) -> None:
        if burst < 1 or max_pending < 1 or concurrency < 1:
            raise ValueError("EventRecorder: burst, max_pending and concurrency must be at least 1")
        self._cluster = cluster
        self.component = component
        self.burst = burst
        self.refill_seconds = refill_seconds
        self.max_pending = max_pending
        self.write_timeout = write_timeout
        self.max_hold = max_hold
        self._released = asyncio.Event()
        self._released.set()
        self._held_since = 0.0
        self._paced_since = 0.0  # the hold whose held writes already go at the steady rate
        self._clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._series: OrderedDict[_SeriesKey, _Series] = OrderedDict()
        self._buckets: OrderedDict[_ObjectKey, _Bucket] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._outage = _Outage()
        self._last_ns = 0
        self._closed = False
        self.sent = 0  # writes the API server accepted (creates and count patches)
        self.aggregated = 0  # occurrences counted into an existing Event instead of a new one
        self.dropped = 0  # occurrences discarded: spam filter, pending cap, bad input, closed
        self.failed = 0  # writes that failed (their occurrences go out with the next identical one)

    # ----------------------------------------------------------------- public

    @property
    def writes(self) -> int:
        """Write requests sent for Events since start (their client is apart from the controller's main one)."""
        return self._cluster.requests.snapshot().writes

    def emit(self, involved: Mapping[str, Any], reason: str, message: str, *, warning: bool = False) -> None:
        """Record that ``reason``/``message`` happened to ``involved`` (an Application object). Never raises."""
        try:
            self._emit(involved, reason, message, WARNING if warning else NORMAL)
        except Exception as exc:  # an Event is never worth failing the caller's work
            self.dropped += 1
            log.warning("event dropped", reason=str(reason)[:MAX_REASON], error=REDACTOR.redact(str(exc)))

    def hold(self) -> bool:
        """Writes wait from now until ``release`` (or ``max_hold`` seconds): a burst of syncs is under way.

        True when this starts a hold: none was on, or the one on had lasted ``max_hold`` already (a
        burst that outlasts it holds each Event ``max_hold`` seconds at most, and none for ever).
        """
        now = time.monotonic()
        if self._released.is_set() or now - self._held_since >= self.max_hold:
            self._released.clear()
            self._held_since = now
            return True
        return False

    def release(self) -> None:
        """Writes go out again, the held ones first."""
        self._released.set()

    @property
    def held(self) -> bool:
        return not self._released.is_set()

    async def drain(self) -> None:
        """Wait until every pending write has finished (succeeded or failed)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Stop taking events, give pending writes ``timeout`` seconds, then cancel what is left.

        Shutdown has a deadline and Events are best effort, so what is cancelled is counted in
        ``dropped`` and logged once, with the number of Events that never reached the server.
        """
        self._closed = True
        self.release()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._tasks and (remaining := deadline - loop.time()) > 0:
            await asyncio.wait(list(self._tasks), timeout=remaining)  # unlike wait_for, cancels nothing
        left = list(self._tasks)
        if left:
            for task in left:
                task.cancel()
            await asyncio.gather(*left, return_exceptions=True)
            self.dropped += len(left)
            log.warning("events not written before shutdown", events=len(left), timeout_seconds=timeout)

    @property
    def pending(self) -> int:
        """Writes waiting or in flight."""
        return len(self._tasks)

    # ----------------------------------------------------------------- recording

    def _emit(self, involved: Mapping[str, Any], reason: str, message: str, type: str) -> None:
        if self._closed:
            self.dropped += 1
            return
        ref = _reference(involved)
        reason = str(reason)[:MAX_REASON]
        if not reason:
            raise ValueError("an Event needs a reason")
        text = cap_bytes(REDACTOR.redact(str(message)), MAX_MESSAGE_BYTES)
        now = self._clock()
        if not self._allowed(ref, now):
            self.dropped += 1
            return
        key: _SeriesKey = (
            ref["uid"],
            ref["apiVersion"],
            ref["kind"],
            ref["namespace"],
            ref["name"],
            type,
            reason,
            text,
        )
        series = self._series.get(key)
        if series is not None and now - series.last <= SERIES_WINDOW:
            self._series.move_to_end(key)
            series.count += 1
            series.last = max(series.last, now)
            self.aggregated += 1
            if not series.busy:
                self._schedule(series, rollback=True)
            return
        series = _Series(
            name=self._event_name(ref["name"]),
            namespace=ref["namespace"] or "default",
            involved=ref,
            type=type,
            reason=reason,
            message=text,
            first=now,
            last=now,
        )
        if self._schedule(series, rollback=False):
            self._series[key] = series
            self._series.move_to_end(key)
            while len(self._series) > CACHE_SIZE:
                self._series.popitem(last=False)

    def _allowed(self, ref: Mapping[str, str], now: float) -> bool:
        key: _ObjectKey = (ref["apiVersion"], ref["kind"], ref["namespace"], ref["name"], ref["uid"])
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), stamp=now)
            while len(self._buckets) > CACHE_SIZE:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(key)
        return bucket.take(now, self.burst, self.refill_seconds)

    def _schedule(self, series: _Series, *, rollback: bool) -> bool:
        """Start a write for ``series``; False (and the occurrence dropped) when too many wait already."""
        if len(self._tasks) >= self.max_pending:
            self.dropped += 1
            if rollback:
                series.count -= 1
                self.aggregated -= 1
            return False
        series.busy = True
        task = asyncio.get_running_loop().create_task(self._flush(series), name=f"tether-event {series.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def _event_name(self, object_name: str) -> str:
        """``<object>.<unix nanoseconds in hex>`` as client-go names them, unique within this process."""
        self._last_ns = max(time.time_ns(), self._last_ns + 1)
        return f"{object_name[:230]}.{self._last_ns:x}"

    # ----------------------------------------------------------------- writing

    async def _flush(self, series: _Series) -> None:
        """Write ``series`` until the server has its latest count; one task per series at a time."""
        try:
            await self._turn()
            async with self._slots:
                while not series.created or series.written < series.count:
                    count = series.count
                    await asyncio.wait_for(self._write(series, count), self.write_timeout)
                    series.written = count
                    self.sent += 1
                    self._succeeded()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failed += 1
            self._failed(exc)
        finally:
            series.busy = False

    async def _turn(self) -> None:
        """Return when writes may go out: at once, or when the hold ends or has lasted ``max_hold``."""
        if self._released.is_set():
            return
        held_since = self._held_since
        remaining = held_since + self.max_hold - time.monotonic()
        if remaining > 0:
            try:
                await asyncio.wait_for(self._released.wait(), remaining)
            except TimeoutError:
                pass
        if self._paced_since != held_since and not self._closed:
            # What the hold saved up must not go out at once: the client's burst was filling meanwhile.
            self._paced_since = held_since
            self._cluster.limiter.empty()

    async def _write(self, series: _Series, count: int) -> None:
        if series.created:
            patch = {"count": count, "lastTimestamp": _timestamp(series.last)}
            try:
                await self._cluster.patch("v1", "Event", series.name, series.namespace, patch)
                return
            except ClusterError as exc:
                if not exc.not_found:
                    raise
                # The server dropped it (events live an hour): start it again under a new name.
                series.created = False
                series.name = self._event_name(series.involved["name"])
        try:
            await self._cluster.create(self._event(series, count))
        except ClusterError as exc:
            if not exc.conflict:
                raise
            # A create that timed out on our side but reached the server: the Event is there.
            series.created = True
            await self._cluster.patch(
                "v1", "Event", series.name, series.namespace, {"count": count, "lastTimestamp": _timestamp(series.last)}
            )
            return
        series.created = True

    def _event(self, series: _Series, count: int) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": series.name, "namespace": series.namespace},
            "involvedObject": {k: v for k, v in series.involved.items() if v},
            "reason": series.reason,
            "message": series.message,
            "type": series.type,
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "firstTimestamp": _timestamp(series.first),
            "lastTimestamp": _timestamp(series.last),
            "count": count,
        }

    def _succeeded(self) -> None:
        if self._outage.failing:
            log.info(
                "Kubernetes events are written again",
                cluster=self._cluster.name,
                failed_writes=self._outage.failures,
                after_seconds=round(time.monotonic() - self._outage.started, 1),
            )
            self._outage = _Outage()

    def _failed(self, exc: BaseException) -> None:
        self._outage.failures += 1
        if self._outage.failing:
            return
        self._outage.failing, self._outage.started = True, time.monotonic()
        detail = str(exc) or type(exc).__name__
        log.warning(
            "cannot write Kubernetes events; dropping them until the API server takes them again",
            cluster=self._cluster.name,
            error=REDACTOR.redact(detail),
        )


def cap_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes (on a character boundary), marked with "…"."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    room = limit - len(ELLIPSIS.encode("utf-8"))
    return data[:room].decode("utf-8", errors="ignore") + ELLIPSIS


def _reference(involved: Mapping[str, Any]) -> dict[str, str]:
    """The ``involvedObject`` of ``involved``; ValueError naming what is missing."""
    meta = involved.get("metadata") or {}
    ref = {
        "apiVersion": str(involved.get("apiVersion") or ""),
        "kind": str(involved.get("kind") or ""),
        "name": str(meta.get("name") or ""),
        "namespace": str(meta.get("namespace") or ""),
        "uid": str(meta.get("uid") or ""),
    }
    missing = [field for field in ("apiVersion", "kind", "name") if not ref[field]]
    if missing:
        raise ValueError(f"the object an Event is about lacks {', '.join(missing)}")
    return ref


def _timestamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
