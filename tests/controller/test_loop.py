"""The reconcile loop end to end: real devcluster, real git over smart HTTP, real `pass`."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.controller.conftest import API, application, eventually
from tether.cluster import Cluster
from tether.controller.controller import Controller
from tether.devcluster.gitserver import GitHttpServer
from tether.resource import ResourceKey


def configmap(name: str, value: str = "one") -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: {value}\n"


async def app_status(kube: Cluster, namespace: str, name: str) -> dict[str, Any]:
    obj = await kube.get(API, "Application", name, namespace)
    return (obj or {}).get("status") or {}


def synced_healthy(status: dict[str, Any]) -> bool:
    return (status.get("sync") or {}).get("status") == "Synced" and (status.get("health") or {}).get(
        "status"
    ) == "Healthy"


async def quiet(controller: Controller) -> tuple[int, int]:
    """(reconciles, diffs) once a second has passed with neither moving and nothing queued."""
    while True:
        before = (controller.reconciles, controller.comparer.compares)
        await asyncio.sleep(1.0)
        if (controller.reconciles, controller.comparer.compares) == before and not len(controller.queue):
            return before


async def test_automated_sync_polls_self_heals_and_prunes(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    first = repo.commit("first", files={"app/a.yaml": configmap("a"), "app/b.yaml": configmap("b")})
    await kube.apply(
        application(
            "web",
            namespace,
            repo.url,
            "app",
            namespace,
            syncPolicy={"automated": {"prune": True, "selfHeal": True}},
        )
    )
    status = await eventually(lambda: app_status(kube, namespace, "web"), synced_healthy)
    assert status["sync"]["revision"] == first
    assert (await kube.get("v1", "ConfigMap", "a", namespace))["data"]["value"] == "one"
    assert status["history"][0]["revision"] == first
    assert status["operationState"]["phase"] == "Succeeded"

    # a push is picked up by the poll (interval 2 s) and synced; a file removed from git is pruned
    second = repo.commit("second", files={"app/a.yaml": configmap("a", "two"), "app/b.yaml": None})
    await eventually(
        lambda: app_status(kube, namespace, "web"),
        lambda s: (s.get("sync") or {}).get("revision") == second and synced_healthy(s),
        timeout=30,
    )
    assert (await kube.get("v1", "ConfigMap", "a", namespace))["data"]["value"] == "two"
    assert await kube.get("v1", "ConfigMap", "b", namespace) is None

    # drift made by hand is reverted (self-heal), seen through the watch, not the next poll
    await kube.patch("v1", "ConfigMap", "a", namespace, {"data": {"value": "drifted"}})

    async def value() -> str:
        return ((await kube.get("v1", "ConfigMap", "a", namespace)) or {}).get("data", {}).get("value", "")

    await eventually(value, lambda v: v == "two", timeout=20)
    status = await app_status(kube, namespace, "web")
    assert len(status["history"]) == 2  # the self-heal partial sync adds no history entry


async def test_without_self_heal_drift_only_shows_and_prune_off_marks_prune(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("first", files={"app/a.yaml": configmap("a"), "app/b.yaml": configmap("b")})
    await kube.apply(application("calm", namespace, repo.url, "app", namespace, syncPolicy={"automated": {}}))
    await eventually(lambda: app_status(kube, namespace, "calm"), synced_healthy)
    await kube.patch("v1", "ConfigMap", "a", namespace, {"data": {"value": "drifted"}})
    status = await eventually(
        lambda: app_status(kube, namespace, "calm"),
        lambda s: (s.get("sync") or {}).get("status") == "OutOfSync",
        timeout=15,
    )
    await asyncio.sleep(3)
    assert (await kube.get("v1", "ConfigMap", "a", namespace))["data"]["value"] == "drifted"
    # remove b from git: prune is off, so it stays and shows as requiring prune
    repo.commit("drop b", files={"app/b.yaml": None, "app/a.yaml": configmap("a", "drifted")})
    status = await eventually(
        lambda: app_status(kube, namespace, "calm"),
        lambda s: any(r.get("name") == "b" and r.get("requiresPruning") for r in s.get("resources") or []),
        timeout=30,
    )
    assert await kube.get("v1", "ConfigMap", "b", namespace) is not None
    assert status["sync"]["status"] == "OutOfSync"


async def test_an_annotation_the_manifest_does_not_set_costs_no_diff(
    unpolled: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    """Another writer's key (the Deployment controller's revision, a `kubectl annotate`) is judged for health
    without a diff, since the diff could not report it; a changed value of a key the manifest sets is drift."""
    controller = unpolled
    repo = git_server.create_repo(unique_repo_name)
    annotated = configmap("a").replace("  name: a\n", "  name: a\n  annotations:\n    team: a\n")
    repo.commit("first", files={"app/a.yaml": annotated})
    await kube.apply(application("notes", namespace, repo.url, "app", namespace, syncPolicy={"automated": {}}))
    await eventually(lambda: app_status(kube, namespace, "notes"), synced_healthy)

    async def reconciles() -> int:
        return controller.reconciles

    settled, compares = await asyncio.wait_for(quiet(controller), 30)
    await kube.patch("v1", "ConfigMap", "a", namespace, {"metadata": {"annotations": {"example.com/note": "x"}}})
    await eventually(reconciles, lambda n: n > settled, timeout=15)  # the watch event reached the app
    await asyncio.wait_for(quiet(controller), 30)
    assert controller.comparer.compares == compares
    assert synced_healthy(await app_status(kube, namespace, "notes"))

    await kube.patch("v1", "ConfigMap", "a", namespace, {"metadata": {"annotations": {"team": "b"}}})
    await eventually(
        lambda: app_status(kube, namespace, "notes"),
        lambda s: (s.get("sync") or {}).get("status") == "OutOfSync",
        timeout=15,
    )
    assert controller.comparer.compares > compares


async def test_a_destination_tracks_every_kind_before_its_first_sync(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    """The cache warms up when an app first names the cluster, so the first sync's prune does not wait for it."""
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("first", files={"app/a.yaml": configmap("a")})
    await kube.apply(application("manual", namespace, repo.url, "app", namespace))  # no automated sync
    status = await eventually(
        lambda: app_status(kube, namespace, "manual"), lambda s: (s.get("sync") or {}).get("status") == "OutOfSync"
    )
    assert "operationState" not in status
    (destination,) = controller.registry.opened()
    kinds_the_app_never_named = [ResourceKey("", "Secret", namespace, "x"), ResourceKey("batch", "Job", namespace, "x")]

    async def tracked() -> list[bool]:
        return [destination.cache.tracks(key) for key in kinds_the_app_never_named]

    await eventually(tracked, all, timeout=15)


async def test_a_poll_compares_only_the_apps_whose_revision_moved(
    unpolled: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    """The first poll after a start has no listing to compare with, and a push to another branch moves
    the repository's refs: neither compares an app whose targetRevision still names what it was rendered at."""
    controller = unpolled
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("first", files={"app/a.yaml": configmap("a")})
    await kube.apply(application("steady", namespace, repo.url, "app", namespace, syncPolicy={"automated": {}}))
    await eventually(lambda: app_status(kube, namespace, "steady"), synced_healthy)
    settled = await asyncio.wait_for(quiet(controller), 30)

    await controller.poll()  # this repository's first poll
    repo.switch("elsewhere")
    repo.commit("elsewhere", files={"app/a.yaml": configmap("a", "elsewhere")})
    await controller.poll()  # a branch the app does not track moved
    assert await asyncio.wait_for(quiet(controller), 30) == settled

    repo.switch("main", create=False)
    second = repo.commit("second", files={"app/a.yaml": configmap("a", "two")})
    await controller.poll()
    await eventually(
        lambda: app_status(kube, namespace, "steady"),
        lambda s: (s.get("sync") or {}).get("revision") == second and synced_healthy(s),
        timeout=30,
    )


async def test_a_hard_refresh_renders_again_and_a_normal_one_does_not(
    unpolled: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    """Both annotations (either prefix) are removed once handled; only ``hard`` bypasses the render cache."""
    controller = unpolled
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("first", files={"app/a.yaml": configmap("a")})
    await kube.apply(application("fresh", namespace, repo.url, "app", namespace, syncPolicy={"automated": {}}))
    await eventually(lambda: app_status(kube, namespace, "fresh"), synced_healthy)
    await asyncio.wait_for(quiet(controller), 30)

    async def refresh(annotation: str, value: str) -> int:
        renders = controller.render_cache.stats.renders
        await kube.patch(API, "Application", "fresh", namespace, {"metadata": {"annotations": {annotation: value}}})
        await eventually(
            lambda: kube.get(API, "Application", "fresh", namespace),
            lambda o: annotation not in ((o or {}).get("metadata", {}).get("annotations") or {}),
        )
        await asyncio.wait_for(quiet(controller), 30)
        return controller.render_cache.stats.renders - renders

    assert await refresh("argocd.argoproj.io/refresh", "normal") == 0
    assert await refresh("tether.dev/refresh", "hard") == 1


async def test_a_chart_sees_the_destinations_apis(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    """As in Argo CD, Helm's .Capabilities are the destination's: a kind gated on a served CRD is rendered."""
    repo = git_server.create_repo(unique_repo_name)
    gated = (
        '{{- if .Capabilities.APIVersions.Has "tether.dev/v1alpha1/Application" }}\n'
        + configmap("gated", "{{ .Capabilities.KubeVersion.Version }}")
        + "{{- end }}\n"
    )
    repo.commit(
        "chart",
        files={
            "chart/Chart.yaml": "apiVersion: v2\nname: gated\nversion: 0.1.0\n",
            "chart/templates/cm.yaml": gated,
            "chart/templates/absent.yaml": '{{- if .Capabilities.APIVersions.Has "example.invalid/v9" }}\n'
            + configmap("absent")
            + "{{- end }}\n",
        },
    )
    await kube.apply(application("charted", namespace, repo.url, "chart", namespace, syncPolicy={"automated": {}}))
    await eventually(lambda: app_status(kube, namespace, "charted"), synced_healthy)
    live = await kube.get("v1", "ConfigMap", "gated", namespace)
    version = (await kube.version())["gitVersion"]
    assert live is not None and live["data"]["value"] == version.partition("+")[0]
    assert await kube.get("v1", "ConfigMap", "absent", namespace) is None


async def test_skip_reconcile_leaves_the_app_alone_until_it_is_removed(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    """Argo CD's skip-reconcile annotation: nothing is compared, synced or written while it is "true"."""
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"app/a.yaml": configmap("skipped-a")})
    key = "argocd.argoproj.io/skip-reconcile"
    app = application("skipped", namespace, repo.url, "app", namespace, syncPolicy={"automated": {"selfHeal": True}})
    app["metadata"]["annotations"] = {key: "true"}
    await kube.apply(app)

    async def annotate(value: str | None) -> None:
        await kube.patch(API, "Application", "skipped", namespace, {"metadata": {"annotations": {key: value}}})

    async def live_value() -> str | None:
        cm = await kube.get("v1", "ConfigMap", "skipped-a", namespace)
        return (cm or {}).get("data", {}).get("value")

    await quiet(controller)
    obj = await kube.get(API, "Application", "skipped", namespace)
    assert obj is not None and "status" not in obj, obj  # as in Argo CD: a new app has no status at all
    assert await live_value() is None

    await annotate("false")  # the app reconciles at once
    await eventually(lambda: app_status(kube, namespace, "skipped"), synced_healthy, timeout=30)
    assert await live_value() == "one"

    await annotate("True")  # Go's spellings count, as Argo CD parses the value
    await quiet(controller)
    before = (await kube.get(API, "Application", "skipped", namespace))["metadata"]["resourceVersion"]
    repo.commit("v2", files={"app/a.yaml": configmap("skipped-a", "two")})
    await kube.patch("v1", "ConfigMap", "skipped-a", namespace, {"data": {"value": "drifted"}})
    await asyncio.sleep(3)  # past a poll (2 s here); self-heal would revert the drift at once
    await quiet(controller)
    assert await live_value() == "drifted"
    assert (await kube.get(API, "Application", "skipped", namespace))["metadata"]["resourceVersion"] == before

    await annotate(None)  # removed: git's new value goes out
    await eventually(live_value, lambda value: value == "two", timeout=30)
