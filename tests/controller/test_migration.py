"""Taking over objects written by `kubectl apply` (client-side): Argo CD's client-side apply migration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.controller.conftest import application, eventually
from tests.controller.test_loop import app_status, quiet, synced_healthy
from tether.cluster import Cluster
from tether.controller.controller import Controller
from tether.devcluster.cluster import ClusterState
from tether.devcluster.gitserver import GitHttpServer

OFF = "    argocd.argoproj.io/sync-options: ClientSideApplyMigration=false\n"


def deployment(*env: str) -> str:
    variables = "".join(f"        - {{name: {name}, value: '1'}}\n" for name in env)
    return (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: taken\nspec:\n  replicas: 1\n"
        "  selector: {matchLabels: {app: taken}}\n  template:\n    metadata: {labels: {app: taken}}\n"
        "    spec:\n      containers:\n      - name: web\n        image: nginx\n        env:\n" + variables
    )


def configmap(annotations: str, **data: str) -> str:
    values = "".join(f"  {k}: '{v}'\n" for k, v in data.items())
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: left\n  annotations:\n{annotations}data:\n{values}"


def kubectl_apply(state: ClusterState, namespace: str, manifest: str) -> None:
    """What a person (or Argo CD before server-side apply) did: `kubectl apply`, client-side."""
    subprocess.run(
        [str(Path(sys.prefix) / "bin" / "kubectl"), "--kubeconfig", str(state.kubeconfig), "-n", namespace]
        + ["apply", "-f", "-"],
        input=manifest,
        text=True,
        capture_output=True,
        timeout=60,
        check=True,
    )


def managers(obj: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (e["manager"], e["operation"]) for e in obj["metadata"].get("managedFields") or [] if not e.get("subresource")
    }


async def test_fields_kubectl_apply_set_and_git_dropped_are_removed_unless_the_migration_is_off(
    controller: Controller,
    kube: Cluster,
    devcluster: ClusterState,
    namespace: str,
    git_server: GitHttpServer,
    unique_repo_name: str,
) -> None:
    kubectl_apply(devcluster, namespace, deployment("KEEP", "OLD"))
    kubectl_apply(devcluster, namespace, configmap("    note: by-hand\n", a="1", old="1"))
    repo = git_server.create_repo(unique_repo_name)
    repo.commit(
        "taken over",
        files={"app/deploy.yaml": deployment("KEEP"), "app/cm.yaml": configmap(OFF, a="1")},
    )
    spec = {"syncPolicy": {"automated": {"prune": True, "selfHeal": True}}}
    await kube.apply(application("takeover", namespace, repo.url, "app", namespace, **spec))

    async def env() -> list[str]:
        live = await kube.get("apps/v1", "Deployment", "taken", namespace) or {}
        return [e["name"] for e in live["spec"]["template"]["spec"]["containers"][0].get("env") or []]

    # OLD is owned by kubectl's client-side apply: server-side apply alone would leave it for ever
    await eventually(env, lambda names: names == ["KEEP"], timeout=60)
    await eventually(lambda: app_status(kube, namespace, "takeover"), synced_healthy, timeout=60)
    taken = await kube.get("apps/v1", "Deployment", "taken", namespace)
    assert taken is not None and ("kubectl-client-side-apply", "Update") not in managers(taken)
    assert ("tether", "Apply") in managers(taken)
    assert "kubectl.kubernetes.io/last-applied-configuration" in taken["metadata"]["annotations"]  # nobody's now
    left = await kube.get("v1", "ConfigMap", "left", namespace)
    assert left is not None and left["data"] == {"a": "1", "old": "1"}  # ClientSideApplyMigration=false
    assert ("kubectl-client-side-apply", "Update") in managers(left)
    # taken over once: comparing again (the ConfigMap still has a client-side manager) writes nothing
    await quiet(controller)
    before = kube.requests.snapshot()
    for _ in range(2):
        controller.queue.add("takeover", "drift")
        controller.queue.add("takeover", "poll")
        await quiet(controller)
    spent = kube.requests.snapshot() - before
    assert spent.writes == 0 and spent.dry_runs == 0, dict(spent)
