"""The health of one live object: which rule decides it, in Argo CD's order.

1. ``ignore-healthcheck: "true"`` (either prefix): no health, the object does not count.
2. A deletion timestamp (and no hook finalizer holding it): Progressing, "Pending deletion".
3. A Lua check covering the kind, when Lua checks are given: its verdict, failures Unknown.
4. The built-in check of the kind.
5. Any other kind: its Ready / Reconciling / Stalled conditions, or no health at all.

"No health" (``None``) is what Argo CD gives a ConfigMap: the object is shown without a
status and leaves the app's health alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tether.health.builtin import BUILTIN_CHECKS, run_check
from tether.health.conditions import conditions_health
from tether.health.fields import FieldError, field, items
from tether.health.lua_checks import LuaChecks, LuaScript, object_key
from tether.health.lua_sandbox import ScriptResult
from tether.health.status import Health, HealthStatus
from tether.resource import PREFIXES, ResourceKey, annotation

IGNORE_HEALTHCHECK = "ignore-healthcheck"
HOOK_FINALIZERS = frozenset(prefix + "hook-finalizer" for prefix in PREFIXES)


@dataclass(frozen=True)
class Assessment:
    """A health and the rule that produced it, for people debugging a check."""

    health: Health | None
    check: str
    printed: tuple[str, ...] = ()


def health_ignored(obj: Mapping[str, Any]) -> bool:
    """Whether the object opts out of health with ``ignore-healthcheck: "true"`` under either prefix."""
    return annotation(obj, IGNORE_HEALTHCHECK) == "true"


def _pending_deletion(obj: Mapping[str, Any]) -> bool:
    if not field(obj, "metadata", "deletionTimestamp"):
        return False
    return not HOOK_FINALIZERS.intersection(str(name) for name in items(obj, "metadata", "finalizers"))


def explain(obj: Mapping[str, Any], *, lua: LuaChecks | None = None) -> Assessment:
    """The health of ``obj`` together with the rule that decided it (Lua runs block this thread)."""
    early = _before_lua(obj)
    if early is not None:
        return early
    verdict = lua.run(obj) if lua is not None else None
    return _after_lua(obj, verdict)


async def explain_async(obj: Mapping[str, Any], *, lua: LuaChecks | None = None) -> Assessment:
    """``explain`` for the event loop: a Lua check is awaited on the pool, never run on the loop."""
    early = _before_lua(obj)
    if early is not None:
        return early
    verdict = await lua.run_async(obj) if lua is not None else None
    return _after_lua(obj, verdict)


APPLICATION_KINDS = frozenset({("tether.dev", "Application"), ("argoproj.io", "Application")})


def _before_lua(obj: Mapping[str, Any]) -> Assessment | None:
    """The rules Argo CD applies before any check: the opt-out annotation, pending deletion."""
    if health_ignored(obj):
        return Assessment(None, "ignored by the ignore-healthcheck annotation")
    try:
        if _pending_deletion(obj):
            return Assessment(Health(HealthStatus.PROGRESSING, "Pending deletion"), "deletion timestamp")
    except FieldError as exc:
        kind = ResourceKey.of(obj).kind
        return Assessment(Health(HealthStatus.UNKNOWN, f"failed to read {kind}: {exc}"), "metadata")
    return None


def _after_lua(obj: Mapping[str, Any], verdict: tuple[LuaScript, ScriptResult] | None) -> Assessment:
    if verdict is not None:
        script, result = verdict
        return Assessment(result.health, f"lua {script.origin}", result.printed)
    key = ResourceKey.of(obj)
    if (key.group, key.kind) in APPLICATION_KINDS:
        # Argo CD (since 1.8): an Application inside an app has no health unless a Lua check gives one,
        # so a child's trouble does not make its parent Degraded (docs/controller.md, "App of apps").
        return Assessment(None, "no health: an Application inside an app")
    check = BUILTIN_CHECKS.get((key.group, key.kind))
    if check is not None:
        return Assessment(run_check(check, obj, key.kind), f"built-in {object_key(obj)}")
    health = run_check(conditions_health, obj, key.kind)
    return Assessment(health, "status conditions" if health is not None else "no health for this kind")


def assess(obj: Mapping[str, Any], *, lua: LuaChecks | None = None) -> Health | None:
    """The health of ``obj``, or None when its kind has no health (or it opted out). For the CLI."""
    return explain(obj, lua=lua).health


async def assess_async(obj: Mapping[str, Any], *, lua: LuaChecks | None = None) -> Health | None:
    """``assess`` for code on the event loop (sync waits, the controller): Lua runs off the loop."""
    return (await explain_async(obj, lua=lua)).health
