"""The objects the benchmarks apply.

Flux's benchmark shape: each app is a ServiceAccount, a Deployment scaled to 0, a Service and an
Ingress, all named after the app. The memory benchmark uses apps of 20 objects: one Deployment
with one replica (so a ReplicaSet and a Pod run on the kwok nodes) and 19 ConfigMaps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

APP_LABEL = "tether.dev/app"
TRACKING_ANNOTATION = "tether.dev/tracking-id"
# Resources the API server counts writes for in E2/E3 (what the apps consist of, and their namespace).
FLUX_RESOURCES = frozenset({"namespaces", "serviceaccounts", "deployments", "services", "ingresses"})


def app_name(i: int) -> str:
    return f"app-{i:04d}"


def flux_app(name: str) -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": name}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "labels": dict(labels)}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": dict(labels)},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": dict(labels)},
                "template": {
                    "metadata": {"labels": dict(labels)},
                    "spec": {
                        "serviceAccountName": name,
                        "containers": [
                            {
                                "name": "app",
                                "image": "ghcr.io/stefanprodan/podinfo:6.7.0",
                                "ports": [{"name": "http", "containerPort": 9898, "protocol": "TCP"}],
                                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "labels": dict(labels)},
            "spec": {
                "type": "ClusterIP",
                "selector": dict(labels),
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": name, "labels": dict(labels)},
            "spec": {
                "rules": [
                    {
                        "host": f"{name}.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": name, "port": {"number": 80}}},
                                }
                            ]
                        },
                    }
                ]
            },
        },
    ]


def flux_apps(n: int) -> dict[str, list[dict[str, Any]]]:
    return {app_name(i): flux_app(app_name(i)) for i in range(n)}


def namespace_object(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def write_manifests(path: Path, objects: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    return path


def tracked(obj: dict[str, Any], app: str, namespace: str) -> dict[str, Any]:
    """``obj`` as Tether would apply it for ``app``: tracking label and annotation, namespace set."""
    out = yaml.safe_load(yaml.safe_dump(obj))
    meta = out.setdefault("metadata", {})
    meta["namespace"] = namespace
    meta.setdefault("labels", {})[APP_LABEL] = app
    group = obj["apiVersion"].rpartition("/")[0] if "/" in obj["apiVersion"] else ""
    meta.setdefault("annotations", {})[TRACKING_ANNOTATION] = f"{app}:{group}/{obj['kind']}:{namespace}/{meta['name']}"
    return out


MEMORY_APP_SIZE = 20


def memory_app(name: str, namespace: str) -> list[dict[str, Any]]:
    """20 managed objects: 19 ConfigMaps and a Deployment with one replica (→ a ReplicaSet and a Pod)."""
    labels = {"app.kubernetes.io/name": name}
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{name}-cm-{j:02d}", "labels": dict(labels)},
            "data": {"settings.yaml": f"app: {name}\nindex: {j}\nfeature_flags: [a, b, c]\nreplicas: 1\n"},
        }
        for j in range(MEMORY_APP_SIZE - 1)
    ]
    objects.append(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": dict(labels)},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": dict(labels)},
                "template": {
                    "metadata": {"labels": dict(labels)},
                    "spec": {
                        "containers": [{"name": "app", "image": "ghcr.io/stefanprodan/podinfo:6.7.0"}],
                        "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}],
                    },
                },
            },
        }
    )
    return [tracked(o, name, namespace) for o in objects]
