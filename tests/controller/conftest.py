"""A controller running in the test's event loop, against the session devcluster, one namespace per test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tether.cluster import Cluster
from tether.controller.controller import Controller
from tether.controller.install import install, installed
from tether.controller.settings import Settings
from tether.devcluster.passstore import PassStore

API = "tether.dev/v1alpha1"


def settings_for(namespace: str, state_dir: Path, pass_store: PassStore, **overrides: Any) -> Settings:
    """A controller's settings for a test: its namespace, a 2 s poll, the test `pass` store."""
    values: dict[str, Any] = {
        "namespace": namespace,
        "poll_interval": 2.0,
        "poll_jitter": 0.5,
        "state_dir": state_dir,
        "password_store": pass_store.store_dir,
        "gnupg_home": pass_store.gnupg_home,
        "pass_poll_interval": 0.5,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
async def crds_installed(kube: Cluster) -> None:
    if not await installed(kube):
        await install(kube, "tether-system")


@pytest.fixture
async def controller(
    kube: Cluster, crds_installed: None, namespace: str, tmp_path: Path, pass_store: PassStore
) -> AsyncIterator[Controller]:
    settings = settings_for(namespace, tmp_path / "state", pass_store, sync_timeout=60.0, max_compares=4)
    c = Controller(settings, kube)
    await c.start()
    try:
        yield c
    finally:
        await c.stop()


def application(name: str, namespace: str, repo_url: str, path: str, dest_ns: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": {"repoURL": repo_url, "path": path, "targetRevision": "HEAD"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": dest_ns},
        "project": "default",
    }
    body.update(spec)
    return {"apiVersion": API, "kind": "Application", "metadata": {"name": name, "namespace": namespace}, "spec": body}


async def eventually(read: Callable[[], Awaitable[Any]], ok: Callable[[Any], bool], timeout: float = 60.0) -> Any:
    """Poll ``read`` until ``ok`` holds; the last value is in the assertion message when it never does."""
    deadline = asyncio.get_running_loop().time() + timeout
    value = None
    while asyncio.get_running_loop().time() < deadline:
        value = await read()
        if ok(value):
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
