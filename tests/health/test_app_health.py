"""App health over live copies found by a caller-given lookup, on plain data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.health import HealthStatus, app_health

DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "generation": 1}}
CONFIG = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}


def live_deploy(ready: int) -> dict[str, Any]:
    return {
        **DEPLOY,
        "spec": {"replicas": 2},
        "status": {
            "observedGeneration": 1,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": ready,
            "availableReplicas": ready,
        },
    }


def lookup(live: dict[str, dict[str, Any]]):
    async def live_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return live.get(obj["metadata"]["name"])

    return live_of


async def test_all_live_and_ready_is_healthy() -> None:
    result = await app_health([DEPLOY, CONFIG], lookup({"web": live_deploy(2), "cfg": CONFIG}))
    assert result.status is HealthStatus.HEALTHY and result.problems == ()


async def test_a_rolling_deployment_makes_the_app_progressing_and_says_why() -> None:
    result = await app_health([DEPLOY, CONFIG], lookup({"web": live_deploy(1), "cfg": CONFIG}))
    assert result.status is HealthStatus.PROGRESSING
    assert len(result.problems) == 1 and result.problems[0].startswith("Deployment web: Progressing")


async def test_an_absent_object_is_missing_and_outranks_progressing() -> None:
    result = await app_health([DEPLOY, CONFIG], lookup({"web": live_deploy(1)}))
    assert result.status is HealthStatus.MISSING
    assert "ConfigMap cfg: Missing — not found" in result.problems
