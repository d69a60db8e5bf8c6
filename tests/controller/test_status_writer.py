"""The status writer against the API server: a status in motion settles before it is written, a settled
one goes at once, and what ``on_written`` hears (the controller's sync and health Events) is only what
the server was sent."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from tests.controller.conftest import API, application, eventually
from tether.cluster import Cluster
from tether.controller.status import Standing, StatusWriter, in_motion, standing

SETTLE = 0.6


def status(sync: str, health: str, phase: str | None = None, message: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"sync": {"status": sync}, "health": {"status": health}}
    if message:
        out["health"]["message"] = message
    if phase:
        out["operationState"] = {"phase": phase}
    return out


class Heard:
    """What ``on_written`` reported: (app, before, after) per status the server accepted."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Standing, Standing]] = []

    def __call__(self, name: str, before: Standing, after: Mapping[str, Any]) -> None:
        self.calls.append((name, before, standing(after)))


async def live_status(kube: Cluster, namespace: str, name: str) -> dict[str, Any]:
    obj = await kube.get(API, "Application", name, namespace)
    assert obj is not None
    return dict(obj.get("status") or {})


async def written(writer: StatusWriter, count: int) -> None:
    """Wait for the writer to have counted ``count`` writes: it counts a write when the API server's
    response arrives, which is after the status can already be read back."""

    async def writes() -> int:
        return writer.writes

    await eventually(writes, lambda n: n >= count, timeout=10)


async def made(kube: Cluster, namespace: str, name: str) -> None:
    await kube.apply(application(name, namespace, "https://example.invalid/repo.git", "app", namespace))


def test_in_motion_is_a_running_operation_or_progressing_health() -> None:
    assert in_motion(status("OutOfSync", "Missing", "Running"))
    assert in_motion(status("Synced", "Progressing", "Succeeded"))
    assert in_motion(status("OutOfSync", "Healthy", "Terminating"))
    assert not in_motion(status("Synced", "Healthy", "Succeeded"))
    assert not in_motion(status("OutOfSync", "Degraded", "Failed"))
    assert not in_motion({})


async def test_a_sync_that_settles_in_time_costs_one_write(kube: Cluster, crds_installed: None, namespace: str) -> None:
    await made(kube, namespace, "quick")
    heard = Heard()
    writer = StatusWriter(kube, namespace, settle=SETTLE, on_written=heard)
    before = kube.requests.snapshot().writes
    assert not await writer.write("quick", status("OutOfSync", "Missing", "Running"), settle=True)
    assert not await writer.write("quick", status("Synced", "Progressing", "Succeeded"), settle=True)
    assert (writer.waiting, writer.writes) == (1, 0)
    assert await writer.write("quick", status("Synced", "Healthy", "Succeeded"), settle=True)  # settled: at once
    await asyncio.sleep(SETTLE * 2)  # the held status's wait ends with nothing left to write
    assert (writer.waiting, writer.writes, kube.requests.snapshot().writes - before) == (0, 1, 1)
    assert heard.calls == [("quick", (None, None), ("Synced", "Healthy"))]
    live = await live_status(kube, namespace, "quick")
    assert (live["sync"]["status"], live["health"]["status"], live["operationState"]["phase"]) == (
        "Synced",
        "Healthy",
        "Succeeded",
    )


async def test_a_status_in_motion_is_written_once_a_wait_with_the_newest_state(
    kube: Cluster, crds_installed: None, namespace: str
) -> None:
    await made(kube, namespace, "slow")
    heard = Heard()
    writer = StatusWriter(kube, namespace, settle=SETTLE, on_written=heard)
    await writer.write("slow", status("OutOfSync", "Missing", "Running"), settle=True)
    await writer.write("slow", status("OutOfSync", "Progressing", "Running", message="1 of 3 updated"), settle=True)
    assert writer.writes == 0
    await written(writer, 1)
    live = await live_status(kube, namespace, "slow")
    assert live["health"] == {"status": "Progressing", "message": "1 of 3 updated"}
    assert writer.settled == 1  # the first held status was replaced before it went out
    assert heard.calls == [("slow", (None, None), ("OutOfSync", "Progressing"))]
    # still in motion: held again; a write without ``settle`` goes at once and takes the held one's place
    await writer.write("slow", status("OutOfSync", "Progressing", "Running", message="2 of 3 updated"), settle=True)
    assert await writer.write("slow", status("OutOfSync", "Degraded", "Running"))
    await asyncio.sleep(SETTLE * 2)
    assert (writer.writes, writer.waiting) == (2, 0)
    assert (await live_status(kube, namespace, "slow"))["health"] == {"status": "Degraded"}
    assert heard.calls[-1] == ("slow", ("OutOfSync", "Progressing"), ("OutOfSync", "Degraded"))


async def test_close_writes_what_is_held_and_an_unchanged_status_is_not_sent_again(
    kube: Cluster, crds_installed: None, namespace: str
) -> None:
    await made(kube, namespace, "held")
    writer = StatusWriter(kube, namespace, settle=60.0)
    running = status("OutOfSync", "Missing", "Running")
    await writer.write("held", running, settle=True)
    await writer.close()  # a shutdown: nothing held is lost
    assert (writer.writes, writer.waiting) == (1, 0)
    assert (await live_status(kube, namespace, "held"))["operationState"] == {"phase": "Running"}
    assert not await writer.write("held", running)  # the server has it already
    assert writer.writes == 1


async def test_with_no_settle_every_status_is_written_at_once(
    kube: Cluster, crds_installed: None, namespace: str
) -> None:
    await made(kube, namespace, "eager")
    writer = StatusWriter(kube, namespace, settle=0.0)
    assert await writer.write("eager", status("OutOfSync", "Missing", "Running"), settle=True)
    assert await writer.write("eager", status("Synced", "Progressing", "Succeeded"), settle=True)
    assert writer.writes == 2


async def test_a_queued_operation_is_announced_once_it_starts_and_settles(
    kube: Cluster, crds_installed: None, namespace: str
) -> None:
    await made(kube, namespace, "queued")
    writer = StatusWriter(kube, namespace, settle=SETTLE, queued_hold=30.0)
    writer.queued("queued")  # no sync slot free: the announcement waits for one
    await writer.write("queued", status("OutOfSync", "Missing", "Running"), settle=True)
    await asyncio.sleep(SETTLE * 3)
    assert (writer.writes, writer.waiting) == (0, 1)
    assert await live_status(kube, namespace, "queued") == {}
    writer.started("queued")  # its slot: from now on it settles as any status in motion
    await writer.write("queued", status("OutOfSync", "Progressing", "Running"), settle=True)
    await asyncio.sleep(SETTLE / 3)
    assert writer.writes == 0
    await written(writer, 1)
    live = await live_status(kube, namespace, "queued")
    assert (live["health"]["status"], writer.writes, writer.waiting) == ("Progressing", 1, 0)


async def test_a_queue_that_does_not_move_still_shows_the_app_after_queued_hold(
    kube: Cluster, crds_installed: None, namespace: str
) -> None:
    await made(kube, namespace, "stuck")
    writer = StatusWriter(kube, namespace, settle=SETTLE, queued_hold=SETTLE * 3)
    writer.queued("stuck")
    started = asyncio.get_running_loop().time()
    await writer.write("stuck", status("OutOfSync", "Missing", "Running"), settle=True)
    await written(writer, 1)
    live = await live_status(kube, namespace, "stuck")
    assert live["operationState"] == {"phase": "Running"}
    assert asyncio.get_running_loop().time() - started >= SETTLE * 3 - 0.05  # held for queued_hold, not settle
    assert writer.writes == 1


async def test_a_held_status_of_an_operation_that_has_ended_is_dropped_for_the_one_after_it(
    kube: Cluster, crds_installed: None, namespace: str
) -> None:
    """The operation ended before its held announcement was written: the announcement is out of date, and
    the status the reconcile after the operation writes is the only write."""
    await made(kube, namespace, "ended")
    writer = StatusWriter(kube, namespace, settle=SETTLE, queued_hold=30.0)
    writer.queued("ended")
    await writer.write("ended", status("OutOfSync", "Missing", "Running"), settle=True)
    writer.started("ended")
    writer.ended("ended")  # done within the settle: the reconcile it queued has not run yet
    await asyncio.sleep(SETTLE * 3)
    assert (writer.writes, writer.waiting) == (0, 0)
    assert await live_status(kube, namespace, "ended") == {}
    await writer.write("ended", status("Synced", "Healthy", "Succeeded"), settle=True)
    await written(writer, 1)
    live = await live_status(kube, namespace, "ended")
    assert (live["operationState"]["phase"], live["health"]["status"], writer.writes) == ("Succeeded", "Healthy", 1)
