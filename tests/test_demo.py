"""The app `make demo` syncs works as the README says: sync succeeds healthy, then diff says in sync."""

from __future__ import annotations

from pathlib import Path

from tests.cli import tether
from tether.devcluster.cluster import ClusterState

DEMO_APP = Path(__file__).parents[1] / "demo" / "apps" / "hello"


def test_demo_app_syncs_healthy_and_then_diffs_clean(devcluster: ClusterState, namespace: str) -> None:
    where = ["--app", "hello", "--dest-namespace", namespace, "--kubeconfig", devcluster.kubeconfig]
    synced = tether("sync", str(DEMO_APP), *where)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "Sync:   Succeeded" in synced.stdout and "Health: Healthy" in synced.stdout
    assert "deleted (HookSucceeded)" in synced.stdout
    compared = tether("diff", str(DEMO_APP), *where)
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert "Synced (3 object(s))" in compared.stdout
