"""An aggregated ClusterRole's rules belong to the control plane: Tether neither writes nor compares them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cluster.wait import eventually
from tests.sync.helpers import Recorder
from tether.cluster import Cluster, LiveCache
from tether.diff import diff_app
from tether.sync import OperationPhase, ResourceAction, SyncOptions, sync_app

pytestmark = pytest.mark.cluster

RBAC = "rbac.authorization.k8s.io/v1"


def roles(namespace: str) -> tuple[dict[str, Any], dict[str, Any]]:
    label = {"rbac.example.com/aggregate-to-monitoring": namespace[-40:]}
    aggregated = {
        "apiVersion": RBAC,
        "kind": "ClusterRole",
        "metadata": {"name": f"{namespace}-monitoring"},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": label}]},
        "rules": [],  # as charts write it; the aggregation controller fills it in
    }
    part = {
        "apiVersion": RBAC,
        "kind": "ClusterRole",
        "metadata": {"name": f"{namespace}-monitoring-pods", "labels": label},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
    }
    return aggregated, part


async def test_an_aggregated_roles_rules_are_left_to_the_control_plane(kube: Cluster, namespace: str, app: str) -> None:
    aggregated, part = roles(namespace)
    name = aggregated["metadata"]["name"]
    options = SyncOptions(namespace=namespace, timeout=60)
    try:
        first = await sync_app(app, [aggregated, part], cluster=kube, options=options)
        assert first.phase is OperationPhase.SUCCEEDED, first.message
        live = await eventually(lambda: kube.get(RBAC, "ClusterRole", name, None), lambda o: bool(o and o.get("rules")))
        assert live["rules"] == part["rules"]

        async with LiveCache(kube) as cache:
            report = await diff_app(app, [aggregated, part], cluster=kube, cache=cache, namespace=namespace)
            assert report.in_sync, report.text()  # the control plane's rules are not drift
            # syncing again writes nothing, so the role never loses what it grants, even for a moment
            async with Recorder(kube, None, [(RBAC, "ClusterRole")]) as seen:
                again = await sync_app(app, [aggregated, part], cluster=kube, cache=cache, options=options)
            assert again.phase is OperationPhase.SUCCEEDED, again.message
            assert {r.action for r in again.resources} == {ResourceAction.UNCHANGED}, again.resources
            assert [e for e in seen.events if e.name == name and e.type == "MODIFIED"] == []
        assert (await kube.get(RBAC, "ClusterRole", name, None))["rules"] == part["rules"]
    finally:
        for obj in (aggregated, part):
            await kube.delete(RBAC, "ClusterRole", obj["metadata"]["name"], None)
