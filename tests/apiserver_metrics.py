"""Requests the devcluster's API server has answered, read from its own ``/metrics``.

An independent count next to Tether's (``Cluster.requests``): ``apiserver_request_total``
by verb (server-side apply is ``APPLY``), resource, subresource and ``dry_run``.

Those counts are cluster-wide, so a module asserting them imports ``own_devcluster`` and
``own_kube`` from here (fixtures named ``devcluster`` and ``kube``): a devcluster of the module's own, where no other test (another pytest-xdist worker's)
sends requests meanwhile.
"""

from __future__ import annotations

import os
import re
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from tests.fixtures.cluster import _stop_orphans, connected, shared_devcluster
from tether.cluster import Cluster
from tether.devcluster.cluster import ClusterState


@pytest.fixture(scope="module", name="devcluster")
def own_devcluster(request: pytest.FixtureRequest) -> Iterator[ClusterState]:
    """A devcluster for this module alone (about 5 s to start)."""
    _stop_orphans()
    name = f"pytest-{os.getpid()}-quiet-{request.module.__name__.rsplit('.', 1)[-1].replace('_', '-')}"
    with shared_devcluster(name) as state:  # one user: start, yield, stop
        yield state


@pytest.fixture(scope="module", name="kube")
async def own_kube(devcluster: ClusterState) -> AsyncIterator[Cluster]:
    """A client of the module's own devcluster."""
    async with connected(devcluster) as client:
        yield client


_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')
WRITE_VERBS = frozenset({"APPLY", "PATCH", "POST", "PUT", "DELETE", "CREATE", "UPDATE"})

Counts = Counter[tuple[str, str, str]]


async def served(devcluster: ClusterState, resources: frozenset[str] | None = None) -> Counts:
    """Requests answered so far by (verb, resource, dry_run), main resources only, optionally of some resources."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    headers = {"Authorization": f"Bearer {devcluster.token}"}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
        session.get(f"{devcluster.server}/metrics", headers=headers, ssl=context) as response,
    ):
        assert response.status == 200
        text = await response.text()
    counts: Counts = Counter()
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        if labels.get("subresource") or (resources is not None and labels.get("resource") not in resources):
            continue
        counts[(labels.get("verb", ""), labels.get("resource", ""), labels.get("dry_run", ""))] += int(
            float(match["value"])
        )
    return counts


def writes(counts: Counts) -> Counts:
    """Only the write requests (dry runs included; their ``dry_run`` label is ``All``)."""
    return Counter({k: v for k, v in counts.items() if k[0] in WRITE_VERBS})


def delta(after: Counts, before: Counts) -> dict[tuple[str, str, str], int]:
    """What was answered between two readings."""
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}
