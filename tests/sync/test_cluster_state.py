"""Drift, CRDs and health as a sync sees them on the devcluster."""

from __future__ import annotations

import secrets

import pytest

from tests.sync.helpers import Recorder, cluster_scoped, configmap, deployment
from tether.cluster import Cluster
from tether.health import HealthStatus, assess
from tether.sync import OperationPhase, ResourceAction, SyncEvent, SyncOptions, sync_app

pytestmark = pytest.mark.cluster


async def test_drift_is_fixed_and_reported_as_configured(kube: Cluster, namespace: str, app: str) -> None:
    desired = [deployment("web", namespace, replicas=2)]
    options = SyncOptions(namespace=namespace, timeout=60)
    assert (await sync_app(app, desired, cluster=kube, options=options)).phase is OperationPhase.SUCCEEDED
    await kube.patch("apps/v1", "Deployment", "web", namespace, {"spec": {"replicas": 5}})

    result = await sync_app(app, desired, cluster=kube, options=options)
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    assert result.find("Deployment", "web").action is ResourceAction.CONFIGURED
    live = await kube.get("apps/v1", "Deployment", "web", namespace)
    assert live["spec"]["replicas"] == 2

    steady = await sync_app(app, desired, cluster=kube, options=options)
    assert steady.find("Deployment", "web").action is ResourceAction.UNCHANGED


async def test_a_crd_and_its_custom_resource_in_one_sync(kube: Cluster, namespace: str, app: str) -> None:
    group = f"t{secrets.token_hex(4)}.example.com"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}},
                        }
                    },
                }
            ],
        },
    }
    widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}}
    async with cluster_scoped(kube, crd):
        async with Recorder(kube, None, [("apiextensions.k8s.io/v1", "CustomResourceDefinition")]) as seen:
            result = await sync_app(
                app, [widget, crd], cluster=kube, options=SyncOptions(namespace=namespace, timeout=60)
            )
        assert result.phase is OperationPhase.SUCCEEDED, result.message
        assert [r.kind for r in result.resources] == ["CustomResourceDefinition", "Widget"]
        live = await kube.get(f"{group}/v1", "Widget", "w", namespace)
        assert live is not None and live["spec"]["size"] == 3
        crd_added = seen.first("ADDED", "CustomResourceDefinition", f"widgets.{group}")
        assert crd_added is not None and crd_added.resource_version < int(live["metadata"]["resourceVersion"])


async def test_a_deployment_goes_progressing_then_healthy(kube: Cluster, namespace: str, app: str) -> None:
    desired = [deployment("web", namespace, replicas=3, wave=0), configmap("after", namespace, wave=1)]
    events: list[SyncEvent] = []
    async with Recorder(kube, namespace, [("apps/v1", "Deployment")]) as seen:
        result = await sync_app(
            app, desired, cluster=kube, options=SyncOptions(namespace=namespace, timeout=60), progress=events.append
        )
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    healths = [assess(o).status for o in seen.objects]
    assert HealthStatus.PROGRESSING in healths and healths[-1] is HealthStatus.HEALTHY
    assert healths.index(HealthStatus.PROGRESSING) < healths.index(HealthStatus.HEALTHY)
    assert result.find("Deployment", "web").health == "Healthy"
    assert any(e.type == "waiting" and "Deployment" in e.message for e in events)
    assert [e.wave for e in events if e.type == "step"] == [0, 1]


async def test_a_deployment_past_its_progress_deadline_is_degraded_and_fails_the_wave(
    kube: Cluster, namespace: str, app: str
) -> None:
    stuck = deployment("stuck", namespace, replicas=1, wave=0, progressDeadlineSeconds=1)
    stuck["spec"]["template"]["spec"]["nodeSelector"] = {"no-such-node": "anywhere"}  # its pod stays Pending
    desired = [stuck, configmap("never", namespace, wave=1)]
    result = await sync_app(app, desired, cluster=kube, options=SyncOptions(namespace=namespace, timeout=90))
    assert result.phase is OperationPhase.FAILED
    failed = result.find("Deployment", "stuck")
    assert failed.health == "Degraded"
    assert "stuck" in result.message and "Degraded" in result.message
    assert await kube.get("v1", "ConfigMap", "never", namespace) is None
