"""Webhooks end to end: real provider payloads over HTTP to `POST /api/webhook`, the devcluster, git over smart HTTP.

Polling is set to an hour in these tests, so only a webhook can move an app.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.controller.conftest import API, Receiver, application, eventually, settings_for, webhook_secret
from tests.webhook_deliveries import PROVIDERS, SECRETS, retarget, secret_data
from tether.cluster import Cluster
from tether.controller.controller import Controller
from tether.devcluster.gitserver import GitHttpServer
from tether.devcluster.passstore import PassStore
from tether.source import normalise_url

HOUR = 3600.0


def configmap(name: str, value: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: {value}\n"


@pytest.fixture
async def hooked(
    kube: Cluster, crds_installed: None, namespace: str, tmp_path: Path, pass_store: PassStore
) -> AsyncIterator[Receiver]:
    """A started controller (polls an hour apart) with every provider's secret, and its HTTP server."""
    await webhook_secret(kube, namespace, secret_data())
    settings = settings_for(namespace, tmp_path / "state", pass_store, poll_interval=HOUR, poll_jitter=0.0)
    c = Controller(settings, kube)
    await c.start()
    try:
        async with Receiver(c) as receiver:
            yield receiver
    finally:
        await c.stop()


async def status_of(kube: Cluster, namespace: str, name: str) -> dict[str, Any]:
    obj = await kube.get(API, "Application", name, namespace)
    return (obj or {}).get("status") or {}


def revision_is(sha: str) -> Any:
    return lambda s: (s.get("sync") or {}).get("revision") == sha and (s.get("sync") or {}).get("status") == "Synced"


def compared_at(sha: str) -> Any:
    return lambda s: (s.get("sync") or {}).get("revision") == sha


async def test_every_providers_real_push_refreshes_the_matching_app(
    hooked: Receiver, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    head = repo.commit("first", files={"app/cm.yaml": configmap("cm", "first")})
    spec = {"syncPolicy": {"automated": {"prune": True}}}
    await kube.apply(application("web", namespace, repo.url, "app", namespace, **spec))
    await eventually(lambda: status_of(kube, namespace, "web"), revision_is(head))
    for provider in PROVIDERS:
        before, head = head, repo.commit(provider, files={"app/cm.yaml": configmap("cm", provider)})
        body = retarget(provider, repo.url, before=before, after=head, files=["app/cm.yaml"])
        refused = await hooked.deliver(provider, body, "not-" + SECRETS[provider])
        assert refused.status_code == 401, (provider, refused.text)
        answer = await hooked.deliver(provider, body, SECRETS[provider])
        assert answer.status_code == 202, (provider, answer.text)
        await eventually(lambda: status_of(kube, namespace, "web"), revision_is(head), timeout=30)
        live = await kube.get("v1", "ConfigMap", "cm", namespace)
        assert live is not None and live["data"]["value"] == provider
    stats = hooked.controller.webhooks.stats
    assert stats.refreshed == len(PROVIDERS)  # each push changed the app's input: one refresh each
    assert stats.unmatched == 0


async def test_a_provider_without_a_secret_is_refused_unless_unauthenticated_webhooks_are_on(
    kube: Cluster, crds_installed: None, namespace: str, tmp_path: Path, pass_store: PassStore
) -> None:
    only_github = {k: v for k, v in secret_data().items() if k == "github"}
    await webhook_secret(kube, namespace, only_github)
    body = retarget("gitlab", "http://127.0.0.1:1/none.git", before="a" * 40, after="b" * 40, files=[])
    for allow, expected in ((False, 401), (True, 202)):
        settings = settings_for(namespace, tmp_path / f"state-{allow}", pass_store, webhook_allow_unauthenticated=allow)
        c = Controller(settings, kube)
        await c.start()
        try:
            async with Receiver(c) as receiver:
                answer = await receiver.deliver("gitlab", body, None)
                assert answer.status_code == expected, answer.text
                if not allow:
                    assert "no webhook secret" in answer.json()["error"]
                signed = await receiver.deliver(
                    "github",
                    retarget("github", "http://127.0.0.1:1/x.git", before=None, after="c" * 40),
                    SECRETS["github"],
                )
                assert signed.status_code == 202  # the configured provider is unaffected
        finally:
            await c.stop()


async def test_a_changed_secret_applies_without_a_restart(hooked: Receiver, kube: Cluster, namespace: str) -> None:
    body = retarget("github", "http://127.0.0.1:1/none.git", before="a" * 40, after="b" * 40, files=[])
    assert (await hooked.deliver("github", body, SECRETS["github"])).status_code == 202
    rotated = {**secret_data(), "github": base64.b64encode(b"rotated").decode()}
    await webhook_secret(kube, namespace, rotated)

    async def answer() -> int:
        return (await hooked.deliver("github", body, "rotated")).status_code

    await eventually(answer, lambda code: code == 202, timeout=10)
    assert (await hooked.deliver("github", body, SECRETS["github"])).status_code == 401


def monorepo(apps: int, kustomized: int) -> dict[str, str]:
    """``apps`` plain apps and ``kustomized`` apps that include the shared ``base/``."""
    files = {"base/kustomization.yaml": "resources: [shared.yaml]\n", "base/shared.yaml": configmap("shared", "v1")}
    for i in range(apps):
        files[f"apps/app-{i:03d}/cm.yaml"] = configmap(f"app-{i:03d}", "v1")
    for i in range(kustomized):
        files[f"apps/kust-{i:03d}/kustomization.yaml"] = f"namePrefix: k{i:03d}-\nresources: [../../base]\n"
    return files


async def test_one_commit_in_a_300_app_monorepo_renders_only_the_apps_that_read_it(
    hooked: Receiver, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    plain, kustomized = 280, 20
    repo = git_server.create_repo(unique_repo_name)
    head = repo.commit("fleet", files=monorepo(plain, kustomized))
    names = [f"app-{i:03d}" for i in range(plain)] + [f"kust-{i:03d}" for i in range(kustomized)]
    await asyncio.gather(*(kube.apply(application(n, namespace, repo.url, f"apps/{n}", namespace)) for n in names))

    async def revisions() -> set[str]:
        items, _ = await kube.list(API, "Application", namespace)
        return {((i.get("status") or {}).get("sync") or {}).get("revision", "") for i in items}

    await eventually(revisions, lambda r: r == {head}, timeout=180)
    c = hooked.controller
    stats = c.webhooks.stats

    async def push(provider: str, files: dict[str, str], listed: bool) -> int:
        nonlocal head
        renders = c.render_cache.stats.renders
        before, head = head, repo.commit("change", files=files)
        body = retarget(provider, repo.url, before=before, after=head, files=list(files) if listed else None)
        assert (await hooked.deliver(provider, body, SECRETS[provider])).status_code == 202
        await eventually(revisions, lambda r: r == {head}, timeout=120)
        return c.render_cache.stats.renders - renders

    moved = stats.moved
    assert await push("github", {"apps/app-007/cm.yaml": configmap("app-007", "v2")}, listed=True) == 1
    assert stats.moved - moved == len(names) - 1  # every other app moved to the new revision, unrendered
    assert await push("github", {"base/shared.yaml": configmap("shared", "v2")}, listed=True) == kustomized
    diffs = stats.diffs
    # Bitbucket Server sends no file list: one git diff for the repository gives the same answer.
    assert await push("bitbucketserver", {"apps/app-011/cm.yaml": configmap("app-011", "v2")}, listed=False) == 1
    assert stats.diffs - diffs == 1
    assert await push("bitbucketserver", {"base/shared.yaml": configmap("shared", "v3")}, listed=False) == kustomized


async def test_a_burst_coalesces_and_pushes_for_unused_repositories_cost_nothing(
    hooked: Receiver, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    head = repo.commit("first", files={"app/cm.yaml": configmap("cm", "first")})
    await kube.apply(application("web", namespace, repo.url, "app", namespace))
    await eventually(lambda: status_of(kube, namespace, "web"), compared_at(head))
    c = hooked.controller
    stats = c.webhooks.stats
    fetches, refreshed, batches, unmatched = c.git.fetch_count, stats.refreshed, stats.batches, stats.unmatched
    before, head = head, repo.commit("second", files={"app/cm.yaml": configmap("cm", "second")})
    ours = retarget("github", repo.url, before=before, after=head, files=["app/cm.yaml"])
    theirs = retarget("github", "https://git.example.com/nobody/else.git", before=before, after=head, files=[])
    answers = await asyncio.gather(
        *(hooked.deliver("github", body, SECRETS["github"]) for body in [ours] * 10 + [theirs] * 10)
    )
    assert {a.status_code for a in answers} == {202}
    await eventually(lambda: status_of(kube, namespace, "web"), compared_at(head))
    await eventually(lambda: asyncio.sleep(0, stats.pushes), lambda pushes: c.webhooks.waiting == 0)
    assert c.git.fetch_count - fetches == 1  # one fetch of the new commit for ten deliveries
    assert stats.unmatched - unmatched == 10  # the other repository: a lookup each, nothing else
    assert 1 <= stats.refreshed - refreshed <= stats.batches - batches  # at most one refresh per app per batch
    assert c.refs_seen[normalise_url(repo.url)].refs["refs/heads/main"] == head  # the next poll finds nothing new


async def test_manifest_generate_paths_decides_instead_of_the_recorded_inputs(
    hooked: Receiver, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    files = {"app/cm.yaml": configmap("cm", "first"), "config/flag.txt": "on\n"}
    head = repo.commit("first", files=files)
    app = application("web", namespace, repo.url, "app", namespace)
    app["metadata"]["annotations"] = {"argocd.argoproj.io/manifest-generate-paths": ".;/config"}
    await kube.apply(app)
    await eventually(lambda: status_of(kube, namespace, "web"), compared_at(head))
    c = hooked.controller

    async def push(changed: dict[str, str]) -> str:
        nonlocal head
        refreshed, moved = c.webhooks.stats.refreshed, c.webhooks.stats.moved
        before, head = head, repo.commit("change", files=changed)
        body = retarget("github", repo.url, before=before, after=head, files=list(changed))
        assert (await hooked.deliver("github", body, SECRETS["github"])).status_code == 202
        await eventually(lambda: status_of(kube, namespace, "web"), compared_at(head))
        if c.webhooks.stats.refreshed > refreshed:
            return "refreshed"
        return "moved" if c.webhooks.stats.moved > moved else "nothing"

    assert await push({"config/flag.txt": "off\n"}) == "refreshed"  # not read by the render, named by the annotation
    assert await push({"README.md": "# docs\n"}) == "moved"  # named by neither: no refresh
    assert await push({"app/cm.yaml": configmap("cm", "second")}) == "refreshed"  # "." is the source's own path


async def test_an_app_that_names_its_commit_renders_at_every_push(
    hooked: Receiver, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    chart = {
        "chart/Chart.yaml": "apiVersion: v2\nname: tagged\nversion: 0.1.0\n",
        "chart/templates/cm.yaml": configmap("tagged", "{{ .Values.tag | quote }}"),
    }
    head = repo.commit("a chart", files=chart)
    helm = {"parameters": [{"name": "tag", "value": "$ARGOCD_APP_REVISION_SHORT"}]}
    app = application("tagged", namespace, repo.url, "chart", namespace, syncPolicy={"automated": {}})
    app["spec"]["source"]["helm"] = helm
    await kube.apply(app)

    async def live_tag() -> str | None:
        obj = await kube.get("v1", "ConfigMap", "tagged", namespace)
        return ((obj or {}).get("data") or {}).get("value")

    assert await eventually(live_tag, lambda tag: tag == head[:7])
    c = hooked.controller
    refreshed = c.webhooks.stats.refreshed
    before, head = head, repo.commit("docs", files={"README.md": "# docs\n"})  # not read by the render
    body = retarget("github", repo.url, before=before, after=head, files=["README.md"])
    assert (await hooked.deliver("github", body, SECRETS["github"])).status_code == 202
    assert await eventually(live_tag, lambda tag: tag == head[:7])  # rendered again, and synced
    assert c.webhooks.stats.refreshed == refreshed + 1


async def test_a_push_that_reverts_a_broken_commit_clears_the_error_at_once(
    hooked: Receiver, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    """A commit that breaks the render, then one that takes it back: the second's files equal the last good
    render's, yet the app must be compared again (not only moved to it), or its error stands until a poll."""
    repo = git_server.create_repo(unique_repo_name)
    good = repo.commit("first", files={"app/cm.yaml": configmap("cm", "first")})
    await kube.apply(application("web", namespace, repo.url, "app", namespace, syncPolicy={"automated": {}}))
    await eventually(lambda: status_of(kube, namespace, "web"), revision_is(good))

    broken = repo.commit(
        "broken", files={"app/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n  labels: [a, b]\n"}
    )
    body = retarget("github", repo.url, before=good, after=broken, files=["app/bad.yaml"])
    assert (await hooked.deliver("github", body, SECRETS["github"])).status_code == 202

    def failed(s: dict[str, Any]) -> bool:
        return any(
            c.get("type") == "ComparisonError" and "app/bad.yaml" in c.get("message", "")
            for c in s.get("conditions") or []
        )

    await eventually(lambda: status_of(kube, namespace, "web"), failed)

    fixed = repo.commit("revert", files={"app/bad.yaml": None})
    body = retarget("github", repo.url, before=broken, after=fixed, files=["app/bad.yaml"])
    assert (await hooked.deliver("github", body, SECRETS["github"])).status_code == 202
    status = await eventually(lambda: status_of(kube, namespace, "web"), revision_is(fixed))
    assert not any(c.get("type") == "ComparisonError" for c in status.get("conditions") or [])
