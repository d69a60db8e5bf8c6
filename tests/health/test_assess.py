"""Which rule decides an object's health, and that a malformed object never raises."""

from __future__ import annotations

from typing import Any

import pytest

from tether.health import (
    Health,
    HealthStatus,
    LuaChecks,
    assess,
    explain,
    health_ignored,
)


def deployment(**status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "generation": 1},
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1, **status},
    }


def test_explain_names_the_rule_that_decided() -> None:
    assert explain(deployment()).check == "built-in apps/Deployment"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": {"phase": "Succeeded"}}
    assert explain(pod).check == "built-in Pod"
    custom = {
        "apiVersion": "example.com/v1",
        "kind": "Cache",
        "metadata": {"name": "c"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert explain(custom).check == "status conditions"
    assert explain({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}).check == "no health for this kind"


def test_explain_names_the_lua_script() -> None:
    lua = LuaChecks({"apps/Deployment": 'return {status = "Suspended", message = "from lua"}'})
    assessment = explain(deployment(), lua=lua)
    assert assessment.health == Health(HealthStatus.SUSPENDED, "from lua")
    assert assessment.check == "lua apps/Deployment (configuration)"


@pytest.mark.parametrize("prefix", ["tether.dev/", "argocd.argoproj.io/"])
def test_ignore_healthcheck_under_either_prefix_skips_even_lua(prefix: str) -> None:
    obj = deployment()
    obj["metadata"]["annotations"] = {prefix + "ignore-healthcheck": "true"}
    lua = LuaChecks({"apps/Deployment": "while true do end"})
    assert health_ignored(obj)
    assert assess(obj, lua=lua) is None
    assert explain(obj).check == "ignored by the ignore-healthcheck annotation"


def test_pending_deletion_comes_before_lua() -> None:
    obj = deployment()
    obj["metadata"]["deletionTimestamp"] = "2024-05-01T12:00:00Z"
    lua = LuaChecks({"apps/Deployment": 'return {status = "Degraded"}'})
    assert assess(obj, lua=lua) == Health(HealthStatus.PROGRESSING, "Pending deletion")


@pytest.mark.parametrize(
    "obj",
    [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "status": "broken"},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"paused": "yes"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "status": {"containerStatuses": ["nope"]}},
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "x"},
            "status": {"conditions": {"type": "Complete"}},
        },
        {
            "apiVersion": "example.com/v1",
            "kind": "Thing",
            "metadata": {"name": "x"},
            "status": {"observedGeneration": "new"},
        },
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "finalizers": "one", "deletionTimestamp": "now"}},
    ],
    ids=[
        "status-not-object",
        "paused-not-bool",
        "container-status-not-object",
        "conditions-not-list",
        "generation-not-int",
        "finalizers-not-list",
    ],
)
def test_malformed_objects_are_unknown_with_the_field_named(obj: dict[str, Any]) -> None:
    health = assess(obj)
    assert health is not None
    assert health.status is HealthStatus.UNKNOWN
    assert health.message.startswith(f"failed to read {obj['kind']}: .")


def test_objects_are_not_modified() -> None:
    obj = deployment(availableReplicas=0)
    before = repr(obj)
    assess(
        obj, lua=LuaChecks({"apps/Deployment": "obj.status = nil; obj.spec.replicas = 9; return {status = 'Healthy'}"})
    )
    assess(obj)
    assert repr(obj) == before
