"""A slow Lua health check during a sync's wave wait runs off the event loop: the loop keeps its time."""

from __future__ import annotations

import asyncio
import gc

import pytest

from tests.sync.helpers import configmap
from tether.cluster import Cluster
from tether.health import LuaChecks, LuaLimits
from tether.sync import OperationPhase, SyncOptions, sync_app

pytestmark = pytest.mark.cluster

# Busy for most of a second, mostly inside table.sort (few Lua instructions, well inside the 20M-instruction
# limit; only the base and table libraries, as Argo CD gives without useOpenLibs). Long enough that a stall
# of one whole check (the check on the loop) stands above the scheduling noise of a loaded 2-core machine,
# which once held the loop for 0.5 s beside a quarter-second check.
SLOW_CHECK = """
local n = 0
for r = 1, 10 do
  local t = {}
  for i = 1, 100000 do t[i] = (i * 7919) % 100003 end
  table.sort(t)
  n = n + t[1]
end
return {status = "Healthy", message = "sorted " .. tostring(n >= 0)}
"""


async def _worst_lag(stop: asyncio.Event, period: float = 0.02) -> float:
    """How late a timer ticking every ``period`` seconds ever fired until ``stop`` is set."""
    loop, worst = asyncio.get_running_loop(), 0.0
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(period)
        worst = max(worst, loop.time() - before - period)
    return worst


async def test_wave_waits_judge_health_with_lua_off_the_event_loop(kube: Cluster, namespace: str, app: str) -> None:
    # The loop's lag is measured here, not the time limit: a loaded clean-clone run once took over the
    # default 1 s for a quarter-second check, so the limit is raised out of the way.
    lua = LuaChecks({"ConfigMap": SLOW_CHECK}, limits=LuaLimits(seconds=10.0))
    started = asyncio.get_running_loop().time()
    assert (await lua.run_async(configmap("probe", namespace))) is not None
    one_check = asyncio.get_running_loop().time() - started
    desired = [configmap(f"early-{i}", namespace, wave=0) for i in range(4)] + [configmap("late", namespace, wave=1)]

    # A full test session holds a large heap; keep its garbage collections out of the measurement.
    gc.collect()
    gc.freeze()
    try:
        stop = asyncio.Event()
        ticker = asyncio.create_task(_worst_lag(stop))
        options = SyncOptions(namespace=namespace, timeout=60)
        result = await sync_app(app, desired, cluster=kube, options=options, lua=lua)
        stop.set()
        worst = await ticker
    finally:
        gc.unfreeze()

    assert result.phase is OperationPhase.SUCCEEDED, result.message
    assert one_check > 0.3, f"the check must be slow enough to matter ({one_check:.3f}s)"
    # On the loop, a judged check holds it for a whole check (the old code stalled it 4x one_check: 1.1 s);
    # off it, no stall lasts as long as one check, even on a busy 2-core machine.
    assert worst < one_check, f"the event loop stalled {worst:.3f}s (one check takes {one_check:.3f}s)"
