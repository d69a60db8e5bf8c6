"""Lua health checks off the event loop: a fixed pool, bounded queue, one compile per script."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import pytest

from tether.health import Health, HealthStatus, LuaChecks, LuaLimits, LuaPool, assess, assess_async

T = TypeVar("T")

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"replicas": 1},
}


def kind_object(index: int) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": f"Stuck{index}", "metadata": {"name": "x", "namespace": "shop"}}


@pytest.fixture
async def pool() -> AsyncIterator[LuaPool]:
    lua_pool = LuaPool(workers=4, max_stuck=4, grace=0.3)
    try:
        yield lua_pool
    finally:
        lua_pool.close()


async def while_ticking(work: Awaitable[T], period: float = 0.02) -> tuple[T, float, int]:
    """Run ``work`` while an asyncio timer ticks every ``period``: (result, worst lateness, ticks)."""
    worst, ticks = 0.0, 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst, ticks
        loop = asyncio.get_running_loop()
        while not done.is_set():
            due = loop.time() + period
            await asyncio.sleep(period)
            worst, ticks = max(worst, loop.time() - due), ticks + 1

    task = asyncio.create_task(ticker())
    try:
        result = await work
    finally:
        done.set()
        await task
    return result, worst, ticks


async def test_eight_stuck_checks_never_hold_up_the_event_loop(pool: LuaPool) -> None:
    scripts = {f"example.com/Stuck{i}": f"-- check {i}\nwhile true do end" for i in range(8)}
    lua = LuaChecks(scripts, limits=LuaLimits(instructions=10**15, seconds=0.4), pool=pool)
    started = time.monotonic()
    healths, worst, ticks = await while_ticking(
        asyncio.gather(*(assess_async(kind_object(i), lua=lua) for i in range(8)))
    )
    elapsed = time.monotonic() - started
    assert all(h is not None and h.message.endswith("was stopped: it ran longer than 0.4 s") for h in healths)
    assert 0.75 < elapsed < 2.0  # 8 runs of 0.4 s on 4 workers: two rounds, never one at a time
    assert worst < 0.2, f"the event loop was held up {worst:.3f}s"  # a run on the loop would hold it 0.4 s
    assert ticks >= elapsed / 0.02 * 0.5
    assert pool.threads <= 4 + 1


async def test_a_check_stuck_inside_one_library_call_is_answered_at_the_hard_stop(pool: LuaPool) -> None:
    # string.find backtracks inside C: the instruction hook never fires there.
    stuck = 'local s = ("a"):rep(3000) s:find(".-.-.-.-.-b") return {status = "Healthy"}'
    scripts = {"example.com/Stuck0": stuck, "apps/Deployment": "return {status = 'Healthy', message = 'fine'}"}
    lua = LuaChecks(scripts, limits=LuaLimits(seconds=0.2), pool=pool)
    started = time.monotonic()
    health, worst, _ = await while_ticking(assess_async(kind_object(0), lua=lua))
    assert time.monotonic() - started < 0.2 + 0.3 + 0.4
    assert health is not None and "inside one library call" in health.message
    assert worst < 0.2
    # The stuck worker was replaced: the pool still has four to serve others, without delay.
    begun = time.monotonic()
    assert await assess_async(DEPLOYMENT, lua=lua) == Health(HealthStatus.HEALTHY, "fine")
    assert time.monotonic() - begun < 0.2
    assert pool.threads <= 4 + 1 + 1  # workers, the watchdog, the one stuck thread
    again = await assess_async(kind_object(0), lua=lua)
    assert again is not None and "not run again" in again.message


async def test_each_script_is_compiled_once_across_many_runs_and_threads_stay_bounded(pool: LuaPool) -> None:
    scripts = {
        f"example.com/Stuck{i}": f"return {{status = 'Healthy', message = obj.kind .. ' {time.monotonic_ns()}'}}"
        for i in range(3)
    }
    lua = LuaChecks(scripts, pool=pool)
    before = threading.active_count()
    healths = await asyncio.gather(*(assess_async(kind_object(i % 3), lua=lua) for i in range(300)))
    assert [h.status if h else None for h in healths] == [HealthStatus.HEALTHY] * 300
    compiled = {key: lua.compiled(lua.script_for(kind_object(i))).compiles for i, key in enumerate(scripts)}  # type: ignore[arg-type]
    assert compiled == dict.fromkeys(scripts, 1)
    assert threading.active_count() - before <= 4 + 1
    assert pool.threads <= 4 + 1
    assert pool.queued == 0


async def test_queued_work_is_bounded_and_callers_wait_for_room() -> None:
    pool = LuaPool(workers=1, max_queued=2)
    try:
        lua = LuaChecks(
            {"apps/Deployment": "local n = 0 for i = 1, 3000000 do n = n + 1 end return {status = 'Healthy'}"},
            pool=pool,
        )
        seen: list[int] = []

        async def watch() -> None:
            while True:
                seen.append(pool.queued)
                await asyncio.sleep(0.002)

        watcher = asyncio.create_task(watch())
        healths = await asyncio.gather(*(assess_async(DEPLOYMENT, lua=lua) for _ in range(6)))
        watcher.cancel()
        assert all(h is not None and h.status is HealthStatus.HEALTHY for h in healths)
        assert max(seen) == 2 and pool.queued == 0
    finally:
        pool.close()


async def test_a_cancelled_caller_gives_its_place_back() -> None:
    pool = LuaPool(workers=1, max_queued=1)
    try:
        slow = "local n = 0 for i = 1, 3000000 do n = n + 1 end return {status = 'Healthy'}"
        lua = LuaChecks({"apps/Deployment": slow}, pool=pool)
        first = asyncio.create_task(assess_async(DEPLOYMENT, lua=lua))
        waiting = [asyncio.create_task(assess_async(DEPLOYMENT, lua=lua)) for _ in range(3)]
        await asyncio.sleep(0.01)
        for task in waiting:
            task.cancel()
        assert (await first) is not None
        await asyncio.gather(*waiting, return_exceptions=True)
        assert pool.queued == 0
        assert await asyncio.wait_for(assess_async(DEPLOYMENT, lua=lua), 5) == Health(HealthStatus.HEALTHY, "")
    finally:
        pool.close()


def test_the_synchronous_assess_runs_on_the_pool_too() -> None:
    pool = LuaPool(workers=2)
    try:
        lua = LuaChecks({"apps/Deployment": "return {status = 'Degraded', message = 'from lua'}"}, pool=pool)
        assert assess(DEPLOYMENT, lua=lua) == Health(HealthStatus.DEGRADED, "from lua")
        assert pool.threads == 2 + 1
    finally:
        pool.close()
