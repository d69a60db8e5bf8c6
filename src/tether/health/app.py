"""The health of an app: every desired object's live health, worst first.

The caller says how to find an object's live copy (a GET for a one-shot command, the live
cache for the controller), so this module stays free of cluster access.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tether.health.assess import assess_async
from tether.health.lua_checks import LuaChecks
from tether.health.status import Health, HealthStatus, aggregate

LiveLookup = Callable[[Mapping[str, Any]], Awaitable[Mapping[str, Any] | None]]


@dataclass(frozen=True)
class AppHealth:
    """The app's status and one line per object that is not Healthy."""

    status: HealthStatus
    problems: tuple[str, ...]


async def app_health(
    desired: Iterable[Mapping[str, Any]], live_of: LiveLookup, *, lua: LuaChecks | None = None
) -> AppHealth:
    """Aggregate the health of each desired object's live copy; an absent one is Missing."""
    healths: list[Health | None] = []
    problems: list[str] = []
    for obj in desired:
        live = await live_of(obj)
        health = Health(HealthStatus.MISSING, "not found") if live is None else await assess_async(live, lua=lua)
        healths.append(health)
        if health is not None and health.status is not HealthStatus.HEALTHY:
            meta = obj.get("metadata") or {}
            detail = f" — {health.message}" if health.message else ""
            problems.append(f"{obj.get('kind')} {meta.get('name')}: {health.status.value}{detail}")
    return AppHealth(aggregate(healths), tuple(problems))
