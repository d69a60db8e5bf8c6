"""The app `make demo` syncs works as the README says: sync succeeds healthy, then diff says in sync."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tether.devcluster.cluster import ClusterState

DEMO_APP = Path(__file__).parents[1] / "demo" / "apps" / "hello"


def tether(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tether.cli", *args], capture_output=True, text=True, timeout=240)


def test_demo_app_syncs_healthy_and_then_diffs_clean(devcluster: ClusterState, namespace: str) -> None:
    where = ["--app", "hello", "--dest-namespace", namespace, "--kubeconfig", devcluster.kubeconfig]
    synced = tether("sync", str(DEMO_APP), *where)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "Sync:   Succeeded" in synced.stdout and "Health: Healthy" in synced.stdout
    assert "deleted (HookSucceeded)" in synced.stdout
    compared = tether("diff", str(DEMO_APP), *where)
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert "Synced (3 object(s))" in compared.stdout
