"""C1 cold start, C2 steady state, C3 drift: Tether's controller (``tether serve``) on N apps of Flux's shape.

One monorepo per N on the bench's ``GitHttpServer`` holds ``apps/app-NNNN/`` (a ServiceAccount, a
Deployment scaled to 0, a Service, an Ingress); each Application syncs one directory into its own
namespace (``CreateNamespace=true``, automated sync with prune and self-heal). Per N, on one
devcluster and in this order, each variant on a clean slate (the previous one's namespaces deleted
and waited for) and in namespaces no earlier run used (``fresh_prefix``):

- ``kubectl``: ``kubectl apply --server-side`` of the N Namespaces and 4N objects, then
  ``kubectl wait --for=condition=Available`` on all N Deployments. The baseline.
- ``flux``: source- and kustomize-controller, one GitRepository and N Kustomizations (bench/flux.py).
- ``tether``: a fresh ``tether serve``; the clock runs from creating the N Applications until all
  are Synced and Healthy. CPU seconds and peak RSS are those of the serve process (and its children).

After the last N, the same ``tether serve`` is left alone for C2 (CPU, API requests by verb, git
requests), then C3 patches managed Deployments and times the self-heal's revert.

C0 is not Tether's: it measures the kubectl baseline on two devclusters, one with
kube-controller-manager's default concurrency and one with the devcluster's raised one, so the
benchmarks can show the control plane is not what they measure.
"""

from __future__ import annotations

import math
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.common import BenchError, Kubectl, Result, apiserver_requests, log, run, summary
from bench.floor import FloorProcess
from bench.flux import (
    Api,
    MachineLoad,
    TreeMemory,
    Watch,
    condition_true,
    cost,
    cpu_mark,
    cpu_seconds,
    flux_tree,
    run_flux,
    summarize_costs,
)
from bench.workload import FLUX_RESOURCES, app_name, flux_app, namespace_object

TETHER_NAMESPACE = "tether-system"
APPLICATIONS = "applications.tether.dev"
APP_API = "tether.dev/v1alpha1"
KUBECTL_PREFIX = "kubectl-"
WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "APPLY", "CREATE", "UPDATE", "DELETECOLLECTION"})
# What Tether reads and writes in C2: the apps' kinds, its own CRs, Events it emits, cluster Secrets.
TETHER_RESOURCES = FLUX_RESOURCES | {"applications", "projects", "events", "secrets"}
TARGETS = {
    "c1_ratio_to_kubectl": 1.25,
    "c1_faster_than_flux": True,
    "c2_cpu_percent": 2.0,
    "c2_writes": 0,
    "c2_ls_remote_per_repository_per_interval": 1,
}
READY_TIMEOUT = 60.0


def timeout_for(n: int) -> float:
    return 300.0 + 1.5 * n


# --------------------------------------------------------------------------- the workload


def tether_tree(root: Path, n: int) -> Path:
    """``apps/app-NNNN/app.yaml`` for N apps in Flux's shape (no namespace: the Application's destination sets it)."""
    for i in range(n):
        name = app_name(i)
        target = root / "apps" / name / "app.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump_all(flux_app(name), sort_keys=False))
    return root


def fresh_prefix(n: int, rep: int) -> str:
    """A namespace prefix no earlier run of this bench used: ``n100r0-`` and so on.

    The API server's NamespaceLifecycle admission looks a namespace up live (a quorum read
    from etcd) for every write in it during the 30 s after a DELETE of that namespace. A run
    that re-creates namespaces the previous one deleted seconds earlier paid ~15 such reads
    per app (1,470 extra GETs at N = 100, the API server's CPU nearly doubled), and which
    variant paid depended on the order of the runs. Fresh names make every run a cold start.
    """
    return f"n{n}r{rep}-"


def application(i: int, repo_url: str, namespace: str = TETHER_NAMESPACE, prefix: str = "") -> dict[str, Any]:
    """An Application in Argo CD's shape syncing ``apps/app-NNNN`` into namespace ``<prefix>app-NNNN``."""
    name = app_name(i)
    return {
        "apiVersion": APP_API,
        "kind": "Application",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo_url, "path": f"apps/{name}", "targetRevision": "main"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": prefix + name},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["CreateNamespace=true"]},
        },
    }


def synced_and_healthy(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    return (status.get("sync") or {}).get("status") == "Synced" and (status.get("health") or {}).get(
        "status"
    ) == "Healthy"


def kubectl_objects(n: int, prefix: str = "") -> list[dict[str, Any]]:
    """What the kubectl baseline applies: N Namespaces and each app's 4 objects in its own namespace."""
    docs: list[dict[str, Any]] = []
    for i in range(n):
        namespace = f"{KUBECTL_PREFIX}{prefix}{app_name(i)}"
        docs.append(namespace_object(namespace))
        for obj in flux_app(app_name(i)):
            docs.append({**obj, "metadata": {**obj["metadata"], "namespace": namespace}})
    return docs


# --------------------------------------------------------------------------- kubectl baseline


def kubectl_baseline(
    kubectl: Kubectl,
    workdir: Path,
    n: int,
    *,
    kubectl_wait: bool = False,
    prefix: str = "",
    control_plane: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """``kubectl apply --server-side`` of N apps, then the seconds until all N Deployments are Available.

    Available is seen by a watch of the Deployments, as Flux's and Tether's end points are: ``kubectl
    wait`` checks its objects one after another, and on 500 Deployments that were all Available
    already it took 52 s (longer than the apply), so it measured itself. With ``kubectl_wait`` the
    ``kubectl wait`` figure (E1's method) is taken too, after the watch. The namespaces are deleted
    and waited for after the clock stops. ``prefix`` goes before each namespace's name (``fresh_prefix``).
    With ``control_plane`` (component → pid), where the machine's CPU went while the clock ran (``MachineLoad``).
    """
    path = workdir / f"kubectl-n{n}.yaml"
    path.write_text(yaml.safe_dump_all(kubectl_objects(n, prefix), sort_keys=False))
    timeout = timeout_for(n)
    api = Api(kubectl.kubeconfig)
    try:
        load = MachineLoad(control_plane or {})
        started = time.monotonic()
        kubectl("apply", "--server-side", "-f", str(path), timeout=timeout)
        applied = time.monotonic() - started
        finished = api.wait_all(
            "/apis/apps/v1/deployments",
            {app_name(i) for i in range(n)},
            condition_true("Available"),
            timeout=timeout,
            what="Deployments Available",
        )
        out: dict[str, Any] = {
            "seconds": round(max(finished.values()) - started, 3),
            "apply_seconds": round(applied, 3),
        }
        if control_plane is not None:
            out["machine"] = load.stop()
        if kubectl_wait:
            kubectl(
                "wait",
                "--for=condition=Available",
                "deployment",
                "--all-namespaces",
                "--selector=app.kubernetes.io/name",
                f"--timeout={int(timeout)}s",
                timeout=timeout + 30,
            )
            out["kubectl_wait_seconds"] = round(time.monotonic() - started, 3)
        log(f"kubectl: {n} apps {out}")
        api.delete_namespaces([f"{KUBECTL_PREFIX}{prefix}{app_name(i)}" for i in range(n)])
    finally:
        api.close()
    return out


# --------------------------------------------------------------------------- the ingress controller


INGRESSES = "/apis/networking.k8s.io/v1/ingresses"
INGRESS_STATUS = {"status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}}


class IngressAddresses:
    """The devcluster's stand-in for an ingress controller: every Ingress gets the address 127.0.0.1.

    Argo CD's health rules (Tether's too) keep an Ingress Progressing until its status holds a
    load-balancer address, and the devcluster runs no ingress controller, so without this no app of
    Flux's shape ever becomes Healthy. kubectl's wait and Flux's kstatus do not look at the address;
    the addresses are given in every variant alike, from a watch, by a few threads.
    """

    def __init__(self, api: Api, workers: int = 4) -> None:
        self.api = api
        self.patched = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._work: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._threads = [threading.Thread(target=self._patch, daemon=True) for _ in range(workers)]
        self._threads.append(threading.Thread(target=self._watch, daemon=True))
        for thread in self._threads:
            thread.start()

    def _watch(self) -> None:
        self.api.follow(
            INGRESSES, self._offer, stop=self._stop, on_error=lambda exc: self.errors.append(str(exc)[:200])
        )

    def _offer(self, obj: dict[str, Any]) -> None:
        if not ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
            meta = obj.get("metadata", {})
            self._work.put((meta.get("namespace", ""), meta.get("name", "")))

    def _patch(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            namespace, name = item
            path = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/{name}/status"
            try:
                response = self.api.client.patch(
                    path, json=INGRESS_STATUS, headers={"Content-Type": "application/merge-patch+json"}
                )
                if response.status_code < 300:
                    self.patched += 1
                elif response.status_code != 404:
                    self.errors.append(f"{namespace}/{name}: HTTP {response.status_code}")
            except httpx.HTTPError as exc:
                self.errors.append(f"{namespace}/{name}: {exc}"[:200])

    def stop(self) -> None:
        self._stop.set()
        for _ in self._threads:
            self._work.put(None)
        for thread in self._threads:
            thread.join(timeout=10)


# --------------------------------------------------------------------------- tether serve


class TetherServe:
    """One ``tether serve`` process started by the bench (``python -m tether.cli``, so ``--src`` applies).

    ``extra_args`` go after the bench's own flags (W1 gives a ``pass`` store this way).
    """

    def __init__(self, kubeconfig: str, workdir: Path, poll_interval: float, extra_args: Sequence[str] = ()) -> None:
        from tether.devcluster.ports import free_port

        self.kubeconfig = kubeconfig
        self.extra_args = list(extra_args)
        self.port = free_port()
        self.state_dir = Path(tempfile.mkdtemp(prefix="tether-serve-", dir=workdir))
        self.log_path = self.state_dir / "serve.log"
        self.poll_interval = poll_interval
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def install(kubeconfig: str) -> None:
        argv = [sys.executable, "-m", "tether.cli", "install", "--kubeconfig", kubeconfig]
        run([*argv, "--namespace", TETHER_NAMESPACE], timeout=180, env=os.environ)

    def start(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "tether.cli",
            "serve",
            "--kubeconfig",
            self.kubeconfig,
            "--namespace",
            TETHER_NAMESPACE,
            "--listen",
            f"127.0.0.1:{self.port}",
            "--poll-interval",
            f"{self.poll_interval:g}",
            "--state-dir",
            str(self.state_dir),
            *self.extra_args,
        ]
        with self.log_path.open("ab") as sink:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            self.check_alive()
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"tether serve not ready after {READY_TIMEOUT:g}s; see {self.log_path}\n{self.tail()}")
            time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise BenchError("tether serve is not running")
        return self.process.pid

    def tail(self, lines: int = 12) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return ""

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise BenchError(f"tether serve exited with {self.process.returncode}; see {self.log_path}\n{self.tail()}")

    def metrics(self) -> str:
        try:
            return httpx.get(f"{self.url}/metrics", timeout=10).text
        except httpx.HTTPError as exc:
            log(f"tether /metrics unreadable: {exc}")
            return ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it outlives the 30 s the issue allows it."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=35)
        except subprocess.TimeoutExpired:
            log(f"tether serve ignored SIGTERM for 35s; killing it (log {self.log_path})")
            self.process.kill()
            self.process.wait(timeout=10)


def run_tether(
    *,
    kubectl: Kubectl,
    serve: TetherServe | FloorProcess,
    workdir: Path,
    repo_url: str,
    n: int,
    prefix: str = "",
    control_plane: Mapping[str, int] | None = None,
    what: str = "tether",
) -> dict[str, Any]:
    """C1 for Tether on a running ``serve``: create N Applications, wait until all are Synced and Healthy.

    Each app syncs into namespace ``<prefix>app-NNNN`` (``fresh_prefix``). ``control_plane`` as for
    ``kubectl_baseline``. ``serve`` may be the floor controller instead (``what`` names it in the log)."""
    pid = serve.pid
    cpu0 = cpu_mark(pid)
    memory = TreeMemory(pid)
    path = workdir / f"applications-n{n}.yaml"
    path.write_text(yaml.safe_dump_all([application(i, repo_url, prefix=prefix) for i in range(n)], sort_keys=False))
    names = {app_name(i) for i in range(n)}
    # watching before the apply: apps done while it still runs (most, at N >= 500) get their own times
    watch = Watch(
        kubectl.kubeconfig,
        f"/apis/{APP_API}/namespaces/{TETHER_NAMESPACE}/applications",
        names,
        synced_and_healthy,
        timeout=timeout_for(n),
        alive=serve.check_alive,
        what="Applications Synced and Healthy",
    )
    load = MachineLoad(control_plane or {})
    started = time.monotonic()
    kubectl("apply", "--server-side", "-f", str(path), timeout=timeout_for(n))
    created = time.monotonic() - started
    finished = watch.result(timeout_for(n))
    seconds = max(finished.values()) - started
    figures: dict[str, Any] = {
        **cost(pid, cpu0),
        "peak_tree_rss_mib": round(memory.stop(), 1),
        **progress(finished, started),
    }
    if control_plane is not None:
        figures["machine"] = load.stop()
    log(f"{what}: {n} Applications Synced and Healthy in {seconds:.1f}s; {figures}")
    return {"seconds": round(seconds, 3), "create_seconds": round(created, 3), **figures}


def progress(finished: dict[str, float], started: float) -> dict[str, float]:
    """When the first, the median and the 90th-percentile object became done: the shape of the ramp."""
    times = sorted(t - started for t in finished.values())
    return {
        "first_done_seconds": round(times[0], 3),
        "median_done_seconds": round(times[len(times) // 2], 3),
        "p90_done_seconds": round(times[int(len(times) * 0.9)], 3),
    }


def cleanup_tether(kubectl: Kubectl, serve: TetherServe | FloorProcess, n: int, prefix: str = "") -> None:
    """Delete the Applications (while serve runs, in case it added a finalizer), stop serve, drop the namespaces."""
    kubectl("delete", APPLICATIONS, "--all", "-n", TETHER_NAMESPACE, "--timeout=300s", timeout=330)
    serve.stop()
    api = Api(kubectl.kubeconfig)
    try:
        api.delete_namespaces([prefix + app_name(i) for i in range(n)])
    finally:
        api.close()


# --------------------------------------------------------------------------- C2 and C3


_SERIES = re.compile(r"^(tether_[a-zA-Z0-9_:]*_total)(\{[^}]*\})?\s+([0-9.eE+-]+)$")


def tether_counters(text: str) -> dict[str, float]:
    """Tether's own ``tether_*_total`` series from its /metrics (reconciles, status writes, cluster writes)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        match = _SERIES.match(line)
        if match:
            out[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return out


Requests = dict[str, dict[str, int]]


def _by_verb(
    before: Counter[tuple[str, str, str, str, str]], after: Counter[tuple[str, str, str, str, str]]
) -> dict[str, Requests]:
    """apiserver_request_total deltas as verb → "group/resource[/subresource]" → count, Tether's kinds apart."""
    ours: Requests = {}
    others: Requests = {}
    for key, value in after.items():
        delta = value - before.get(key, 0)
        verb, dry_run, group, resource, subresource = key
        if delta <= 0 or not resource:
            continue
        label = f"{group + '/' if group else ''}{resource}{'/' + subresource if subresource else ''}"
        label += " (dry run)" if dry_run else ""
        bucket = ours if resource in TETHER_RESOURCES else others
        bucket.setdefault(verb, {})
        bucket[verb][label] = bucket[verb].get(label, 0) + delta
    return {"tether_resources": ours, "other_resources": others}


_PENDING = re.compile(r"^tether_writes_pending\s+([0-9.eE+-]+)$", re.MULTILINE)


def wait_for_quiet(serve: TetherServe, timeout: float = 300.0) -> float:
    """Seconds until ``tether serve`` has no write left from C1 (statuses held to settle, Events in its backlog),
    so C2 measures the steady state and not C1's tail."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        serve.check_alive()
        match = _PENDING.search(serve.metrics())
        if match and float(match.group(1)) == 0:
            return time.monotonic() - started
        time.sleep(1.0)
    raise BenchError(f"tether serve still had writes pending after {timeout:.0f}s (log {serve.log_path})")


def steady_state(
    *, kubectl: Kubectl, serve: TetherServe, git: Any, repos: list[str], seconds: float, poll_interval: float
) -> dict[str, Any]:
    """C2: nothing changes for ``seconds``; what does the running controller spend?"""
    quiet_after = wait_for_quiet(serve)
    log(f"C2: tether serve sent C1's last writes {quiet_after:.1f}s after C1 ended")
    pid = serve.pid
    server_before = apiserver_requests(kubectl)
    own_before = tether_counters(serve.metrics())
    git_before = len(git.requests)
    cpu0 = cpu_seconds(pid)
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        serve.check_alive()
        time.sleep(min(5.0, max(0.0, seconds - (time.monotonic() - started))))
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(pid) - cpu0
    git_window = git.requests[git_before:]
    own_after = tether_counters(serve.metrics())
    server_after = apiserver_requests(kubectl)
    requests = _by_verb(server_before, server_after)
    ours = requests["tether_resources"]
    writes = sum(n for verb, rows in ours.items() if verb in WRITE_VERBS for n in rows.values())
    reads = sum(n for verb, rows in ours.items() if verb not in WRITE_VERBS for n in rows.values())
    ls_remote = {repo: 0 for repo in repos}
    fetches = {repo: 0 for repo in repos}
    for method, path in git_window:
        repo = path.lstrip("/").split("/", 1)[0].removesuffix(".git")
        if method == "GET" and "info/refs?service=git-upload-pack" in path:
            ls_remote[repo] = ls_remote.get(repo, 0) + 1
        elif method == "POST" and path.endswith("/git-upload-pack"):
            fetches[repo] = fetches.get(repo, 0) + 1
    allowed = math.floor(elapsed / poll_interval) + 1
    own = {k: v - own_before.get(k, 0.0) for k, v in own_after.items() if v - own_before.get(k, 0.0)}
    # Every write this process sent, as it counts them: its main client (applies, dry runs, status) and Events.
    tether_writes = int(own.get("tether_cluster_writes_total", 0) + own.get("tether_event_writes_total", 0))
    log(
        f"C2: {elapsed:.0f}s idle: {100 * cpu / elapsed:.2f}% CPU, {tether_writes} writes sent by tether, "
        f"{writes} writes and {reads} reads on its kinds from all clients, ls-remote {ls_remote}"
    )
    return {
        "seconds": round(elapsed, 1),
        "quiet_after_c1_seconds": round(quiet_after, 1),
        "cpu_seconds": round(cpu, 3),
        "cpu_percent": round(100 * cpu / elapsed, 3),
        "tether_writes": tether_writes,
        "apiserver_writes_on_tether_resources": writes,
        "apiserver_reads_on_tether_resources": reads,
        "apiserver_requests": requests,
        "tether_own_counters": own,
        "ls_remote": ls_remote,
        "fetches": fetches,
        "ls_remote_allowed_per_repository": allowed,
        "poll_interval": poll_interval,
    }


@contextmanager
def _watch_replicas(kubectl: Kubectl, name: str, namespace: str) -> Iterator[queue.Queue[tuple[float, str]]]:
    """``kubectl get -w`` of one Deployment's ``spec.replicas``: (monotonic time, value) per event."""
    argv = [kubectl.bin, "--kubeconfig", kubectl.kubeconfig, "get", "deployment", name, "-n", namespace, "-w"]
    argv += ["-o", 'jsonpath={.spec.replicas}{"\\n"}']
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: queue.Queue[tuple[float, str]] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put((time.monotonic(), line.strip()))

    threading.Thread(target=pump, daemon=True).start()
    try:
        yield lines
    finally:
        process.kill()
        process.wait(timeout=10)


def _next(lines: queue.Queue[tuple[float, str]], want: Callable[[str], bool], deadline: float, what: str) -> float:
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BenchError(f"C3: timed out waiting for {what}")
        try:
            at, value = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if want(value):
            return at


def drift(
    *, kubectl: Kubectl, serve: TetherServe, reps: int, prefix: str = "", timeout: float = 120.0
) -> dict[str, Any]:
    """C3: ``kubectl patch`` a managed Deployment's replicas 0 → 2; seconds until self-heal puts 0 back.

    Each repetition uses another app, so no self-heal backoff of an earlier one applies.
    """
    observed: list[float] = []
    from_command: list[float] = []
    for i in range(reps):
        name = app_name(i)
        namespace = prefix + name
        with _watch_replicas(kubectl, name, namespace) as lines:
            _next(lines, lambda v: v == "0", time.monotonic() + 30, f"deployment {name} to be watched at 0 replicas")
            issued = time.monotonic()
            kubectl("patch", "deployment", name, "-n", namespace, "--type=merge", "-p", '{"spec":{"replicas":2}}')
            deadline = issued + timeout
            changed = _next(lines, lambda v: v == "2", deadline, f"the patch of {name} to be seen")
            reverted = _next(lines, lambda v: v == "0", deadline, f"self-heal to revert {name}")
        serve.check_alive()
        observed.append(reverted - changed)
        from_command.append(reverted - issued)
        log(f"C3: {name} reverted {reverted - changed:.3f}s after the change was seen")
    return {"observed": summary(observed), "from_patch_command": summary(from_command)}


# --------------------------------------------------------------------------- C0: the control plane


def run_control_plane(*, workdir: Path, sizes: list[int], out: Path, run_info: dict[str, Any]) -> Path:
    """C0: the kubectl baseline at each N with kube-controller-manager's default concurrency and the devcluster's."""
    import tether.devcluster.cluster as devcluster

    raised = dict(devcluster.CONTROLLER_CONCURRENCY)
    rows: dict[str, dict[str, dict[str, float]]] = {}
    for label, concurrency in (("kcm_defaults", {}), ("devcluster", raised)):
        name = f"bench-c0-{os.getpid()}"
        devcluster.CONTROLLER_CONCURRENCY = concurrency
        try:
            state = devcluster.up(name, log=lambda line: log(f"devcluster: {line}"))
        finally:
            devcluster.CONTROLLER_CONCURRENCY = raised
        try:
            kubectl = Kubectl(state.kubeconfig)
            rows[label] = {str(n): kubectl_baseline(kubectl, workdir, n, kubectl_wait=True) for n in sizes}
        finally:
            devcluster.down(name)
    result = Result(
        name="c0-control-plane",
        title="C0: kubectl apply --server-side + wait Available, kube-controller-manager default vs raised concurrency",
        params={"sizes": sizes, "raised_flags": raised},
        figures={label: {"by_n": row} for label, row in rows.items()},
        notes=[
            "One sample per N and setting; each on a fresh devcluster. seconds: until a watch saw all Deployments "
            "Available; kubectl_wait_seconds: until `kubectl wait` (run after the watch) returned.",
        ],
    )
    return result.write(out, run_info)


# --------------------------------------------------------------------------- C1–C3


def run_controller(
    *,
    kubeconfig: str,
    workdir: Path,
    sizes: list[int],
    reps: int,
    flux_reps: int,
    floor_reps: int,
    steady_seconds: float,
    drift_reps: int,
    poll_interval: float,
    only: set[str],
    out: Path,
    run_info: dict[str, Any],
    control_plane: Mapping[str, int] | None = None,
) -> list[Path]:
    """C1 at each N (kubectl, Flux, Tether), then C2 and C3 on the last N's running ``tether serve``.

    kubectl and Tether run ``reps`` times each, one after the other, so both see the same drift of a
    shared machine and the ratio is of medians; Flux runs in the first ``flux_reps`` rounds only, and
    the floor controller (``bench.floor``) in the first ``floor_reps``, after kubectl.
    ``control_plane`` (the devcluster's component → pid) adds where the machine's CPU went to each
    kubectl and Tether sample.
    """
    from tether.devcluster.gitserver import GitHttpServer

    kubectl = Kubectl(kubeconfig)
    ingresses = IngressAddresses(Api(kubeconfig))
    written: list[Path] = []
    with GitHttpServer(workdir / "git") as git:
        repos: dict[int, tuple[str, str]] = {}
        for n in sizes:
            ours = git.create_repo(f"fleet-n{n}", from_dir=tether_tree(workdir / f"tree-n{n}", n))
            theirs = git.create_repo(f"fleet-flux-n{n}", from_dir=flux_tree(workdir / f"flux-tree-n{n}", n))
            repos[n] = (ours.url, theirs.url)
        TetherServe.install(kubeconfig)

        def timed(controller: TetherServe | FloorProcess, n: int, prefix: str, what: str) -> dict[str, Any]:
            return run_tether(
                kubectl=kubectl,
                serve=controller,
                workdir=workdir,
                repo_url=repos[n][0],
                n=n,
                prefix=prefix,
                control_plane=control_plane,
                what=what,
            )

        serve: TetherServe | None = None
        prefix = ""
        try:
            for n in sizes:
                last = n == sizes[-1]
                samples: dict[str, list[dict[str, Any]]] = {"kubectl": [], "flux": [], "floor": [], "tether": []}
                for rep in range(reps):
                    prefix = fresh_prefix(n, rep)
                    log(f"C1 N={n} repetition {rep + 1}/{reps}: kubectl")
                    samples["kubectl"].append(
                        kubectl_baseline(kubectl, workdir, n, prefix=prefix, control_plane=control_plane)
                    )
                    if rep < flux_reps:
                        log(f"C1 N={n} repetition {rep + 1}/{reps}: flux")
                        samples["flux"].append(
                            run_flux(
                                kubeconfig=kubeconfig,
                                workdir=workdir,
                                repo_url=repos[n][1],
                                n=n,
                                timeout=timeout_for(n),
                            )
                        )
                    if rep < floor_reps:
                        log(f"C1 N={n} repetition {rep + 1}/{reps}: floor")
                        floor_prefix = prefix.rstrip("-") + "f-"
                        floor = FloorProcess(kubeconfig, TETHER_NAMESPACE, repos[n][0], workdir / "floor.log")
                        floor.start()
                        try:
                            samples["floor"].append(timed(floor, n, floor_prefix, "floor"))
                        finally:
                            cleanup_tether(kubectl, floor, n, floor_prefix)
                    log(f"C1 N={n} repetition {rep + 1}/{reps}: tether")
                    serve = TetherServe(kubeconfig, workdir, poll_interval)
                    serve.start()
                    samples["tether"].append(timed(serve, n, prefix, "tether"))
                    if not (last and rep == reps - 1):
                        cleanup_tether(kubectl, serve, n, prefix)
                        serve = None
                if "C1" in only:
                    written.append(_c1_result(n, samples).write(out, run_info))
            assert serve is not None
            ingresses.stop()  # its watch would count as the controller's reads; nothing new appears from here on
            if "C2" in only:
                c2 = steady_state(
                    kubectl=kubectl,
                    serve=serve,
                    git=git,
                    repos=[f"fleet-n{sizes[-1]}"],
                    seconds=steady_seconds,
                    poll_interval=poll_interval,
                )
                written.append(_c2_result(sizes[-1], c2).write(out, run_info))
            if "C3" in only:
                c3 = drift(kubectl=kubectl, serve=serve, reps=drift_reps, prefix=prefix)
                written.append(_c3_result(sizes[-1], c3).write(out, run_info))
        finally:
            ingresses.stop()
            ingresses.api.close()
            if serve is not None:
                serve.stop()
            if ingresses.errors:
                log(f"ingress addresses: {len(ingresses.errors)} errors, first: {ingresses.errors[:3]}")
    return written


def _c1_result(n: int, samples: dict[str, list[dict[str, Any]]]) -> Result:
    tether, flux, kubectl = samples["tether"], samples["flux"], samples["kubectl"]
    figures = {
        "tether": summary([s["seconds"] for s in tether]),
        "tether_cpu_seconds": summary([s["cpu_seconds"] for s in tether], "s"),
        "tether_peak_rss_mib": summary([s["peak_rss_mib"] for s in tether], "MiB"),
        "tether_peak_tree_rss_mib": summary([s["peak_tree_rss_mib"] for s in tether], "MiB"),
    }
    baseline = {
        "kubectl": summary([s["seconds"] for s in kubectl]),
        "flux": summary([s["seconds"] for s in flux]),
    }
    for controller in ("kustomize-controller", "source-controller"):
        costs = summarize_costs(flux, controller)
        baseline[f"{controller}_cpu_seconds"] = summary(costs["cpu_seconds"], "s")
        baseline[f"{controller}_peak_rss_mib"] = summary(costs["peak_rss_mib"], "MiB")
    t, k, f = figures["tether"]["median"], baseline["kubectl"]["median"], baseline["flux"]["median"]
    ratios = {"tether_to_kubectl": round(t / k, 3), "tether_to_flux": round(t / f, 3)}
    if floor := samples.get("floor"):
        baseline["floor"] = summary([s["seconds"] for s in floor])
        baseline["floor_cpu_seconds"] = summary([s["cpu_seconds"] for s in floor], "s")
        ratios["floor_to_kubectl"] = round(baseline["floor"]["median"] / k, 3)
        ratios["tether_to_floor"] = round(t / baseline["floor"]["median"], 3)
    return Result(
        name=f"c1-cold-start-n{n}",
        title=f"C1: cold start of {n} apps (Flux's shape, one monorepo) until all Synced and Healthy",
        params={
            "apps": n,
            "objects": 4 * n,
            "repetitions": len(tether),
            "flux_repetitions": len(flux),
            "floor_repetitions": len(samples.get("floor") or []),
        },
        figures=figures,
        baseline=baseline,
        ratios=ratios,
        targets={"ratio_to_kubectl": TARGETS["c1_ratio_to_kubectl"], "faster_than_flux": True},
        extra={"samples": samples},
    )


def _c2_result(n: int, c2: dict[str, Any]) -> Result:
    return Result(
        name="c2-steady-state",
        title=f"C2: steady state of {n} apps, nothing changing",
        params={"apps": n, "seconds": c2["seconds"], "poll_interval": c2["poll_interval"]},
        figures={
            "cpu_percent": {"median": c2["cpu_percent"], "samples": [c2["cpu_percent"]], "unit": "%"},
            "writes": {"median": c2["tether_writes"], "samples": [c2["tether_writes"]], "unit": "requests"},
        },
        targets={
            "cpu_percent": TARGETS["c2_cpu_percent"],
            "writes": TARGETS["c2_writes"],
            "ls_remote_per_repository_per_interval": TARGETS["c2_ls_remote_per_repository_per_interval"],
        },
        notes=[
            "writes: what tether serve sent, by its own counters (main client and Events client). apiserver_request_total "
            "cannot tell clients apart: 'tether_resources' are the kinds Tether manages, its CRs, Events and Secrets, which "
            "the control plane writes too (Events while the previous runs' namespaces terminate); 'other_resources' are "
            "the control plane's and kwok's.",
            f"The window starts once tether serve has sent C1's last writes (its tether_writes_pending gauge at 0): "
            f"{c2['quiet_after_c1_seconds']:g}s after C1 ended.",
        ],
        extra={"steady_state": c2},
    )


def _c3_result(n: int, c3: dict[str, Any]) -> Result:
    return Result(
        name="c3-drift",
        title=f"C3: kubectl patch of a managed Deployment reverted by self-heal ({n} apps running)",
        params={"apps": n, "repetitions": len(c3["observed"]["samples"]), "patch": {"spec": {"replicas": 2}}},
        figures={"revert_seconds": c3["observed"], "revert_seconds_from_patch_command": c3["from_patch_command"]},
        notes=[
            "Timed by a `kubectl get -w` of the Deployment: from the event showing 2 replicas to the one showing 0."
        ],
    )
