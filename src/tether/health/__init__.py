"""Health of Kubernetes objects and of the apps made of them, with Argo CD's rules and Lua checks.

``assess(obj)`` gives one object's health (None for kinds without one), and
``await assess_async(obj)`` the same from the event loop, with Lua checks awaited on a
fixed thread pool (``LuaPool``); ``aggregate``
turns the healths of an app's resources into the app's. ``LuaChecks`` adds Lua health
scripts in Argo CD's format, run sandboxed. This package reads objects; it never writes.
"""

from tether.health.app import AppHealth, app_health
from tether.health.assess import Assessment, assess, assess_async, explain, explain_async, health_ignored
from tether.health.lua_checks import LuaChecks, LuaScript
from tether.health.lua_pool import LuaPool, default_pool
from tether.health.lua_sandbox import LuaLimits
from tether.health.status import SEVERITY_ORDER, Health, HealthStatus, aggregate, is_worse

__all__ = [
    "SEVERITY_ORDER",
    "AppHealth",
    "Assessment",
    "Health",
    "HealthStatus",
    "LuaChecks",
    "LuaLimits",
    "LuaPool",
    "LuaScript",
    "aggregate",
    "app_health",
    "assess",
    "assess_async",
    "default_pool",
    "explain",
    "explain_async",
    "health_ignored",
    "is_worse",
]
