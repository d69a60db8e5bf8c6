"""No wasted requests: after a sync, a diff and a sync with nothing changed send no write request,
dry runs included; a drifted object costs one request, the comparison's dry run being reused.

Writes are counted by the API server itself (``apiserver_request_total`` on its ``/metrics``,
whose ``dry_run`` label marks dry runs), for the kinds of this app: this test session's
devcluster has no other client writing them once the Deployment controller is done.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.apiserver_metrics import Counts, delta, own_devcluster, own_kube, served, writes  # noqa: F401  (fixtures: a cluster of this module's own)
from tests.cli import tether_async
from tests.sync.helpers import configmap, deployment
from tether.cluster import Cluster, LiveCache
from tether.devcluster.cluster import ClusterState
from tether.diff import diff_app
from tether.diff.dryrun import DryRuns
from tether.resource import ResourceKey
from tether.sync import OperationPhase, ResourceAction, SyncOptions, sync_app

pytestmark = pytest.mark.cluster

RESOURCES = frozenset({"configmaps", "services", "serviceaccounts", "deployments"})


async def writes_served(devcluster: ClusterState) -> Counts:
    """Write requests answered so far for this app's kinds, dry runs included."""
    return writes(await served(devcluster, RESOURCES))


def applies_and_dry_runs(sent: dict[tuple[str, str, str], int]) -> dict[tuple[str, str, str], int]:
    """What a sync would send: applies, updates and dry runs. The server's counts are cluster-wide, and other
    tests' namespaces are being cleaned up meanwhile (the namespace controller's DELETEs, kube-root-ca.crt
    POSTs); Tether's own counter, asserted beside, sees every request of this process whatever its verb."""
    return {k: n for k, n in sent.items() if k[0] in ("APPLY", "PATCH", "PUT") or k[2]}


def app_objects(namespace: str) -> list[dict[str, Any]]:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web", "namespace": namespace}}
    return [account, configmap("cfg", namespace), service, deployment("web", namespace, replicas=0)]


async def settled(cache: LiveCache, namespace: str) -> None:
    """The Deployment controller has done its writes (revision annotation, status): the objects stay still."""
    await cache.wait_for(
        ResourceKey("apps", "Deployment", namespace, "web"),
        lambda o: (
            o is not None
            and (o.get("status") or {}).get("observedGeneration") == o["metadata"].get("generation")
            and "deployment.kubernetes.io/revision" in (o["metadata"].get("annotations") or {})
        ),
        timeout=30,
    )


async def test_a_diff_and_a_sync_with_nothing_changed_send_no_write_request(
    kube: Cluster, namespace: str, app: str, cache: LiveCache, devcluster: ClusterState
) -> None:
    desired = app_objects(namespace)
    options = SyncOptions(namespace=namespace, timeout=60)
    store = DryRuns()
    first = await sync_app(app, desired, cluster=kube, cache=cache, options=options, dry_runs=store)
    assert first.phase is OperationPhase.SUCCEEDED, first.message
    await settled(cache, namespace)
    await diff_app(app, desired, cluster=kube, cache=cache, namespace=namespace, dry_runs=store)  # the warm cache

    before, counted = await writes_served(devcluster), kube.requests.snapshot()
    report = await diff_app(app, desired, cluster=kube, cache=cache, namespace=namespace, dry_runs=store)
    again = await sync_app(app, desired, cluster=kube, cache=cache, options=options, dry_runs=store)
    after, spent = await writes_served(devcluster), kube.requests.snapshot() - counted

    assert report.in_sync, report.text()
    assert again.phase is OperationPhase.SUCCEEDED, again.message
    assert applies_and_dry_runs(delta(after, before)) == {}  # no apply, no dry run: as the API server counts
    assert spent.writes == 0 and spent.dry_runs == 0, spent  # and as Tether counts
    assert {(r.kind, r.action, r.message.split(";")[0]) for r in again.resources} == {
        (kind, ResourceAction.UNCHANGED, "in sync: not applied")
        for kind in ("ServiceAccount", "ConfigMap", "Service", "Deployment")
    }

    # A drifted object: the comparison's dry run serves the sync's pre-check, so it costs one apply, and only it.
    await kube.patch("v1", "ConfigMap", "cfg", namespace, {"data": {"k": "drifted"}})
    await cache.wait_for(
        ResourceKey("", "ConfigMap", namespace, "cfg"), lambda o: o is not None and o["data"]["k"] == "drifted"
    )
    drifted = await diff_app(app, desired, cluster=kube, cache=cache, namespace=namespace, dry_runs=store)
    assert [r.key.name for r in drifted.out_of_sync] == ["cfg"]
    before, counted = await writes_served(devcluster), kube.requests.snapshot()
    fixed = await sync_app(app, desired, cluster=kube, cache=cache, options=options, dry_runs=store)
    after, spent = await writes_served(devcluster), kube.requests.snapshot() - counted
    assert (spent.writes, spent.dry_runs, spent.of("APPLY")) == (1, 0, 1), spent
    assert fixed.find("ConfigMap", "cfg").action is ResourceAction.CONFIGURED, fixed.message
    changes = applies_and_dry_runs(delta(after, before))
    assert list(changes.values()) == [1] and next(iter(changes))[1:] == ("configmaps", ""), changes  # one apply
    assert next(iter(changes))[0] == "APPLY"  # filed as kubectl's applies are: the exact apply content type
    assert (await kube.get("v1", "ConfigMap", "cfg", namespace))["data"]["k"] == "v"


async def test_a_fresh_tether_sync_process_with_nothing_changed_writes_nothing(
    kube: Cluster, namespace: str, app: str, devcluster: ClusterState, tmp_path: Any
) -> None:
    """The command keeps no store between runs: unchanged objects are known from the live objects alone."""
    for obj in app_objects(namespace):
        (tmp_path / f"{obj['kind'].lower()}.yaml").write_text(yaml.safe_dump(obj))
    args = ("sync", str(tmp_path), "--app", app, "--dest-namespace", namespace, "--kubeconfig", devcluster.kubeconfig)
    code, out, err = await tether_async(*args)
    assert code == 0, out + err
    cache = LiveCache(kube, namespace=namespace)
    try:
        await cache.track("apps/v1", "Deployment")
        await settled(cache, namespace)
    finally:
        await cache.close()

    before = await writes_served(devcluster)
    code, out, err = await tether_async(*args)
    assert code == 0, out + err
    sent = delta(await writes_served(devcluster), before)
    assert applies_and_dry_runs(sent) == {}, (sent, out)
    assert out.count("in sync: not applied") == 4, out
