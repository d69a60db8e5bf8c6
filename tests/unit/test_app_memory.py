"""AppMemory.application: one parse per resourceVersion, and the spec kept across status-only changes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tether.controller.compare import spec_digest
from tether.controller.memory import AppMemory
from tether.errors import TetherError


def app_object(rv: str, generation: int = 1, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "project": "default",
        "source": {"repoURL": "https://git.example/deploy.git", "path": "guestbook", "targetRevision": "HEAD"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "guestbook"},
    }
    body.update(spec)
    return {
        "apiVersion": "tether.dev/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": "guestbook",
            "namespace": "tether-system",
            "uid": "4c1d3b1e-0000-4000-8000-000000000001",
            "resourceVersion": rv,
            "generation": generation,
        },
        "spec": body,
    }


def test_the_same_resource_version_is_parsed_once() -> None:
    memory = AppMemory()
    obj = app_object("1")
    assert memory.application(obj) is memory.application(copy.deepcopy(obj))


def test_a_status_write_keeps_the_parsed_spec_and_reads_metadata_and_status_again() -> None:
    memory = AppMemory()
    first = memory.application(app_object("1"))
    later = app_object("2")
    later["metadata"]["annotations"] = {"tether.dev/refresh": "hard"}
    later["status"] = {"sync": {"status": "Synced"}}
    second = memory.application(later)
    assert second.spec is first.spec
    assert second.metadata.resource_version == "2"
    assert second.annotation("refresh") == "hard"
    assert second.status == {"sync": {"status": "Synced"}}
    assert spec_digest(second, memory) == spec_digest(first, memory) == spec_digest(first)


def test_a_new_generation_parses_the_spec_again() -> None:
    memory = AppMemory()
    first = memory.application(app_object("1"))
    digest = spec_digest(first, memory)
    moved = app_object("2", generation=2, destination={"server": "https://kubernetes.default.svc", "namespace": "x"})
    second = memory.application(moved)
    assert second.spec is not first.spec
    assert second.spec.destination.namespace == "x"
    assert spec_digest(second, memory) != digest
    assert spec_digest(second, memory) == spec_digest(second)


def test_another_object_of_the_same_name_is_parsed_again() -> None:
    memory = AppMemory()
    first = memory.application(app_object("1"))
    recreated = app_object("7", destination={"server": "https://kubernetes.default.svc", "namespace": "y"})
    recreated["metadata"]["uid"] = "4c1d3b1e-0000-4000-8000-000000000002"
    assert memory.application(recreated).spec.destination.namespace == "y" != first.spec.destination.namespace


def test_a_bad_status_at_the_same_generation_still_gets_the_full_error() -> None:
    memory = AppMemory()
    memory.application(app_object("1"))
    broken = app_object("2")
    broken["status"] = ["not", "an", "object"]
    with pytest.raises(TetherError, match="status"):
        memory.application(broken)
