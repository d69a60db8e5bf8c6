"""`tether serve` and `tether install` as a person runs them: separate processes, real HTTP, SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import socket
import urllib.request
from pathlib import Path

from tests.cli import TETHER, tether
from tests.controller.conftest import application, eventually
from tests.controller.test_loop import app_status, configmap, synced_healthy
from tether.cluster import Cluster
from tether.devcluster.cluster import ClusterState
from tether.devcluster.gitserver import GitHttpServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


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
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        *TETHER,
        "serve",
        "--kubeconfig",
        devcluster.kubeconfig,
        "--namespace",
        namespace,
        "--listen",
        f"127.0.0.1:{port}",
        "--poll-interval",
        "2",
        "--state-dir",
        str(tmp_path / "state"),
        stdout=log,
        stderr=log,
    )
    try:
        await eventually(lambda: asyncio.to_thread(get, f"{base}/readyz"), lambda r: r[0] == 200, timeout=60)
        assert (await asyncio.to_thread(get, f"{base}/healthz"))[0] == 200
        repo = git_server.create_repo(unique_repo_name)
        repo.commit("v1", files={"app/a.yaml": configmap("served")})
        await kube.apply(application("served", namespace, repo.url, "app", namespace, syncPolicy={"automated": {}}))
        await eventually(lambda: app_status(kube, namespace, "served"), synced_healthy)
        code, metrics = await eventually(
            lambda: asyncio.to_thread(get, f"{base}/metrics"),
            lambda r: r[0] == 200 and "tether_operations_running 0.0" in r[1],
            timeout=15,
        )
        assert "tether_apps 1.0" in metrics and "tether_reconciles_total" in metrics
    finally:
        started = asyncio.get_running_loop().time()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=35)
        log.close()
    assert code == 0, (tmp_path / "serve.log").read_text()[-2000:]
    assert asyncio.get_running_loop().time() - started < 30
    assert (await asyncio.to_thread(get, f"{base}/healthz"))[0] == 0  # the port is closed
