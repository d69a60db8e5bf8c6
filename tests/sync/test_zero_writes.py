"""No wasted requests: after a sync, a diff and a sync with nothing changed send no write request,
dry runs included; a drifted object costs one request, the comparison's dry run being reused.

Writes are counted by the API server itself (``apiserver_request_total`` on its ``/metrics``,
whose ``dry_run`` label marks dry runs), for the kinds of this app: this test session's
devcluster has no other client writing them once the Deployment controller is done.
"""

from __future__ import annotations

import re
import ssl
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.sync.helpers import configmap, deployment
from tether.cluster import Cluster, LiveCache
from tether.devcluster.cluster import ClusterState
from tether.diff import diff_app
from tether.diff.dryrun import DryRuns
from tether.resource import ResourceKey
from tether.sync import OperationPhase, ResourceAction, SyncOptions, sync_app

pytestmark = pytest.mark.cluster

_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')
WRITE_VERBS = {"APPLY", "PATCH", "POST", "PUT", "DELETE", "CREATE", "UPDATE"}
RESOURCES = {"configmaps", "services", "serviceaccounts", "deployments"}


async def writes(devcluster: ClusterState) -> Counter[tuple[str, str, str]]:
    """Write requests answered so far for this app's kinds, by (verb, resource, dry_run)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    headers = {"Authorization": f"Bearer {devcluster.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{devcluster.server}/metrics", headers=headers, ssl=context) as response,
    ):
        assert response.status == 200
        text = await response.text()
    counts: Counter[tuple[str, str, str]] = Counter()
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        if labels.get("verb") in WRITE_VERBS and labels.get("resource") in RESOURCES and not labels.get("subresource"):
            counts[(labels["verb"], labels["resource"], labels.get("dry_run", ""))] += int(float(match["value"]))
    return counts


def delta(after: Counter[tuple[str, str, str]], before: Counter[tuple[str, str, str]]) -> dict[Any, int]:
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def app_objects(namespace: str) -> list[dict[str, Any]]:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web", "namespace": namespace}}
    return [account, configmap("cfg", namespace), service, deployment("web", namespace, replicas=0)]


@pytest.fixture
async def cache(kube: Cluster, namespace: str) -> AsyncIterator[LiveCache]:
    live = LiveCache(kube, namespace=namespace)
    try:
        yield live
    finally:
        await live.close()


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

    before, counted = await writes(devcluster), kube.requests.snapshot()
    report = await diff_app(app, desired, cluster=kube, cache=cache, namespace=namespace, dry_runs=store)
    again = await sync_app(app, desired, cluster=kube, cache=cache, options=options, dry_runs=store)
    after, spent = await writes(devcluster), kube.requests.snapshot() - counted

    assert report.in_sync, report.text()
    assert again.phase is OperationPhase.SUCCEEDED, again.message
    assert delta(after, before) == {}  # no apply, no dry run, nothing: as the API server counts
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
    before, counted = await writes(devcluster), kube.requests.snapshot()
    fixed = await sync_app(app, desired, cluster=kube, cache=cache, options=options, dry_runs=store)
    after, spent = await writes(devcluster), kube.requests.snapshot() - counted
    assert (spent.writes, spent.dry_runs, spent.of("APPLY")) == (1, 0, 1), spent
    assert fixed.find("ConfigMap", "cfg").action is ResourceAction.CONFIGURED, fixed.message
    changes = delta(after, before)
    assert list(changes.values()) == [1] and next(iter(changes))[1:] == ("configmaps", ""), changes  # one apply
    assert next(iter(changes))[0] in ("APPLY", "PATCH")  # how the server's version files a server-side apply
    assert (await kube.get("v1", "ConfigMap", "cfg", namespace))["data"]["k"] == "v"
