"""A cluster that goes away mid-sync (issue 7, section 6), on a devcluster of its own whose
apiserver is killed (SIGKILL: connections refused) or frozen (SIGSTOP: connections accepted
by the kernel, never answered)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs

from tests.cli import TETHER
from tests.cluster.wait import eventually
from tests.fixtures.cluster import ApiServer
from tether.cluster import Cluster, ClusterError, LiveCache
from tether.devcluster.cluster import ClusterState
from tether.resource import ResourceKey, mark

pytestmark = pytest.mark.cluster

# Far below the 300 s sync timeout the probe saw waited out; the retry budget is 12 s.
EXIT_BOUND = 60.0
# Lines about failing watches allowed on stderr for a whole outage.
MAX_WATCH_LINES = 3


def _objects(namespace: str) -> list[dict[str, Any]]:
    """Wave 0: a ConfigMap and a Deployment that never becomes healthy (its pods fit no node), so
    the sync waits there; wave 1: a ConfigMap the sync never gets to."""
    labels = {"app": "slow"}
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "early", "annotations": {"argocd.argoproj.io/sync-wave": "0"}},
            "data": {"k": "v"},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "slow", "annotations": {"argocd.argoproj.io/sync-wave": "0"}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "nodeSelector": {"tether.dev/no-such-node": "true"},
                        "containers": [{"name": "web", "image": "nginx"}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "late", "annotations": {"argocd.argoproj.io/sync-wave": "1"}},
            "data": {"k": "v"},
        },
    ]


@contextlib.asynccontextmanager
async def _namespace(state: ClusterState) -> AsyncIterator[tuple[Cluster, str]]:
    """A client of the dedicated cluster and a fresh namespace in it (deleted once the cluster is back)."""
    name = f"t-outage-{secrets.token_hex(3)}"
    async with await Cluster.connect(state.kubeconfig) as kube:
        await kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        try:
            yield kube, name
        finally:
            with contextlib.suppress(ClusterError):
                await kube.delete("v1", "Namespace", name, propagation="Background")


class _Sync:
    """``tether sync`` as a running process whose stderr is read line by line as it comes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.err: list[str] = []
        self.out = b""
        self._readers = [asyncio.create_task(self._stderr()), asyncio.create_task(self._stdout())]

    async def _stderr(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            self.err.append(line.decode(errors="replace"))

    async def _stdout(self) -> None:
        assert self.process.stdout is not None
        self.out = await self.process.stdout.read()

    async def until_stderr(self, text: str, timeout: float) -> None:
        await eventually(lambda: _now(self.err), lambda lines: any(text in line for line in lines), timeout=timeout)

    async def finish(self, timeout: float) -> tuple[int, str, str]:
        try:
            code = await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(
                f"tether sync still running after {timeout}s; stderr so far:\n{''.join(self.err)}"
            ) from None
        await asyncio.gather(*self._readers)
        return code, self.out.decode(errors="replace"), "".join(self.err)


async def _now(value: list[str]) -> list[str]:
    return value


async def _sync_then(
    state: ClusterState, tmp_path: Path, fault: Callable[[], None], repair: Callable[[], None]
) -> tuple[int, str, str, float, str]:
    """Start a sync, apply ``fault`` once it waits for the Deployment's health, let it end, ``repair``.

    Returns exit code, stdout, stderr, seconds from the fault to the exit, and the namespace.
    """
    async with _namespace(state) as (_, namespace):
        source = tmp_path / "app"
        source.mkdir()
        for obj in _objects(namespace):
            (source / f"{obj['kind']}-{obj['metadata']['name']}.yaml").write_text(yaml.safe_dump(obj))
        process = await asyncio.create_subprocess_exec(
            *TETHER,
            "sync",
            str(source),
            "--app",
            f"outage-{secrets.token_hex(3)}",
            "--dest-namespace",
            namespace,
            "--kubeconfig",
            state.kubeconfig,
            "--timeout",
            "240",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        run = _Sync(process)
        await run.until_stderr("waiting for healthy state of", timeout=60)
        await asyncio.sleep(1.0)  # the sync is now inside its health wait, watches open
        fault()
        started = time.monotonic()
        try:
            code, out, err = await run.finish(timeout=EXIT_BOUND + 30)
        finally:
            elapsed = time.monotonic() - started
            await asyncio.to_thread(repair)
        return code, out, err, elapsed, namespace


def _rows(out: str) -> set[tuple[str, ...]]:
    """(kind, name, action) of every row of the result table."""
    return {tuple(line.split()[i] for i in (2, 4, 5)) for line in out.splitlines() if len(line.split()) > 6}


def _watch_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if re.search(r"watch", line, re.IGNORECASE)]


def _check_partial_result(code: int, out: str, err: str, namespace: str) -> None:
    assert code == 2, f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"
    # the result is on stdout: what was applied, and what was not
    assert "Sync:   Error (ClusterUnreachable)" in out, out
    assert {("ConfigMap", "early", "created"), ("Deployment", "slow", "created")} <= _rows(out), out
    assert f"Not applied (the sync stopped first): ConfigMap {namespace}/late" in out, out
    assert "Already applied, left in place" in out
    # one error line on stderr names the cause; the outage is not one line per retry
    assert any(line.startswith("error: ClusterUnreachable: ") for line in err.splitlines()), err
    assert len(_watch_lines(err)) <= MAX_WATCH_LINES, "\n".join(_watch_lines(err))
    assert "Traceback" not in err


async def test_sync_ends_with_cluster_unreachable_when_the_apiserver_is_killed(
    outage_devcluster: ClusterState, apiserver: ApiServer, tmp_path: Path
) -> None:
    code, out, err, elapsed, namespace = await _sync_then(
        outage_devcluster, tmp_path, apiserver.kill, apiserver.restart
    )
    _check_partial_result(code, out, err, namespace)
    assert elapsed < EXIT_BOUND, f"took {elapsed:.1f}s after the kill"
    assert "cannot reach the cluster" in out or "has not answered" in out


async def test_sync_ends_with_cluster_unreachable_when_the_apiserver_is_frozen(
    outage_devcluster: ClusterState, apiserver: ApiServer, tmp_path: Path
) -> None:
    code, out, err, elapsed, namespace = await _sync_then(outage_devcluster, tmp_path, apiserver.freeze, apiserver.thaw)
    _check_partial_result(code, out, err, namespace)
    assert elapsed < EXIT_BOUND, f"took {elapsed:.1f}s after the freeze"
    assert "has not answered for 12s" in out
    assert "not healthy" not in out  # the outage is the reason, not the Deployment


async def test_watch_failures_are_logged_once_per_outage_and_recovery_once(
    outage_devcluster: ClusterState, apiserver: ApiServer
) -> None:
    async with _namespace(outage_devcluster) as (kube, namespace), LiveCache(kube) as cache:
        await cache.track("v1", "ConfigMap", namespace)
        await cache.track("apps/v1", "Deployment", namespace)
        with capture_logs() as logs:
            apiserver.kill()
            # the watches retry with backoff 0.5, 1, 2, 4 s …: several failures each
            await eventually(lambda: _now([cache.watch_failures]), lambda n: n[0] >= 6, timeout=30)
            await asyncio.to_thread(apiserver.restart)
            await eventually(
                lambda: _now(logs), lambda seen: any(e["event"] == "cache watches recovered" for e in seen), timeout=60
            )
        failing = [e for e in logs if e["event"].startswith("cache watch failing")]
        recovered = [e for e in logs if e["event"] == "cache watches recovered"]
        assert len(failing) == 1, logs
        assert len(recovered) == 1 and recovered[0]["failures"] >= 6, recovered
        assert [e for e in logs if e["log_level"] == "warning" and "watch" in e["event"]] == failing
        # and the cache is live again: a new labelled object arrives through the watch
        after = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after", "namespace": namespace}}
        await kube.apply(mark(after, "x"))
        await cache.wait_for(ResourceKey.of(after), lambda obj: obj is not None, timeout=30)


async def test_a_request_rides_out_a_short_freeze(outage_devcluster: ClusterState, apiserver: ApiServer) -> None:
    async with await Cluster.connect(outage_devcluster.kubeconfig, timeout=2) as kube:
        await kube.version()
        apiserver.freeze()

        async def thaw_later() -> None:
            await asyncio.sleep(3.0)
            await asyncio.to_thread(apiserver.thaw)

        thaw = asyncio.create_task(thaw_later())
        started = time.monotonic()
        namespace = await kube.get("v1", "Namespace", "default")
        elapsed = time.monotonic() - started
        await thaw
        assert namespace is not None and namespace["metadata"]["name"] == "default"
        assert 2 <= elapsed < 12, elapsed  # it did wait, and came back within the retry budget


async def test_a_cluster_gone_for_good_is_given_up_on_within_the_budget(
    outage_devcluster: ClusterState, apiserver: ApiServer
) -> None:
    async with await Cluster.connect(outage_devcluster.kubeconfig, timeout=2) as kube:
        await kube.version()
        apiserver.kill()
        started = time.monotonic()
        with pytest.raises(ClusterError) as raised:
            await kube.get("v1", "Namespace", "default")
        elapsed = time.monotonic() - started
    assert raised.value.reason == "ClusterUnreachable" and "has not answered for 12s" in str(raised.value)
    assert 12 <= elapsed < 20, elapsed
