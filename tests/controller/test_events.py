"""The Event recorder against the real devcluster: Events appear, repeat, are rate-limited and masked."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from tether.cluster import Cluster
from tether.controller.events import EventRecorder, cap_bytes
from tether.secrets import REDACTOR

pytestmark = pytest.mark.cluster

CANARY = "canary-event-7d41e09b5a"


def application(namespace: str, name: str = "web") -> dict[str, Any]:
    return {
        "apiVersion": "tether.dev/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4())},
    }


async def events_of(kube: Cluster, namespace: str, name: str = "web") -> list[dict[str, Any]]:
    items, _ = await kube.list("v1", "Event", namespace)
    return [e for e in items if e["involvedObject"].get("name") == name]


async def test_event_appears_with_its_fields(kube: Cluster, namespace: str) -> None:
    recorder = EventRecorder(kube)
    app = application(namespace)
    recorder.emit(app, "OperationStarted", "Initiated automated sync to 'abc123'")
    recorder.emit(app, "SyncFailed", "sync failed: apply refused", warning=True)
    await recorder.drain()
    events = {e["reason"]: e for e in await events_of(kube, namespace)}
    assert set(events) == {"OperationStarted", "SyncFailed"}
    started = events["OperationStarted"]
    assert started["type"] == "Normal" and started["count"] == 1
    assert started["message"] == "Initiated automated sync to 'abc123'"
    assert started["source"]["component"] == "tether-controller"
    assert started["involvedObject"] == {
        "apiVersion": "tether.dev/v1alpha1",
        "kind": "Application",
        "name": "web",
        "namespace": namespace,
        "uid": app["metadata"]["uid"],
    }
    assert started["firstTimestamp"] and started["lastTimestamp"]
    assert events["SyncFailed"]["type"] == "Warning"
    assert recorder.sent == 2 and recorder.dropped == 0 and recorder.failed == 0
    await recorder.close()


async def test_repeats_aggregate_into_one_event_with_a_count(kube: Cluster, namespace: str) -> None:
    recorder = EventRecorder(kube)
    app = application(namespace)
    for _ in range(5):
        recorder.emit(app, "ResourceUpdated", "Updated health status: Progressing -> Healthy")
    await recorder.drain()
    recorder.emit(app, "ResourceUpdated", "Updated health status: Progressing -> Healthy")
    await recorder.drain()
    events = await events_of(kube, namespace)
    assert len(events) == 1
    assert events[0]["count"] == 6
    assert recorder.aggregated == 5
    # occurrences that arrived while the first write was under way were folded into one patch
    assert recorder.sent < 6
    await recorder.close()


async def test_a_repeat_after_ten_minutes_starts_a_new_event(kube: Cluster, namespace: str) -> None:
    now = [1_700_000_000.0]
    recorder = EventRecorder(kube, clock=lambda: now[0])
    app = application(namespace)
    recorder.emit(app, "OperationCompleted", "Sync operation to abc succeeded")
    await recorder.drain()
    now[0] += 601
    recorder.emit(app, "OperationCompleted", "Sync operation to abc succeeded")
    await recorder.drain()
    events = await events_of(kube, namespace)
    assert sorted(e["count"] for e in events) == [1, 1]
    await recorder.close()


async def test_spam_filter_drops_beyond_the_burst_and_refills(kube: Cluster, namespace: str) -> None:
    now = [1_700_000_000.0]
    recorder = EventRecorder(kube, clock=lambda: now[0])
    app = application(namespace)
    other = application(namespace, "other")
    for n in range(30):
        recorder.emit(app, "ResourceUpdated", f"change number {n}")
    recorder.emit(other, "ResourceUpdated", "the other app has its own bucket")
    await recorder.drain()
    assert len(await events_of(kube, namespace)) == 25
    assert len(await events_of(kube, namespace, "other")) == 1
    assert recorder.dropped == 5
    now[0] += 300  # one token back
    recorder.emit(app, "ResourceUpdated", "after the refill")
    recorder.emit(app, "ResourceUpdated", "still too soon")
    await recorder.drain()
    messages = {e["message"] for e in await events_of(kube, namespace)}
    assert "after the refill" in messages and "still too soon" not in messages
    assert recorder.dropped == 6
    await recorder.close()


async def test_canary_secret_never_reaches_the_api_server(kube: Cluster, namespace: str) -> None:
    REDACTOR.add(CANARY)
    recorder = EventRecorder(kube)
    app = application(namespace)
    recorder.emit(app, "SyncFailed", f"Secret db: invalid value {CANARY} for data.password", warning=True)
    recorder.emit(app, "SyncFailed", "x" * 3000 + CANARY, warning=True)
    await recorder.drain()
    events = await events_of(kube, namespace)
    assert len(events) == 2
    for event in events:
        assert CANARY not in str(event)
        assert len(event["message"].encode()) <= 1024
    assert any("********" in e["message"] for e in events)
    await recorder.close()


async def test_failures_never_reach_the_caller_and_are_logged_once(
    kube: Cluster, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    recorder = EventRecorder(kube)
    # an Event in a namespace that does not exist is refused by the server
    missing = application(f"{namespace}-absent")
    for n in range(3):
        recorder.emit(missing, "OperationStarted", f"attempt {n}")
    recorder.emit({"kind": "Application"}, "OperationStarted", "no name: dropped, not raised")
    await recorder.drain()
    assert recorder.failed == 3 and recorder.sent == 0 and recorder.dropped == 1
    assert capsys.readouterr().out.count("cannot write Kubernetes events") == 1
    recorder.emit(application(namespace), "OperationStarted", "the server takes this one")
    await recorder.drain()
    assert recorder.sent == 1
    assert "written again" in capsys.readouterr().out
    await recorder.close()


async def test_emit_does_not_wait_for_the_server(kube: Cluster, namespace: str) -> None:
    recorder = EventRecorder(kube, max_pending=3)
    app = application(namespace)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for n in range(10):
        recorder.emit(app, "ResourceUpdated", f"distinct {n}")
    assert loop.time() - started < 0.05
    assert recorder.pending == 3 and recorder.dropped == 7
    await recorder.close()
    assert recorder.sent == 3
    recorder.emit(app, "ResourceUpdated", "after close")
    assert recorder.dropped == 8 and recorder.pending == 0


async def test_a_hold_delays_writes_and_loses_none(kube: Cluster, namespace: str) -> None:
    recorder = EventRecorder(kube, max_hold=60.0)
    app = application(namespace)
    recorder.hold()
    for n in range(5):
        recorder.emit(app, "ResourceUpdated", f"during the burst {n}")
    await asyncio.sleep(1.0)
    assert recorder.sent == 0 and recorder.pending == 5
    assert await events_of(kube, namespace) == []
    recorder.release()
    await recorder.drain()
    assert recorder.sent == 5 and recorder.dropped == 0
    assert sorted(e["message"] for e in await events_of(kube, namespace)) == [f"during the burst {n}" for n in range(5)]
    await recorder.close()


async def test_held_writes_go_out_at_the_steady_rate_not_in_a_burst(kube: Cluster, namespace: str) -> None:
    events = kube.sibling("events-test", qps=20.0, burst=100)
    recorder = EventRecorder(events, max_hold=60.0)
    recorder.hold()
    for n in range(20):  # twenty objects, twenty Events
        recorder.emit(application(namespace, f"app-{n}"), "ResourceUpdated", "held")
    await asyncio.sleep(1.0)  # the client's bucket would have its whole burst by now
    started = time.monotonic()
    recorder.release()
    await recorder.drain()
    # 20 writes at 20/s after the hold: about a second (the burst of 100 would send them at once)
    assert time.monotonic() - started >= 0.8
    assert recorder.sent == 20 and recorder.dropped == 0
    items, _ = await kube.list("v1", "Event", namespace)
    assert sorted(e["involvedObject"]["name"] for e in items) == sorted(f"app-{n}" for n in range(20))
    await recorder.close()


async def test_close_drops_what_it_cannot_write_in_time_and_says_how_many(
    kube: Cluster, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Shutdown has a deadline: held Events that cannot go out in time are counted and logged, not lost silently."""
    # one write at once, the next only after 5 s: the 1.5 s deadline falls between, not on a write in flight
    events = kube.sibling("events-close-test", qps=0.2, burst=1)
    recorder = EventRecorder(events, max_hold=60.0)
    recorder.hold()
    for n in range(10):
        recorder.emit(application(namespace, f"app-{n}"), "ResourceUpdated", "held until shutdown")
    await recorder.close(timeout=1.5)
    assert recorder.sent == 1 and recorder.dropped == 9 and recorder.pending == 0
    assert f"events not written before shutdown events={recorder.dropped}" in capsys.readouterr().out
    items, _ = await kube.list("v1", "Event", namespace)
    assert len(items) == recorder.sent


async def test_a_hold_lasts_max_hold_at_most(kube: Cluster, namespace: str) -> None:
    recorder = EventRecorder(kube, max_hold=0.5)
    recorder.hold()  # and never released: a queue of syncs that does not move
    recorder.emit(application(namespace), "ResourceUpdated", "late but written")
    await asyncio.wait_for(recorder.drain(), 10)
    assert recorder.held and recorder.sent == 1
    assert [e["message"] for e in await events_of(kube, namespace)] == ["late but written"]
    await recorder.close()


async def test_a_burst_longer_than_max_hold_delays_each_event_max_hold_at_most(kube: Cluster, namespace: str) -> None:
    """A hold past ``max_hold`` lets its Events out; the next ``hold`` starts a new one for later Events."""
    recorder = EventRecorder(kube, max_hold=0.5)
    app = application(namespace)
    assert recorder.hold() is True and recorder.hold() is False  # one burst, one hold
    recorder.emit(app, "ResourceUpdated", "first")
    await asyncio.wait_for(recorder.drain(), 10)
    assert recorder.sent == 1  # after max_hold, not never
    assert recorder.hold() is True  # the burst goes on: a new hold, for the Events from now on
    started = time.monotonic()
    recorder.emit(app, "ResourceUpdated", "second")
    await asyncio.sleep(0.2)
    assert recorder.sent == 1 and recorder.pending == 1
    await asyncio.wait_for(recorder.drain(), 10)
    assert recorder.sent == 2 and time.monotonic() - started >= 0.45
    assert sorted(e["message"] for e in await events_of(kube, namespace)) == ["first", "second"]
    await recorder.close()


def test_cap_bytes_keeps_whole_characters() -> None:
    text = "é" * 600  # 1200 bytes
    capped = cap_bytes(text, 1024)
    assert len(capped.encode()) <= 1024 and capped.endswith("…")
    assert cap_bytes("short", 1024) == "short"
