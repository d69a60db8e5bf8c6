"""Source → Render (cached) → Secrets through a real git server and a real pass store."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.render.helpers import given, manifest
from tether.capabilities import Capabilities
from tether.errors import TetherError
from tether.model.source import ApplicationSource, SourceType
from tether.pipeline import desired_state, is_local_source
from tether.render.cache import RenderCache
from tether.secrets import PassBackend
from tether.source import Credentials, GitCache, GitError


class CountingGitCache(GitCache):
    """A GitCache that counts checkouts, to show cache hits never check out."""

    checkouts = 0

    def checkout(self, url: str, sha: str, credentials: Credentials | None = None) -> AbstractAsyncContextManager[Path]:
        inner = super().checkout(url, sha, credentials)

        @asynccontextmanager
        async def counted() -> AsyncIterator[Path]:
            self.checkouts += 1
            async with inner as tree:
                yield tree

        return counted()


APPS_REPO = {
    "README.md": "two apps\n",
    "app-a/cm.yaml": manifest("ConfigMap", "a", data={"v": "1"}),
    "app-b/kustomization.yaml": "resources:\n- ../base-b\nnamePrefix: b-\n",
    "base-b/kustomization.yaml": "resources:\n- cm.yaml\n",
    "base-b/cm.yaml": manifest("ConfigMap", "base", data={"v": "1"}),
}


def source(url: str, path: str) -> ApplicationSource:
    return ApplicationSource.model_validate({"repoURL": url, "path": path, "targetRevision": "main"})


async def test_a_commit_that_does_not_touch_an_app_does_not_render_it(git_server: Any, tmp_path: Path) -> None:
    repo = git_server.create_repo(f"counters-{uuid.uuid4().hex[:8]}")
    repo.commit("two apps", APPS_REPO)
    git, cache = CountingGitCache(tmp_path / "git"), RenderCache(tmp_path / "render")

    async def both() -> dict[str, Any]:
        return {
            app: await desired_state(app, source(repo.url, app), git=git, cache=cache, secrets_backend=None)
            for app in ("app-a", "app-b")
        }

    first = await both()
    assert (cache.stats.renders, cache.stats.hits) == (2, 0)
    assert first["app-b"].inputs == ("app-b", "base-b")

    touched_a = repo.commit("change A", {"app-a/cm.yaml": manifest("ConfigMap", "a", data={"v": "2"})})
    second = await both()
    assert second["app-a"].revision == second["app-b"].revision == touched_a
    assert not second["app-a"].cache_hit and second["app-a"].objects[0]["data"] == {"v": "2"}
    assert second["app-b"].cache_hit
    assert (cache.stats.renders, cache.stats.hits) == (3, 1)

    repo.commit("change B only", {"base-b/cm.yaml": manifest("ConfigMap", "base", data={"v": "2"})})
    third = await both()
    assert third["app-a"].cache_hit and not third["app-b"].cache_hit  # B's base is elsewhere in the repo
    assert third["app-b"].objects[0]["data"] == {"v": "2"}
    assert (cache.stats.renders, cache.stats.hits) == (4, 2)

    checkouts = git.checkouts
    repo.commit("docs only", {"README.md": "still two apps\n"})
    fourth = await both()
    assert all(state.cache_hit for state in fourth.values())
    assert (cache.stats.renders, cache.stats.hits, git.checkouts) == (4, 4, checkouts)  # no checkout at all

    restarted = RenderCache(tmp_path / "render")  # a new process over the same cache directory
    state = await desired_state("app-b", source(repo.url, "app-b"), git=git, cache=restarted, secrets_backend=None)
    assert state.cache_hit and (restarted.stats.renders, git.checkouts) == (0, checkouts)


async def test_a_helm_value_file_elsewhere_in_the_repo_is_a_cache_input(git_server: Any, tmp_path: Path) -> None:
    repo = git_server.create_repo(f"helm-inputs-{uuid.uuid4().hex[:8]}")
    repo.commit(
        "chart with shared values",
        {
            "chart/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
            "chart/templates/cm.yaml": (
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  color: {{ .Values.color | quote }}\n"
            ),
            "envs/prod/values.yaml": "color: red\n",
            "envs/dev/values.yaml": "color: green\n",
        },
    )
    spec = ApplicationSource.model_validate(
        {"repoURL": repo.url, "path": "chart", "helm": {"valueFiles": ["../envs/prod/values.yaml"]}}
    )
    git, cache = GitCache(tmp_path / "git"), RenderCache(tmp_path / "render")

    first = await desired_state("web", spec, git=git, cache=cache, secrets_backend=None)
    assert first.inputs == ("chart", "envs/prod/values.yaml") and first.objects[0]["data"] == {"color": "red"}
    repo.commit("dev values only", {"envs/dev/values.yaml": "color: yellow\n"})
    assert (await desired_state("web", spec, git=git, cache=cache, secrets_backend=None)).cache_hit
    repo.commit("prod values", {"envs/prod/values.yaml": "color: blue\n"})
    third = await desired_state("web", spec, git=git, cache=cache, secrets_backend=None)
    assert not third.cache_hit and third.objects[0]["data"] == {"color": "blue"}
    assert (cache.stats.renders, cache.stats.hits) == (2, 1)


@pytest.fixture
def secret_entry(pass_store: Any) -> tuple[str, str]:
    """A pass entry whose first line is a canary password and whose ``user:`` line is ``admin``."""
    path = f"tether-test/{uuid.uuid4().hex[:8]}/db"
    canary = f"canary-{uuid.uuid4().hex}"
    pass_store.insert(path, f"{canary}\nuser: admin\n")
    return path, canary


async def test_placeholders_resolve_from_pass_and_never_reach_the_cache(
    git_server: Any, pass_store: Any, secret_entry: tuple[str, str], tmp_path: Path
) -> None:
    entry, canary = secret_entry
    repo = git_server.create_repo(f"secrets-{uuid.uuid4().hex[:8]}")
    repo.commit(
        "apps with placeholders",
        {
            "kust/kustomization.yaml": (
                "secretGenerator:\n- name: db\n  literals:\n"
                f"  - password=<pass:{entry}>\n  - username=<pass:{entry}#user>\n"
                "generatorOptions:\n  disableNameSuffixHash: true\n"
            ),
            "chart/Chart.yaml": "apiVersion: v2\nname: db\nversion: 0.1.0\n",
            "chart/values.yaml": "password: unset\n",
            "chart/values-prod.yaml": f"password: <pass:{entry}>\n",
            "chart/templates/secret.yaml": (
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}\n"
                "stringData:\n  password: {{ .Values.password | quote }}\n"
            ),
        },
    )
    backend = PassBackend(pass_store.store_dir, pass_store.gnupg_home, environ={**os.environ, **pass_store.env})
    git, cache = GitCache(tmp_path / "git"), RenderCache(tmp_path / "render")

    kust = await desired_state("kust", source(repo.url, "kust"), git=git, cache=cache, secrets_backend=backend)
    (secret,) = kust.objects
    assert secret["kind"] == "Secret" and kust.source_type is SourceType.KUSTOMIZE
    assert base64.b64decode(secret["data"]["password"]).decode() == canary
    assert base64.b64decode(secret["data"]["username"]).decode() == "admin"
    assert entry in kust.secret_usage.entries and kust.secret_usage.store_commit == pass_store.commit

    spec = {"repoURL": repo.url, "path": "chart", "helm": {"valueFiles": ["values-prod.yaml"]}}
    helm = await desired_state(
        "web", ApplicationSource.model_validate(spec), git=git, cache=cache, secrets_backend=backend
    )
    (secret,) = helm.objects
    assert secret["metadata"]["name"] == "web" and secret["stringData"]["password"] == canary

    again = await desired_state(
        "web", ApplicationSource.model_validate(spec), git=git, cache=cache, secrets_backend=backend
    )
    assert again.cache_hit and again.objects[0]["stringData"]["password"] == canary

    assert len(cache) == 2
    encoded = base64.b64encode(canary.encode()).decode()
    for directory in (tmp_path / "render", tmp_path / "git"):
        for path in directory.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                assert canary.encode() not in data and encoded.encode() not in data, path
    assert f"<pass:{entry}>".encode() in b"".join(p.read_bytes() for p in (tmp_path / "render").rglob("*.json"))


async def test_symlink_out_of_the_repository_is_refused_from_git(git_server: Any, tmp_path: Path) -> None:
    repo = git_server.create_repo(f"escape-{uuid.uuid4().hex[:8]}")
    repo.commit("ok", {"app/ok.yaml": manifest("ConfigMap", "ok")})
    (repo.path / "app" / "passwd.yaml").symlink_to("/etc/passwd")
    repo.commit("symlink out")
    with pytest.raises(GitError, match="refusing to check out"):
        await desired_state(
            "app", source(repo.url, "app"), git=GitCache(tmp_path / "git"), cache=None, secrets_backend=None
        )


async def test_local_directory_needs_no_git_and_no_cache(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "cm.yaml").write_text(manifest("ConfigMap", "local"))
    spec = ApplicationSource.model_validate({"repoURL": str(tmp_path), "path": "app"})
    state = await desired_state("local", spec, git=None, cache=None, secrets_backend=None)
    assert state.revision is None and not state.cache_hit and state.objects[0]["metadata"]["name"] == "local"


def test_local_source_detection(tmp_path: Path) -> None:
    assert is_local_source(str(tmp_path))
    assert not is_local_source("https://example.com/repo.git")
    assert not is_local_source("git@example.com:org/repo.git")
    assert not is_local_source(str(tmp_path / "missing"))


CHART_REPO = {
    "README.md": "one chart\n",
    "chart/Chart.yaml": "apiVersion: v2\nname: tagged\nversion: 0.1.0\n",
    "chart/values.yaml": "name: x\ntag: latest\nproject: none\n",
    "chart/templates/cm.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.name }}\n"
        "data:\n  tag: {{ .Values.tag | quote }}\n  project: {{ .Values.project | quote }}\n"
    ),
}


async def test_build_variables_expand_and_only_a_revision_variable_renders_every_commit(
    git_server: Any, tmp_path: Path
) -> None:
    repo = git_server.create_repo(f"buildenv-{uuid.uuid4().hex[:8]}")
    first_commit = repo.commit("a chart", CHART_REPO)
    git, cache = CountingGitCache(tmp_path / "git"), RenderCache(tmp_path / "render")

    def helm_source(*parameters: tuple[str, str]) -> ApplicationSource:
        spec = {"parameters": [{"name": name, "value": value} for name, value in parameters]}
        return ApplicationSource.model_validate(
            {"repoURL": repo.url, "path": "chart", "targetRevision": "main", "helm": spec}
        )

    apps = {
        "tagged": helm_source(("name", "$ARGOCD_APP_NAME"), ("tag", "$ARGOCD_APP_REVISION_SHORT")),
        "named": helm_source(("name", "${ARGOCD_APP_NAME}-cm"), ("project", "$ARGOCD_APP_PROJECT_NAME")),
    }
    # A credential in repoURL (the server here ignores it) never reaches the output through a variable.
    with_userinfo = repo.url.replace("://", "://user:canary-4f1d@", 1)
    located = helm_source(("project", "$ARGOCD_APP_SOURCE_REPO_URL")).model_copy(update={"repo_url": with_userinfo})

    async def both() -> dict[str, Any]:
        return {
            app: await desired_state(app, spec, git=git, cache=cache, secrets_backend=None, project="team")
            for app, spec in apps.items()
        }

    first = await both()
    assert first["tagged"].objects[0]["metadata"]["name"] == "tagged"
    assert first["tagged"].objects[0]["data"] == {"tag": first_commit[:7], "project": "none"}
    assert first["named"].objects[0]["metadata"]["name"] == "named-cm"
    assert first["named"].objects[0]["data"] == {"tag": "latest", "project": "team"}
    assert (cache.stats.renders, cache.stats.hits) == (2, 0)
    where = await desired_state("located", located, git=git, cache=None, secrets_backend=None)
    assert where.objects[0]["data"]["project"] == repo.url and "canary-4f1d" not in str(where.objects)

    second_commit = repo.commit("docs only", {"README.md": "one chart, documented\n"})
    second = await both()
    # The chart did not change, but the tag is the commit's: only the app that uses it renders again.
    assert not second["tagged"].cache_hit and second["tagged"].objects[0]["data"]["tag"] == second_commit[:7]
    assert second["named"].cache_hit and second["named"].objects == first["named"].objects
    assert (cache.stats.renders, cache.stats.hits) == (3, 1)


async def test_a_chart_renders_again_when_its_cluster_serves_other_apis_and_plain_yaml_does_not(
    git_server: Any, tmp_path: Path
) -> None:
    repo = git_server.create_repo(f"capabilities-{uuid.uuid4().hex[:8]}")
    repo.commit("a chart and plain yaml", {**CHART_REPO, "plain/cm.yaml": manifest("ConfigMap", "plain")})
    git, cache = CountingGitCache(tmp_path / "git"), RenderCache(tmp_path / "render")
    before = Capabilities.of("v1.36.3", ["v1", "apps/v1"])
    after = Capabilities.of("v1.36.3", ["v1", "apps/v1", "monitoring.coreos.com/v1"])  # a CRD was installed

    async def both(capabilities: Capabilities) -> dict[str, bool]:
        states = {
            path: await desired_state(
                path,
                source(repo.url, path),
                git=git,
                cache=cache,
                secrets_backend=None,
                capabilities=given(capabilities),
            )
            for path in ("chart", "plain")
        }
        return {path: state.cache_hit for path, state in states.items()}

    assert await both(before) == {"chart": False, "plain": False}
    assert await both(before) == {"chart": True, "plain": True}
    assert await both(after) == {"chart": False, "plain": True}


async def test_a_render_that_reads_a_git_submodule_fails_naming_it(git_server: Any, tmp_path: Path) -> None:
    """Submodules are not fetched: rendering without their files would apply (and prune) the wrong thing."""
    shared = git_server.create_repo(f"shared-{uuid.uuid4().hex[:8]}")
    pinned = shared.commit("a shared manifest", {"cm.yaml": manifest("ConfigMap", "from-submodule")})
    repo = git_server.create_repo(f"super-{uuid.uuid4().hex[:8]}")
    repo.commit(
        "apps",
        {
            "web/cm.yaml": manifest("ConfigMap", "web"),
            "flat/cm.yaml": manifest("ConfigMap", "flat"),
            "other/cm.yaml": manifest("ConfigMap", "other"),
        },
    )
    for path in ("web/vendor", "flat/vendor"):
        repo.git("submodule", "add", "--quiet", shared.url, path)
    repo.commit("vendor the shared manifests as submodules")
    git, cache = GitCache(tmp_path / "git"), RenderCache(tmp_path / "render")

    web = ApplicationSource.model_validate(
        {"repoURL": repo.url, "path": "web", "targetRevision": "main", "directory": {"recurse": True}}
    )
    with pytest.raises(TetherError) as caught:
        await desired_state("web", web, git=git, cache=cache, secrets_backend=None)
    message = str(caught.value)
    assert "git submodule 'web/vendor'" in message and pinned[:12] in message and "spec.source.path" in message
    assert cache.stats.renders == 0  # nothing was cached for it
    # a directory app that does not recurse never reads the submodule; an app elsewhere does not either
    for app in ("flat", "other"):
        state = await desired_state(app, source(repo.url, app), git=git, cache=cache, secrets_backend=None)
        assert [o["metadata"]["name"] for o in state.objects] == [app]
