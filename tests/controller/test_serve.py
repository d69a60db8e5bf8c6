"""`tether serve` and `tether install` as a person runs them: separate processes, real HTTP, SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import urllib.request
from pathlib import Path

from tests.cli import tether
from tests.controller.conftest import Serve, application, eventually, webhook_secret
from tests.controller.test_loop import app_status, configmap, synced_healthy
from tests.webhook_deliveries import SECRETS, headers, retarget, secret_data
from tether.cluster import Cluster
from tether.devcluster.cluster import ClusterState
from tether.devcluster.gitserver import GitHttpServer
from tether.devcluster.ports import free_port


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def post(url: str, body: bytes, given: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=given, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def front_processes(pid: int) -> set[int]:
    """The children of ``pid`` started by multiprocessing's spawn (not its resource tracker)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.add(int(child))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def ready_serve(devcluster: ClusterState, namespace: str, tmp_path: Path) -> Serve:
    """`tether serve` on a free port, polling 10 minutes apart, answering /readyz."""
    serve = Serve(
        devcluster.kubeconfig, namespace, tmp_path / "state", port=free_port(), extra=("--poll-interval", "600")
    )
    await serve.start()
    await eventually(lambda: asyncio.to_thread(get, f"{serve.url}/readyz"), lambda r: r[0] == 200, timeout=60)
    return serve


def test_install_is_idempotent(devcluster: ClusterState, crds_installed: None) -> None:
    for _ in range(2):
        done = tether("install", "--kubeconfig", devcluster.kubeconfig, "--namespace", "tether-system")
        assert done.returncode == 0, done.stderr
        assert "applied CustomResourceDefinition applications.tether.dev" in done.stdout
        assert "applied ClusterRoleBinding tether-controller" in done.stdout


async def test_serve_answers_health_readiness_and_metrics_and_stops_on_sigterm(
    devcluster: ClusterState,
    kube: Cluster,
    crds_installed: None,
    namespace: str,
    git_server: GitHttpServer,
    unique_repo_name: str,
    tmp_path: Path,
) -> None:
    # Polls 10 minutes apart: after the first sync, only the webhook can bring the second commit.
    serve = await ready_serve(devcluster, namespace, tmp_path)
    base = serve.url
    try:
        assert (await asyncio.to_thread(get, f"{base}/healthz"))[0] == 200
        repo = git_server.create_repo(unique_repo_name)
        repo.commit("v1", files={"app/a.yaml": configmap("served")})
        await kube.apply(application("served", namespace, repo.url, "app", namespace, syncPolicy={"automated": {}}))
        await eventually(lambda: app_status(kube, namespace, "served"), synced_healthy)
        code, metrics = await eventually(
            lambda: asyncio.to_thread(get, f"{base}/metrics"),
            # once synced, nothing is left to write: no status held to settle, no Event in the backlog
            lambda r: r[0] == 200 and "tether_operations_running 0.0" in r[1] and "tether_writes_pending 0.0" in r[1],
            timeout=15,
        )
        assert "tether_apps 1.0" in metrics and "tether_reconciles_total" in metrics

        # A webhook through the front process: its secret arrives after start, a wrong signature is
        # refused there, and a signed push reaches the controller, which syncs the new commit.
        await webhook_secret(kube, namespace, secret_data())
        v2 = repo.commit("v2", files={"app/a.yaml": configmap("served", "two")})
        body = retarget("github", repo.url, before=None, after=v2, files=["app/a.yaml"])
        hook = f"{base}/api/webhook"
        assert await asyncio.to_thread(post, hook, body, headers("github", body, "not-the-secret")) == 401
        codes = await eventually(
            lambda: asyncio.to_thread(post, hook, body, headers("github", body, SECRETS["github"])),
            lambda code: code == 202,  # 401 until the Secret, made after start, reaches the front process
            timeout=15,
        )
        assert codes == 202
        live = await eventually(
            lambda: kube.get("v1", "ConfigMap", "served", namespace),
            lambda cm: cm is not None and cm["data"]["value"] == "two",
            timeout=20,
        )
        assert live["data"]["value"] == "two"
        _, metrics = await asyncio.to_thread(get, f"{base}/metrics")
        assert "tether_webhook_pushes_total 1.0" in metrics
    finally:
        started = asyncio.get_running_loop().time()
        code = await serve.stop()
    assert code == 0, serve.tail()
    assert asyncio.get_running_loop().time() - started < 30
    assert (await asyncio.to_thread(get, f"{base}/healthz"))[0] == 0  # the port is closed


async def test_a_killed_serve_leaves_no_front_process_holding_its_port(
    devcluster: ClusterState, crds_installed: None, namespace: str, tmp_path: Path
) -> None:
    serve = await ready_serve(devcluster, namespace, tmp_path)
    base = serve.url
    try:
        first = front_processes(serve.pid)
        assert len(first) == 1 and all(alive(pid) for pid in first)
        os.kill(next(iter(first)), signal.SIGKILL)  # a crashed front process is started again
        front = await eventually(
            lambda: asyncio.sleep(0, front_processes(serve.pid) - first), lambda found: len(found) == 1, timeout=20
        )
        await eventually(lambda: asyncio.to_thread(get, f"{base}/healthz"), lambda r: r[0] == 200, timeout=20)
    finally:
        await serve.kill()
    await eventually(lambda: asyncio.sleep(0, [pid for pid in front if alive(pid)]), lambda left: not left, 10)
    assert (await asyncio.to_thread(get, f"{base}/healthz"))[0] == 0  # nothing answers on the port
