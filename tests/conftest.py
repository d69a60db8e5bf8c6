"""Test-session wiring: every module in tests/fixtures/ is a pytest plugin of real-part fixtures."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

_FIXTURES = Path(__file__).parent / "fixtures"

pytest_plugins = sorted(
    f"tests.fixtures.{module.stem}" for module in _FIXTURES.glob("*.py") if module.stem != "__init__"
)


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Commands run in-process configure structlog globally; give every test the defaults back."""
    yield
    structlog.reset_defaults()


# The slowest files, slowest first (per-file seconds measured with both workers busy). With
# ``--dist loadfile --no-loadscope-reorder`` (the Makefile's) xdist hands out files in collection
# order, so these go first and the many short files fill in at the end: the two workers finish
# within seconds of each other instead of one waiting a minute for the other's long file. A
# stale list costs only that balance.
SLOW_FILES = (
    "tests/controller/test_kill.py",
    "tests/controller/test_webhooks.py",
    "tests/controller/test_webhook_receiver.py",
    "tests/cluster/test_outage.py",
    "tests/controller/test_operations.py",
    "tests/render/test_malformed_property.py",
    "tests/source/test_git_cache.py",
    "tests/controller/test_faults.py",
    "tests/controller/test_loop.py",
    "tests/sync/test_namespace_prune.py",
    "tests/sync/test_prune.py",
    "tests/controller/test_failed_revision.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest files first (``SLOW_FILES``), the rest in collection order."""
    rank = {path: index for index, path in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))
