"""Kill and resume: `tether sync --state-file` SIGKILLed in the middle of a wave of argocd-example-apps'
sync-waves, then run again: the new process resumes from the saved state.

The hook Jobs are counted on the cluster: one of each, the running one never created twice
(same uid before and after the restart), and none left behind by the dead process.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from tests.cli import TETHER, tether_async
from tests.cluster.wait import eventually
from tests.render.helpers import CORPUS
from tether.cluster import Cluster
from tether.devcluster.cluster import ClusterState
from tether.sync.operation import RUNNING, SUCCEEDED, OperationState
from tether.sync.run import RUN_ANNOTATION

pytestmark = pytest.mark.cluster

HOOK_PREFIXES = ("upgrade-sql-schema", "maint-page-up", "maint-page-down")


def read(path: Path) -> OperationState | None:
    try:
        return OperationState.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


async def until_hook_running(path: Path, prefix: str, timeout: float = 90) -> OperationState:
    """Poll the state file (the test's view of the process) until hook ``prefix`` is created and unfinished."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        state = read(path)
        if state is not None and any(
            t.action == "hook" and t.hook_name.startswith(prefix) and t.status == RUNNING for t in state.tasks
        ):
            return state
        assert loop.time() < deadline, state
        await asyncio.sleep(0.01)


async def test_sync_killed_mid_wave_resumes_without_duplicate_or_orphaned_hooks(
    kube: Cluster, devcluster: ClusterState, namespace: str, app: str, tmp_path: Path
) -> None:
    state_file = tmp_path / "operation.json"
    args = [
        "sync",
        str(CORPUS),
        "--path",
        "sync-waves",
        "--app",
        app,
        "--dest-namespace",
        namespace,
        "--kubeconfig",
        devcluster.kubeconfig,
        "--timeout",
        "90",
        "--state-file",
        str(state_file),
        "-o",
        "json",
    ]
    process = await asyncio.create_subprocess_exec(
        *TETHER, *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        # The Sync hook of wave 1 is created: the process is in that wave, waiting for it.
        await until_hook_running(state_file, "maint-page-up")
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    saved = read(state_file)
    assert saved is not None and saved.phase == "Running" and (saved.sync_phase, saved.wave) == ("Sync", 1)
    hook = next(t for t in saved.tasks if t.hook_name == "maint-page-up")
    presync = next(t for t in saved.tasks if t.hook_name.startswith("upgrade-sql-schema"))
    assert presync.status == SUCCEEDED and hook.status == RUNNING
    assert "manifest" not in state_file.read_text() and "spec" not in state_file.read_text()
    before = await kube.get("batch/v1", "Job", "maint-page-up", namespace)
    assert before is not None

    code, out, err = await tether_async(*args, timeout=180)
    assert code == 0, err + out
    assert f"resuming the sync started at {saved.started_at} (run {saved.run_id})" in err
    final = read(state_file)
    assert final is not None and final.phase == "Succeeded" and final.run_id == saved.run_id

    items, _ = await kube.list("batch/v1", "Job", namespace)
    names = sorted(j["metadata"]["name"] for j in items)
    for prefix in HOOK_PREFIXES:  # one of each: nothing run twice, nothing orphaned by the dead process
        assert len([n for n in names if n.startswith(prefix)]) == 1, names
    assert presync.hook_name in names  # the PreSync hook of the first process, not a second instance
    after = next(j for j in items if j["metadata"]["name"] == "maint-page-up")
    assert after["metadata"]["uid"] == before["metadata"]["uid"]  # the running hook was waited for, not recreated
    assert {j["metadata"]["annotations"][RUN_ANNOTATION] for j in items} == {saved.run_id}
    assert all((j.get("status") or {}).get("succeeded") == 1 for j in items)
    # The app converged: the waves after the restart ran.
    for name in ("backend", "frontend"):
        await eventually(
            lambda name=name: kube.get("apps/v1", "ReplicaSet", name, namespace),
            lambda rs: rs is not None and (rs.get("status") or {}).get("readyReplicas") == 1,
            timeout=30,
        )
    assert await kube.get("v1", "Service", "frontend", namespace) is not None
    result = json.loads(out)
    rows = {r["name"]: r for r in result["resources"]}
    assert rows[presync.hook_name]["message"] == "completed before the restart"
    assert rows["maint-page-up"]["hookPhase"] == "Succeeded"
    assert rows["maint-page-down"]["hookPhase"] == "Succeeded"  # the wave after the restart ran its hook
