"""A render never leaves the repository: no git clone, no HTTP fetch, no helm pull, no write.

Each remote form kustomize accepts is tried against real listeners on loopback — a git
smart-HTTP server and a plain TCP listener — and each must receive zero requests. The
first line is the reference check (the render is refused before kustomize starts, with an
error naming the app, the kustomization file and the field); the second is the tool
environment, exercised here by running the pinned kustomize directly with it.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.render.helpers import manifest, render_local, write_tree
from tether.devcluster.gitserver import GitHttpServer, LocalRepo
from tether.model.source import ApplicationSource
from tether.pipeline import desired_state
from tether.proc import run
from tether.render import RenderError
from tether.render.kustomize import kustomize_argv
from tether.render.kustomize_refs import remote_reason
from tether.render.toolenv import CLOSED_PROXY, private_tool_env
from tether.source import GitCache

REFUSED = "remote references are refused"


class ConnectionCounter:
    """A loopback TCP listener that counts connections and answers each with an HTTP 404."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self.port: int = self._socket.getsockname()[1]
        self._lock = threading.Lock()
        self._count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def connections(self) -> int:
        with self._lock:
            return self._count

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            with self._lock:
                self._count += 1
            with connection:
                connection.settimeout(1)
                try:
                    connection.recv(65536)
                    connection.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()


@pytest.fixture
def listener() -> Iterator[ConnectionCounter]:
    counter = ConnectionCounter()
    yield counter
    counter.close()


@pytest.fixture
def other_repo(counting_git_server: GitHttpServer) -> LocalRepo:
    """Another app's repository on the loopback git server; no render may read it."""
    repo = counting_git_server.create_repo("other")
    repo.commit("other app", {"base/kustomization.yaml": "resources: [cm.yaml]\n", "base/cm.yaml": STOLEN})
    return repo


STOLEN = manifest("ConfigMap", "stolen", data={"secret": "other-app"})
OWN = manifest("ConfigMap", "own")


def kustomize_app(root: Path, kustomization: str, **files: str) -> Path:
    """``root/app`` holding ``kustomization`` and a ConfigMap of its own."""
    return write_tree(root, {"app/kustomization.yaml": kustomization, "app/cm.yaml": OWN, **files})


def remote_forms(server: GitHttpServer, repo: LocalRepo, port: int) -> dict[str, str]:
    """Every way of naming a remote base kustomize accepts (and a few it may accept one day)."""
    url = server.url_for("other")
    host = f"127.0.0.1:{port}"
    return {
        "git::file bare repo": f"git::file://{repo.bare_path}//base",
        "file:// bare repo": f"file://{repo.bare_path}//base",
        "git::http to the git server": f"git::{url}//base",
        "http to the git server": f"{url}//base?ref=main",
        "git::http with ?ref": f"git::{url}//base?ref=main",
        "git::ssh": f"git::ssh://git@{host}/other.git//base",
        "ssh://": f"ssh://git@{host}/other.git//base",
        "scp-like user@host:path": f"git@127.0.0.1:org/other.git//base?ref={port}",
        "user@host/path": "tether@127.0.0.1/org/other//base",
        "scp-like host:path": "127.0.0.1:org/other.git",
        "gh:": "gh:org/other//base",
        "github.com/": "github.com/org/other/base?ref=v1",
        "github.com:": "GitHub.com:org/other.git",
        "gitlab.com/": "gitlab.com/org/other/base",
        "https file": f"https://{host}/other/cm.yaml",
        "http file": f"http://{host}/other/cm.yaml",
        "HTTP upper case": f"HTTP://{host}/other/cm.yaml",
        "oci://": f"oci://{host}/other/base:latest",
        "local-looking ?ref=": "base?ref=main",
        "local-looking //subdir?version=": "other//base?version=v1",
    }


async def test_every_remote_resource_form_is_refused_and_nothing_is_contacted(
    tmp_path: Path, counting_git_server: GitHttpServer, other_repo: LocalRepo, listener: ConnectionCounter
) -> None:
    before = len(counting_git_server.requests)  # creating the repository pushed to it
    for label, ref in remote_forms(counting_git_server, other_repo, listener.port).items():
        root = kustomize_app(tmp_path / label.replace(" ", "-").replace("/", "_"), f"resources:\n- cm.yaml\n- {ref}\n")
        with pytest.raises(RenderError) as caught:
            await render_local(root, "app")
        message = str(caught.value)
        assert message.startswith("app 'app': app/kustomization.yaml resources[1]: "), (label, message)
        assert REFUSED in message, (label, message)
    assert counting_git_server.requests[before:] == []
    assert listener.connections == 0


@pytest.mark.parametrize(
    ("kustomization", "field"),
    [
        ("bases:\n- REF\n", "bases[0]"),
        ("components:\n- REF\n", "components[0]"),
        ("crds:\n- REF\n", "crds[0]"),
        ("configurations:\n- REF\n", "configurations[0]"),
        ("patches:\n- path: REF\n", "patches[0].path"),
        ("patchesStrategicMerge:\n- REF\n", "patchesStrategicMerge[0]"),
        ("patchesJson6902:\n- path: REF\n  target: {kind: ConfigMap, name: own}\n", "patchesJson6902[0].path"),
        ("replacements:\n- path: REF\n", "replacements[0].path"),
        ("configMapGenerator:\n- name: c\n  files: [key=REF]\n", "configMapGenerator[0].files[0]"),
        ("configMapGenerator:\n- name: c\n  files: [REF]\n", "configMapGenerator[0].files[0]"),
        ("configMapGenerator:\n- name: c\n  envs: [REF]\n", "configMapGenerator[0].envs[0]"),
        ("secretGenerator:\n- name: s\n  env: REF\n", "secretGenerator[0].env"),
        ("openapi:\n  path: REF\n", "openapi.path"),
        ("generators:\n- REF\n", "generators[0]"),
        ("transformers:\n- REF\n", "transformers[0]"),
        ("validators:\n- REF\n", "validators[0]"),
        ("helmCharts:\n- name: demo\n  valuesFile: REF\n", "helmCharts[0].valuesFile"),
        ("helmCharts:\n- name: demo\n  additionalValuesFiles: [REF]\n", "helmCharts[0].additionalValuesFiles[0]"),
        ("helmGlobals:\n  chartHome: REF\n", "helmGlobals.chartHome"),
    ],
)
@pytest.mark.parametrize("form", ["http", "git"])
async def test_remote_references_are_refused_in_every_field(
    tmp_path: Path, listener: ConnectionCounter, kustomization: str, field: str, form: str
) -> None:
    ref = {
        "http": f"http://127.0.0.1:{listener.port}/x.yaml",
        "git": f"git::http://127.0.0.1:{listener.port}/org/repo.git",
    }[form]
    root = kustomize_app(
        tmp_path, "resources: [cm.yaml]\n" + kustomization.replace("REF", ref), **{"app/charts/demo/Chart.yaml": ""}
    )
    with pytest.raises(RenderError, match=rf"^app 'app': app/kustomization.yaml {_escaped(field)}: .*{REFUSED}"):
        await render_local(root, "app")
    assert listener.connections == 0


def _escaped(field: str) -> str:
    return field.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")


async def test_a_base_elsewhere_in_the_repository_is_checked_too(
    tmp_path: Path, counting_git_server: GitHttpServer, other_repo: LocalRepo
) -> None:
    """The remote reference sits in a base the app loads, not in the app's own kustomization."""
    root = kustomize_app(
        tmp_path,
        "resources: [cm.yaml, ../base]\n",
        **{"base/kustomization.yaml": f"resources:\n- git::{counting_git_server.url_for('other')}//base\n"},
    )
    before = len(counting_git_server.requests)
    with pytest.raises(RenderError, match=rf"app 'app': base/kustomization.yaml resources\[0\]: .*{REFUSED}"):
        await render_local(root, "app")
    assert counting_git_server.requests[before:] == []


def source(url: str, path: str) -> ApplicationSource:
    return ApplicationSource.model_validate({"repoURL": url, "path": path, "targetRevision": "main"})


async def test_from_git_another_apps_repository_in_tethers_own_cache_stays_out_of_reach(
    tmp_path: Path, counting_git_server: GitHttpServer, other_repo: LocalRepo
) -> None:
    """Tether's git cache holds every app's repository: a kustomization must not read another one."""
    git = GitCache(tmp_path / "git")
    other = await desired_state("other", source(other_repo.url, "base"), git=git, cache=None, secrets_backend=None)
    assert [o["metadata"]["name"] for o in other.objects] == ["stolen"]
    cached = git.repository(other_repo.url).path
    assert cached.is_dir()

    attacker = counting_git_server.create_repo("attacker")
    sha = other.revision
    refs = [f"git::file://{cached}//base?ref={sha}", f"file://{cached}//base?ref={sha}", f"git::{other_repo.url}//base"]
    attacker.commit("reach", {f"app{i}/kustomization.yaml": f"resources:\n- {ref}\n" for i, ref in enumerate(refs)})
    before = len(counting_git_server.requests)
    for index in range(len(refs)):
        with pytest.raises(RenderError, match=rf"app{index}/kustomization.yaml resources\[0\]: .*{REFUSED}"):
            await desired_state(
                "attacker", source(attacker.url, f"app{index}"), git=git, cache=None, secrets_backend=None
            )
    requested = [path for _, path in counting_git_server.requests[before:]]
    assert requested and all(path.startswith("/attacker.git/") for path in requested), requested


def test_remote_reason_leaves_local_paths_alone() -> None:
    for local in (
        "base",
        "../base",
        "./overlays/prod",
        "cm.yaml",
        "a//b",
        "dir.with.dots/x",
        "git/base",
        "ghost/x",
        "app@v2.yaml",
    ):
        assert remote_reason(local) is None, local
    for remote in ("git::../x", "gh:a/b", "oci://r/x", "me@host/a/b", "host:a/b", "github.com/a/b", "x?ref=1"):
        assert remote_reason(remote) is not None, remote


# --- helm charts --------------------------------------------------------------------------------


def chart_files(prefix: str, version: str = "1.2.3") -> dict[str, str]:
    return {
        f"{prefix}/Chart.yaml": f"apiVersion: v2\nname: demo\nversion: {version}\n",
        f"{prefix}/values.yaml": "v: vendored\n",
        f"{prefix}/templates/cm.yaml": (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: chart\ndata:\n  v: {{ .Values.v | quote }}\n"
        ),
    }


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry below ``root`` with its size, mode and modification time."""
    entries: dict[str, tuple[int, int, int]] = {}
    for current, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            info = os.lstat(os.path.join(current, name))
            entries[os.path.relpath(os.path.join(current, name), root)] = (info.st_size, info.st_mode, info.st_mtime_ns)
    return entries


@pytest.mark.parametrize("repo", ["http", "oci"])
async def test_a_chart_that_would_be_pulled_is_refused_and_nothing_written(
    tmp_path: Path, listener: ConnectionCounter, repo: str
) -> None:
    url = {"http": f"http://127.0.0.1:{listener.port}/charts", "oci": f"oci://127.0.0.1:{listener.port}/charts"}[repo]
    root = kustomize_app(tmp_path, f"helmCharts:\n- name: demo\n  repo: {url}\n  version: 1.2.3\n")
    before = snapshot(root)
    with pytest.raises(
        RenderError,
        match=r"^app 'app': app/kustomization.yaml helmCharts\[0\]: chart 'demo' 1.2.3 from .* is not vendored at "
        r"'charts/demo-1.2.3/demo'; Tether never downloads charts",
    ):
        await render_local(root, "app")
    assert listener.connections == 0
    assert snapshot(root) == before


async def test_a_chart_vendored_in_the_wrong_place_for_its_version_is_refused(
    tmp_path: Path, listener: ConnectionCounter
) -> None:
    """With repo and version kustomize looks in charts/<name>-<version>/<name>: charts/<name> would be pulled over."""
    root = kustomize_app(
        tmp_path,
        f"helmCharts:\n- name: demo\n  repo: http://127.0.0.1:{listener.port}/charts\n  version: 1.2.3\n",
        **chart_files("app/charts/demo"),
    )
    with pytest.raises(RenderError, match=r"helmCharts\[0\]: chart 'demo' 1.2.3 .* not vendored"):
        await render_local(root, "app")
    assert listener.connections == 0


async def test_a_vendored_chart_at_another_version_is_refused(tmp_path: Path, listener: ConnectionCounter) -> None:
    root = kustomize_app(
        tmp_path,
        f"helmCharts:\n- name: demo\n  repo: http://127.0.0.1:{listener.port}/charts\n  version: 1.2.3\n",
        **chart_files("app/charts/demo-1.2.3/demo", version="1.0.0"),
    )
    with pytest.raises(
        RenderError,
        match=r"helmCharts\[0\]: chart vendored at 'charts/demo-1.2.3/demo' is version '1.0.0', not '1.2.3'",
    ):
        await render_local(root, "app")
    assert listener.connections == 0


@pytest.mark.parametrize(
    ("entry", "vendored"),
    [
        ("name: demo\n  repo: REPO\n  version: 1.2.3", "app/charts/demo-1.2.3/demo"),
        ("name: demo\n  repo: REPO", "app/charts/demo"),
        ("name: demo\n  version: 1.2.3", "app/charts/demo"),
    ],
)
async def test_a_vendored_chart_renders_offline_and_leaves_the_checkout_untouched(
    tmp_path: Path, listener: ConnectionCounter, entry: str, vendored: str
) -> None:
    entry = entry.replace("REPO", f"oci://127.0.0.1:{listener.port}/charts")
    root = kustomize_app(tmp_path, f"resources: [cm.yaml]\nhelmCharts:\n- {entry}\n", **chart_files(vendored))
    before = snapshot(root)
    rendered = await render_local(root, "app")
    assert sorted(o["metadata"]["name"] for o in rendered.objects) == ["chart", "own"]
    assert listener.connections == 0
    assert snapshot(root) == before


async def test_legacy_helm_chart_inflation_generator_is_checked_too(
    tmp_path: Path, listener: ConnectionCounter
) -> None:
    root = kustomize_app(
        tmp_path,
        "helmChartInflationGenerator:\n"
        f"- chartName: demo\n  chartRepoUrl: http://127.0.0.1:{listener.port}/charts\n  chartVersion: 1.2.3\n",
    )
    with pytest.raises(RenderError, match=r"helmChartInflationGenerator\[0\]: chart 'demo' 1.2.3 .* not vendored"):
        await render_local(root, "app")
    assert listener.connections == 0


@pytest.mark.parametrize("inline", [True, False])
async def test_a_helm_generator_config_with_a_repo_is_refused(
    tmp_path: Path, listener: ConnectionCounter, inline: bool
) -> None:
    config = (
        "apiVersion: builtin\nkind: HelmChartInflationGenerator\nmetadata:\n  name: pull\n"
        f"name: demo\nrepo: http://127.0.0.1:{listener.port}/charts\nversion: 1.2.3\n"
    )
    if inline:
        root = kustomize_app(tmp_path, "generators:\n- |\n" + "".join(f"  {line}\n" for line in config.splitlines()))
    else:
        root = kustomize_app(tmp_path, "generators: [helm.yaml]\n", **{"app/helm.yaml": config})
    with pytest.raises(RenderError, match=r"generators\[0\] document 1: chart 'demo' 1.2.3 from .* is not vendored"):
        await render_local(root, "app")
    assert listener.connections == 0


async def test_helm_config_home_is_refused(tmp_path: Path) -> None:
    root = kustomize_app(tmp_path, "helmGlobals:\n  configHome: helm-home\n")
    with pytest.raises(RenderError, match=r"helmGlobals.configHome: is not supported"):
        await render_local(root, "app")


async def test_the_helm_guard_stops_a_pull_the_reference_checks_cannot_see(
    tmp_path: Path, listener: ConnectionCounter
) -> None:
    """A generator *directory* builds its generator configs: only kustomize sees them, and helm pull is refused."""
    config = (
        "apiVersion: builtin\nkind: HelmChartInflationGenerator\nmetadata:\n  name: pull\n"
        f"name: demo\nrepo: http://127.0.0.1:{listener.port}/charts\nversion: 1.2.3\n"
    )
    root = kustomize_app(
        tmp_path,
        "generators: [gen]\n",
        **{"app/gen/kustomization.yaml": "resources: [helm.yaml]\n", "app/gen/helm.yaml": config},
    )
    before = snapshot(root)
    with pytest.raises(RenderError, match=r"helm pull refused: Tether renders never download charts"):
        await render_local(root, "app")
    assert listener.connections == 0
    assert snapshot(root) == before


# --- the tool environment alone (reference checks bypassed) ----------------------------------------


async def kustomize_offline(directory: Path) -> tuple[int, str]:
    """Run the pinned kustomize on ``directory`` exactly as a render does, but without Tether's checks."""
    with private_tool_env() as (env, scratch):
        done = await run(kustomize_argv(directory, scratch), env=env, cwd=scratch, timeout=60, check=False)
    return done.returncode, done.stderr.decode("utf-8", "replace")


@pytest.mark.parametrize("scheme", ["git::http", "git::file", "file"])
async def test_git_refuses_every_transport_in_the_tool_environment(
    tmp_path: Path, counting_git_server: GitHttpServer, other_repo: LocalRepo, scheme: str
) -> None:
    ref = {
        "git::http": f"git::{other_repo.url}//base",
        "git::file": f"git::file://{other_repo.bare_path}//base",
        "file": f"file://{other_repo.bare_path}//base",
    }[scheme]
    root = kustomize_app(tmp_path, f"resources:\n- {ref}\n")
    before = len(counting_git_server.requests)
    code, stderr = await kustomize_offline(root / "app")
    assert code != 0 and "not allowed" in stderr, stderr
    assert counting_git_server.requests[before:] == []


async def test_http_goes_to_a_closed_proxy_in_the_tool_environment(tmp_path: Path) -> None:
    """A host that is not loopback is never looked up or contacted: every client is sent to a closed port."""
    root = kustomize_app(tmp_path, "resources:\n- http://tether-probe.invalid/cm.yaml\n")
    code, stderr = await kustomize_offline(root / "app")
    assert code != 0 and "proxyconnect" in stderr and "127.0.0.1:1" in stderr, stderr


def test_the_proxy_port_refuses_at_once() -> None:
    host, port = CLOSED_PROXY.removeprefix("http://").split(":")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=2)


async def test_helm_itself_cannot_reach_a_repository(tmp_path: Path, listener: ConnectionCounter) -> None:
    """helm template of a chart whose dependency names a repository does not download it."""
    write_tree(
        tmp_path,
        {
            **chart_files("chart"),
            "chart/Chart.yaml": "apiVersion: v2\nname: demo\nversion: 1.2.3\ndependencies:\n"
            f"- name: dep\n  version: 1.0.0\n  repository: http://127.0.0.1:{listener.port}/charts\n",
        },
    )
    with pytest.raises(RenderError, match="dependencies not vendored"):
        await render_local(tmp_path, "chart")
    assert listener.connections == 0
