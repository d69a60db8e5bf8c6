"""Waiting during a sync, always on LiveCache watch events and always with a deadline.

Three waits: an object the sync wrote until it is healthy (a hook: until it completed),
an object until it is gone (prune, BeforeHookCreation, Force), and a CRD until it is
Established and its kind shows in discovery. Health is ``tether.health``'s; this module only decides when to stop looking.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tether.cluster import Cluster, UnknownKind
from tether.cluster.cache import LiveCache, WaitTimeout
from tether.health import Health, HealthStatus
from tether.resource import ResourceKey

Judge = Callable[[Mapping[str, Any]], Awaitable[Health | None]]  # Lua checks run off the event loop


class WaitFailed(Exception):
    """A wait ran out of time; the message names the object."""


@dataclass(frozen=True)
class Settled:
    """How a wait for readiness ended: ``ok``, why, and the last health seen (None: no health)."""

    ok: bool
    message: str
    health: HealthStatus | None


async def until_ready(
    cache: LiveCache,
    key: ResourceKey,
    api_version: str,
    written_rv: str,
    *,
    hook: bool,
    judge: Judge,
    timeout: float,
) -> Settled:
    """Wait until the object is Healthy (done) or Degraded (failed); a hook's Unknown fails too (as Argo CD).

    The cache first catches up with ``written_rv`` (the sync's own write), so health is never
    judged on a copy from before it.
    """
    current = await cache.at_least(key, written_rv, api_version=api_version)
    if current is None:
        return Settled(False, f"{key}: deleted while the sync waited for it", HealthStatus.MISSING)

    async def settled(obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return True  # it was there, and is gone
        health = await judge(obj)
        if health is None or health.status in (HealthStatus.HEALTHY, HealthStatus.DEGRADED):
            return True
        return hook and health.status is HealthStatus.UNKNOWN

    try:
        obj = await cache.wait_for(key, settled, timeout=timeout)
    except WaitTimeout as exc:
        health = await judge(exc.last) if exc.last is not None else None
        if health is not None:
            state = f"{health.status}: {health.message}" if health.message else str(health.status)
        else:
            state = "absent" if exc.last is None else "no health"
        wanted = "complete" if hook else "healthy"
        return Settled(
            False, f"{key}: not {wanted} after {timeout:g}s (last: {state})", health.status if health else None
        )
    if obj is None:
        return Settled(False, f"{key}: deleted while the sync waited for it", HealthStatus.MISSING)
    health = await judge(obj)
    if health is None:
        return Settled(True, "hook completed" if hook else "ready (no health)", None)
    if health.status is HealthStatus.HEALTHY:
        return Settled(True, health.message or ("hook completed" if hook else "healthy"), health.status)
    return Settled(False, f"{key}: {health.status}{': ' + health.message if health.message else ''}", health.status)


async def until_gone(cache: LiveCache, key: ResourceKey, obj: Mapping[str, Any], *, timeout: float) -> None:
    """Wait until the object no longer exists; raises ``WaitFailed`` after ``timeout`` seconds."""
    if not cache.tracks(key):
        await cache.ensure([obj])
    try:
        await cache.wait_for(key, lambda live: live is None, timeout=timeout)
    except WaitTimeout as exc:
        raise WaitFailed(f"{key}: still present {timeout:g}s after deletion") from exc


def established(obj: Mapping[str, Any] | None) -> bool:
    """Whether a CustomResourceDefinition's ``Established`` condition is True."""
    for condition in ((obj or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Established":
            return condition.get("status") == "True"
    return False


async def until_established(cache: LiveCache, key: ResourceKey, *, timeout: float) -> None:
    """Wait until the CRD is served; raises ``WaitFailed`` after ``timeout`` seconds."""
    try:
        await cache.wait_for(key, established, timeout=timeout)
    except WaitTimeout as exc:
        raise WaitFailed(f"{key}: not Established within {timeout:g}s") from exc


async def until_served(cluster: Cluster, api_version: str, kind: str, *, timeout: float) -> None:
    """Wait until discovery lists ``kind``: it can lag a moment behind the CRD's Established condition.

    Discovery has no watch, so this asks again (each miss refetches the group version) with a
    growing pause, 0.1 s up to 1 s; raises ``WaitFailed`` after ``timeout`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline, pause = loop.time() + timeout, 0.1
    while True:
        try:
            await cluster.resource(api_version, kind)
            return
        except UnknownKind as exc:
            if loop.time() + pause > deadline:
                raise WaitFailed(
                    f"{kind} {api_version}: not in discovery {timeout:g}s after its CRD was Established"
                ) from exc
        await asyncio.sleep(pause)
        pause = min(1.0, pause * 2)
