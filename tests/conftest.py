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
