"""GitOps end to end with the real parts, as a person drives it from the command line:
a repository on the git server, secrets in a real pass store, the devcluster, and the
`tether sync` / `tether diff` commands run as processes.

Covers the issue's acceptance path: drift from a direct API patch shows in `tether diff`
(exit 1) and `tether sync` fixes it; a changed secret shows masked and its value never
appears; removing a file from git and syncing with --prune deletes exactly that object.
"""

from __future__ import annotations

import base64
import secrets
import subprocess

from tests.cli import tether
from tether.cluster import Cluster
from tether.devcluster.cluster import ClusterState
from tether.devcluster.gitserver import GitHttpServer
from tether.devcluster.passstore import PassStore


def configmap(name: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  owner: {name}\n"


DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.27
"""

SECRET = """apiVersion: v1
kind: Secret
metadata:
  name: db
stringData:
  password: <pass:e2e/ENTRY#password>
"""


def run(pass_store: PassStore, *args: str) -> subprocess.CompletedProcess[str]:
    return tether(*args, env=pass_store.env)


async def test_sync_drift_secret_change_and_prune_through_git(
    devcluster: ClusterState,
    kube: Cluster,
    namespace: str,
    git_server: GitHttpServer,
    pass_store: PassStore,
    unique_repo_name: str,
) -> None:
    entry = f"db-{secrets.token_hex(3)}"
    first_canary, second_canary = f"canary-{secrets.token_hex(8)}", f"canary-{secrets.token_hex(8)}"
    pass_store.insert(f"e2e/{entry}", f"ignored-first-line\npassword: {first_canary}\n")
    repo = git_server.create_repo(unique_repo_name)
    repo.commit(
        "app",
        files={
            "app/keep.yaml": configmap("keep"),
            "app/gone.yaml": configmap("gone"),
            "app/web.yaml": DEPLOYMENT,
            "app/secret.yaml": SECRET.replace("ENTRY", entry),
            "README.md": "demo\n",
        },
    )
    where = [
        repo.url,
        "--path",
        "app",
        "--app",
        "e2e",
        "--dest-namespace",
        namespace,
        "--kubeconfig",
        devcluster.kubeconfig,
    ]

    def no_canary(result: subprocess.CompletedProcess[str]) -> None:
        shown = result.stdout + result.stderr
        for canary in (first_canary, second_canary):
            assert canary not in shown and base64.b64encode(canary.encode()).decode() not in shown

    synced = run(pass_store, "sync", *where)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    no_canary(synced)
    live_secret = await kube.get("v1", "Secret", "db", namespace)
    assert base64.b64decode(live_secret["data"]["password"]).decode() == first_canary
    clean = run(pass_store, "diff", *where)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    # Drift: a direct API patch shows in the diff and sync puts it back.
    await kube.patch("apps/v1", "Deployment", "web", namespace, {"spec": {"replicas": 5}})
    drifted = run(pass_store, "diff", *where)
    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    assert "replicas: 5" in drifted.stdout and "replicas: 2" in drifted.stdout
    fixed = run(pass_store, "sync", *where)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert (await kube.get("apps/v1", "Deployment", "web", namespace))["spec"]["replicas"] == 2

    # A secret changed in the store: the diff says so, masked, and shows neither value.
    pass_store.insert(f"e2e/{entry}", f"ignored-first-line\npassword: {second_canary}\n")
    secret_diff = run(pass_store, "diff", *where)
    assert secret_diff.returncode == 1, secret_diff.stdout + secret_diff.stderr
    assert "Secret" in secret_diff.stdout and "++++++++" in secret_diff.stdout
    no_canary(secret_diff)
    assert run(pass_store, "sync", *where).returncode == 0

    # A file removed from git is pruned, and only that object.
    repo.commit("drop gone", files={"app/gone.yaml": None})
    without_prune = run(pass_store, "sync", *where)
    assert without_prune.returncode == 0
    assert await kube.get("v1", "ConfigMap", "gone", namespace) is not None
    pruned = run(pass_store, "sync", *where, "--prune")
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    no_canary(pruned)
    assert await kube.get("v1", "ConfigMap", "gone", namespace) is None
    for kind, name, api in (("ConfigMap", "keep", "v1"), ("Secret", "db", "v1"), ("Deployment", "web", "apps/v1")):
        assert await kube.get(api, kind, name, namespace) is not None
    final = run(pass_store, "diff", *where)
    assert final.returncode == 0, final.stdout + final.stderr
