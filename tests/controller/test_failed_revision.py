"""A failed automated sync: not retried at the same revision (a SyncError says so) unless ``retry`` allows it,
and the next commit that fixes it syncs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import yaml

from tests.controller.conftest import API, application, eventually
from tests.controller.test_loop import app_status, configmap, synced_healthy
from tests.sync.helpers import Recorder, job
from tether.cluster import Cluster
from tether.controller.controller import Controller
from tether.devcluster.gitserver import GitHttpServer

pytestmark = pytest.mark.cluster


def presync(name: str, *, fail: bool) -> str:
    """A PreSync hook Job whose pod kwok fails (``fail``) or completes."""
    hook = job(name, "", hook="PreSync", fail=fail)
    del hook["metadata"]["namespace"]
    return yaml.safe_dump(hook)


def condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


def finished(status: dict[str, Any]) -> bool:
    return (status.get("operationState") or {}).get("phase") in ("Failed", "Error", "Succeeded")


async def test_a_failed_revision_is_not_retried_and_the_next_commit_syncs(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    bad = repo.commit(
        "bad", files={"app/migrate.yaml": presync("migrate", fail=True), "app/a.yaml": configmap("a", "v1")}
    )
    app = application("flaky", namespace, repo.url, "app", namespace, syncPolicy={"automated": {"selfHeal": True}})
    async with Recorder(kube, namespace, [("batch/v1", "Job")]) as seen:
        await kube.apply(app)
        status = await eventually(lambda: app_status(kube, namespace, "flaky"), finished, timeout=45)
        op = status["operationState"]
        assert op["phase"] == "Failed", op
        assert op["syncResult"]["revision"] == bad and op["retryCount"] == 0
        assert "migrate" in op["message"]
        status = await eventually(
            lambda: app_status(kube, namespace, "flaky"),
            lambda s: condition(s, "SyncError") is not None,
            timeout=15,
        )
        sync_error = condition(status, "SyncError")
        assert sync_error["message"].startswith(f"Failed sync attempt to {bad}"), sync_error
        assert condition(status, "Stalled")["status"] == "True"
        assert status["sync"]["status"] == "OutOfSync"
        # several reconciles at the same revision (refresh requests, polls) start no new attempt
        for _ in range(3):
            await kube.patch(
                API, "Application", "flaky", namespace, {"metadata": {"annotations": {"tether.dev/refresh": "normal"}}}
            )
            await eventually(
                lambda: kube.get(API, "Application", "flaky", namespace),
                lambda o: "tether.dev/refresh" not in ((o or {}).get("metadata", {}).get("annotations") or {}),
                timeout=15,
            )
            await asyncio.sleep(1.5)
        status = await app_status(kube, namespace, "flaky")
        assert status["operationState"]["startedAt"] == op["startedAt"]
        assert status["operationState"]["phase"] == "Failed"
        assert condition(status, "SyncError") is not None
    assert [e.name for e in seen.events if e.type == "ADDED"] == ["migrate"]  # the hook ran once
    assert await kube.get("v1", "ConfigMap", "a", namespace) is None

    # a commit that fixes it is a new revision: automated sync tries again, and succeeds
    good = repo.commit("fix", files={"app/migrate.yaml": presync("migrate", fail=False)})
    status = await eventually(
        lambda: app_status(kube, namespace, "flaky"),
        lambda s: (s.get("sync") or {}).get("revision") == good and synced_healthy(s),
        timeout=45,
    )
    assert status["operationState"]["phase"] == "Succeeded"
    assert status["operationState"]["syncResult"]["revision"] == good
    assert condition(status, "SyncError") is None
    assert condition(status, "Stalled")["status"] == "False"
    assert [h["revision"] for h in status["history"]] == [good]
    assert (await kube.get("v1", "ConfigMap", "a", namespace))["data"]["value"] == "v1"


async def test_retry_limit_retries_the_failed_sync_within_the_operation(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    bad = repo.commit("bad", files={"app/migrate.yaml": presync("migrate", fail=True), "app/a.yaml": configmap("a")})
    app = application(
        "retried",
        namespace,
        repo.url,
        "app",
        namespace,
        syncPolicy={"automated": {}, "retry": {"limit": 2, "backoff": {"duration": "1s", "factor": 1}}},
    )
    async with Recorder(kube, namespace, [("batch/v1", "Job")]) as seen:
        await kube.apply(app)
        status = await eventually(lambda: app_status(kube, namespace, "retried"), finished, timeout=60)
        op = status["operationState"]
        assert op["phase"] == "Failed", op
        assert op["retryCount"] == 2
        assert op["message"].endswith("(retried 2 times)."), op["message"]  # as Argo CD says it
        assert op["syncResult"]["revision"] == bad
        await asyncio.sleep(4)  # and after the retries are spent, no further attempt at this revision
        status = await app_status(kube, namespace, "retried")
        assert status["operationState"]["startedAt"] == op["startedAt"]
        assert condition(status, "SyncError")["message"].startswith(f"Failed sync attempt to {bad}")
    # one run of the hook per attempt: the first and two retries (each recreates it: BeforeHookCreation)
    assert [e.name for e in seen.events if e.type == "ADDED"] == ["migrate"] * 3
    entries = await controller.audit.entries(f"{namespace}/retried") if controller.audit else []
    assert [(e.phase, e.automated) for e in entries] == [("Failed", True)]  # one operation, retried within


async def test_a_spec_change_after_a_failed_attempt_syncs_the_same_revision(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    revision = repo.commit(
        "both",
        files={
            "bad/migrate.yaml": presync("migrate", fail=True),
            "bad/a.yaml": configmap("a", "bad"),
            "good/a.yaml": configmap("a", "good"),
        },
    )
    await kube.apply(application("moved", namespace, repo.url, "bad", namespace, syncPolicy={"automated": {}}))
    status = await eventually(
        lambda: app_status(kube, namespace, "moved"), lambda s: condition(s, "SyncError") is not None, timeout=45
    )
    assert status["operationState"]["phase"] == "Failed"
    # same revision, another path: the compared spec changed, so automated sync tries again
    await kube.patch(API, "Application", "moved", namespace, {"spec": {"source": {"path": "good"}}})
    status = await eventually(lambda: app_status(kube, namespace, "moved"), synced_healthy, timeout=30)
    assert status["sync"]["revision"] == revision
    assert status["operationState"]["phase"] == "Succeeded"
    assert status["operationState"]["syncResult"]["source"]["path"] == "good"
    assert condition(status, "SyncError") is None
    assert (await kube.get("v1", "ConfigMap", "a", namespace))["data"]["value"] == "good"
