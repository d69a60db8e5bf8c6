"""Requests are a budget: once an app is in sync, reconciles that find nothing changed write nothing
(no apply, no dry run, no status write), and git is asked once per repository per poll interval."""

from __future__ import annotations

import asyncio

from tests.controller.conftest import application, eventually
from tests.controller.test_loop import app_status, configmap, synced_healthy
from tether.cluster import Cluster
from tether.controller.controller import Controller
from tether.devcluster.gitserver import GitHttpServer


async def test_nothing_changed_means_no_writes_and_one_ls_remote_per_interval(
    controller: Controller, kube: Cluster, namespace: str, counting_git_server: GitHttpServer
) -> None:
    repo = counting_git_server.create_repo("budget")
    repo.commit("v1", files={f"app{i}/a.yaml": configmap(f"c{i}") for i in range(3)})
    for i in range(3):
        await kube.apply(
            application(
                f"b{i}", namespace, repo.url, f"app{i}", namespace, syncPolicy={"automated": {"selfHeal": True}}
            )
        )
    for i in range(3):
        await eventually(lambda i=i: app_status(kube, namespace, f"b{i}"), synced_healthy)
    await asyncio.sleep(3)  # the last status writes and events of the syncs land
    await controller.events.drain()
    before = kube.requests.snapshot()
    status_writes = controller.writer.writes
    events = controller.events.sent + controller.events.aggregated
    listed_before = sum(1 for _, path in counting_git_server.requests if "info/refs" in path)
    reconciles = controller.reconciles
    # every trigger that does not change anything: polls, drift re-compares, a resync of all apps
    for _ in range(3):
        controller.queue.add_many([f"b{i}" for i in range(3)], "poll")
        controller.queue.add_many([f"b{i}" for i in range(3)], "drift")
        await asyncio.sleep(2.5)  # the poll interval is 2 s (+ up to 0.5 s jitter)
    await controller.events.drain()
    assert controller.reconciles >= reconciles + 9
    spent = kube.requests.snapshot() - before
    assert spent.writes == 0, f"writes sent while nothing changed: {dict(spent)}"
    assert spent.dry_runs == 0
    assert controller.writer.writes == status_writes
    assert controller.events.sent + controller.events.aggregated == events  # Events have their own client
    listed = sum(1 for _, path in counting_git_server.requests if "info/refs" in path) - listed_before
    assert 1 <= listed <= 4  # one ls-remote per repository per interval (7.5 s at 2-2.5 s), whatever the apps
