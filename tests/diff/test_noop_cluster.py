"""The no-op prediction agrees with the real API server, for the kinds of Flux's benchmark shape and more."""

from __future__ import annotations

import copy
from typing import Any

from tether.cluster import Cluster
from tether.diff.noop import apply_is_noop
from tether.resource import mark


def _objects(namespace: str) -> list[dict[str, Any]]:
    meta = {"namespace": namespace}
    labels = {"app": "web"}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web", **meta}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", **meta}, "data": {"a": "1", "b": "x"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec", **meta}, "stringData": {"k": "v"}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", **meta},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "web",
                        "containers": [
                            {
                                "name": "web",
                                "image": "nginx:1.27",
                                "ports": [{"containerPort": 80}],
                                "resources": {"limits": {"memory": "64Mi"}},
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", **meta},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 80}]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "web", **meta},
            "spec": {
                "rules": [
                    {
                        "host": "web.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "web", "port": {"number": 80}}},
                                }
                            ]
                        },
                    }
                ]
            },
        },
    ]


async def _settled_dry_run(kube: Cluster, desired: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(live, dry-run apply of ``desired``) taken with no controller write in between (status updates settle)."""
    meta = desired["metadata"]
    for _ in range(20):
        live = await kube.get(desired["apiVersion"], desired["kind"], meta["name"], meta.get("namespace"))
        assert live is not None
        again = await kube.apply(desired, dry_run=True)
        after = await kube.get(desired["apiVersion"], desired["kind"], meta["name"], meta.get("namespace"))
        assert after is not None
        if after["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]:
            return live, again
    raise AssertionError(f"{desired['kind']} kept changing")


async def test_an_applied_object_is_predicted_unchanged_exactly_when_the_server_agrees(
    kube: Cluster, namespace: str
) -> None:
    for obj in _objects(namespace):
        desired = mark(obj, "noop")
        await kube.apply(desired)
        live, again = await _settled_dry_run(kube, desired)
        assert apply_is_noop(desired, live), obj["kind"]
        # the server agrees: applying it again would store nothing new
        assert again["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"], obj["kind"]
        assert again["metadata"]["managedFields"] == live["metadata"]["managedFields"], obj["kind"]

        changed = copy.deepcopy(desired)
        changed["metadata"].setdefault("labels", {})["extra"] = "yes"
        assert not apply_is_noop(changed, live), obj["kind"]
        fewer = copy.deepcopy(desired)
        fewer["metadata"]["labels"].pop("tether.dev/app")
        assert not apply_is_noop(fewer, live), obj["kind"]
