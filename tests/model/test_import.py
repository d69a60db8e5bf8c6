"""`tether import`: Argo CD manifests in, Tether manifests out, every dropped field reported.

The main test renders Argo CD's app-of-apps example chart with the real helm binary and
pipes the result through the command, as a user would."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from tests.render.helpers import CORPUS
from tether.cli.importing import import_command
from tether.model import Application, Project
from tether.model.argocd import convert
from tether.render.manifests import objects_from_yaml

APPS_CHART = CORPUS / "apps"
HELM = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "helm"


def run(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(import_command, list(args), input=stdin, catch_exceptions=False)


def test_the_app_of_apps_example_converts(tmp_path: Path) -> None:
    rendered = subprocess.run(
        [str(HELM), "template", "apps", str(APPS_CHART)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    argo = objects_from_yaml(rendered)
    assert len(argo) == 14 and {obj["apiVersion"] for obj in argo} == {"argoproj.io/v1alpha1"}

    result = run("-", stdin=rendered)
    assert result.exit_code == 0, result.output
    converted = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert len(converted) == len(argo)
    for before, after in zip(argo, converted, strict=True):
        app = Application.from_object(after)
        assert after["apiVersion"] == "tether.dev/v1alpha1"
        assert app.name == before["metadata"]["name"] and app.namespace == "tether-system"
        assert after["spec"]["source"] == before["spec"]["source"]
        assert after["spec"]["destination"] == before["spec"]["destination"]
        assert after["spec"]["syncPolicy"] == before["spec"]["syncPolicy"]
        assert app.metadata.finalizers == ("resources-finalizer.tether.dev",)
        assert app.spec.automated is not None and app.spec.automated.prune and app.spec.automated.self_heal
    warnings = result.stderr.splitlines()
    plugins = [name for name in (o["metadata"]["name"] for o in argo) if "plugin" in name]
    assert len(plugins) == 3
    assert warnings == [
        f"warning: Application/{name}: spec.source.plugin: config management plugins are not supported: kept, so "
        "the app fails to render with that error"
        for name in plugins
    ]

    # several files, and --namespace
    source = tmp_path / "apps.yaml"
    source.write_text(rendered)
    twice = run(str(source), str(source), "--namespace", "gitops")
    assert twice.exit_code == 0
    docs = [doc for doc in yaml.safe_load_all(twice.stdout) if doc]
    assert len(docs) == 28 and {doc["metadata"]["namespace"] for doc in docs} == {"gitops"}


ARGO_APP = """
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: shop
  namespace: argocd
  uid: 0d0a
  resourceVersion: "42"
  creationTimestamp: "2024-01-01T00:00:00Z"
  annotations:
    argocd.argoproj.io/sync-wave: "1"
    kubectl.kubernetes.io/last-applied-configuration: '{"big": "copy"}'
  labels: {team: a}
  finalizers:
  - resources-finalizer.argocd.argoproj.io/background
  - example.com/other
spec:
  project: team
  source:
    repoURL: https://charts.example.com
    chart: shop
    targetRevision: 1.2.3
    helm:
      version: v3
      valuesObject: {replicas: 2}
  destination: {name: in-cluster, namespace: shop}
  syncPolicy:
    syncOptions: [CreateNamespace=true, ServerSideDiff=true]
    retry: {limit: 2}
  sourceHydrator:
    drySource: {repoURL: https://x, path: y, targetRevision: main}
status:
  sync: {status: Synced}
operation:
  sync: {revision: abc}
---
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: team, namespace: argocd}
spec:
  sourceRepos: ['*']
  destinations: [{server: '*', namespace: 'shop'}]
  permitOnlyProjectScopedClusters: true
  roles: [{name: ci, policies: ['p, proj:team:ci, applications, sync, team/*, allow']}]
  syncWindows: [{kind: deny, schedule: '0 22 * * *', duration: 1h, applications: ['*']}]
---
apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: many, namespace: argocd}
spec: {generators: []}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
"""


def test_what_cannot_be_carried_over_is_dropped_and_said() -> None:
    result = run("-", stdin=ARGO_APP)
    assert result.exit_code == 0, result.output
    app_doc, project_doc = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    app = Application.from_object(app_doc)
    project = Project.from_object(project_doc)
    assert app_doc["metadata"] == {
        "name": "shop",
        "namespace": "tether-system",
        "annotations": {"argocd.argoproj.io/sync-wave": "1"},
        "labels": {"team": "a"},
        "finalizers": ["resources-finalizer.tether.dev"],
    }
    assert "status" not in app_doc and "operation" not in app_doc and "sourceHydrator" not in app_doc["spec"]
    assert app.spec.sync_options == ("CreateNamespace=true",)
    assert app.spec.source is not None and app.spec.source.chart == "shop"  # kept: render refuses it clearly
    assert (
        project.name == "team" and project.spec.roles and "permitOnlyProjectScopedClusters" not in project_doc["spec"]
    )
    stderr = result.stderr
    for expected in [
        "warning: Application/shop: metadata.uid: dropped (set by the API server)",
        "warning: Application/shop: metadata.resourceVersion: dropped",
        "warning: Application/shop: metadata.annotations.kubectl.kubernetes.io/last-applied-configuration: dropped",
        "warning: Application/shop: metadata.finalizers[0]: resources-finalizer.argocd.argoproj.io/background became "
        "resources-finalizer.tether.dev (background deletion is not kept)",
        "warning: Application/shop: metadata.finalizers[1]: example.com/other dropped",
        "warning: Application/shop: status: dropped",
        "warning: Application/shop: operation: dropped",
        "warning: Application/shop: spec.syncPolicy.syncOptions[1]: unknown sync option 'ServerSideDiff'; dropped",
        "warning: Application/shop: spec.sourceHydrator: source hydration is not supported; dropped",
        "warning: Application/shop: spec.source.chart: helm repository charts are not fetched",
        "warning: Application/shop: spec.source.helm.version: accepted and ignored",
        "warning: AppProject/team: spec.permitOnlyProjectScopedClusters: project-scoped clusters are not supported",
        "warning: AppProject/team: spec.roles: project roles are kept but not enforced",
        "skipped: ApplicationSet/many: ApplicationSets are not supported",
        "skipped: ConfigMap/c: not an Argo CD object (v1); skipped",
    ]:
        assert expected in stderr, f"missing: {expected}\n{stderr}"


def test_an_invalid_application_is_an_error_and_the_rest_still_prints() -> None:
    text = ARGO_APP.replace("destination: {name: in-cluster, namespace: shop}", "destination: {namespace: shop}")
    result = run("-", stdin=text)
    assert result.exit_code == 2
    assert "error: Application/shop: spec.destination: set server" in result.stderr
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert [doc["kind"] for doc in docs] == ["Project"]


def test_unreadable_input_exits_2_and_prints_nothing(tmp_path: Path) -> None:
    missing = run(str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2 and "nope.yaml: cannot read" in missing.stderr and missing.stdout == ""
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: Application\nmetadata: [unclosed\n")
    result = run(str(broken))
    assert result.exit_code == 2 and "broken.yaml" in result.stderr and result.stdout == ""
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
        for i in range(9)
    )
    assert run("-", stdin=bomb).exit_code == 2


def test_other_namespaces_are_kept_and_flagged() -> None:
    result = convert(
        [
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                "metadata": {"name": "a", "namespace": "team-a"},
                "spec": {"source": {"repoURL": "https://x"}, "destination": {"server": "https://s", "namespace": "n"}},
            }
        ]
    )
    assert result.objects[0]["metadata"]["namespace"] == "team-a"
    assert result.notes == [
        "Application/a: metadata.namespace: 'team-a' kept; Tether reads Applications only in its own namespace"
    ]


def test_kustomize_patches_components_and_label_options_carry_over() -> None:
    kustomize = {
        "namePrefix": "p-",
        "patches": [
            {
                "target": {"kind": "Deployment", "name": "web"},
                "patch": "- op: replace\n  path: /spec/replicas\n  value: 2\n",
            },
            {"path": "patches/memory.yaml", "options": {"allowNameChange": True}},
        ],
        "components": ["../components/monitoring"],
        "ignoreMissingComponents": True,
        "labelWithoutSelector": True,
        "commonAnnotationsEnvsubst": True,
        "kubeVersion": "1.30",
        "apiVersions": ["monitoring.coreos.com/v1"],
    }
    app = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "web", "namespace": "argocd"},
        "spec": {
            "source": {"repoURL": "https://git.example/web.git", "path": "overlays/prod", "kustomize": kustomize},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "web"},
        },
    }
    result = convert([app])
    assert not result.errors
    carried = result.objects[0]["spec"]["source"]["kustomize"]
    assert carried == kustomize
    assert result.notes == []


def test_a_skip_reconcile_annotation_is_kept_and_said() -> None:
    """Tether reads Argo CD's skip-reconcile too: an app paused in Argo CD arrives paused, and the import says so."""

    def app(annotations: dict[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "paused", "annotations": annotations},
            "spec": {"source": {"repoURL": "https://x"}, "destination": {"server": "https://s", "namespace": "n"}},
        }

    paused = convert([app({"argocd.argoproj.io/skip-reconcile": "true"})])
    assert paused.objects[0]["metadata"]["annotations"] == {"argocd.argoproj.io/skip-reconcile": "true"}
    assert paused.notes == [
        "Application/paused: metadata.annotations: skip-reconcile kept: Tether reads it too and leaves the app "
        "alone until it is removed"
    ]
    assert convert([app({"argocd.argoproj.io/skip-reconcile": "false"})]).notes == []
