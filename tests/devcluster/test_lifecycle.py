"""`tether devcluster` as a user drives it: up, status, kubeconfig, faults, down leaves nothing."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import tether
from tether.devcluster import cluster
from tether.devcluster.cluster import ClusterState, DevClusterError


def _running(pids: dict[str, int]) -> list[str]:
    return [c for c, pid in pids.items() if Path(f"/proc/{pid}").exists() and _not_zombie(pid)]


def _not_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def test_cli_up_status_kubeconfig_down_leaves_no_process(devcluster: ClusterState) -> None:
    """A second named cluster beside the session one: the full CLI life cycle."""
    name = f"side-{os.getpid()}"
    started = tether("devcluster", "up", "--name", name)
    assert started.returncode == 0, started.stderr
    try:
        state = cluster.load_state(name)
        assert state is not None and state.server != devcluster.server
        path = tether("devcluster", "kubeconfig", "--name", name).stdout.strip()
        nodes = subprocess.run(
            [str(Path(sys.prefix) / "bin" / "kubectl"), "--kubeconfig", path, "get", "nodes", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        ready = [
            n
            for n in json.loads(nodes.stdout)["items"]
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
        ]
        assert len(ready) == 2
        shown = tether("devcluster", "status", "--name", name)
        assert shown.returncode == 0
        for component, pid in state.pids.items():
            assert f"running, pid {pid}" in shown.stdout and component in shown.stdout
        again = tether("devcluster", "up", "--name", name)
        assert again.returncode != 0 and "already up" in again.stderr
    finally:
        stopped = tether("devcluster", "down", "--name", name)
    assert stopped.returncode == 0, stopped.stderr
    assert _running(state.pids) == []
    assert not Path(state.data_dir).exists()
    assert tether("devcluster", "status", "--name", name).returncode == 1
    assert cluster.status(devcluster.name) and all(cluster.status(devcluster.name).values())


def test_port_in_use_is_refused_and_leaves_nothing(devcluster: ClusterState) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = tether("devcluster", "up", "--name", f"busy-{os.getpid()}", "--apiserver-port", str(port))
    assert result.returncode != 0
    assert "kube-apiserver" in result.stderr and str(port) in result.stderr
    assert cluster.load_state(f"busy-{os.getpid()}") is None


def test_component_dying_at_start_names_it_and_its_log(devcluster: ClusterState, tmp_path: Path, monkeypatch) -> None:
    """A broken etcd data dir makes etcd exit: the error names the component and its log."""
    name = f"broken-{os.getpid()}"
    real = cluster._command_lines

    def broken_etcd(state, data, bins):
        argv = real(state, data, bins)
        argv["etcd"].append("--no-such-flag")
        return argv

    monkeypatch.setattr(cluster, "_command_lines", broken_etcd)
    try:
        with pytest.raises(DevClusterError) as failure:
            cluster.up(name, timeout=30)
        message = str(failure.value)
        assert "etcd" in message and str(cluster.log_file(name, "etcd")) in message
        assert "no-such-flag" in cluster.log_file(name, "etcd").read_text()
        assert cluster.load_state(name) is None
        leftovers = subprocess.run(["pgrep", "-f", f"tether-devcluster-{name}-"], capture_output=True, text=True)
        assert leftovers.stdout.strip() == "", "a component was left running"
    finally:
        shutil.rmtree(cluster.state_dir(name), ignore_errors=True)  # the logs a failed start keeps


def test_stale_state_is_cleaned_up_on_up(devcluster: ClusterState, tmp_path: Path) -> None:
    name = f"stale-{os.getpid()}"
    stale = ClusterState(
        name=name,
        data_dir=str(tmp_path / "gone"),
        kubeconfig=str(tmp_path / "kc"),
        server="https://127.0.0.1:1",
        token="x",
        pids={"etcd": 2**22 - 1},
    )
    cluster._save(stale)
    assert cluster.status(name) == {"etcd": None}
    state = cluster.up(name)
    try:
        assert all(cluster.status(name).values())
    finally:
        cluster.down(name)
    assert _running(state.pids) == []


def test_invalid_name_is_refused() -> None:
    with pytest.raises(DevClusterError, match="invalid devcluster name"):
        cluster.up("../etc")
