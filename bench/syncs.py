"""E1 first sync, E2 sync with nothing changed, E3 diff with nothing changed — on N apps of Flux's shape.

Three ways of putting the same objects in a namespace, each on a clean slate (its own namespace,
deleted and waited for before the next trial), in rotating order so drift of a noisy machine
does not favour one:

- ``kubectl``: ``kubectl apply --server-side`` of one file (the Namespace and the N×4 objects),
  then ``kubectl wait --for=condition=Available deployment --all``. The baseline.
- ``inprocess``: one process, one ``Cluster`` and one ``LiveCache`` (made fresh for each E1
  trial), ``sync_app`` for each of the N apps concurrently (at most ``concurrency`` at once,
  as a controller's operation workers would), then the same ``kubectl wait``.
- ``command``: ``tether sync DIR --app bench`` of one combined app holding all N×4 objects
  (``CreateNamespace=true``), a new process each time, then the same ``kubectl wait``.

The namespaces of the last trial stay for E2 and E3, which measure a second sync / a diff of
the same objects: the in-process ones through the warm Cluster and LiveCache of that trial.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.common import (
    BenchError,
    Kubectl,
    RequestCounter,
    Result,
    apiserver_requests,
    apiserver_writes,
    engine_delta,
    log,
    ratio,
    run,
    summary,
)
from bench.workload import FLUX_RESOURCES, flux_apps, namespace_object, write_manifests

VARIANTS = ("kubectl", "inprocess", "command")
COMMAND_APP = "bench"
WAIT_TIMEOUT = 300


def _supported(fn: Any, **candidates: Any) -> dict[str, Any]:
    """The keyword arguments ``fn`` accepts among ``candidates`` (the engine's APIs grow while we measure)."""
    params = inspect.signature(fn).parameters
    return {k: v for k, v in candidates.items() if k in params and v is not None}


class SyncBench:
    def __init__(
        self,
        *,
        kubeconfig: str,
        workdir: Path,
        n: int,
        reps: int,
        steady_reps: int,
        concurrency: int,
        profile_dir: Path | None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.kubectl = Kubectl(kubeconfig)
        self.workdir = workdir
        self.n = n
        self.reps = reps
        self.steady_reps = steady_reps
        self.concurrency = concurrency
        self.profile_dir = profile_dir
        self.apps = flux_apps(n)
        self.all_objects = [o for objs in self.apps.values() for o in objs]
        self.command_dir = workdir / f"flux-n{n}" / "app"
        write_manifests(self.command_dir / "objects.yaml", self.all_objects)
        self.cluster: Any = None
        self.cache: Any = None
        self.counter: RequestCounter | None = None
        self.dry_runs: Any = None
        self.namespaces: dict[str, str] = {}
        self.e1_requests: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ helpers

    def _kubectl_file(self, namespace: str) -> Path:
        return write_manifests(
            self.workdir / f"flux-n{self.n}" / f"kubectl-{namespace}.yaml",
            [namespace_object(namespace), *self.all_objects],
        )

    def _wait_available(self, namespace: str) -> None:
        self.kubectl(
            "wait",
            "--for=condition=Available",
            "deployment",
            "--all",
            "-n",
            namespace,
            f"--timeout={WAIT_TIMEOUT}s",
            timeout=WAIT_TIMEOUT + 30,
        )

    def _tether(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "tether.cli", *args, "--kubeconfig", self.kubeconfig]
        return run(argv, timeout=WAIT_TIMEOUT + 120, env=os.environ, check=check)

    def _command_sync(self, namespace: str) -> None:
        self._tether(
            "sync",
            str(self.command_dir),
            "--app",
            COMMAND_APP,
            "--dest-namespace",
            namespace,
            "--sync-option",
            "CreateNamespace=true",
            "--quiet",
        )

    async def _connect(self) -> None:
        from tether.cluster import Cluster
        from tether.cluster.cache import LiveCache

        if self.cluster is not None:
            await self.close()
        self.cluster = await Cluster.connect(self.kubeconfig)
        self.counter = RequestCounter(self.cluster)
        self.cache = LiveCache(self.cluster)
        try:  # a store of dry-run outcomes shared by diff and sync, when this commit has one
            from tether.diff.dryrun import DryRuns

            self.dry_runs = DryRuns()
        except ImportError:
            self.dry_runs = None

    async def close(self) -> None:
        if self.cache is not None:
            await self.cache.close()
        if self.cluster is not None:
            await self.cluster.close()
        self.cluster = self.cache = self.counter = None

    async def _sync_all(self, namespace: str, desired: dict[str, list[dict[str, Any]]]) -> None:
        from tether.sync import OperationPhase, SyncOptions, sync_app

        options = SyncOptions(namespace=namespace)
        extra = _supported(sync_app, dry_runs=self.dry_runs)
        limit = asyncio.Semaphore(self.concurrency)

        async def one(app: str, objects: list[dict[str, Any]]) -> Any:
            async with limit:
                return await sync_app(app, objects, cluster=self.cluster, cache=self.cache, options=options, **extra)

        results = await asyncio.gather(*(one(app, objs) for app, objs in desired.items()))
        bad = [r for r in results if r.phase is not OperationPhase.SUCCEEDED]
        if bad:
            raise BenchError(
                f"{len(bad)} of {len(results)} syncs did not succeed; first: {bad[0].app}: {bad[0].message}"
            )

    async def _diff_all(self, namespace: str) -> list[Any]:
        from tether.diff import diff_app

        extra = _supported(diff_app, dry_runs=self.dry_runs)
        limit = asyncio.Semaphore(self.concurrency)

        async def one(app: str, objects: list[dict[str, Any]]) -> Any:
            async with limit:
                return await diff_app(
                    app, objects, cluster=self.cluster, cache=self.cache, namespace=namespace, **extra
                )

        return list(await asyncio.gather(*(one(app, objs) for app, objs in self.apps.items())))

    def _desired(self) -> dict[str, list[dict[str, Any]]]:
        return {app: copy.deepcopy(objs) for app, objs in self.apps.items()}

    # ------------------------------------------------------------------ E1

    async def _trial(self, variant: str, namespace: str) -> float:
        if variant == "kubectl":
            path = self._kubectl_file(namespace)
            start = time.perf_counter()
            await asyncio.to_thread(self.kubectl, "apply", "--server-side", "-n", namespace, "-f", str(path))
            await asyncio.to_thread(self._wait_available, namespace)
            return time.perf_counter() - start
        if variant == "inprocess":
            desired = self._desired()
            start = time.perf_counter()
            await self._connect()
            await self.cluster.apply(namespace_object(namespace))
            await self._sync_all(namespace, desired)
            synced = time.perf_counter() - start
            await asyncio.to_thread(self._wait_available, namespace)
            assert self.counter is not None
            self.e1_requests.append(
                {
                    "sync_seconds": round(synced, 3),
                    "counted_by_bench": RequestCounter.delta(Counter(), self.counter.snapshot()),
                    "engine_counters": engine_delta(None, self.counter.engine()),
                }
            )
            return time.perf_counter() - start
        start = time.perf_counter()
        await asyncio.to_thread(self._command_sync, namespace)
        await asyncio.to_thread(self._wait_available, namespace)
        return time.perf_counter() - start

    async def first_sync(self) -> Result:
        samples: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for rep in range(self.reps):
            order = VARIANTS[rep % 3 :] + VARIANTS[: rep % 3]
            for variant in order:
                namespace = f"bench-n{self.n}-{variant}-{rep}"
                seconds = await self._trial(variant, namespace)
                samples[variant].append(seconds)
                log(f"E1 n={self.n} rep {rep + 1}/{self.reps} {variant}: {seconds:.2f}s")
                if rep < self.reps - 1:
                    if variant == "inprocess":
                        await self.close()
                    await asyncio.to_thread(self.kubectl.delete_namespaces, [namespace])
                else:
                    self.namespaces[variant] = namespace
        result = self._against_kubectl(
            f"e1-first-sync-n{self.n}",
            f"E1: first sync of {self.n} apps ({self.n * 4} objects) until every Deployment is Available",
            samples,
            {"inprocess": 1.3, "command": 1.5},
        )
        result.extra["requests"] = {"inprocess_per_trial": self.e1_requests}
        return result

    # ------------------------------------------------------------------ E2

    async def _profiled(self, coro_fn: Any, name: str) -> None:
        if self.profile_dir is None:
            return
        try:
            from pyinstrument import Profiler
        except ImportError:
            log("pyinstrument is not installed; no profile")
            return
        profiler = Profiler(async_mode="enabled", interval=0.001)
        profiler.start()
        try:
            await coro_fn()
        finally:
            profiler.stop()
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        (self.profile_dir / f"{name}.txt").write_text(
            profiler.output_text(unicode=False, color=False, show_all=False, short_mode=False)
        )
        (self.profile_dir / f"{name}.html").write_text(profiler.output_html())
        log(f"profile written to {self.profile_dir / name}.txt")

    async def no_change_sync(self) -> Result:
        ns_kubectl, ns_inproc, ns_command = (self.namespaces[v] for v in VARIANTS)
        kubectl_file = self._kubectl_file(ns_kubectl)
        samples: dict[str, list[float]] = {v: [] for v in VARIANTS}
        server_writes: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
        tether_counts: list[dict[str, Any]] = []
        engine_counts: list[Any] = []
        assert self.counter is not None
        for rep in range(self.steady_reps):
            for variant in VARIANTS[rep % 3 :] + VARIANTS[: rep % 3]:
                before = await asyncio.to_thread(apiserver_requests, self.kubectl)
                if variant == "kubectl":
                    start = time.perf_counter()
                    await asyncio.to_thread(
                        self.kubectl, "apply", "--server-side", "-n", ns_kubectl, "-f", str(kubectl_file)
                    )
                    seconds = time.perf_counter() - start
                elif variant == "inprocess":
                    desired = self._desired()
                    mine, theirs = self.counter.snapshot(), self.counter.engine()
                    start = time.perf_counter()
                    await self._sync_all(ns_inproc, desired)
                    seconds = time.perf_counter() - start
                    tether_counts.append(RequestCounter.delta(mine, self.counter.snapshot()))
                    engine_counts.append(engine_delta(theirs, self.counter.engine()))
                else:
                    start = time.perf_counter()
                    await asyncio.to_thread(self._command_sync, ns_command)
                    seconds = time.perf_counter() - start
                after = await asyncio.to_thread(apiserver_requests, self.kubectl)
                server_writes[variant].append(apiserver_writes(before, after, FLUX_RESOURCES))
                samples[variant].append(seconds)
                log(
                    f"E2 n={self.n} rep {rep + 1}/{self.steady_reps} {variant}: {seconds:.2f}s, "
                    f"server-counted writes {server_writes[variant][-1]['writes']} "
                    f"dry runs {server_writes[variant][-1]['dry_runs']}"
                )
        await self._profiled(lambda: self._sync_all(ns_inproc, self._desired()), f"e2-inprocess-n{self.n}")
        result = self._against_kubectl(
            f"e2-no-change-sync-n{self.n}",
            f"E2: sync of {self.n} apps ({self.n * 4} objects) with nothing changed",
            samples,
            {"inprocess": 1.0, "command": 1.5, "writes": 0},
        )
        result.extra["requests"] = {
            "apiserver": server_writes,
            "tether_inprocess_counted_by_bench": tether_counts,
            "tether_inprocess_engine_counters": engine_counts,
        }
        return result

    # ------------------------------------------------------------------ E3

    async def no_change_diff(self) -> Result:
        ns_inproc, ns_command = self.namespaces["inprocess"], self.namespaces["command"]
        assert self.counter is not None
        reports = await self._diff_all(ns_inproc)  # warm-up: the cache is warm, the dry runs may not be
        warm_drift = sum(len(r.out_of_sync) for r in reports)
        samples: list[float] = []
        command_samples: list[float] = []
        server: list[dict[str, Any]] = []
        counted: list[dict[str, Any]] = []
        engine_counts: list[Any] = []
        drift: list[int] = []
        exit_codes: list[int] = []
        for rep in range(self.steady_reps):
            before = await asyncio.to_thread(apiserver_requests, self.kubectl)
            mine, theirs = self.counter.snapshot(), self.counter.engine()
            start = time.perf_counter()
            reports = await self._diff_all(ns_inproc)
            seconds = time.perf_counter() - start
            counted.append(RequestCounter.delta(mine, self.counter.snapshot()))
            engine_counts.append(engine_delta(theirs, self.counter.engine()))
            after = await asyncio.to_thread(apiserver_requests, self.kubectl)
            server.append(apiserver_writes(before, after, FLUX_RESOURCES))
            drift.append(sum(len(r.out_of_sync) for r in reports))
            samples.append(seconds)
            start = time.perf_counter()
            done = await asyncio.to_thread(
                self._tether,
                "diff",
                str(self.command_dir),
                "--app",
                COMMAND_APP,
                "--dest-namespace",
                ns_command,
                check=False,
            )
            command_samples.append(time.perf_counter() - start)
            exit_codes.append(done.returncode)
            if done.returncode not in (0, 1):
                raise BenchError(f"tether diff exited {done.returncode}: {done.stderr.strip()[-400:]}")
            log(
                f"E3 n={self.n} rep {rep + 1}/{self.steady_reps}: in-process {seconds:.3f}s "
                f"(writes {server[-1]['writes']}, dry runs {server[-1]['dry_runs']}, drifting {drift[-1]}); "
                f"command {command_samples[-1]:.2f}s exit {done.returncode}"
            )
        result = Result(
            name=f"e3-no-change-diff-n{self.n}",
            title=f"E3: diff of {self.n} apps ({self.n * 4} objects) with nothing changed, one warm LiveCache",
            params=self._params(),
        )
        result.figures["inprocess"] = summary(samples)
        result.figures["command"] = summary(command_samples)
        result.targets = {"inprocess_seconds": 1.0, "writes": 0}
        result.notes.append("No baseline: kubectl has no server-side diff of 400 objects through a warm cache.")
        result.extra["requests"] = {
            "apiserver": {"inprocess": server},
            "tether_inprocess_counted_by_bench": counted,
            "tether_inprocess_engine_counters": engine_counts,
        }
        result.extra["drifting_objects"] = {"warm_up": warm_drift, "samples": drift, "command_exit_codes": exit_codes}
        return result

    def _against_kubectl(
        self, name: str, title: str, samples: dict[str, list[float]], targets: dict[str, float]
    ) -> Result:
        """A result whose in-process and command figures are each set against kubectl's, measured in the same run."""
        result = Result(name=name, title=title, params=self._params())
        result.baseline["kubectl"] = summary(samples["kubectl"])
        for variant in ("inprocess", "command"):
            result.figures[variant] = summary(samples[variant])
            result.ratios[variant] = ratio(result.figures[variant], result.baseline["kubectl"])
        result.targets = targets
        return result

    def _params(self) -> dict[str, Any]:
        return {
            "apps": self.n,
            "objects": self.n * 4,
            "shape": "Flux benchmark: ServiceAccount, Deployment (replicas 0), Service, Ingress per app",
            "first_sync_repetitions": self.reps,
            "steady_repetitions": self.steady_reps,
            "inprocess_concurrency": self.concurrency,
            "inprocess": "one Cluster + LiveCache; sync_app / diff_app per app, concurrently",
            "command": f"`tether sync DIR --app {COMMAND_APP}`: one app of all objects, a new process",
            "dry_runs_store": self.dry_runs is not None,
        }


async def run_syncs(
    *,
    kubeconfig: str,
    workdir: Path,
    n: int,
    reps: int,
    steady_reps: int,
    concurrency: int,
    profile_dir: Path | None,
    only: set[str],
) -> list[Result]:
    bench = SyncBench(
        kubeconfig=kubeconfig,
        workdir=workdir,
        n=n,
        reps=reps,
        steady_reps=steady_reps,
        concurrency=concurrency,
        profile_dir=profile_dir,
    )
    results: list[Result] = []
    try:
        results.append(await bench.first_sync())
        if "E2" in only:
            results.append(await bench.no_change_sync())
        if "E3" in only:
            results.append(await bench.no_change_diff())
    finally:
        await bench.close()
        namespaces: Mapping[str, str] = bench.namespaces
        if namespaces:
            await asyncio.to_thread(bench.kubectl.delete_namespaces, list(namespaces.values()))
    return results
