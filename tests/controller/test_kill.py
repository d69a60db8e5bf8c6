"""`tether serve` SIGKILLed at random points during 50 syncs of apps with waves and hooks.

After each restart every app converges to the newest commit, and the hook Jobs are counted on
the cluster through a watch: each hook of each sync run is created exactly once (a resumed
run never creates a hook again), and none is left behind (every hook deletes itself on
success). The random kill points come from a fixed seed, printed; set ``TETHER_KILL_SEED`` to
replay a run.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from tests.controller.conftest import API, Serve, application, eventually
from tether.cluster import Cluster
from tether.devcluster.cluster import ClusterState
from tether.devcluster.gitserver import GitHttpServer
from tether.sync.run import RUN_ANNOTATION

SEED = int(os.environ.get("TETHER_KILL_SEED", "20261130"))
APPS = 10
ROUNDS = 5  # APPS x ROUNDS = 50 syncs


def hook(name: str, phase: str, wave: int = 0) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "generateName": f"{name}-",
            "annotations": {
                "argocd.argoproj.io/hook": phase,
                "argocd.argoproj.io/hook-delete-policy": "HookSucceeded",
                "argocd.argoproj.io/sync-wave": str(wave),
            },
        },
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}},
        },
    }


def app_files(app: str, value: int) -> dict[str, str]:
    labels = {"app": app}
    objects = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{app}-config", "annotations": {"argocd.argoproj.io/sync-wave": "-1"}},
            "data": {"value": str(value)},
        },
        hook(f"{app}-pre", "PreSync"),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": app, "annotations": {"argocd.argoproj.io/sync-wave": "0"}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels, "annotations": {"value": str(value)}},
                    "spec": {"containers": [{"name": "web", "image": "nginx"}]},
                },
            },
        },
        hook(f"{app}-sync", "Sync", wave=1),
        hook(f"{app}-post", "PostSync"),
    ]
    return {f"{app}/all.yaml": yaml.safe_dump_all(objects)}


async def test_killed_mid_sync_fifty_times_every_app_converges_without_duplicate_or_orphaned_hooks(
    kube: Cluster,
    devcluster: ClusterState,
    crds_installed: None,
    namespace: str,
    git_server: GitHttpServer,
    unique_repo_name: str,
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    print(f"kill test seed: {SEED} (TETHER_KILL_SEED={SEED} replays it)")
    apps = [f"k{i}" for i in range(APPS)]
    repo = git_server.create_repo(unique_repo_name)
    files: dict[str, str] = {}
    for app in apps:
        files.update(app_files(app, 0))
    head = repo.commit("round 0", files=files)
    created: Counter[tuple[str, str]] = Counter()  # (run id, hook name prefix) -> Job creations
    _, version = await kube.list("batch/v1", "Job", namespace)

    async def record() -> None:
        async for event in kube.watch("batch/v1", "Job", namespace, resource_version=version):
            meta = event.object.get("metadata") or {}
            if event.type == "ADDED":
                prefix = str(meta.get("generateName") or meta.get("name", "")).rstrip("-")
                created[((meta.get("annotations") or {}).get(RUN_ANNOTATION, ""), prefix)] += 1

    recorder = asyncio.create_task(record())
    serve = Serve(
        devcluster.kubeconfig,
        namespace,
        tmp_path / "state",
        extra=("--poll-interval", "1", "--poll-jitter", "0.5", "--sync-timeout", "60", "--max-syncs", "10"),
    )
    await serve.start()
    for app in apps:
        await kube.apply(
            application(
                app, namespace, repo.url, app, namespace, syncPolicy={"automated": {"prune": True, "selfHeal": True}}
            )
        )

    async def statuses() -> dict[str, dict[str, Any]]:
        items, _ = await kube.list(API, "Application", namespace)
        return {i["metadata"]["name"]: i.get("status") or {} for i in items}

    def converged(at: str) -> Any:
        def check(all_status: dict[str, dict[str, Any]]) -> bool:
            return all(
                (s.get("sync") or {}).get("status") == "Synced"
                and (s.get("sync") or {}).get("revision") == at
                and (s.get("health") or {}).get("status") == "Healthy"
                and (s.get("operationState") or {}).get("phase") == "Succeeded"
                and (s.get("operationState") or {}).get("syncResult", {}).get("revision") == at
                for s in (all_status.get(a, {}) for a in apps)
            )

        return check

    try:
        await eventually(statuses, converged(head), timeout=120)
        kills = 0
        for round_ in range(1, ROUNDS + 1):
            files = {}
            for app in apps:
                files.update(app_files(app, round_))
            head = repo.commit(f"round {round_}", files=files)
            await asyncio.sleep(rng.uniform(0.5, 4.0))  # the poll (1 s) picks it up; syncs are under way
            await serve.kill()
            kills += 1
            await serve.start()
            await eventually(statuses, converged(head), timeout=120)
        assert kills == ROUNDS
        final = await statuses()
        for app in apps:
            live = await kube.get("v1", "ConfigMap", f"{app}-config", namespace)
            assert live is not None and live["data"]["value"] == str(ROUNDS)
            assert len(final[app]["history"]) == ROUNDS + 1  # every round synced in full
        await asyncio.sleep(2)
        duplicates = {key: n for key, n in created.items() if n > 1}
        assert not duplicates, f"hooks created more than once in one run (seed {SEED}): {duplicates}"
        left, _ = await kube.list("batch/v1", "Job", namespace)
        assert [j["metadata"]["name"] for j in left] == [], f"orphaned hooks (seed {SEED})"
        runs = {run for run, _ in created}
        assert len(runs) >= APPS * (ROUNDS + 1) - APPS  # nearly every round of every app ran its own sync
    finally:
        recorder.cancel()
        await asyncio.gather(recorder, return_exceptions=True)
        code = await serve.stop()
    # after the body passed only: an assertion in `finally` would hide the body's own failure
    assert code == 0, serve.tail()
