"""The CRDs: generated from the models, checked in up to date, structural, and accepted by a real API server
that then stores Argo CD example Applications and a Project without pruning a field."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.render.helpers import CORPUS
from tether.cluster import Cluster, ClusterError
from tether.model import Application, Project, crds
from tether.model.argocd import convert
from tether.model.crd import CRD_DIR, crd_files
from tether.render.manifests import objects_from_yaml

CRD = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")
APPS_CHART = CORPUS / "apps"
HELM = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "helm"


def test_checked_in_crds_are_the_generated_ones() -> None:
    files = crd_files()
    assert sorted(path.name for path in files) == ["applications.tether.dev.yaml", "projects.tether.dev.yaml"]
    for path, text in files.items():
        assert path.parent == CRD_DIR
        assert path.read_text() == text, f"{path.name} is stale: run `python -m tether.model.crd`"
        assert yaml.safe_load(text) in crds()


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = []
    if isinstance(node, dict):
        out.append((path, node))
        for key, value in node.get("properties", {}).items():
            out.extend(_walk(value, f"{path}.{key}"))
        if isinstance(node.get("items"), dict):
            out.extend(_walk(node["items"], f"{path}[]"))
        if isinstance(node.get("additionalProperties"), dict):
            out.extend(_walk(node["additionalProperties"], f"{path}{{}}"))
    return out


@pytest.mark.parametrize("index", [0, 1])
def test_schemas_are_structural(index: int) -> None:
    crd = crds()[index]
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        for banned in ("$ref", "$defs", "anyOf", "oneOf", "allOf", "default", "title", "const"):
            assert banned not in node, f"{path}: {banned}"
        special = node.get("x-kubernetes-preserve-unknown-fields") or node.get("x-kubernetes-int-or-string")
        assert node.get("type") or special, f"{path}: no type"
        assert not ("properties" in node and "additionalProperties" in node), path
    names = crd["spec"]["names"]
    assert names["shortNames"] == (["app", "apps"] if index == 0 else ["proj", "projs"])


def test_application_crd_shape() -> None:
    crd = crds()[0]
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Sync Status"] == ".status.sync.status"
    assert columns["Health Status"] == ".status.health.status"
    assert columns["Revision"] == ".status.sync.revision"
    props = version["schema"]["openAPIV3Schema"]["properties"]
    assert props["status"]["x-kubernetes-preserve-unknown-fields"] is True
    assert props["operation"]["x-kubernetes-preserve-unknown-fields"] is True
    helm = props["spec"]["properties"]["source"]["properties"]["helm"]["properties"]
    assert helm["valuesObject"]["x-kubernetes-preserve-unknown-fields"] is True
    assert helm["values"] == {"x-kubernetes-preserve-unknown-fields": True, "nullable": True}
    replicas = props["spec"]["properties"]["source"]["properties"]["kustomize"]["properties"]["replicas"]
    assert replicas["items"]["properties"]["count"] == {"x-kubernetes-int-or-string": True}
    assert props["spec"]["required"] == ["destination"]


# --------------------------------------------------------------------- against the devcluster


def _established(obj: dict[str, Any] | None) -> bool:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


@pytest.fixture(scope="module")
async def installed(kube: Cluster) -> None:
    """Both CRDs applied and Established. They are left installed: other tests (the controller's) use them."""
    for crd in crds():
        await kube.apply(crd)
    deadline = time.monotonic() + 60
    for crd in crds():
        while not _established(await kube.get(*CRD, crd["metadata"]["name"])):
            assert time.monotonic() < deadline, f"{crd['metadata']['name']} not Established within 60 s"
            await asyncio.sleep(0.2)


def _example_applications(namespace: str) -> list[dict[str, Any]]:
    rendered = subprocess.run(
        [str(HELM), "template", "apps", str(APPS_CHART)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    result = convert(objects_from_yaml(rendered), namespace)
    assert not result.errors and len(result.objects) == 14
    return result.objects


def _everything_app(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "tether.dev/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": "everything",
            "namespace": namespace,
            "annotations": {"argocd.argoproj.io/refresh": "hard"},
        },
        "spec": {
            "project": "team",
            "sources": [
                {
                    "repoURL": "https://git.example/charts.git",
                    "path": "web",
                    "targetRevision": "v1.*",
                    "helm": {
                        "releaseName": "web",
                        "valueFiles": ["$values/web.yaml"],
                        "values": "replicas: 2\n",
                        "valuesObject": {"image": {"tag": "1.2"}, "list": [1, "two", {"three": None}]},
                        "parameters": [{"name": "a", "value": "1", "forceString": True}],
                    },
                },
                {"repoURL": "https://git.example/values.git", "ref": "values"},
                {
                    "repoURL": "https://git.example/k.git",
                    "path": "overlay",
                    "kustomize": {
                        "namePrefix": "p-",
                        "images": ["web=web:2"],
                        "replicas": [{"name": "web", "count": 3}],
                        "patches": [
                            {
                                "patch": "- op: add\n  path: /spec/paused\n  value: true\n",
                                "target": {"group": "apps", "kind": "Deployment", "labelSelector": "tier=web"},
                                "options": {"allowNameChange": True},
                            },
                            {"path": "patches/replicas.yaml"},
                        ],
                        "components": ["../components/*"],
                        "ignoreMissingComponents": True,
                        "commonLabels": {"team": "web"},
                        "labelWithoutSelector": True,
                        "labelIncludeTemplates": True,
                    },
                },
                {"repoURL": "https://git.example/p.git", "plugin": {"name": "x", "env": [{"name": "A", "value": "b"}]}},
            ],
            "destination": {"name": "in-cluster", "namespace": "web"},
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True, "allowEmpty": False, "enabled": True},
                "syncOptions": ["CreateNamespace=true"],
                "retry": {"limit": -1, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}},
                "managedNamespaceMetadata": {"labels": {"a": "b"}, "annotations": {"c": "d"}},
            },
            "ignoreDifferences": [
                {"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]},
                {"kind": "*", "jqPathExpressions": [".metadata.labels.x"], "managedFieldsManagers": ["hpa"]},
            ],
            "revisionHistoryLimit": 3,
            "info": [{"name": "url", "value": "https://example"}],
        },
        "operation": {
            "sync": {
                "revision": "abc",
                "prune": True,
                "resources": [{"kind": "Deployment", "group": "apps", "name": "w"}],
            },
            "initiatedBy": {"username": "alice"},
            "retry": {"limit": 2},
        },
    }


def _project(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "tether.dev/v1alpha1",
        "kind": "Project",
        "metadata": {"name": "team", "namespace": namespace},
        "spec": {
            "description": "Team A",
            "sourceRepos": ["https://git.example/*", "!https://git.example/secret"],
            "destinations": [{"server": "*", "namespace": "web"}, {"name": "in-cluster", "namespace": "!kube-*"}],
            "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
            "clusterResourceBlacklist": [{"group": "*", "kind": "ClusterRole"}],
            "namespaceResourceWhitelist": [{"group": "apps", "kind": "*"}],
            "namespaceResourceBlacklist": [{"group": "", "kind": "ResourceQuota"}],
            "syncWindows": [
                {
                    "kind": "deny",
                    "schedule": "0 22 * * *",
                    "duration": "1h",
                    "applications": ["*"],
                    "manualSync": True,
                    "timeZone": "Europe/Berlin",
                }
            ],
            "orphanedResources": {"warn": True, "ignore": [{"kind": "ConfigMap", "name": "kube-root-ca.crt"}]},
            "sourceNamespaces": ["team-*"],
            "signatureKeys": [{"keyID": "ABC"}],
            "roles": [
                {"name": "ci", "policies": ["p, proj:team:ci, applications, get, team/*, allow"], "jwtTokens": []}
            ],
        },
    }


@pytest.mark.cluster
async def test_api_server_stores_applications_and_projects_unchanged(
    kube: Cluster, installed: None, namespace: str
) -> None:
    sent = [_project(namespace), _everything_app(namespace), *_example_applications(namespace)]
    try:
        for obj in sent:
            await kube.apply(obj)
        for obj in sent:
            got = await kube.get(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], namespace)
            assert got is not None
            for field in ("spec", "operation"):
                assert got.get(field) == obj.get(field), f"{obj['metadata']['name']}: {field} changed"
            for field in ("annotations", "finalizers"):
                assert got["metadata"].get(field) == obj["metadata"].get(field)
            model = Application if obj["kind"] == "Application" else Project
            model.from_object(got)  # what the server returns parses
        # status: whatever the controller writes comes back whole, through the status subresource
        status = {
            "sync": {"status": "Synced", "revision": "abc", "comparedTo": {"destination": {"name": "in-cluster"}}},
            "health": {"status": "Healthy", "lastTransitionTime": "2024-01-01T00:00:00Z"},
            "resources": [{"group": "apps", "kind": "Deployment", "name": "w", "requiresPruning": False}],
            "operationState": {"phase": "Succeeded", "syncResult": {"resources": [{"hookPhase": "x"}]}, "new": [1]},
            "history": [{"id": 0, "revision": "abc", "deployedAt": "2024-01-01T00:00:00Z"}],
            "somethingNew": {"deep": {"er": [1, 2]}},
        }
        await kube.patch(
            "tether.dev/v1alpha1", "Application", "everything", namespace, {"status": status}, subresource="status"
        )
        got = await kube.get("tether.dev/v1alpha1", "Application", "everything", namespace)
        assert got is not None and got["status"] == status
        listed, _ = await kube.list("tether.dev/v1alpha1", "Application", namespace)
        assert len(listed) == len(sent) - 1
    finally:
        for obj in sent:
            if obj["metadata"].get("finalizers"):  # nothing here would remove them; let the namespace go
                await kube.patch(
                    obj["apiVersion"],
                    obj["kind"],
                    obj["metadata"]["name"],
                    namespace,
                    {"metadata": {"finalizers": None}},
                )


@pytest.mark.cluster
async def test_api_server_refuses_what_the_schema_forbids(kube: Cluster, installed: None, namespace: str) -> None:
    bad = _everything_app(namespace)
    bad["metadata"]["name"] = "bad"
    bad["spec"]["revisionHistoryLimit"] = "ten"
    with pytest.raises(ClusterError, match="revisionHistoryLimit"):
        await kube.apply(bad)
    bad["spec"]["revisionHistoryLimit"] = 3
    bad["spec"]["syncPolicy"]["automated"]["prune"] = "yes"
    with pytest.raises(ClusterError, match="prune"):
        await kube.apply(bad)
    assert await kube.get("tether.dev/v1alpha1", "Application", "bad", namespace) is None
