"""Test-session wiring: every module in tests/fixtures/ is a pytest plugin of real-part fixtures."""

from pathlib import Path

_FIXTURES = Path(__file__).parent / "fixtures"

pytest_plugins = sorted(
    f"tests.fixtures.{module.stem}" for module in _FIXTURES.glob("*.py") if module.stem != "__init__"
)
