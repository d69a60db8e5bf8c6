"""Running one Lua health script without letting it harm, stall or starve the process.

Each script is compiled once into its own Lua 5.1 state (``lupa.lua51``) whose memory is
capped by lupa's allocator. Lua 5.1 because Argo CD runs its scripts in gopher-lua, which
is Lua 5.1: ``table.getn``, ``unpack``, 5.1's string library and number formatting (no
integer subtype: ``tostring(2)`` is ``"2"``, as there) behave as scripts written for it expect. Every run gets fresh globals — a copy of a small safe base,
plus the rest of the standard library only when asked — and executes in a coroutine with
a count hook that stops it after an instruction budget or a wall-clock deadline. The hook
and the loader are captured by trusted set-up code before the script can run, so the
script itself never sees ``debug``, ``load``, ``require``, ``io`` or the full ``os``.

Runs execute on the fixed thread pool of ``tether.health.lua_pool`` (lupa releases the GIL
while Lua runs), never on the event loop and never on a thread of their own. The hook only
fires between VM instructions, so one call into a C function (a pathological
``string.find`` pattern) could run on far past the deadline: the pool's watchdog answers
for such a run at ``seconds + HARD_STOP_GRACE`` and that script is abandoned, never run
again in this process, so one hostile check costs one thread at most.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lupa import lua51

from tether.health.lua_pool import HARD_STOP_GRACE, default_pool
from tether.health.status import Health, HealthStatus

if TYPE_CHECKING:
    from tether.health.lua_pool import LuaPool

# Trusted set-up, run once per Lua state with the full standard library still in reach.
# It returns the two functions Python calls: compile(source, name) and run(fn, obj, …).
_PRELUDE = r"""
local now = ...
local HOOK_EVERY = 1000
local CLOCK_EVERY = 32  -- hooks between clock reads: each read takes the GIL, which the event loop needs
local type, error, select, rawget, pairs, tostring = type, error, select, rawget, pairs, tostring
local setmetatable, pcall, xpcall, loadstring, collectgarbage = setmetatable, pcall, xpcall, loadstring, collectgarbage
local setfenv, sub = setfenv, string.sub
local sethook = debug.sethook
local co_create, co_resume, co_status = coroutine.create, coroutine.resume, coroutine.status
local concat = table.concat

-- String methods stay reachable from any string value through the shared metatable,
-- whatever the script's globals are: take string.dump out of it and hide the metatable.
string.dump = nil
getmetatable("").__metatable = false

local stopped, budget, deadline, printed
local ticks = 0

local function hook()
  if stopped then error(stopped, 0) end
  budget = budget - HOOK_EVERY
  if budget < 0 then stopped = "instructions"; error(stopped, 0) end
  ticks = ticks + 1
  if ticks >= CLOCK_EVERY then
    ticks = 0
    if now() > deadline then stopped = "time"; error(stopped, 0) end
  end
end

local function hooked(co)
  sethook(co, hook, "", HOOK_EVERY)
  return co
end

-- pcall, xpcall and coroutine.resume would swallow the hook's error and let a loop go
-- on; once a run is stopped (or out of memory) they raise again instead.
local function pass_stops(ok, ...)
  if not ok then
    if stopped then error(stopped, 0) end
    if ... == "not enough memory" then stopped = "memory"; error(stopped, 0) end
  end
  return ok, ...
end

local function safe_pcall(f, ...) return pass_stops(pcall(f, ...)) end
local function safe_xpcall(f, handler, ...) return pass_stops(xpcall(f, handler, ...)) end
local function safe_create(f) return hooked(co_create(f)) end
local function safe_resume(co, ...) return pass_stops(co_resume(co, ...)) end

local function raise_unless_ok(ok, ...)
  if not ok then error((...), 0) end
  return ...
end

local function safe_wrap(f)
  local co = safe_create(f)
  return function(...) return raise_unless_ok(safe_resume(co, ...)) end
end

-- A finaliser would run later, outside any budget: refuse metatables that declare one.
local function safe_setmetatable(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("__gc metamethods are not allowed in health checks", 2)
  end
  return setmetatable(t, mt)
end

local function safe_print(...)
  local parts = {}
  for i = 1, select("#", ...) do
    local value = select(i, ...)
    local kind = type(value)
    if kind == "string" or kind == "number" or kind == "boolean" or kind == "nil" then
      parts[i] = tostring(value)
    else
      parts[i] = "<" .. kind .. ">"
    end
  end
  if #printed < 100 then printed[#printed + 1] = concat(parts, "\t") end
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local BASE = {}
for _, name in pairs({"assert", "error", "ipairs", "next", "pairs", "select", "tonumber", "tostring",
                      "type", "rawequal", "rawget", "rawset", "getmetatable", "unpack"}) do
  BASE[name] = _G[name]
end
local SAFE_OS = {time = os.time, date = os.date, clock = os.clock}
local TABLE, STRING, MATH = copy(table), copy(string), copy(math)
local COROUTINE = {create = safe_create, resume = safe_resume, wrap = safe_wrap, status = co_status,
                   yield = coroutine.yield, running = coroutine.running}

local function new_env(obj, open_libs)
  local env = copy(BASE)
  env._VERSION = _VERSION
  env.pcall, env.xpcall, env.setmetatable, env.print = safe_pcall, safe_xpcall, safe_setmetatable, safe_print
  env.table, env.os = copy(TABLE), copy(SAFE_OS)
  if open_libs then
    env.string, env.math, env.coroutine = copy(STRING), copy(MATH), copy(COROUTINE)
  end
  env._G = env
  env.obj = obj
  return env
end

local function compile(source, name)
  if sub(source, 1, 1) == "\27" then return false, name .. ": precompiled chunks are not allowed" end
  local fn, err = loadstring(source, "=" .. name)
  if fn then setfenv(fn, {}) end
  return fn or false, err or false
end

local function outcome(co, ok, result)
  if stopped then return "stopped", stopped end
  if not ok then
    if result == "not enough memory" then return "stopped", "memory" end
    if type(result) == "string" then return "error", result end
    return "error", "raised an error that is a " .. type(result) .. ", not a string"
  end
  if co_status(co) ~= "dead" then return "error", "yielded instead of returning" end
  if type(result) ~= "table" then return "error", "expect table output from Lua script, not " .. type(result) end
  local status, message = rawget(result, "status"), rawget(result, "message")
  if status == nil then return "error", "returned a table without a status" end
  if type(status) ~= "string" then return "error", "returned a status that is a " .. type(status) .. ", not a string" end
  if message ~= nil and type(message) ~= "string" then
    return "error", "returned a message that is a " .. type(message) .. ", not a string"
  end
  return "ok", status, message or ""
end

local function run(fn, obj, open_libs, instructions, seconds)
  stopped, budget, deadline, printed = nil, instructions, now() + seconds, {}
  setfenv(fn, new_env(obj, open_libs))
  local co = hooked(co_create(fn))
  local kind, first, second = outcome(co, co_resume(co))
  setfenv(fn, {})
  local lines = printed
  printed = nil
  collectgarbage()
  return kind, first, second, lines
end

return compile, run
"""

_VALID_STATUSES = {status.value for status in HealthStatus}
__all__ = ["DEFAULT_LIMITS", "HARD_STOP_GRACE", "CompiledScript", "LuaLimits", "ScriptResult"]
_VALID_LIST = ", ".join(status.value for status in HealthStatus)


@dataclass(frozen=True)
class LuaLimits:
    """What one run of a health script may use before it is stopped and reported Unknown."""

    instructions: int = 20_000_000
    memory_bytes: int = 32 * 1024 * 1024
    seconds: float = 1.0


DEFAULT_LIMITS = LuaLimits()


@dataclass(frozen=True)
class ScriptResult:
    """A script's verdict and whatever it printed (shown by ``tether health`` to debug a check)."""

    health: Health
    printed: tuple[str, ...] = ()


def _deny_attributes(obj: Any, name: Any, is_setting: bool) -> Any:
    raise AttributeError("Python attributes are not reachable from health checks")


def _plain(value: Any) -> Any:
    """The object as JSON would carry it, so the script sees strings where YAML saw dates."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, datetime.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if value is None or isinstance(value, (str, bool, float)):
        return value
    if isinstance(value, int):
        return value if lua51.LUA_MININTEGER <= value <= lua51.LUA_MAXINTEGER else float(value)
    return str(value)


def _chunk_name(name: str) -> str:
    """The name Lua puts in front of a line number: Lua 5.1 cuts chunk names at 59 characters."""
    return name if len(name) <= 55 else "..." + name[-52:]


class CompiledScript:
    """One health script compiled once in its own Lua state, run with fresh globals every time."""

    def __init__(self, source: str, name: str, limits: LuaLimits = DEFAULT_LIMITS) -> None:
        self.name = name
        self.limits = limits
        self.compiles = 0
        self._source = source
        self._lock = threading.Lock()
        self._abandoned = False
        self._build()

    def _build(self) -> None:
        self.compiles += 1
        self._lua = lua51.LuaRuntime(
            max_memory=0,
            register_eval=False,
            register_builtins=False,
            attribute_filter=_deny_attributes,
            unpack_returned_tuples=True,
        )
        self._compile, self._run = self._lua.execute(_PRELUDE, time.monotonic)
        compiled, syntax_error = self._compile(self._source, _chunk_name(self.name))
        self._function = compiled or None
        self._syntax_error: str | None = syntax_error or None
        self._lua.set_max_memory(self.limits.memory_bytes)

    @property
    def abandoned(self) -> bool:
        """Whether a run of this script once got stuck inside a library call (it never runs again)."""
        return self._abandoned

    def abandon(self) -> None:
        """Never run this script again: its Lua state may still be busy in a stuck call."""
        self._abandoned = True

    def answer_without_running(self) -> ScriptResult | None:
        """The verdict when the script cannot run (it does not compile, or it was abandoned), else None."""
        if self._function is None:
            message = f"Lua health check {self.name} does not compile: {self._syntax_error}"
            return ScriptResult(Health(HealthStatus.UNKNOWN, message))
        if self._abandoned:
            return ScriptResult(self._stopped("abandoned"))
        return None

    def hard_stopped(self) -> ScriptResult:
        """The verdict on a run the pool stopped waiting for, stuck inside one library call."""
        return ScriptResult(self._stopped("hard-stop"))

    def run(self, obj: Mapping[str, Any], *, open_libs: bool = False, pool: LuaPool | None = None) -> ScriptResult:
        """The health the script gives ``obj`` (from a pool thread; blocks the caller); failures are Unknown."""
        return (pool or default_pool()).run(self, obj, open_libs=open_libs)

    async def run_async(
        self, obj: Mapping[str, Any], *, open_libs: bool = False, pool: LuaPool | None = None
    ) -> ScriptResult:
        """Like ``run``, awaited: the event loop stays free while the script queues and runs."""
        return await (pool or default_pool()).run_async(self, obj, open_libs=open_libs)

    def execute(self, obj: Mapping[str, Any], open_libs: bool) -> ScriptResult:
        """Run the script here, on this thread (a pool worker's); one run at a time per script."""
        with self._lock:
            immediate = self.answer_without_running()
            if immediate is not None:
                return immediate
            return self._run_locked(obj, open_libs)

    def _run_locked(self, obj: Mapping[str, Any], open_libs: bool) -> ScriptResult:
        try:
            table = self._lua.table_from(_plain(obj), recursive=True)
            kind, first, second, printed = self._run(
                self._function, table, open_libs, self.limits.instructions, self.limits.seconds
            )
        except lua51.LuaMemoryError:
            self._build()
            return ScriptResult(self._stopped("memory"))
        except lua51.LuaError as exc:
            self._build()
            return ScriptResult(Health(HealthStatus.UNKNOWN, f"Lua health check {self.name} failed: {exc}"))
        return ScriptResult(self._verdict(kind, first, second), tuple(str(line) for line in printed.values()))

    def _verdict(self, kind: str, first: Any, second: Any) -> Health:
        if kind == "stopped":
            return self._stopped(first)
        if kind == "ok" and first not in _VALID_STATUSES:
            return Health(
                HealthStatus.UNKNOWN,
                f'Lua health check {self.name} returned an invalid health status "{first}" (valid: {_VALID_LIST})',
            )
        if kind == "ok":
            return Health(HealthStatus(first), second)
        return Health(HealthStatus.UNKNOWN, f"Lua health check {self.name} failed: {first}")

    def _stopped(self, reason: str) -> Health:
        limits = self.limits
        what = {
            "instructions": f"it ran more than {limits.instructions} instructions",
            "time": f"it ran longer than {limits.seconds:g} s",
            "memory": f"it needed more than {limits.memory_bytes // (1024 * 1024)} MiB of memory",
            "hard-stop": f"it ran longer than {limits.seconds:g} s inside one library call; it will not run again",
            "abandoned": f"it once ran longer than {limits.seconds:g} s inside one library call; not run again",
        }[reason]
        return Health(HealthStatus.UNKNOWN, f"Lua health check {self.name} was stopped: {what}")
