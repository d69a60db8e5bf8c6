"""The ``--max-syncs`` slots: an operation that only waits (for health, a retry's backoff, a sync
window) holds none, so one app's long wait never holds up another app's sync; and retries as Argo
CD's, for a sync that erred before it ran as for one that failed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.controller.conftest import API, application, eventually, project, running_controller
from tests.controller.test_loop import app_status, configmap, synced_healthy
from tether.cluster import Cluster
from tether.controller.controller import Controller
from tether.controller.operations import SyncSlot
from tether.devcluster.gitserver import GitHttpServer
from tether.devcluster.passstore import PassStore

UNSCHEDULABLE = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: stuck
spec:
  replicas: 1
  selector: {matchLabels: {app: stuck}}
  template:
    metadata: {labels: {app: stuck}}
    spec:
      nodeSelector: {tether.dev/no-such-node: "true"}
      containers: [{name: web, image: nginx}]
"""
LATER_WAVE = """apiVersion: v1
kind: ConfigMap
metadata:
  name: after
  annotations: {argocd.argoproj.io/sync-wave: "1"}
data: {value: one}
"""
BAD_PORT = "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\nspec:\n  ports:\n    - port: 99999\n"


@pytest.fixture
async def one_slot(
    kube: Cluster, crds_installed: None, namespace: str, tmp_path: Path, pass_store: PassStore
) -> AsyncIterator[Controller]:
    """A controller with a single sync slot: whatever holds it holds up every other sync."""
    async with running_controller(kube, namespace, tmp_path, pass_store, max_syncs=1, sync_timeout=240.0) as c:
        yield c


def operation(status: dict[str, Any]) -> dict[str, Any]:
    return status.get("operationState") or {}


async def quick_app_syncs_meanwhile(
    controller: Controller, kube: Cluster, namespace: str, repo_url: str, waiting: str
) -> None:
    """An app created now syncs within seconds, while ``waiting``'s operation is still running."""
    assert controller.memory_of(waiting).operating
    quick = f"{waiting}-quick"  # app names are unique across the tests running at once
    await kube.apply(application(quick, namespace, repo_url, "quick", namespace, syncPolicy={"automated": {}}))
    await eventually(lambda: app_status(kube, namespace, quick), synced_healthy, timeout=20)
    assert controller.memory_of(waiting).operating


async def test_a_sync_waiting_for_health_holds_up_no_other_sync(
    one_slot: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    repo.commit(
        "v1",
        files={"slot-waits/d.yaml": UNSCHEDULABLE, "slot-waits/c.yaml": LATER_WAVE, "quick/c.yaml": configmap("quick")},
    )
    await kube.apply(
        application("slot-waits", namespace, repo.url, "slot-waits", namespace, syncPolicy={"automated": {}})
    )
    await eventually(lambda: kube.get("apps/v1", "Deployment", "stuck", namespace), lambda d: d is not None)
    await quick_app_syncs_meanwhile(one_slot, kube, namespace, repo.url, "slot-waits")
    assert await kube.get("v1", "ConfigMap", "after", namespace) is None  # wave 1 still waits for wave 0


async def test_a_retry_backoff_holds_up_no_other_sync_and_the_spent_retries_are_counted(
    one_slot: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"slot-failing/s.yaml": BAD_PORT, "quick/c.yaml": configmap("quick")})
    retry = {"limit": 1, "backoff": {"duration": "8s", "factor": 1}}
    spec = {"syncPolicy": {"automated": {}, "retry": retry}}
    await kube.apply(application("slot-failing", namespace, repo.url, "slot-failing", namespace, **spec))
    await eventually(
        lambda: app_status(kube, namespace, "slot-failing"),
        lambda s: "Retrying attempt #1" in (operation(s).get("message") or ""),
        timeout=30,
    )
    await quick_app_syncs_meanwhile(one_slot, kube, namespace, repo.url, "slot-failing")
    done = await eventually(
        lambda: app_status(kube, namespace, "slot-failing"), lambda s: operation(s).get("phase") == "Failed", timeout=30
    )
    assert operation(done)["retryCount"] == 1
    assert operation(done)["message"].endswith("(retried 1 times)."), operation(done)["message"]


async def test_a_terminate_during_a_retry_backoff_ends_the_operation_at_once_as_argo_cd_does(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    """Not after the backoff: the operation ends Failed, saying it was terminated and how often it was retried."""
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"slot-failing/s.yaml": BAD_PORT})
    retry = {"limit": 3, "backoff": {"duration": "120s", "factor": 1}}
    spec = {"syncPolicy": {"automated": {}, "retry": retry}}
    await kube.apply(application("slot-stopped", namespace, repo.url, "slot-failing", namespace, **spec))
    await eventually(
        lambda: app_status(kube, namespace, "slot-stopped"),
        lambda s: "Retrying attempt #1" in (operation(s).get("message") or ""),
        timeout=30,
    )
    await kube.patch(
        API,
        "Application",
        "slot-stopped",
        namespace,
        {"status": {"operationState": {"phase": "Terminating"}}},
        subresource="status",
    )
    done = await eventually(
        lambda: app_status(kube, namespace, "slot-stopped"), lambda s: operation(s).get("phase") == "Failed", timeout=20
    )
    state = operation(done)
    assert "terminated" in state["message"] and state["message"].endswith("(retried 1 times)."), state
    assert state["retryCount"] == 1
    entries = await controller.audit.entries(f"{namespace}/slot-stopped") if controller.audit else []
    assert [e.phase for e in entries] == ["Terminated"]


async def test_a_manual_sync_held_by_a_sync_window_holds_up_no_other_sync(
    one_slot: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"held/c.yaml": configmap("held"), "quick/c.yaml": configmap("quick")})
    deny = {"kind": "deny", "schedule": "* * * * *", "duration": "1h", "applications": ["slot-held"]}
    await kube.apply(
        project(
            "frozen",
            namespace,
            sourceRepos=["*"],
            destinations=[{"server": "*", "namespace": "*"}],
            syncWindows=[deny],
        )
    )
    await kube.apply(application("slot-held", namespace, repo.url, "held", namespace, project="frozen"))
    await eventually(
        lambda: app_status(kube, namespace, "slot-held"), lambda s: (s.get("sync") or {}).get("status") == "OutOfSync"
    )
    await kube.patch(
        API, "Application", "slot-held", namespace, {"operation": {"sync": {}, "initiatedBy": {"username": "e"}}}
    )
    await eventually(
        lambda: app_status(kube, namespace, "slot-held"),
        lambda s: "sync window" in (operation(s).get("message") or ""),
        timeout=30,
    )
    await quick_app_syncs_meanwhile(one_slot, kube, namespace, repo.url, "slot-held")
    assert await kube.get("v1", "ConfigMap", "held", namespace) is None


async def test_an_operation_that_errs_before_its_sync_runs_is_retried_as_argo_cd_does(
    controller: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    """Argo CD retries an operation that ended in Error (its manifests could not be generated) as one that
    Failed, and says at the end how often it was retried."""
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={"app/c.yaml": configmap("slot-erring")})
    await kube.apply(application("slot-erring", namespace, repo.url, "app", namespace))
    await eventually(
        lambda: app_status(kube, namespace, "slot-erring"), lambda s: (s.get("sync") or {}).get("status") == "OutOfSync"
    )
    request = {
        "sync": {"revision": "no-such-branch"},
        "retry": {"limit": 2, "backoff": {"duration": "1s", "factor": 1}},
        "initiatedBy": {"username": "erin"},
    }
    await kube.patch(API, "Application", "slot-erring", namespace, {"operation": request})
    seen: list[str] = []

    async def read() -> dict[str, Any]:
        status = await app_status(kube, namespace, "slot-erring")
        seen.append(operation(status).get("message") or "")
        return status

    done = await eventually(read, lambda s: operation(s).get("phase") == "Error", timeout=40)
    state = operation(done)
    assert state["retryCount"] == 2, state
    assert "no-such-branch" in state["message"] and state["message"].endswith("(retried 2 times)."), state
    assert any("no-such-branch" in m and ". Retrying attempt #1 at " in m for m in seen), seen
    assert await kube.get("v1", "ConfigMap", "slot-erring", namespace) is None


async def test_a_slot_is_given_back_once_for_concurrent_waits_and_not_taken_again_by_a_cancelled_one() -> None:
    slots = asyncio.Semaphore(1)
    gate = asyncio.Event()

    async def wait(slot: SyncSlot) -> None:
        async with slot.idle():
            await gate.wait()

    async with SyncSlot(slots) as slot:
        assert slots.locked()
        waits = [asyncio.create_task(wait(slot)) for _ in range(2)]
        await asyncio.sleep(0)
        assert not slots.locked(), "two waits of one operation: its slot is free"
        async with SyncSlot(slots):  # another operation takes it, once
            assert slots.locked()
        gate.set()
        await asyncio.gather(*waits)
        assert slots.locked(), "the waits are over: the operation holds its slot again"
        gate.clear()
        cancelled = asyncio.create_task(wait(slot))
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.gather(cancelled, return_exceptions=True)
        assert not slots.locked(), "a terminated operation does not queue for a slot to clean up"
    await slots.acquire()
    assert slots.locked(), "the slot was given back more than once"


async def test_an_operation_no_window_holds_keeps_its_slot_from_start_to_end(
    one_slot: Controller, kube: Cluster, namespace: str, git_server: GitHttpServer, unique_repo_name: str
) -> None:
    """Giving the slot back only to take it again (a window check that finds nothing to wait for) queued
    every operation twice: each started, then waited behind the others, its app shown Running meanwhile.
    With one slot, operations must run one after another: each ends before the next starts."""
    names = [f"one-by-one-{i}" for i in range(5)]
    repo = git_server.create_repo(unique_repo_name)
    repo.commit("v1", files={f"{name}/cm.yaml": configmap(name) for name in names})
    seen: list[tuple[str, str]] = []
    emit = one_slot.events.emit

    def recording(involved: Any, reason: str, message: str, *, warning: bool = False) -> None:
        if reason in ("OperationStarted", "OperationCompleted"):
            seen.append((reason, involved["metadata"]["name"]))
        emit(involved, reason, message, warning=warning)

    one_slot.events.emit = recording  # type: ignore[method-assign]
    for name in names:
        await kube.apply(application(name, namespace, repo.url, name, namespace, syncPolicy={"automated": {}}))
    for name in names:
        await eventually(lambda name=name: app_status(kube, namespace, name), synced_healthy)
    assert len(seen) == 2 * len(names), seen
    for started, completed in zip(seen[::2], seen[1::2], strict=True):
        assert (started[0], completed[0], started[1]) == ("OperationStarted", "OperationCompleted", completed[1]), seen
