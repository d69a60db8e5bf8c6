"""`make demo` works as the README says.

The demo runner end to end against the session devcluster: a real git server, a real `pass`
store and a real `tether serve` process bring the four demo apps to Synced and Healthy; the
printed push command, run by a shell, reaches the cluster through the git server's webhook; the secret never
shows outside the cluster; stopping leaves no process behind. And the hello app alone through
`tether sync` / `tether diff`, as the README's commands do.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cli import tether
from tether.cluster import Cluster
from tether.devcluster.cluster import ClusterState
from tether.devcluster.demo import (
    APPS,
    DB_USER,
    DEMO_SOURCE,
    SECRET_ENTRY,
    Demo,
    DemoConfig,
    DemoError,
    free_listen,
    start_demo,
)

DEMO_APP = DEMO_SOURCE / "apps" / "hello"


def test_demo_app_syncs_healthy_and_then_diffs_clean(devcluster: ClusterState, namespace: str) -> None:
    where = ["--app", "hello", "--dest-namespace", namespace, "--kubeconfig", devcluster.kubeconfig]
    synced = tether("sync", str(DEMO_APP), *where)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "Sync:   Succeeded" in synced.stdout and "Health: Healthy" in synced.stdout
    assert "deleted (HookSucceeded)" in synced.stdout
    compared = tether("diff", str(DEMO_APP), *where)
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert "Synced (3 object(s))" in compared.stdout


def _refused(address: str) -> bool:
    host, _, port = address.rpartition(":")
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, int(port))) != 0


def _processes_naming(text: str) -> list[int]:
    """Pids whose command line mentions ``text`` (the gpg-agent of a GnuPG home, say)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if text.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and needle in p.read_bytes()]


@pytest.fixture
async def demo_namespaces(kube: Cluster) -> AsyncIterator[str]:
    """A unique controller namespace; it and the apps' namespaces (``<it>-<app>``) are deleted afterwards."""
    name = f"t-demo-{secrets.token_hex(3)}"
    try:
        yield name
    finally:
        for ns in [name, *(f"{name}-{app.name}" for app in APPS)]:
            await kube.delete("v1", "Namespace", ns, propagation="Background")


async def test_demo_syncs_four_apps_picks_up_a_push_and_stops_everything(
    devcluster: ClusterState, kube: Cluster, demo_namespaces: str, tmp_path: Path
) -> None:
    config = DemoConfig(
        kubeconfig=devcluster.kubeconfig,
        state_dir=tmp_path / "demo",
        namespace=demo_namespaces,
        app_namespace_prefix=f"{demo_namespaces}-",
        listen=free_listen(None),
    )
    lines: list[str] = []
    demo: Demo = await start_demo(config, say=lines.append)
    stopped = False
    try:
        assert demo.store is not None and demo.git is not None and demo.serve is not None
        serve_pid, gnupg_home, git_address = demo.serve.pid, str(demo.store.gnupg_home), demo.git.base_url[7:]
        secret = demo.store.show(SECRET_ENTRY).splitlines()[0]
        assert len(secret) >= 20

        started = time.monotonic()
        first = await demo.wait_synced(timeout=45, say=lines.append)
        statuses = await demo.app_statuses()
        for app in APPS:
            status = statuses[app.name]
            assert status["sync"]["status"] == "Synced" and status["health"]["status"] == "Healthy", app.name
            assert status["sync"]["revision"] == first
            assert status["operationState"]["phase"] == "Succeeded", app.name
            assert await kube.get("v1", "Namespace", config.app_namespace(app)) is not None
        # each renderer did its part: kustomize's overlay, helm's value file, pass's password
        frontend = await kube.get("apps/v1", "Deployment", "frontend", f"{demo_namespaces}-frontend")
        assert frontend["spec"]["replicas"] == 2 and frontend["metadata"]["labels"]["environment"] == "demo"
        backend = await kube.get("apps/v1", "Deployment", "backend", f"{demo_namespaces}-backend")
        assert backend["spec"]["replicas"] == 2
        assert await demo.live_secret() == secret
        print(f"4 apps Synced and Healthy {time.monotonic() - started:.1f}s after start")

        # the printed summary holds the push command; run it as a user would, in a shell
        summary = demo.summary()
        assert demo.push_command in summary and f"{demo.listen}/metrics" in summary and demo.repo_url in summary
        assert f"get applications.tether.dev -n {demo_namespaces} -o wide" in summary
        before = await demo.greeting()
        pushed = subprocess.run(["bash", "-c", demo.push_command], capture_output=True, text=True, timeout=60)
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        head = demo.head
        assert head != first
        pushed_at = time.monotonic()
        deadline = pushed_at + 10  # through the git server's webhook: polling is a minute apart
        while (greeting := await demo.greeting()) == before:
            assert time.monotonic() < deadline, f"the push did not land within {deadline - pushed_at:.0f}s"
            await asyncio.sleep(0.2)
        assert greeting is not None and greeting.startswith("hello, pushed at ")
        print(f"the push landed {time.monotonic() - pushed_at:.1f}s after it was made")
        assert await demo.wait_synced(timeout=30) == head

        # the printed rotation command gives the database a new password, which reaches its Secret
        assert demo.rotate_command in summary
        rotated = subprocess.run(["bash", "-c", demo.rotate_command], capture_output=True, text=True, timeout=60)
        assert rotated.returncode == 0 and rotated.stdout == "", rotated.stdout + rotated.stderr
        new_secret = demo.store.show(SECRET_ENTRY).splitlines()[0]
        assert new_secret != secret and demo.store.show(SECRET_ENTRY).endswith(f"username: {DB_USER}\n")
        rotated_at = time.monotonic()
        while (live := await demo.live_secret()) != new_secret:
            assert live == secret and time.monotonic() < rotated_at + 20, "the rotated password did not land"
            await asyncio.sleep(0.2)
        print(f"the rotated password landed {time.monotonic() - rotated_at:.1f}s after the pass commit")

        # neither value is anywhere but in the cluster's Secret: not printed, logged, in status or state
        applications = str((await kube.list("tether.dev/v1alpha1", "Application", demo_namespaces))[0])
        for value in (secret, new_secret):
            encoded = base64.b64encode(value.encode()).decode()
            assert value not in summary and value not in "\n".join(lines)
            assert value not in demo.serve_log.read_text()
            assert value not in applications and encoded not in applications
            assert _files_containing(config.state_dir / "controller", value.encode()) == []

        await demo.stop()
        stopped = True
        # nothing the demo started is left: tether serve, its HTTP port, the git server, the gpg-agent
        assert not Path(f"/proc/{serve_pid}").exists()
        assert _refused(demo.listen) and _refused(git_address)
        assert _processes_naming(gnupg_home) == []
        assert not Path(gnupg_home).exists()
        assert not (config.state_dir / "serve.pid").exists()
    finally:
        if not stopped:
            await demo.stop()


async def test_a_second_demo_on_the_same_state_dir_is_refused(tmp_path: Path) -> None:
    config = DemoConfig(kubeconfig="unused", state_dir=tmp_path)
    first, second = Demo(config), Demo(config)
    first._take_lock()
    with pytest.raises(DemoError, match=rf"already running with state in {tmp_path} \(pid {os.getpid()}\)"):
        second._take_lock()
    await first.stop()  # releases the lock
    second._take_lock()
    await second.stop()
