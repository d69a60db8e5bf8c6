"""`tether install`: the CRDs, the controller namespace and its RBAC, applied server-side (idempotent).

The RBAC is what the controller needs: its own kinds and Secrets and Events in its namespace,
and, for the in-cluster destination, every kind (Argo CD's application controller has the
same cluster-wide rights, since apps may deploy anything their project allows).
"""

from __future__ import annotations

import asyncio
from typing import Any

from tether.cluster import Cluster
from tether.errors import TetherError
from tether.model import crds

SERVICE_ACCOUNT = "tether-controller"


def manifests(namespace: str) -> list[dict[str, Any]]:
    """Everything ``install`` applies, CRDs first."""
    labels = {"app.kubernetes.io/name": "tether", "app.kubernetes.io/component": "controller"}
    return [
        *crds(),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": labels}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace, "labels": labels},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "tether-controller", "labels": labels},
            "rules": [
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["get", "list"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "tether-controller", "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "tether-controller"},
            "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}],
        },
    ]


def _established(obj: dict[str, Any] | None) -> bool:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


async def install(cluster: Cluster, namespace: str, *, timeout: float = 60.0) -> list[str]:
    """Apply everything and wait until the CRDs are served; returns one line per object applied."""
    applied = []
    definitions = crds()
    for obj in manifests(namespace):
        await cluster.apply(obj, force=True)
        applied.append(f"{obj['kind']} {obj['metadata']['name']}")
    deadline = asyncio.get_running_loop().time() + timeout
    for crd in definitions:  # a handful of GETs, once: not worth a watch (the CRDs carry no app label)
        name = crd["metadata"]["name"]
        while not _established(await cluster.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)):
            if asyncio.get_running_loop().time() > deadline:
                raise TetherError(f"install: CustomResourceDefinition {name} not Established within {timeout:g}s")
            await asyncio.sleep(0.25)
    cluster.discovery.invalidate()
    return applied


async def installed(cluster: Cluster) -> bool:
    """Whether the Application and Project kinds are served (``tether serve`` installs when not)."""
    for crd in crds():
        got = await cluster.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd["metadata"]["name"])
        if not _established(got):
            return False
    return True
