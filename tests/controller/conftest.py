"""A controller running in the test's event loop, against the session devcluster, one namespace per test."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.cli import TETHER
from tests.webhook_deliveries import headers
from tether.cluster import Cluster
from tether.controller.controller import Controller
from tether.controller.install import install, installed
from tether.controller.settings import Settings
from tether.devcluster.passstore import PassStore
from tether.devcluster.ports import free_port
from tether.server.app import create_app
from tether.server.front import create_front_app
from tether.server.protocol import with_header_timeout
from tether.server.webhook.receiver import ReceiverLimits

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


@contextlib.asynccontextmanager
async def running_controller(
    kube: Cluster, namespace: str, tmp_path: Path, pass_store: PassStore, **overrides: Any
) -> AsyncIterator[Controller]:
    """A controller with the test's settings (``settings_for``), started, and stopped afterwards."""
    c = Controller(settings_for(namespace, tmp_path / "state", pass_store, **overrides), kube)
    await c.start()
    try:
        yield c
    finally:
        await c.stop()


@pytest.fixture
async def controller(
    kube: Cluster, crds_installed: None, namespace: str, tmp_path: Path, pass_store: PassStore
) -> AsyncIterator[Controller]:
    async with running_controller(kube, namespace, tmp_path, pass_store, sync_timeout=60.0, max_compares=4) as c:
        yield c


def application(name: str, namespace: str, repo_url: str, path: str, dest_ns: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": {"repoURL": repo_url, "path": path, "targetRevision": "HEAD"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": dest_ns},
        "project": "default",
    }
    body.update(spec)
    return {"apiVersion": API, "kind": "Application", "metadata": {"name": name, "namespace": namespace}, "spec": body}


def project(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    """A Project object in the controller's namespace (Argo CD's AppProject spec)."""
    return {"apiVersion": API, "kind": "Project", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


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


class Receiver:
    """`tether serve`'s front app (same receiver, same protocol class) in this process, for an in-process
    controller: deliveries go straight to its webhook worker, every other path to its app. The front
    process itself is tested through `tether serve` (tests/controller/test_serve.py)."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        synced = controller.webhook_secret.synced
        config = uvicorn.Config(
            create_front_app(
                ReceiverLimits.from_settings(controller.settings),
                lambda: controller.webhook_secrets() if synced.is_set() else None,
                controller.webhooks.offer,
                create_app(controller),
            ),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            http=with_header_timeout(controller.settings.webhook_read_timeout),
        )
        self.server = uvicorn.Server(config)
        self.server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Receiver:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)

    async def deliver(self, provider: str, body: bytes, secret: str | None) -> httpx.Response:
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.post(f"{self.url}/api/webhook", content=body, headers=headers(provider, body, secret))


async def webhook_secret(kube: Cluster, namespace: str, data: dict[str, str]) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "tether-webhook", "namespace": namespace},
        "data": data,
    }
    await kube.apply(secret)


class Serve:
    """`tether serve` as a separate process that a test can start, kill, start again and stop.

    Its output goes to ``serve.log`` beside ``state``; ``port`` 0 lets it pick a free one (no HTTP then).
    """

    def __init__(self, kubeconfig: str, namespace: str, state: Path, *, port: int = 0, extra: Sequence[str] = ()):
        self.url = f"http://127.0.0.1:{port}"
        self.args = [
            "serve",
            *("--kubeconfig", kubeconfig, "--namespace", namespace, "--state-dir", str(state)),
            *("--listen", f"127.0.0.1:{port}", *extra),
        ]
        self.process: asyncio.subprocess.Process | None = None
        self._log_from = 0
        self.log = state.parent / "serve.log"

    async def start(self) -> None:
        handle = self.log.open("ab")
        self._log_from = handle.tell()
        self.process = await asyncio.create_subprocess_exec(*TETHER, *self.args, stdout=handle, stderr=handle)
        handle.close()

    async def started(self, timeout: float = 60) -> None:
        """Until this start has announced itself (its signal handlers are in place) or has exited."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while self.process.returncode is None and time.monotonic() < deadline:
            with self.log.open("rb") as handle:
                handle.seek(self._log_from)
                if b"tether serve: watching namespace" in handle.read():
                    return
            await asyncio.sleep(0.1)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> int:
        """SIGTERM (unless it has exited) and its exit status.

        The SIGTERM waits for the start to finish: before its handlers are in place a signal ends
        the process the default way (exit status -15), which is not the graceful stop under test.
        """
        assert self.process is not None
        await self.started()
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), timeout=35)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture
async def unpolled(
    kube: Cluster, crds_installed: None, namespace: str, tmp_path: Path, pass_store: PassStore
) -> AsyncIterator[Controller]:
    """A controller whose poller never fires within a test: a test that counts diffs polls by calling ``poll()``."""
    controller = Controller(settings_for(namespace, tmp_path / "state", pass_store, poll_interval=3600.0), kube)
    await controller.start()
    try:
        yield controller
    finally:
        await controller.stop()
