"""Every rule, one YAML object per state: each fixture names the health it must get.

A fixture is a live object as ``kubectl get -o yaml`` shows it, carrying the expectation
in annotations (which no check reads):

* ``tests.tether.dev/expected-health``: a HealthStatus value, or ``none`` for no health;
* ``tests.tether.dev/expected-message``: the exact message (optional);
* ``tests.tether.dev/expected-message-contains``: a part of the message (optional).

Fixtures under ``fixtures/lua/`` are assessed with the Lua checks of ``tests/health/lua``;
all others without Lua, so they exercise the built-in rules alone.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tether.health import HealthStatus, LuaChecks, assess
from tether.health.builtin import BUILTIN_CHECKS
from tether.render.manifests import objects_from_yaml
from tether.resource import ResourceKey

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
LUA_DIR = HERE / "lua"
EXPECTED_HEALTH = "tests.tether.dev/expected-health"
EXPECTED_MESSAGE = "tests.tether.dev/expected-message"
EXPECTED_PART = "tests.tether.dev/expected-message-contains"
LUA_CHECKS = LuaChecks(
    directory=LUA_DIR,
    open_libs={"argoproj.io/Rollout", "hostile.example.com/CoroutineLoop", "lua51.example.com/Widget"},
)
ALL_FIXTURES = sorted(FIXTURES.rglob("*.yaml"))


def load_fixture(path: Path) -> dict[str, Any]:
    (obj,) = objects_from_yaml(path.read_text())
    return obj


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda path: str(path.relative_to(FIXTURES)))
def test_fixture_gets_its_expected_health(path: Path) -> None:
    obj = load_fixture(path)
    annotations = obj["metadata"]["annotations"]
    lua = LUA_CHECKS if path.relative_to(FIXTURES).parts[0] == "lua" else None

    started = time.monotonic()
    health = assess(obj, lua=lua)
    assert time.monotonic() - started < 3, "an assessment must never hang"

    expected = annotations[EXPECTED_HEALTH]
    if expected == "none":
        assert health is None
        return
    assert health is not None
    assert health.status == HealthStatus(expected), health.message
    if EXPECTED_MESSAGE in annotations:
        assert health.message == annotations[EXPECTED_MESSAGE]
    if EXPECTED_PART in annotations:
        assert annotations[EXPECTED_PART] in health.message


def test_every_built_in_kind_has_fixtures_for_each_state_it_can_reach() -> None:
    reached: dict[tuple[str, str], set[str]] = {}
    for path in ALL_FIXTURES:
        obj = load_fixture(path)
        key = ResourceKey.of(obj)
        reached.setdefault((key.group, key.kind), set()).add(obj["metadata"]["annotations"][EXPECTED_HEALTH])
    assert set(BUILTIN_CHECKS) <= set(reached)
    assert reached[("apps", "Deployment")] >= {"Healthy", "Progressing", "Degraded", "Suspended", "Unknown"}
    assert reached[("", "Pod")] >= {"Healthy", "Progressing", "Degraded", "Unknown"}
    assert reached[("batch", "Job")] >= {"Healthy", "Progressing", "Degraded", "Suspended"}
    assert reached[("", "PersistentVolumeClaim")] >= {"Healthy", "Progressing", "Degraded"}
