"""A sync as an operation: its small saved state, terminate and cancel, against the devcluster."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.cluster.wait import eventually
from tests.sync.helpers import configmap, job
from tether.cluster import Cluster
from tether.sync import OperationPhase, ResourceAction, SyncOptions
from tether.sync.operation import RUNNING, OperationState, TaskState
from tether.sync.run import RUN_ANNOTATION, SyncOperation


def test_state_is_small_plain_json_and_round_trips() -> None:
    state = OperationState(
        app="web",
        run_id="abc123",
        started_at="2024-01-01T00:00:00+00:00",
        step=2,
        sync_phase="Sync",
        wave=1,
        tasks=[TaskState("PreSync", 0, "batch", "Job", "ns", "migrate-presync-abc123", "hook", RUNNING, "x")],
    )
    text = json.dumps(state.to_dict())
    back = OperationState.from_dict(json.loads(text))
    assert back == state
    assert set(state.to_dict()["tasks"][0]) == {
        "phase",
        "wave",
        "group",
        "kind",
        "namespace",
        "name",
        "action",
        "status",
        "hookName",
    }


def forever_hook(namespace: str, wave: int = 1) -> dict[str, Any]:
    """A hook Pod that never completes: kwok keeps it Running, and a Running Pod with restartPolicy Never
    is Progressing (with Always it would count as Healthy)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "forever",
            "namespace": namespace,
            "annotations": {"argocd.argoproj.io/hook": "Sync", "argocd.argoproj.io/sync-wave": str(wave)},
        },
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]},
    }


async def started_hook(operation: SyncOperation, name: str, timeout: float = 60) -> None:
    """Wait until the operation's saved state shows hook ``name`` created and not yet finished."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not any(t.hook_name == name and t.status == RUNNING for t in operation.state.tasks):
        assert loop.time() < deadline, operation.state.to_dict()
        await asyncio.sleep(0.05)


@pytest.mark.cluster
@pytest.mark.parametrize("how", ["terminate", "cancel"])
async def test_terminate_or_cancel_ends_failed_deletes_running_hooks_and_runs_no_syncfail(
    kube: Cluster, namespace: str, app: str, how: str
) -> None:
    desired = [
        configmap("cfg", namespace, wave=0),
        forever_hook(namespace, wave=1),
        configmap("later", namespace, wave=2),
        job("on-fail", namespace, hook="SyncFail"),
    ]
    saved: list[dict[str, Any]] = []
    operation = SyncOperation(
        app,
        desired,
        cluster=kube,
        options=SyncOptions(namespace=namespace, timeout=120),
        on_state=lambda s: saved.append(s.to_dict()),
    )
    task = asyncio.create_task(operation.run())
    await started_hook(operation, "forever")
    pod = await kube.get("v1", "Pod", "forever", namespace)
    assert pod is not None and pod["metadata"]["annotations"][RUN_ANNOTATION] == operation.state.run_id
    if how == "terminate":
        operation.terminate()
    else:
        task.cancel()
    result = await asyncio.wait_for(task, 30)

    assert result.phase is OperationPhase.FAILED and result.reason == "Terminated", result.message
    assert "terminated" in result.message and "cfg" in result.message  # what was applied is named
    assert result.find("ConfigMap", "cfg").action is ResourceAction.CREATED
    hook = result.find("Pod", "forever")
    assert hook.hook_phase is OperationPhase.FAILED and "terminated" in hook.message
    assert result.find("ConfigMap", "later") is None and await kube.get("v1", "ConfigMap", "later", namespace) is None
    # As gitops-engine's Terminate: the running hook is deleted, SyncFail hooks do not run.
    await eventually(lambda: kube.get("v1", "Pod", "forever", namespace), lambda p: p is None, timeout=30)
    assert await kube.get("batch/v1", "Job", "on-fail", namespace) is None
    assert saved[-1]["phase"] == "Failed" and any(s["phase"] == "Terminating" for s in saved)
    assert operation.state.phase == "Failed"
