"""Faults (issue 9 §4): the API server, the git server, `pass` and bad repositories; nothing is lost or deleted."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import socket
import subprocess
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.controller.conftest import API, application, eventually, running_controller, settings_for
from tests.controller.test_loop import app_status, configmap, synced_healthy
from tests.fixtures.cluster import ApiServer
from tether.cluster import Cluster
from tether.controller import controller as controller_module
from tether.controller.controller import Controller
from tether.controller.install import install
from tether.devcluster.cluster import ClusterState
from tether.devcluster.gitserver import GitHttpServer
from tether.devcluster.passstore import PassStore


def condition(status: dict, kind: str) -> dict | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


async def test_missing_pass_entry_shows_the_error_and_applies_nothing(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    entry = f"ctl/missing-{secrets.token_hex(3)}"
    secret = f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: <pass:{entry}>\n"
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"app/secret.yaml": secret, "app/a.yaml": configmap("beside")})
    await kube.apply(
        application("nosecret", namespace, repo.url, "app", namespace, syncPolicy={"automated": {"prune": True}})
    )
    status = await eventually(
        lambda: app_status(kube, namespace, "nosecret"),
        lambda s: condition(s, "ComparisonError") is not None,
        timeout=30,
    )
    error = condition(status, "ComparisonError")
    assert error is not None and entry in error["message"] and error["reason"] == "SecretMissing"
    await asyncio.sleep(2)
    assert await kube.get("v1", "ConfigMap", "beside", namespace) is None
    assert await kube.get("v1", "Secret", "db", namespace) is None


async def test_a_missing_path_or_an_emptied_directory_deletes_nothing(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"app/a.yaml": configmap("kept"), "other/b.yaml": configmap("kept-too")})
    automated = {"automated": {"prune": True, "selfHeal": True}}
    await kube.apply(application("moved", namespace, repo.url, "app", namespace, syncPolicy=automated))
    await kube.apply(application("emptied", namespace, repo.url, "other", namespace, syncPolicy=automated))
    await eventually(lambda: app_status(kube, namespace, "moved"), synced_healthy)
    await eventually(lambda: app_status(kube, namespace, "emptied"), synced_healthy)
    # the app's path disappears, and the other app's directory is left with no manifests
    repo.commit("gone", files={"app/a.yaml": None, "other/b.yaml": None, "other/README.md": "nothing here\n"})
    moved = await eventually(
        lambda: app_status(kube, namespace, "moved"), lambda s: condition(s, "ComparisonError") is not None, timeout=30
    )
    assert "app" in condition(moved, "ComparisonError")["message"]
    emptied = await eventually(
        lambda: app_status(kube, namespace, "emptied"), lambda s: condition(s, "SyncError") is not None, timeout=30
    )
    assert "wipe out all resources" in condition(emptied, "SyncError")["message"]
    await asyncio.sleep(2)
    assert await kube.get("v1", "ConfigMap", "kept", namespace) is not None
    assert await kube.get("v1", "ConfigMap", "kept-too", namespace) is not None


async def test_a_wrong_git_password_shows_a_redacted_error_and_recovers(
    controller: Controller, kube: Cluster, namespace: str, git_server_auth: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server_auth.create_repo(unique_repo_name)
    repo.commit("v1", files={"app/a.yaml": configmap("private")})
    wrong = f"wrong-{secrets.token_hex(8)}"

    def credentials(password: str) -> dict:
        data = {"url": repo.url, "username": git_server_auth.username, "password": password}
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "repo", "namespace": namespace, "labels": {"tether.dev/secret-type": "repository"}},
            "data": {k: base64.b64encode(str(v).encode()).decode() for k, v in data.items()},
        }

    await kube.apply(credentials(wrong))
    await kube.apply(application("private", namespace, repo.url, "app", namespace, syncPolicy={"automated": {}}))
    status = await eventually(
        lambda: app_status(kube, namespace, "private"),
        lambda s: condition(s, "ComparisonError") is not None,
        timeout=30,
    )
    message = condition(status, "ComparisonError")["message"]
    assert unique_repo_name in message and wrong not in message and wrong not in str(status)
    assert message.startswith("app 'private': spec.source: ")  # the app and the field, as render errors say
    await kube.apply(credentials(str(git_server_auth.password)))
    await eventually(lambda: app_status(kube, namespace, "private"), synced_healthy, timeout=60)
    assert await kube.get("v1", "ConfigMap", "private", namespace) is not None


def push_directly(bare: Path, work: Path, name: str, content: str) -> str:
    """Commit a file straight into the bare repository (no server involved); the new commit id."""
    env = {
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(work.parent),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "PATH": os.environ["PATH"],
    }
    subprocess.run(["git", "clone", "--quiet", str(bare), str(work)], check=True, env=env)
    (work / name).parent.mkdir(parents=True, exist_ok=True)
    (work / name).write_text(content)
    for args in (["add", "-A"], ["commit", "--quiet", "-m", "while down"], ["push", "--quiet", "origin", "HEAD"]):
        subprocess.run(["git", *args], check=True, env=env, cwd=work)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], check=True, env=env, cwd=work, capture_output=True, text=True
    ).stdout.strip()


async def test_a_git_server_that_goes_away_shows_a_comparison_error_and_recovers(
    controller: Controller, kube: Cluster, namespace: str, tmp_path: Path
) -> None:
    server = GitHttpServer(tmp_path / "git").start()
    port = int(server.base_url.rsplit(":", 1)[1])
    try:
        repo = server.create_repo("down")
        repo.commit("v1", files={"app/a.yaml": configmap("before")})
        await kube.apply(application("flaky", namespace, repo.url, "app", namespace, syncPolicy={"automated": {}}))
        await eventually(lambda: app_status(kube, namespace, "flaky"), synced_healthy)
        server.stop()
        status = await eventually(
            lambda: app_status(kube, namespace, "flaky"),
            lambda s: condition(s, "ComparisonError") is not None,
            timeout=30,
        )
        assert "down" in condition(status, "ComparisonError")["message"]
        assert await kube.get("v1", "ConfigMap", "before", namespace) is not None  # nothing deleted meanwhile
        newer = push_directly(repo.bare_path, tmp_path / "work", "app/b.yaml", configmap("after"))
        server = GitHttpServer(tmp_path / "git", port=port).start()
        await eventually(
            lambda: app_status(kube, namespace, "flaky"),
            lambda s: (s.get("sync") or {}).get("revision") == newer and synced_healthy(s),
            timeout=60,
        )
        assert await kube.get("v1", "ConfigMap", "after", namespace) is not None
    finally:
        server.stop()


async def test_a_refresh_tries_a_backed_off_repository_and_its_answer_ends_the_backoff_for_every_app_on_it(
    kube: Cluster,
    crds_installed: None,
    namespace: str,
    pass_store: PassStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a long outage the repository is backed off for minutes (here the 5-minute cap from the
    first failure); a refresh asked for by hand tries it anyway, as Argo CD would, and its success
    ends the backoff: the other apps on it recover at once, not at the next poll or their own retry."""
    monkeypatch.setattr(controller_module, "ERROR_RETRY_FIRST", 600.0)
    server = GitHttpServer(tmp_path / "git").start()
    port = int(server.base_url.rsplit(":", 1)[1])
    names = ("outage-a", "outage-b")
    try:
        repo = server.create_repo("outage")
        repo.commit("v1", files={f"{name}/cm.yaml": configmap(f"{name}-cm") for name in names})
        async with running_controller(kube, namespace, tmp_path, pass_store, poll_interval=3600.0):
            for name in names:
                await kube.apply(application(name, namespace, repo.url, name, namespace, syncPolicy={"automated": {}}))
            for name in names:
                await eventually(lambda name=name: app_status(kube, namespace, name), synced_healthy)
            refresh = {
                "metadata": {"annotations": {"tether.dev/refresh": "hard"}}
            }  # a normal one may use refs listed a moment ago
            server.stop()
            await kube.patch(API, "Application", "outage-a", namespace, refresh)
            for name in names:
                status = await eventually(
                    lambda name=name: app_status(kube, namespace, name),
                    lambda s: condition(s, "ComparisonError") is not None,
                    timeout=30,
                )
                assert "outage" in condition(status, "ComparisonError")["message"]  # type: ignore[index]
            server = GitHttpServer(tmp_path / "git", port=port).start()
            await kube.patch(API, "Application", "outage-a", namespace, refresh)
            for name in names:
                await eventually(
                    lambda name=name: app_status(kube, namespace, name),
                    lambda s: condition(s, "ComparisonError") is None and synced_healthy(s),
                    timeout=20,
                )
    finally:
        server.stop()


@pytest.fixture
async def outage_kube(outage_devcluster: ClusterState) -> AsyncIterator[Cluster]:
    async with await Cluster.connect(outage_devcluster.kubeconfig, timeout=3, retry_for=3) as cluster:
        await install(cluster, "tether-system")
        yield cluster


async def test_the_controller_survives_an_apiserver_outage_and_recovers_by_itself(
    outage_kube: Cluster,
    apiserver: ApiServer,
    git_server: GitHttpServer,
    unique_repo_name: str,
    pass_store: PassStore,
    tmp_path: Path,
) -> None:
    namespace = f"outage-{secrets.token_hex(3)}"
    await outage_kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"app/a.yaml": configmap("a")})
    settings = settings_for(namespace, tmp_path / "state", pass_store, poll_interval=1.0, poll_jitter=0.2)
    controller = Controller(settings, outage_kube)
    await controller.start()
    try:
        await outage_kube.apply(
            application("survivor", namespace, repo.url, "app", namespace, syncPolicy={"automated": {}})
        )
        await eventually(lambda: app_status(outage_kube, namespace, "survivor"), synced_healthy)
        assert controller.ready
        await asyncio.to_thread(apiserver.kill)

        async def ready() -> bool:
            return controller.ready

        await eventually(ready, lambda r: r is False, timeout=30)
        newer = repo.commit("v2", files={"app/b.yaml": configmap("b")})
        await asyncio.sleep(3)  # polls happen meanwhile; the controller must keep running
        assert all(not t.done() for t in controller._tasks)
        await asyncio.to_thread(apiserver.restart)
        await eventually(ready, lambda r: r is True, timeout=60)
        await eventually(
            lambda: app_status(outage_kube, namespace, "survivor"),
            lambda s: (s.get("sync") or {}).get("revision") == newer and synced_healthy(s),
            timeout=90,
        )
        assert await outage_kube.get("v1", "ConfigMap", "b", namespace) is not None
    finally:
        await controller.stop()
        await outage_kube.delete("v1", "Namespace", namespace, propagation="Background")


async def test_helm_and_oci_repositories_are_refused_by_name_before_any_git_call(
    controller: Controller, kube: Cluster, namespace: str, counting_git_server: GitHttpServer
) -> None:
    """An app imported from Argo CD with a Helm repository chart or an OCI source says what Tether cannot read,
    instead of what git makes of a URL that is no git repository, which no poll asks either."""
    listed = len(counting_git_server.requests)
    chart = {"repoURL": f"{counting_git_server.base_url}/charts", "chart": "redis", "targetRevision": "19.0.1"}
    oci = {"repoURL": "oci://registry.example/charts/redis", "path": ".", "targetRevision": "19.0.1"}
    await kube.apply(application("charted", namespace, "unused", ".", namespace, source=chart))
    await kube.apply(application("oci", namespace, "unused", ".", namespace, sources=[oci]))
    charted = await eventually(
        lambda: app_status(kube, namespace, "charted"), lambda s: condition(s, "ComparisonError") is not None
    )
    assert condition(charted, "ComparisonError")["message"] == (
        "app 'charted': spec.source.chart: Helm repository charts are not supported: vendor the chart into git"
    )
    refused = await eventually(
        lambda: app_status(kube, namespace, "oci"), lambda s: condition(s, "ComparisonError") is not None
    )
    assert condition(refused, "ComparisonError")["message"].startswith(
        "app 'oci': spec.sources[0].repoURL: OCI repositories are not supported"
    )
    await asyncio.sleep(4)  # two poll intervals: neither is listed as a git repository, nor compared with git
    assert len(counting_git_server.requests) == listed


class SilentGitServer:
    """Takes connections and never answers them (a git server that hangs), counting them."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}/hangs.git"
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.held.append(self.socket.accept()[0])

    def close(self) -> None:
        self.socket.close()
        for held in self.held:
            held.close()


async def test_a_git_server_that_hangs_is_asked_once_for_all_its_apps_not_once_per_app(
    kube: Cluster, crds_installed: None, namespace: str, pass_store: PassStore, tmp_path: Path
) -> None:
    """A comparison that finds the repository unreachable backs the repository off for every app on it,
    as a failed poll does: the other apps show the error at once, without each waiting for a git timeout
    (60 s) on a worker of their own."""
    server = SilentGitServer()
    try:
        async with running_controller(
            kube, namespace, tmp_path, pass_store, max_compares=2, poll_interval=3600.0
        ) as controller:
            controller.git.timeout = 3.0  # git's own 60 s makes the same point, slower
            names = [f"hung-{i}" for i in range(8)]
            for name in names:
                await kube.apply(application(name, namespace, server.url, "app", namespace))
            for name in names:
                status = await eventually(
                    lambda name=name: app_status(kube, namespace, name),
                    lambda s: any(c.get("type") == "ComparisonError" for c in s.get("conditions") or []),
                    timeout=60,
                )
                message = next(c["message"] for c in status["conditions"] if c["type"] == "ComparisonError")
                assert "hangs" in message, message
            assert len(server.held) == 1, f"{len(server.held)} git connections for one unreachable repository"
    finally:
        server.close()
