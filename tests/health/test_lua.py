"""Lua health checks: where a script is found, which one wins, and what the sandbox refuses."""

from __future__ import annotations

import datetime
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tether.errors import TetherError
from tether.health import (
    Health,
    HealthStatus,
    LuaChecks,
    LuaLimits,
    assess,
    explain,
    lua_sandbox,
)

LUA_DIR = Path(__file__).parent / "lua"


def obj(api_version: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", "namespace": "shop"}, **fields}


def returning(status: str, message: str) -> str:
    return f"return {{status = {status!r}, message = {message!r}}}"


def write_script(root: Path, relative: str, source: str) -> None:
    path = root / relative / "health.lua"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)


READY_DEPLOYMENT = obj(
    "apps/v1",
    "Deployment",
    spec={"replicas": 1},
    status={"observedGeneration": 0, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1},
)


def test_lua_takes_precedence_over_the_built_in_check() -> None:
    assert assess(READY_DEPLOYMENT) == Health(HealthStatus.HEALTHY)
    lua = LuaChecks({"apps/Deployment": returning("Degraded", "overridden")})
    assert assess(READY_DEPLOYMENT, lua=lua) == Health(HealthStatus.DEGRADED, "overridden")


def test_configuration_wins_over_the_directory(tmp_path: Path) -> None:
    write_script(tmp_path, "apps/Deployment", returning("Degraded", "directory"))
    lua = LuaChecks({"apps/*": returning("Suspended", "configuration wildcard")}, directory=tmp_path)
    assert assess(READY_DEPLOYMENT, lua=lua) == Health(HealthStatus.SUSPENDED, "configuration wildcard")
    assert assess(READY_DEPLOYMENT, lua=LuaChecks(directory=tmp_path)) == Health(HealthStatus.DEGRADED, "directory")


def test_exact_key_wins_over_wildcards_and_the_most_specific_wildcard_wins(tmp_path: Path) -> None:
    write_script(tmp_path, "_/_", returning("Unknown", "any kind of any group"))
    write_script(tmp_path, "_.example.com/_", returning("Progressing", "any example.com group"))
    write_script(tmp_path, "db.example.com/_", returning("Suspended", "any kind of db.example.com"))
    write_script(tmp_path, "db.example.com/Table", returning("Healthy", "exactly Table"))
    lua = LuaChecks(directory=tmp_path)

    def message(api_version: str, kind: str) -> str:
        health = assess(obj(api_version, kind), lua=lua)
        assert health is not None
        return health.message

    assert message("db.example.com/v1", "Table") == "exactly Table"
    assert message("db.example.com/v1", "Index") == "any kind of db.example.com"
    assert message("cache.example.com/v1", "Index") == "any example.com group"
    assert message("apps/v1", "Deployment") == "any kind of any group"


def test_core_group_scripts_sit_at_the_top_of_the_tree(tmp_path: Path) -> None:
    write_script(tmp_path, "Service", returning("Degraded", "core Service script"))
    lua = LuaChecks(directory=tmp_path)
    assert assess(obj("v1", "Service"), lua=lua) == Health(HealthStatus.DEGRADED, "core Service script")
    assert assess(obj("serving.knative.dev/v1", "Service"), lua=lua) is None
    script = lua.script_for(obj("v1", "Service"))
    assert script is not None and script.key == "Service"


def test_configuration_keys_use_argo_cds_form() -> None:
    lua = LuaChecks({"Secret": returning("Healthy", "core key"), "*.crossplane.io/*": returning("Progressing", "wild")})
    assert assess(obj("v1", "Secret"), lua=lua) == Health(HealthStatus.HEALTHY, "core key")
    assert assess(obj("s3.aws.crossplane.io/v1", "Bucket"), lua=lua) == Health(HealthStatus.PROGRESSING, "wild")
    for bad in ("", "a/b/c", "apps/", " apps/Deployment"):
        with pytest.raises(TetherError, match="is not of the form 'group/Kind'"):
            LuaChecks({bad: returning("Healthy", "")})


def test_a_missing_directory_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(TetherError, match=str(tmp_path / "nope")):
        LuaChecks(directory=tmp_path / "nope")


def test_scripts_deeper_than_group_and_kind_are_not_health_checks(tmp_path: Path) -> None:
    write_script(tmp_path, "apps/Deployment/actions/restart", returning("Degraded", "an action, not a check"))
    assert LuaChecks(directory=tmp_path).script_for(READY_DEPLOYMENT) is None


def test_the_standard_library_is_opened_only_where_configured() -> None:
    script = 'return {status = "Healthy", message = string.format("%d replicas", obj.spec.replicas)}'
    closed = assess(READY_DEPLOYMENT, lua=LuaChecks({"apps/Deployment": script}))
    assert closed is not None and closed.status is HealthStatus.UNKNOWN
    assert "attempt to index global 'string' (a nil value)" in closed.message
    for open_libs in (True, {"apps/Deployment"}):
        opened = assess(READY_DEPLOYMENT, lua=LuaChecks({"apps/Deployment": script}, open_libs=open_libs))
        assert opened == Health(HealthStatus.HEALTHY, "1 replicas")
    other = assess(READY_DEPLOYMENT, lua=LuaChecks({"apps/Deployment": script}, open_libs={"apps/StatefulSet"}))
    assert other is not None and other.status is HealthStatus.UNKNOWN


@pytest.mark.parametrize("open_libs", [False, True])
def test_nothing_outside_the_sandbox_is_reachable(open_libs: bool) -> None:
    escape = (LUA_DIR / "hostile.example.com" / "Escape" / "health.lua").read_text()
    health = assess(obj("hostile.example.com/v1", "Escape"), lua=LuaChecks({"*/*": escape}, open_libs=open_libs))
    assert health == Health(HealthStatus.HEALTHY, "nothing reachable")


def test_os_execute_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "escaped"
    script = f'os.execute("touch {marker}") return {{status = "Healthy"}}'
    health = assess(READY_DEPLOYMENT, lua=LuaChecks({"apps/Deployment": script}, open_libs=True))
    assert health is not None and health.status is HealthStatus.UNKNOWN
    assert "attempt to call field 'execute' (a nil value)" in health.message
    assert not marker.exists()


def test_the_object_arrives_as_lua_tables_with_1_based_arrays() -> None:
    script = """
      local c = obj.status.conditions
      return {status = "Healthy", message = #c .. " " .. c[1].type .. " " .. c[2].type .. " " .. tostring(c[0]) ..
        " " .. tostring(obj.spec.replicas) .. " " .. obj.metadata.creationTimestamp}
    """
    live = obj(
        "example.com/v1",
        "Thing",
        spec={"replicas": 3},
        status={"conditions": [{"type": "Ready"}, {"type": "Synced"}]},
    )
    live["metadata"]["creationTimestamp"] = datetime.datetime(2024, 5, 1, 10, 0, tzinfo=datetime.UTC)
    health = assess(live, lua=LuaChecks({"example.com/Thing": script}, open_libs=True))
    assert health == Health(HealthStatus.HEALTHY, "2 Ready Synced nil 3 2024-05-01T10:00:00Z")


def test_globals_do_not_leak_from_one_run_to_the_next() -> None:
    script = "runs = (runs or 0) + 1; table.marker = true; return {status = 'Healthy', message = tostring(runs)}"
    lua = LuaChecks({"apps/Deployment": script})
    assert [assess(READY_DEPLOYMENT, lua=lua) for _ in range(3)] == [Health(HealthStatus.HEALTHY, "1")] * 3


def test_compiled_scripts_are_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    original = lua_sandbox.CompiledScript._build

    def counting_build(self: lua_sandbox.CompiledScript) -> None:
        built.append(self.name)
        original(self)

    monkeypatch.setattr(lua_sandbox.CompiledScript, "_build", counting_build)
    source = returning("Healthy", "cached " + str(time.monotonic_ns()))
    for _ in range(5):
        assert assess(READY_DEPLOYMENT, lua=LuaChecks({"apps/Deployment": source})) is not None
    assert built == ["apps/Deployment (configuration)"]


def test_a_runaway_loop_is_stopped_by_wall_clock_when_the_budget_allows_it() -> None:
    lua = LuaChecks({"apps/Deployment": "while true do end"}, limits=LuaLimits(instructions=10**15, seconds=0.3))
    started = time.monotonic()
    health = assess(READY_DEPLOYMENT, lua=lua)
    assert time.monotonic() - started < 2
    assert health is not None and health.status is HealthStatus.UNKNOWN
    assert health.message.endswith("was stopped: it ran longer than 0.3 s")


def test_a_runaway_library_call_is_abandoned_at_the_hard_stop_and_not_run_again() -> None:
    # string.find backtracks inside C for hours: the instruction hook never fires there.
    script = 'local s = ("a"):rep(3000) s:find(".-.-.-.-.-b") return {status = "Healthy"}'
    lua = LuaChecks({"apps/Deployment": script}, limits=LuaLimits(seconds=0.2))
    started = time.monotonic()
    health = assess(READY_DEPLOYMENT, lua=lua)
    assert time.monotonic() - started < 0.2 + lua_sandbox.HARD_STOP_GRACE + 0.5
    assert health is not None and health.status is HealthStatus.UNKNOWN
    assert "ran longer than 0.2 s inside one library call" in health.message
    started = time.monotonic()
    again = assess(READY_DEPLOYMENT, lua=lua)
    assert time.monotonic() - started < 0.1  # the abandoned script is not started a second time
    assert again is not None and again.status is HealthStatus.UNKNOWN and "not run again" in again.message


def test_a_small_memory_limit_is_enforced() -> None:
    script = 'local s = ("x"):rep(8 * 1024 * 1024) return {status = "Healthy", message = tostring(#s)}'
    small = LuaChecks({"apps/Deployment": script}, limits=LuaLimits(memory_bytes=4 * 1024 * 1024))
    health = assess(READY_DEPLOYMENT, lua=small)
    assert health is not None and health.message.endswith("it needed more than 4 MiB of memory")
    assert assess(READY_DEPLOYMENT, lua=LuaChecks({"apps/Deployment": script})) == Health(
        HealthStatus.HEALTHY, "8388608"
    )


def test_a_stopped_script_runs_normally_afterwards() -> None:
    script = 'if obj.spec.replicas > 1 then while true do end end return {status = "Healthy", message = "ok"}'
    lua = LuaChecks({"apps/Deployment": script}, limits=LuaLimits(instructions=100_000))
    runaway = assess({**READY_DEPLOYMENT, "spec": {"replicas": 2}}, lua=lua)
    assert runaway is not None and runaway.status is HealthStatus.UNKNOWN
    assert assess(READY_DEPLOYMENT, lua=lua) == Health(HealthStatus.HEALTHY, "ok")


def test_a_finaliser_cannot_escape_the_budget() -> None:
    script = "setmetatable({}, {__gc = function() while true do end end}) return {status = 'Healthy'}"
    health = assess(READY_DEPLOYMENT, lua=LuaChecks({"apps/Deployment": script}))
    assert health is not None and "__gc metamethods are not allowed" in health.message


def test_print_output_is_kept_for_debugging() -> None:
    script = "print('replicas', obj.spec.replicas, {}) return {status = 'Healthy'}"
    assessment = explain(READY_DEPLOYMENT, lua=LuaChecks({"apps/Deployment": script}))
    assert assessment.printed == ("replicas\t1\t<table>",)


def test_one_script_serves_many_threads() -> None:
    script = "local n = 0 for i = 1, 20000 do n = n + i end return {status = 'Healthy', message = tostring(n)}"
    lua = LuaChecks({"apps/Deployment": script})
    results: list[Health | None] = []

    def work() -> None:
        for _ in range(20):
            results.append(assess(READY_DEPLOYMENT, lua=lua))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [Health(HealthStatus.HEALTHY, "200010000")] * 80


def test_scripts_run_as_lua_5_1_like_argo_cds_gopher_lua() -> None:
    script = """
      local t = {"a", "b", "c"}
      local x, y = unpack({1, 2})
      return {status = "Healthy", message = _VERSION .. " " .. table.getn(t) .. " " .. x + y .. " " .. 10 / 2 ..
        " " .. string.format("%5.1f", 2.25) .. " " .. select("#", unpack(t)) .. " " .. tostring(2^53)}
    """
    health = assess(READY_DEPLOYMENT, lua=LuaChecks({"apps/Deployment": script}, open_libs=True))
    assert health == Health(HealthStatus.HEALTHY, "Lua 5.1 3 3 5   2.2 3 9.007199254741e+15")


def test_precompiled_chunks_are_refused() -> None:
    health = assess(READY_DEPLOYMENT, lua=LuaChecks({"apps/Deployment": "\x1bLua\x51\x00 junk"}))
    assert health is not None and health.status is HealthStatus.UNKNOWN
    assert "precompiled chunks are not allowed" in health.message
