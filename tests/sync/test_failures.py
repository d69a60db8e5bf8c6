"""Failures stop a sync: failing hooks and waves, API errors, and the dry run that writes nothing."""

from __future__ import annotations

import pytest

from tests.cluster.wait import eventually
from tests.sync.helpers import Recorder, configmap, deployment, job
from tether.cluster import Cluster
from tether.sync import OperationPhase, ResourceAction, ResultStatus, SyncOptions, sync_app

pytestmark = pytest.mark.cluster

KINDS = [("batch/v1", "Job"), ("v1", "ConfigMap")]


async def test_failing_presync_hook_stops_the_sync_and_runs_syncfail_hooks(
    kube: Cluster, namespace: str, app: str
) -> None:
    desired = [
        job("migrate", namespace, fail=True, hook="PreSync", delete_policy="HookFailed"),
        job("kept", namespace, hook="PreSync", wave=-1),  # succeeds first; BeforeHookCreation keeps it
        configmap("app-config", namespace),
        job("notify", namespace, hook="SyncFail"),
        job("post", namespace, hook="PostSync"),
    ]
    async with Recorder(kube, namespace, KINDS) as seen:
        result = await sync_app(app, desired, cluster=kube, options=SyncOptions(namespace=namespace, timeout=60))
    assert result.phase is OperationPhase.FAILED
    assert f"app {app}" in result.message and "Job" in result.message and "migrate" in result.message
    created = seen.added()
    assert ("ConfigMap", "app-config") not in created  # no Sync-phase object was written
    assert ("Job", "post") not in created
    assert await kube.get("v1", "ConfigMap", "app-config", namespace) is None
    assert created.index(("Job", "migrate")) < created.index(("Job", "notify"))  # SyncFail ran after the failure
    notify = result.find("Job", "notify")
    assert notify is not None and notify.hook_phase is OperationPhase.SUCCEEDED
    migrate = result.find("Job", "migrate")
    assert migrate.hook_phase is OperationPhase.FAILED and migrate.health == "Degraded"
    assert "deleted (HookFailed)" in migrate.message
    await eventually(lambda: kube.get("batch/v1", "Job", "migrate", namespace), lambda j: j is None, timeout=30)
    assert await kube.get("batch/v1", "Job", "kept", namespace) is not None


async def test_a_failing_wave_stops_later_waves(kube: Cluster, namespace: str, app: str) -> None:
    desired = [
        configmap("first", namespace, wave=-1),
        job("batch", namespace, fail=True, wave=0),
        configmap("later", namespace, wave=1),
    ]
    result = await sync_app(app, desired, cluster=kube, options=SyncOptions(namespace=namespace, timeout=60))
    assert result.phase is OperationPhase.FAILED
    assert "Job" in result.message and "batch" in result.message and "Degraded" in result.message
    assert await kube.get("v1", "ConfigMap", "later", namespace) is None
    assert result.find("ConfigMap", "later") is None
    # what was applied stays applied, and the result says so
    assert await kube.get("v1", "ConfigMap", "first", namespace) is not None
    assert result.find("ConfigMap", "first").action is ResourceAction.CREATED
    assert "Already applied, left in place" in result.message and "first" in result.message


async def test_an_api_error_names_the_object_and_keeps_what_was_applied(
    kube: Cluster, namespace: str, app: str
) -> None:
    # A custom resource of a kind nobody serves passes the dry run only because it asks to
    # skip it; the real apply then fails in wave 1, after wave 0 was applied.
    widget = {
        "apiVersion": "example.invalid/v1",
        "kind": "Widget",
        "metadata": {
            "name": "w",
            "namespace": namespace,
            "annotations": {
                "argocd.argoproj.io/sync-options": "SkipDryRunOnMissingResource=true",
                "argocd.argoproj.io/sync-wave": "1",
            },
        },
    }
    desired = [configmap("applied", namespace), widget]
    result = await sync_app(app, desired, cluster=kube, options=SyncOptions(namespace=namespace, timeout=60))
    assert result.phase is OperationPhase.FAILED
    failed = result.find("Widget", "w")
    assert failed is not None and failed.status is ResultStatus.SYNC_FAILED and "Widget" in failed.message
    assert failed.action is ResourceAction.FAILED  # not "unchanged": it was never written
    assert "Widget" in result.message and f"app {app}" in result.message
    assert result.find("ConfigMap", "applied").status is ResultStatus.SYNCED
    assert await kube.get("v1", "ConfigMap", "applied", namespace) is not None


async def test_a_bad_object_fails_the_dry_run_and_nothing_is_written(kube: Cluster, namespace: str, app: str) -> None:
    bad = deployment("bad", namespace, wave=5)
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Sometimes"
    desired = [configmap("fine", namespace), job("pre", namespace, hook="PreSync"), bad]
    async with Recorder(kube, namespace, KINDS) as seen:
        result = await sync_app(app, desired, cluster=kube, options=SyncOptions(namespace=namespace, timeout=60))
    assert result.phase is OperationPhase.FAILED
    assert "dry run" in result.message and "Deployment" in result.message and "bad" in result.message
    assert result.find("Deployment", "bad").status is ResultStatus.SYNC_FAILED
    assert result.find("Deployment", "bad").action is ResourceAction.FAILED
    assert seen.added() == []
    assert await kube.get("v1", "ConfigMap", "fine", namespace) is None
    assert result.message.endswith(
        f"Not applied (the sync stopped first): Job.batch {namespace}/pre, ConfigMap {namespace}/fine"
    )


async def test_a_failed_dry_run_lists_as_not_applied_only_what_the_sync_would_have_written(
    kube: Cluster, namespace: str, app: str
) -> None:
    options = SyncOptions(namespace=namespace, timeout=60)
    done = await sync_app(app, [configmap("steady", namespace)], cluster=kube, options=options)
    assert done.phase is OperationPhase.SUCCEEDED
    bad = deployment("bad", namespace)
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Sometimes"
    desired = [configmap("steady", namespace), configmap("new", namespace), bad]
    result = await sync_app(app, desired, cluster=kube, options=options)
    assert result.phase is OperationPhase.FAILED
    assert f"Not applied (the sync stopped first): ConfigMap {namespace}/new" in result.message, result.message
    assert "steady" not in result.message  # in sync: it would not have been written anyway
