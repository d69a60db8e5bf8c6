"""Dry-run reuse against the devcluster: a comparison that finds nothing changed sends no write request.

Dry runs are counted by the API server itself (``apiserver_request_total{dry_run="All"}`` on
its ``/metrics``): only this test session's process talks to its devcluster, and no controller
sends dry runs, so the count is independent of Tether's own bookkeeping (``Cluster.requests``,
checked alongside).
"""

from __future__ import annotations

from typing import Any

from tests.apiserver_metrics import own_devcluster, own_kube, served  # noqa: F401  (fixtures: a cluster of this module's own)
from tether.cluster import Cluster, LiveCache
from tether.devcluster.cluster import ClusterState
from tether.diff import MISSING, OUT_OF_SYNC, diff_app
from tether.diff.dryrun import DryRuns
from tether.resource import ResourceKey

from .test_diff_cluster import APP, config_map, deployment, seen, synced


async def dry_runs_served(devcluster: ClusterState) -> int:
    """Dry-run requests the API server has answered so far, every verb and resource."""
    return sum(n for (_verb, _resource, dry_run), n in (await served(devcluster)).items() if dry_run == "All")


async def settled_deployment(cache: LiveCache, namespace: str) -> None:
    """Wait until the deployment controller has written its status: later diffs meet a still object."""
    await cache.wait_for(
        ResourceKey("apps", "Deployment", namespace, "web"),
        lambda o: (
            o is not None and (o.get("status") or {}).get("observedGeneration") == o["metadata"].get("generation")
        ),
        timeout=30,
    )


def app_objects(namespace: str) -> list[dict[str, Any]]:
    return [deployment(namespace, replicas=0), config_map(namespace, "cfg", a="1"), config_map(namespace, "env", b="2")]


async def test_a_diff_that_finds_nothing_changed_sends_no_dry_run(
    kube: Cluster, namespace: str, cache: LiveCache, devcluster: ClusterState
) -> None:
    desired = app_objects(namespace)
    await synced(kube, cache, *desired)
    await settled_deployment(cache, namespace)
    store = DryRuns(predict=False)  # the store alone: every unknown outcome costs a dry run

    before = await dry_runs_served(devcluster)
    first = await diff_app(APP, desired, cluster=kube, cache=cache, dry_runs=store)
    assert first.in_sync, first.text()
    assert await dry_runs_served(devcluster) - before == 3  # one per object: nothing known yet
    assert (store.hits, len(store)) == (0, 3)

    before, counted = await dry_runs_served(devcluster), kube.requests.snapshot()
    second = await diff_app(APP, desired, cluster=kube, cache=cache, dry_runs=store)
    assert await dry_runs_served(devcluster) - before == 0
    spent = kube.requests.snapshot() - counted  # Tether's own count agrees with the server's
    assert (spent.dry_runs, spent.writes) == (0, 0), spent
    assert store.hits == 3
    assert second.to_dict() == first.to_dict()  # the reused outcomes give the same comparison


async def test_a_changed_live_object_costs_exactly_one_dry_run(
    kube: Cluster, namespace: str, cache: LiveCache, devcluster: ClusterState
) -> None:
    desired = app_objects(namespace)
    await synced(kube, cache, *desired)
    await settled_deployment(cache, namespace)
    store = DryRuns(predict=False)  # the store alone: every unknown outcome costs a dry run
    await diff_app(APP, desired, cluster=kube, cache=cache, dry_runs=store)

    await seen(cache, await kube.patch("v1", "ConfigMap", "cfg", namespace, {"metadata": {"labels": {"x": "y"}}}))
    before = await dry_runs_served(devcluster)
    report = await diff_app(APP, desired, cluster=kube, cache=cache, dry_runs=store)
    assert await dry_runs_served(devcluster) - before == 1
    assert report.in_sync, report.text()  # a label no one declared is not drift under server-side apply

    await seen(cache, await kube.patch("v1", "ConfigMap", "env", namespace, {"data": {"b": "changed"}}))
    before = await dry_runs_served(devcluster)
    report = await diff_app(APP, desired, cluster=kube, cache=cache, dry_runs=store)
    assert await dry_runs_served(devcluster) - before == 1
    env = next(r for r in report.resources if r.key.name == "env")
    assert env.status == OUT_OF_SYNC and env.changed == ["/data/b"]

    before = await dry_runs_served(devcluster)
    again = await diff_app(APP, desired, cluster=kube, cache=cache, dry_runs=store)
    assert await dry_runs_served(devcluster) - before == 0
    assert again.to_dict() == report.to_dict()


async def test_a_changed_desired_object_costs_one_dry_run(
    kube: Cluster, namespace: str, cache: LiveCache, devcluster: ClusterState
) -> None:
    desired = app_objects(namespace)
    await synced(kube, cache, *desired)
    await settled_deployment(cache, namespace)
    store = DryRuns(predict=False)  # the store alone: every unknown outcome costs a dry run
    await diff_app(APP, desired, cluster=kube, cache=cache, dry_runs=store)

    changed = [desired[0], config_map(namespace, "cfg", a="2"), desired[2]]
    before = await dry_runs_served(devcluster)
    report = await diff_app(APP, changed, cluster=kube, cache=cache, dry_runs=store)
    assert await dry_runs_served(devcluster) - before == 1
    cfg = next(r for r in report.resources if r.key.name == "cfg")
    assert cfg.status == OUT_OF_SYNC and cfg.changed == ["/data/a"]


async def test_missing_objects_and_refusals_are_reused_too(
    kube: Cluster, namespace: str, cache: LiveCache, devcluster: ClusterState
) -> None:
    absent = config_map(namespace, "not-yet", a="1")
    refused = config_map(namespace, "Bad_Name", a="1")  # an invalid name: the server answers 422
    store = DryRuns(predict=False)  # the store alone: every unknown outcome costs a dry run
    first = await diff_app(APP, [absent, refused], cluster=kube, cache=cache, dry_runs=store)
    by_name = {r.key.name: r for r in first.resources}
    assert by_name["not-yet"].status == "Missing"
    assert by_name["Bad_Name"].error and "422" in by_name["Bad_Name"].error

    before = await dry_runs_served(devcluster)
    second = await diff_app(APP, [absent, refused], cluster=kube, cache=cache, dry_runs=store)
    assert await dry_runs_served(devcluster) - before == 0
    assert second.to_dict() == first.to_dict()


async def test_a_fresh_store_predicts_unchanged_objects_and_asks_the_server_about_the_rest(
    kube: Cluster, namespace: str, cache: LiveCache, devcluster: ClusterState
) -> None:
    """No store kept between runs (a fresh ``tether diff``): live objects that show an apply would
    change nothing need no dry run; a drifted one costs one, every time."""
    desired = app_objects(namespace)
    await synced(kube, cache, *desired)
    await settled_deployment(cache, namespace)
    before, counted = await dry_runs_served(devcluster), kube.requests.snapshot()
    report = await diff_app(APP, desired, cluster=kube, cache=cache)
    assert report.in_sync, report.text()
    assert await dry_runs_served(devcluster) - before == 0
    spent = kube.requests.snapshot() - counted
    assert (spent.dry_runs, spent.writes) == (0, 0), spent

    # a label someone else added is not ours: still predicted in sync, still no dry run
    await seen(cache, await kube.patch("v1", "ConfigMap", "cfg", namespace, {"metadata": {"labels": {"x": "y"}}}))
    before = await dry_runs_served(devcluster)
    assert (await diff_app(APP, desired, cluster=kube, cache=cache)).in_sync
    assert await dry_runs_served(devcluster) - before == 0

    await seen(cache, await kube.patch("v1", "ConfigMap", "env", namespace, {"data": {"b": "changed"}}))
    for _ in range(2):
        before = await dry_runs_served(devcluster)
        report = await diff_app(APP, desired, cluster=kube, cache=cache)
        assert await dry_runs_served(devcluster) - before == 1
        env = next(r for r in report.resources if r.key.name == "env")
        assert env.status == OUT_OF_SYNC and env.changed == ["/data/b"]


async def test_the_controller_compares_a_missing_object_without_a_dry_run(
    kube: Cluster, namespace: str, cache: LiveCache, devcluster: ClusterState
) -> None:
    desired = [config_map(namespace, "new", a="1")]
    before = await dry_runs_served(devcluster)
    quiet = await diff_app(APP, desired, cluster=kube, cache=cache, dry_runs=DryRuns(), dry_run_missing=False)
    assert [r.status for r in quiet.resources] == [MISSING]
    assert await dry_runs_served(devcluster) - before == 0  # Missing whatever the server would add
    shown = await diff_app(APP, desired, cluster=kube, cache=cache, dry_runs=DryRuns())
    assert [r.status for r in shown.resources] == [MISSING]
    assert await dry_runs_served(devcluster) - before == 1  # `tether diff` shows the server's defaults
