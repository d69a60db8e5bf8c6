"""Sync options on the devcluster: CreateNamespace, Replace, Force, ApplyOutOfSyncOnly,
FailOnSharedResource, RespectIgnoreDifferences, the field manager, dry-run and selective syncs."""

from __future__ import annotations

import secrets

import pytest

from tests.sync.helpers import Recorder, cluster_scoped, configmap, deployment, job
from tether.cluster import Cluster
from tether.cluster.cache import LiveCache
from tether.diff.app import diff_app
from tether.diff.dryrun import DryRuns
from tether.resource import TRACKING_ANNOTATION, mark, owner_app
from tether.sync import OperationPhase, ResourceAction, ResultStatus, Selector, SyncOptions, sync_app

pytestmark = pytest.mark.cluster


async def test_create_namespace_makes_the_destination_and_does_not_track_it(kube: Cluster, app: str) -> None:
    target = f"t-create-{secrets.token_hex(3)}"
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": target}}
    async with cluster_scoped(kube, ns):
        options = SyncOptions(namespace=target, create_namespace=True, timeout=60)
        result = await sync_app(app, [configmap("cfg", "")], cluster=kube, options=options)
        assert result.phase is OperationPhase.SUCCEEDED, result.message
        assert result.find("Namespace", target).action is ResourceAction.CREATED
        live_ns = await kube.get("v1", "Namespace", target)
        assert live_ns is not None and TRACKING_ANNOTATION not in (live_ns["metadata"].get("annotations") or {})
        cfg = await kube.get("v1", "ConfigMap", "cfg", target)
        assert cfg is not None and owner_app(cfg) == app
        assert cfg["metadata"]["managedFields"][0]["manager"] == "tether"
        again = await sync_app(app, [configmap("cfg", "")], cluster=kube, options=options)
        assert again.find("Namespace", target).action is ResourceAction.UNCHANGED


async def test_replace_puts_the_whole_object(kube: Cluster, namespace: str, app: str) -> None:
    cfg = configmap("cfg", namespace, **{"argocd.argoproj.io/sync-options": "Replace=true"})
    options = SyncOptions(namespace=namespace, timeout=60)
    assert (await sync_app(app, [cfg], cluster=kube, options=options)).phase is OperationPhase.SUCCEEDED
    await kube.patch("v1", "ConfigMap", "cfg", namespace, {"data": {"extra": "by hand"}})
    result = await sync_app(app, [cfg], cluster=kube, options=options)
    assert result.find("ConfigMap", "cfg").action is ResourceAction.CONFIGURED
    live = await kube.get("v1", "ConfigMap", "cfg", namespace)
    assert live["data"] == {"k": "v"}  # server-side apply would have kept the field another manager owns


async def test_force_recreates_an_object_whose_immutable_field_changed(kube: Cluster, namespace: str, app: str) -> None:
    batch = job("batch", namespace)
    options = SyncOptions(namespace=namespace, timeout=60)
    assert (await sync_app(app, [batch], cluster=kube, options=options)).phase is OperationPhase.SUCCEEDED
    before = await kube.get("batch/v1", "Job", "batch", namespace)
    batch["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"

    refused = await sync_app(app, [batch], cluster=kube, options=options)
    assert refused.phase is OperationPhase.FAILED and "immutable" in refused.message and "batch" in refused.message

    batch["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] = "Force=true"
    result = await sync_app(app, [batch], cluster=kube, options=options)
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    assert "recreated" in result.find("Job", "batch").message
    after = await kube.get("batch/v1", "Job", "batch", namespace)
    assert after["metadata"]["uid"] != before["metadata"]["uid"]
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:2"


async def test_force_as_an_app_option_recreates_after_a_comparison_stored_the_refusal(
    kube: Cluster, namespace: str, app: str, cache: LiveCache
) -> None:
    """The controller shares one store of dry-run outcomes per cluster between comparisons and syncs: the
    refusal a comparison stored for an immutable field must not be replayed to a sync with ``Force=true``."""
    dry_runs = DryRuns()
    frozen = configmap("frozen", namespace)
    frozen["immutable"] = True
    plain = SyncOptions(namespace=namespace, timeout=60)
    first = await sync_app(app, [frozen], cluster=kube, cache=cache, options=plain, dry_runs=dry_runs)
    assert first.phase is OperationPhase.SUCCEEDED, first.message
    frozen["data"] = {"k": "changed"}
    await diff_app(app, [frozen], cluster=kube, cache=cache, namespace=namespace, dry_runs=dry_runs)
    assert len(dry_runs) >= 1  # the comparison's dry run was refused, and that was kept

    forced = SyncOptions.from_strings(["Force=true"], namespace=namespace, timeout=60)
    result = await sync_app(app, [frozen], cluster=kube, cache=cache, options=forced, dry_runs=dry_runs)
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    assert (await kube.get("v1", "ConfigMap", "frozen", namespace))["data"] == {"k": "changed"}


async def test_apply_out_of_sync_only_skips_synced_objects(kube: Cluster, namespace: str, app: str) -> None:
    desired = [configmap("steady", namespace), configmap("drifted", namespace)]
    options = SyncOptions(namespace=namespace, apply_out_of_sync_only=True, timeout=60)
    assert (await sync_app(app, desired, cluster=kube, options=options)).phase is OperationPhase.SUCCEEDED
    await kube.patch("v1", "ConfigMap", "drifted", namespace, {"data": {"k": "changed"}})
    steady_before = await kube.get("v1", "ConfigMap", "steady", namespace)

    result = await sync_app(app, desired, cluster=kube, options=options)
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    steady = result.find("ConfigMap", "steady")
    assert steady.action is ResourceAction.UNCHANGED and "ApplyOutOfSyncOnly" in steady.message
    assert result.find("ConfigMap", "drifted").action is ResourceAction.CONFIGURED
    assert (await kube.get("v1", "ConfigMap", "drifted", namespace))["data"] == {"k": "v"}
    steady_after = await kube.get("v1", "ConfigMap", "steady", namespace)
    assert steady_after["metadata"]["managedFields"] == steady_before["metadata"]["managedFields"]


async def test_fail_on_shared_resource_refuses_before_writing(kube: Cluster, namespace: str, app: str) -> None:
    await kube.apply(mark(configmap("shared", namespace, data={"owner": "other"}), "other-app"))
    desired = [configmap("shared", namespace), configmap("mine", namespace)]
    options = SyncOptions(namespace=namespace, fail_on_shared_resource=True, timeout=60)
    result = await sync_app(app, desired, cluster=kube, options=options)
    assert result.phase is OperationPhase.FAILED
    assert "other-app" in result.message and "shared" in result.message
    assert result.find("ConfigMap", "shared").status is ResultStatus.SYNC_FAILED
    assert await kube.get("v1", "ConfigMap", "mine", namespace) is None
    assert owner_app(await kube.get("v1", "ConfigMap", "shared", namespace)) == "other-app"

    taken = await sync_app(app, desired, cluster=kube, options=SyncOptions(namespace=namespace, timeout=60))
    assert taken.phase is OperationPhase.SUCCEEDED  # without the option, the app takes the object over
    assert owner_app(await kube.get("v1", "ConfigMap", "shared", namespace)) == app
    assert "shared: taken over from app other-app" in taken.find("ConfigMap", "shared").message  # and reports it
    assert "shared" not in taken.find("ConfigMap", "mine").message


async def test_dry_run_sync_writes_nothing_and_says_what_would_happen(kube: Cluster, namespace: str, app: str) -> None:
    options = SyncOptions(namespace=namespace, timeout=60)
    await sync_app(
        app,
        [configmap("same", namespace), configmap("changed", namespace), configmap("gone", namespace)],
        cluster=kube,
        options=options,
    )
    desired = [
        configmap("same", namespace),
        configmap("changed", namespace, data={"k": "new"}),
        configmap("new", namespace),
        job("pre", namespace, hook="PreSync"),
    ]
    async with Recorder(kube, namespace, [("v1", "ConfigMap"), ("batch/v1", "Job")]) as seen:
        result = await sync_app(
            app, desired, cluster=kube, options=SyncOptions(namespace=namespace, timeout=60, prune=True, dry_run=True)
        )
    assert result.phase is OperationPhase.SUCCEEDED and result.dry_run, result.message
    assert seen.events == []
    actions = {r.name: r.action for r in result.resources}
    assert actions == {
        "pre": ResourceAction.HOOK,
        "same": ResourceAction.UNCHANGED,
        "changed": ResourceAction.CONFIGURED,
        "new": ResourceAction.CREATED,
        "gone": ResourceAction.PRUNED,
    }
    assert all("dry run" in r.message for r in result.resources)
    assert (await kube.get("v1", "ConfigMap", "changed", namespace))["data"] == {"k": "v"}
    assert await kube.get("v1", "ConfigMap", "gone", namespace) is not None


async def test_selective_sync_applies_only_the_named_objects_and_no_hooks(
    kube: Cluster, namespace: str, app: str
) -> None:
    desired = [configmap("a", namespace), configmap("b", namespace), job("pre", namespace, hook="PreSync")]
    options = SyncOptions(namespace=namespace, timeout=60, resources=(Selector.parse(f":ConfigMap:{namespace}/a"),))
    result = await sync_app(app, desired, cluster=kube, options=options)
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    assert [(r.kind, r.name) for r in result.resources] == [("ConfigMap", "a")]
    assert await kube.get("v1", "ConfigMap", "b", namespace) is None
    assert await kube.get("batch/v1", "Job", "pre", namespace) is None


async def test_respect_ignore_differences_keeps_ignored_live_fields(kube: Cluster, namespace: str, app: str) -> None:
    desired = [deployment("web", namespace, replicas=2)]
    rules = ({"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]},)
    plain = SyncOptions(namespace=namespace, timeout=60, ignore_differences=rules)
    assert (await sync_app(app, desired, cluster=kube, options=plain)).phase is OperationPhase.SUCCEEDED
    await kube.patch("apps/v1", "Deployment", "web", namespace, {"spec": {"replicas": 4}})  # e.g. an autoscaler

    respect = SyncOptions(namespace=namespace, timeout=60, ignore_differences=rules, respect_ignore_differences=True)
    result = await sync_app(app, desired, cluster=kube, options=respect)
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    assert (await kube.get("apps/v1", "Deployment", "web", namespace))["spec"]["replicas"] == 4

    result = await sync_app(app, desired, cluster=kube, options=plain)
    assert (await kube.get("apps/v1", "Deployment", "web", namespace))["spec"]["replicas"] == 2


async def test_validate_false_writes_an_object_with_undeclared_fields(kube: Cluster, namespace: str, app: str) -> None:
    sloppy = {**configmap("sloppy", namespace), "spec": {"typo": True}}  # ConfigMap has no spec
    strict = await sync_app(app, [sloppy], cluster=kube, options=SyncOptions(namespace=namespace, timeout=60))
    assert strict.phase is OperationPhase.FAILED and "sloppy" in strict.message
    assert await kube.get("v1", "ConfigMap", "sloppy", namespace) is None

    annotated = {
        **sloppy,
        "metadata": {
            **sloppy["metadata"],
            "annotations": {
                **(sloppy["metadata"].get("annotations") or {}),
                "argocd.argoproj.io/sync-options": "Validate=false",
            },
        },
    }
    result = await sync_app(app, [annotated], cluster=kube, options=SyncOptions(namespace=namespace, timeout=60))
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    assert "Validate=false" in result.find("ConfigMap", "sloppy").message
    live = await kube.get("v1", "ConfigMap", "sloppy", namespace)
    assert live is not None and "spec" not in live and owner_app(live) == app
