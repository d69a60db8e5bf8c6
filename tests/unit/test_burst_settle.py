"""Which written statuses take an app out of a burst of syncs (Operations.settled), as plain data.

The Events held for a burst go out once its operations have ended and its apps have written a
status out of motion. A write already on its way when an app's operation started carries the
previous operation's settled state: it must not count for the new one.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from tether.controller.operations import Operations


class Events:
    def __init__(self) -> None:
        self.released = 0

    def release(self) -> None:
        self.released += 1


def burst(*active: tuple[str, str]) -> tuple[Operations, Events]:
    events = Events()
    operations = Operations(cast(Any, SimpleNamespace(events=events)))
    operations.active = dict(active)
    operations.unsettled = {name for name, _ in active}
    return operations, events


def settled_status(operation_id: str | None) -> dict[str, Any]:
    operation = {"id": operation_id} if operation_id is not None else {}
    return {
        "sync": {"status": "Synced"},
        "health": {"status": "Healthy"},
        "operationState": {"operation": operation, "phase": "Succeeded"},
    }


def test_a_stale_settled_write_does_not_take_a_running_app_out_of_the_burst() -> None:
    operations, events = burst(("a", "a-2"))
    operations.settled("a", settled_status("a-1"))  # in flight when a-2 started
    operations.settled("a", {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}})  # no operation yet
    assert operations.unsettled == {"a"}
    operations.settled("a", settled_status("a-2"))
    assert operations.unsettled == set()
    assert events.released == 0  # its operation has not ended yet
    operations._ended("a")
    assert events.released == 1


def test_after_its_operation_ended_any_settled_write_counts() -> None:
    operations, events = burst(("a", "a-2"), ("b", "b-7"))
    operations._ended("a")  # ended without a status about a-2 reaching the server
    operations.settled("a", settled_status("a-1"))
    assert operations.unsettled == {"b"}
    operations.settled("b", settled_status("b-7"))
    operations._ended("b")
    assert events.released >= 1 and not operations.unsettled and not operations.active


def test_an_app_that_is_gone_leaves_the_burst_whatever_it_last_wrote() -> None:
    operations, events = burst(("a", "a-2"))
    operations.settled("a")
    operations._ended("a")
    assert operations.unsettled == set() and events.released == 1
