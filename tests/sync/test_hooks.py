"""Hook details beyond the corpus examples: one hook in two phases, and a Pod hook that fails."""

from __future__ import annotations

import pytest

from tests.sync.helpers import FAIL_LABEL, Recorder, configmap, job
from tether.cluster import Cluster
from tether.sync import OperationPhase, Phase, SyncOptions, sync_app

pytestmark = pytest.mark.cluster


async def test_a_hook_in_two_phases_runs_in_both(kube: Cluster, namespace: str, app: str) -> None:
    desired = [job("twice", namespace, hook="PreSync,PostSync"), configmap("between", namespace)]
    async with Recorder(kube, namespace, [("batch/v1", "Job"), ("v1", "ConfigMap")]) as seen:
        result = await sync_app(app, desired, cluster=kube, options=SyncOptions(namespace=namespace, timeout=60))
    assert result.phase is OperationPhase.SUCCEEDED, result.message
    assert [a for a in seen.added() if a[1] in ("twice", "between")] == [
        ("Job", "twice"),
        ("ConfigMap", "between"),
        ("Job", "twice"),
    ]
    jobs_added = [e for e in seen.events if e.type == "ADDED" and e.kind == "Job"]
    assert len({e.uid for e in jobs_added}) == 2  # BeforeHookCreation deleted the PreSync run first
    for phase in (Phase.PRE_SYNC, Phase.POST_SYNC):
        assert result.find("Job", "twice", phase).hook_phase is OperationPhase.SUCCEEDED


async def test_a_failing_pod_hook_fails_the_sync(kube: Cluster, namespace: str, app: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "check",
            "namespace": namespace,
            "labels": {FAIL_LABEL: "true"},
            "annotations": {"argocd.argoproj.io/hook": "PostSync"},
        },
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]},
    }
    result = await sync_app(
        app, [configmap("cfg", namespace), pod], cluster=kube, options=SyncOptions(namespace=namespace, timeout=60)
    )
    assert result.phase is OperationPhase.FAILED
    check = result.find("Pod", "check")
    assert check.phase is Phase.POST_SYNC and check.hook_phase is OperationPhase.FAILED and check.health == "Degraded"
    assert "Pod" in result.message and "check" in result.message
