"""Fixtures for sync tests: a fresh app name per test (the namespace comes from tests/fixtures/cluster.py)."""

from __future__ import annotations

import secrets

import pytest


@pytest.fixture
def app() -> str:
    return f"app-{secrets.token_hex(3)}"
