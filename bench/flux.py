"""Flux itself, the baseline of C1: source-controller and kustomize-controller as local processes.

Run as Flux's own benchmark runs them: their defaults (``--concurrent=4`` for kustomize-controller,
QPS 50, burst 300), all namespaces watched, the temp directory on tmpfs. One ``GitRepository``
(smart HTTP from the bench's ``GitHttpServer``, interval 10m) holds the N app directories; N
``Kustomization``s (``prune``, ``wait``, a target namespace each, interval 10m) apply them. The
clock runs from creating the Kustomizations until all N are Ready. Each app directory carries its
Namespace, as kubectl's file does: kustomize-controller does not create a target namespace.

Also here: what a process costs (CPU seconds from /proc/<pid>/stat, peak RSS from VmHWM), and a
watch that waits for N objects to satisfy a predicate, used for Flux and Tether alike.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.common import BenchError, Kubectl, log
from bench.workload import app_name, flux_app, namespace_object

FLUX_NAMESPACE = "flux-system"
FLUX_PREFIX = "flux-"
GITREPOSITORY = "fleet"
KUSTOMIZATIONS = "kustomizations.kustomize.toolkit.fluxcd.io"
KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/v1"
SOURCE_API = "source.toolkit.fluxcd.io/v1"
START_TIMEOUT = 60.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- what a process costs


def cpu_seconds(pid: int, *, children: bool = True) -> float:
    """User + system CPU of ``pid``; with ``children``, plus its live descendants and its reaped children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime/stime are fields 14/15, cutime/cstime 16/17.
    total = (int(fields[11]) + int(fields[12])) / CLK_TCK
    if children:
        total += (int(fields[13]) + int(fields[14])) / CLK_TCK
        for child in _children(pid):
            try:
                total += cpu_seconds(child)
            except (OSError, IndexError):
                pass
    return total


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return 0


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the most resident memory ``pid`` itself has had."""
    return _status_kib(pid, "VmHWM") / 1024


def tree_rss_mib(pid: int) -> float:
    """Resident memory now of ``pid`` and its live descendants (a render pool's workers, say)."""
    total = _status_kib(pid, "VmRSS") / 1024
    for child in _children(pid):
        try:
            total += tree_rss_mib(child)
        except OSError:
            pass
    return total


class TreeMemory:
    """Samples the resident memory of a process tree every ``period`` s; ``peak`` is the largest sum seen."""

    def __init__(self, pid: int, period: float = 0.5) -> None:
        self.pid, self.period, self.peak = pid, period, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, tree_rss_mib(self.pid))
            except OSError:
                return
            self._stop.wait(self.period)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak


def machine_mark() -> tuple[float, float, float]:
    """(busy jiffies, all jiffies) of every CPU from /proc/stat, and the CPU pressure's ``some`` total (µs)."""
    fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    pressure = 0.0
    try:
        for line in Path("/proc/pressure/cpu").read_text().splitlines():
            if line.startswith("some"):
                pressure = float(line.rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        pass
    return sum(fields) - idle, sum(fields), pressure


def machine_since(mark: tuple[float, float, float], seconds: float) -> dict[str, float]:
    busy, total, pressure = machine_mark()
    return {
        "cpu_busy_percent": round(100 * (busy - mark[0]) / max(1.0, total - mark[1]), 1),
        "cpu_pressure_some_percent": round(100 * (pressure - mark[2]) / 1e6 / max(seconds, 1e-9), 1),
    }


def _own_seconds() -> float:
    """The bench process's CPU with that of the children it has reaped (kubectl, git's CGI)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class MachineLoad:
    """Where the machine's CPU went in a window: all of it, the control plane's processes, the bench's.

    C1's variants keep both cores busy, so a ratio of wall times is a ratio of the CPU they made the
    machine spend; this is what shows it, run by run (docs/benchmarks.md, "What 1.25× would take").
    """

    def __init__(self, components: Mapping[str, int]) -> None:
        self.components = dict(components)
        self._wall = time.monotonic()
        self._machine = machine_mark()[0] / CLK_TCK
        self._own = _own_seconds()
        self._parts = {name: self._part(pid) for name, pid in self.components.items()}

    @staticmethod
    def _part(pid: int) -> float:
        try:
            return cpu_seconds(pid, children=False)
        except (OSError, IndexError):
            return 0.0

    def stop(self) -> dict[str, Any]:
        wall = time.monotonic() - self._wall
        machine = machine_mark()[0] / CLK_TCK - self._machine
        return {
            "machine_cpu_seconds": round(machine, 2),
            "busy_cores": round(machine / wall, 2) if wall > 0 else 0.0,
            "control_plane_cpu_seconds": {
                name: round(self._part(pid) - self._parts[name], 2) for name, pid in self.components.items()
            },
            "bench_cpu_seconds": round(_own_seconds() - self._own, 2),
        }


def cpu_mark(pid: int) -> tuple[float, float]:
    """CPU seconds so far of ``pid`` with its children, and of ``pid`` alone: the start of a window for ``cost``."""
    return cpu_seconds(pid), cpu_seconds(pid, children=False)


def cost(pid: int, mark: tuple[float, float]) -> dict[str, float]:
    """CPU seconds since ``mark`` (with children, and the process alone) and the peak RSS of the process."""
    return {
        "cpu_seconds": round(cpu_seconds(pid) - mark[0], 3),
        "cpu_seconds_process_only": round(cpu_seconds(pid, children=False) - mark[1], 3),
        "peak_rss_mib": round(peak_rss_mib(pid), 1),
    }


# --------------------------------------------------------------------------- the API


class Api:
    """Plain HTTPS to the devcluster's apiserver from its kubeconfig (token and CA), for watches."""

    def __init__(self, kubeconfig: str) -> None:
        config = yaml.safe_load(Path(kubeconfig).read_text())
        cluster = config["clusters"][0]["cluster"]
        self.server = cluster["server"]
        context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        self.client = httpx.Client(
            base_url=self.server,
            verify=context,
            headers={"Authorization": f"Bearer {config['users'][0]['user']['token']}"},
            timeout=httpx.Timeout(60.0, read=90.0),
        )

    def close(self) -> None:
        self.client.close()

    def delete_namespaces(self, names: list[str], timeout: float = 900.0) -> None:
        """Delete namespaces (8 requests at a time: one kubectl call for 1000 names outlasted its timeout)
        and return once they are gone, so the next variant starts on a clean slate."""
        from concurrent.futures import ThreadPoolExecutor

        def delete(name: str) -> None:
            response = self.client.delete(f"/api/v1/namespaces/{name}")
            if response.status_code not in (200, 202, 404, 409):
                raise BenchError(f"deleting namespace {name}: HTTP {response.status_code} {response.text[:200]}")

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(delete, names))
        wanted, deadline = set(names), time.monotonic() + timeout
        while True:
            listing = self.client.get("/api/v1/namespaces")
            listing.raise_for_status()
            left = wanted & {item["metadata"]["name"] for item in listing.json().get("items", [])}
            if not left:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"{len(left)} namespaces still there {timeout:.0f}s after their deletion")
            time.sleep(1.0)

    def follow(
        self,
        path: str,
        on: Callable[[dict[str, Any]], None],
        *,
        stop: threading.Event,
        on_error: Callable[[Exception], None],
        opened: Callable[[], None] = lambda: None,
        watch_seconds: int = 5,
    ) -> None:
        """Call ``on`` with every object listed at ``path``, then with each one added or changed, until ``stop``.

        Each watch asks the server to end it after ``watch_seconds`` (so ``stop`` is seen, and under the
        client's read timeout); ``opened`` is called whenever a watch's stream opens. History gone (410,
        or an ERROR event) lists again; a failed request is given to ``on_error`` and lists again after 0.5 s.
        """
        version = ""
        while not stop.is_set():
            try:
                if not version:
                    listing = self.client.get(path)
                    listing.raise_for_status()
                    body = listing.json()
                    for item in body.get("items", []):
                        on(item)
                    version = body["metadata"]["resourceVersion"]
                params = {
                    "watch": "1",
                    "resourceVersion": version,
                    "timeoutSeconds": str(watch_seconds),
                    "allowWatchBookmarks": "true",
                }
                with self.client.stream("GET", path, params=params) as stream:
                    if stream.status_code == 410:
                        version = ""
                        continue
                    stream.raise_for_status()
                    opened()
                    for line in stream.iter_lines():
                        if stop.is_set():
                            return
                        if not line:
                            continue
                        event = json.loads(line)
                        obj = event.get("object", {})
                        if event.get("type") == "ERROR":
                            version = ""
                            break
                        version = obj.get("metadata", {}).get("resourceVersion", version)
                        if event.get("type") in ("ADDED", "MODIFIED"):
                            on(obj)
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                on_error(exc)
                version = ""
                stop.wait(0.5)

    def wait_all(
        self,
        path: str,
        names: set[str],
        done: Callable[[dict[str, Any]], bool],
        *,
        timeout: float,
        alive: Callable[[], None] = lambda: None,
        what: str = "objects",
    ) -> dict[str, float]:
        """Watch the collection at ``path`` until every object in ``names`` satisfies ``done``.

        Returns when each became done (monotonic clock). ``alive`` is called between events and
        may raise (a controller that died); past ``timeout`` a BenchError names what is missing.
        """
        finished: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        listing = self.client.get(path)
        listing.raise_for_status()
        body = listing.json()
        for item in body.get("items", []):
            if item["metadata"]["name"] in names and done(item):
                finished.setdefault(item["metadata"]["name"], time.monotonic())
        version = body["metadata"]["resourceVersion"]
        last_report = time.monotonic()
        while len(finished) < len(names):
            alive()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                missing = sorted(names - finished.keys())
                raise BenchError(
                    f"{len(missing)} of {len(names)} {what} not done after {timeout:.0f}s (first: {missing[:5]})"
                )
            params = {"watch": "1", "resourceVersion": version, "allowWatchBookmarks": "true"}
            params["timeoutSeconds"] = str(int(min(10, max(1, remaining))))
            with self.client.stream("GET", path, params=params) as stream:
                if stream.status_code == 410:  # history gone: list again
                    return {
                        **finished,
                        **self.wait_all(path, names - finished.keys(), done, timeout=remaining, alive=alive, what=what),
                    }
                stream.raise_for_status()
                for line in stream.iter_lines():
                    if not line:
                        continue
                    event = json.loads(line)
                    obj = event.get("object", {})
                    version = obj.get("metadata", {}).get("resourceVersion", version)
                    if event.get("type") == "ERROR":
                        if obj.get("code") == 410:
                            remaining = deadline - time.monotonic()
                            return {
                                **finished,
                                **self.wait_all(
                                    path, names - finished.keys(), done, timeout=remaining, alive=alive, what=what
                                ),
                            }
                        raise BenchError(f"watch of {path} failed: {obj.get('message')}")
                    name = obj.get("metadata", {}).get("name")
                    if event.get("type") in ("ADDED", "MODIFIED") and name in names and done(obj):
                        finished.setdefault(name, time.monotonic())
                    if len(finished) == len(names):
                        break
            if time.monotonic() - last_report > 15:
                log(f"{len(finished)}/{len(names)} {what} done")
                last_report = time.monotonic()
        return finished


class Watch:
    """``Api.wait_all`` in a thread of its own, started before the change it times.

    The constructor returns once the collection has been listed (the watch then runs from that list's
    resourceVersion, so no event after it is missed); ``result`` gives when each object became
    done (monotonic), and the object that did it in ``objects``.
    """

    def __init__(
        self,
        kubeconfig: str,
        path: str,
        names: set[str],
        done: Callable[[dict[str, Any]], bool],
        *,
        timeout: float,
        what: str,
        alive: Callable[[], None] = lambda: None,
    ) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self._listed = threading.Event()
        self._api = Api(kubeconfig)
        self._api.client.event_hooks["response"] = [lambda _response: self._listed.set()]  # the list comes first
        self._pool = ThreadPoolExecutor(max_workers=1)

        def check(obj: dict[str, Any]) -> bool:
            if done(obj):
                self.objects.setdefault(obj["metadata"]["name"], obj)
                return True
            return False

        self._future: Future[dict[str, float]] = self._pool.submit(
            self._api.wait_all, path, names, check, timeout=timeout, alive=alive, what=what
        )
        if not self._listed.wait(30) and not self._future.done():
            raise BenchError(f"the watch of {what} did not list {path} within 30s")

    def result(self, timeout: float) -> dict[str, float]:
        try:
            return self._future.result(timeout=timeout + 30)
        finally:
            self._pool.shutdown(wait=False)
            self._api.close()


def condition_true(kind: str) -> Callable[[dict[str, Any]], bool]:
    """Whether an object's ``status.conditions`` has ``kind`` True for its current generation."""

    def check(obj: dict[str, Any]) -> bool:
        generation = obj.get("metadata", {}).get("generation")
        status = obj.get("status", {})
        observed = status.get("observedGeneration")
        if observed is not None and generation is not None and observed < generation:
            return False
        return any(c.get("type") == kind and c.get("status") == "True" for c in status.get("conditions", []))

    return check


# --------------------------------------------------------------------------- the monorepo


def flux_tree(root: Path, n: int, prefix: str = FLUX_PREFIX) -> Path:
    """``apps/app-NNNN/`` for N apps in Flux's shape, each with the Namespace its Kustomization targets."""
    for i in range(n):
        name = app_name(i)
        objects = [namespace_object(f"{prefix}{name}"), *flux_app(name)]
        target = root / "apps" / name / "app.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    return root


def gitrepository(url: str, namespace: str = FLUX_NAMESPACE) -> dict[str, Any]:
    return {
        "apiVersion": SOURCE_API,
        "kind": "GitRepository",
        "metadata": {"name": GITREPOSITORY, "namespace": namespace},
        "spec": {"url": url, "interval": "10m", "ref": {"branch": "main"}, "timeout": "60s"},
    }


def kustomization(i: int, *, namespace: str = FLUX_NAMESPACE, prefix: str = FLUX_PREFIX, suspend: bool = False) -> dict:
    name = app_name(i)
    spec: dict[str, Any] = {
        "interval": "10m",
        "path": f"./apps/{name}",
        "prune": True,
        "wait": True,
        "timeout": "5m",
        "targetNamespace": f"{prefix}{name}",
        "sourceRef": {"kind": "GitRepository", "name": GITREPOSITORY},
    }
    if suspend:
        spec["suspend"] = True
    return {
        "apiVersion": KUSTOMIZE_API,
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


# --------------------------------------------------------------------------- the controllers


@dataclass
class _Controller:
    name: str
    process: subprocess.Popen[bytes]
    health_port: int
    log_path: Path


class FluxControllers:
    """source-controller and kustomize-controller started by us, stopped by pid."""

    def __init__(self, kubeconfig: str, workdir: Path) -> None:
        from tether.devcluster.flux import is_built
        from tether.devcluster.versions import flux_bin_dir

        if not is_built():
            raise BenchError("Flux is not built: python -m tether.devcluster.flux (the bench starts it when missing)")
        self.bins = flux_bin_dir()
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.controllers: dict[str, _Controller] = {}
        shm = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else None
        self.tmp = Path(tempfile.mkdtemp(prefix="tether-bench-flux-", dir=shm))

    def start(self) -> None:
        # all five ports in one call, so no two are the same (three calls once gave source-controller
        # a port it then found taken)
        from tether.devcluster.ports import free_ports

        storage_port, source_health, source_metrics, kustomize_health, kustomize_metrics = free_ports(5)
        storage = self.tmp / "storage"
        storage.mkdir()
        common = ["--watch-all-namespaces=true", "--log-level=info", "--log-encoding=json"]
        self._spawn(
            "source-controller",
            source_health,
            source_metrics,
            [
                *common,
                f"--storage-path={storage}",
                f"--storage-addr=127.0.0.1:{storage_port}",
                f"--storage-adv-addr=127.0.0.1:{storage_port}",
            ],
        )
        self._spawn(
            "kustomize-controller",
            kustomize_health,
            kustomize_metrics,
            [*common, "--concurrent=4", "--kube-api-qps=50", "--kube-api-burst=300"],
        )
        deadline = time.monotonic() + START_TIMEOUT
        for controller in self.controllers.values():
            while True:
                self.check_alive()
                try:
                    if httpx.get(f"http://127.0.0.1:{controller.health_port}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise BenchError(f"{controller.name} not ready after {START_TIMEOUT:g}s; see {controller.log_path}")
                time.sleep(0.2)

    def _spawn(self, name: str, health: int, metrics: int, args: list[str]) -> None:
        tmpdir = self.tmp / f"{name}-tmp"
        tmpdir.mkdir()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.tmp),
            "KUBECONFIG": self.kubeconfig,
            "TMPDIR": str(tmpdir),
            "RUNTIME_NAMESPACE": FLUX_NAMESPACE,
        }
        argv = [
            str(self.bins / name),
            f"--metrics-addr=127.0.0.1:{metrics}",
            f"--health-addr=127.0.0.1:{health}",
            "--enable-leader-election=false",
            *args,
        ]
        log_path = self.workdir / f"{name}.log"
        with log_path.open("ab") as sink:
            process = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.controllers[name] = _Controller(name, process, health, log_path)

    def pid(self, name: str) -> int:
        return self.controllers[name].process.pid

    def check_alive(self) -> None:
        for controller in self.controllers.values():
            code = controller.process.poll()
            if code is not None:
                tail = controller.log_path.read_text(errors="replace").strip().splitlines()[-5:]
                raise BenchError(f"{controller.name} exited with {code}; see {controller.log_path}\n" + "\n".join(tail))

    def stop(self) -> None:
        for controller in self.controllers.values():
            if controller.process.poll() is None:
                controller.process.send_signal(signal.SIGTERM)
        for controller in self.controllers.values():
            try:
                controller.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                controller.process.kill()
                controller.process.wait(timeout=10)
        self.controllers.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)


def install_crds(kubectl: Kubectl) -> None:
    """Apply Flux's CRDs from the module sources and wait until they are served."""
    from tether.devcluster.flux import crd_paths

    paths = crd_paths()
    args: list[str] = []
    for path in paths:
        args += ["-f", str(path)]
    kubectl("apply", "--server-side", "--force-conflicts", *args, timeout=120)
    kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s", timeout=90)


def _apply_docs(kubectl: Kubectl, path: Path, docs: list[dict[str, Any]], timeout: float = 600) -> None:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path), timeout=timeout)


def run_flux(*, kubeconfig: str, workdir: Path, repo_url: str, n: int, timeout: float) -> dict[str, Any]:
    """One cold start of Flux on N apps; returns the seconds until all N Kustomizations are Ready and the costs."""
    kubectl = Kubectl(kubeconfig)
    install_crds(kubectl)
    kubectl("create", "namespace", FLUX_NAMESPACE, check=False, timeout=30)
    flux = FluxControllers(kubeconfig, workdir)
    api = Api(kubeconfig)
    try:
        flux.start()
        pids = {name: flux.pid(name) for name in flux.controllers}
        cpu0 = {name: cpu_mark(pid) for name, pid in pids.items()}
        memory = {name: TreeMemory(pid) for name, pid in pids.items()}
        names = {app_name(i) for i in range(n)}
        source = workdir / f"flux-n{n}-sources.yaml"
        watch = Watch(  # started first, as Tether's in C1: each Kustomization's own time
            kubeconfig,
            f"/apis/{KUSTOMIZE_API}/namespaces/{FLUX_NAMESPACE}/kustomizations",
            names,
            condition_true("Ready"),
            timeout=timeout,
            alive=flux.check_alive,
            what="Kustomizations Ready",
        )
        started = time.monotonic()
        _apply_docs(kubectl, source, [gitrepository(repo_url), *(kustomization(i) for i in range(n))])
        applied = time.monotonic() - started
        finished = watch.result(timeout)
        seconds = max(finished.values()) - started
        costs = {
            name: {**cost(pid, cpu0[name]), "peak_tree_rss_mib": round(memory[name].stop(), 1)}
            for name, pid in pids.items()
        }
        log(f"flux: {n} Kustomizations Ready in {seconds:.1f}s; kustomize-controller {costs['kustomize-controller']}")
        times = sorted(t - started for t in finished.values())
        result = {
            "seconds": round(seconds, 3),
            "create_seconds": round(applied, 3),
            "first_done_seconds": round(times[0], 3),
            "median_done_seconds": round(times[len(times) // 2], 3),
            "p90_done_seconds": round(times[int(len(times) * 0.9)], 3),
            "controllers": costs,
        }
        _cleanup(kubectl, api, workdir, n, flux)
        return result
    finally:
        api.close()
        flux.stop()


def _cleanup(kubectl: Kubectl, api: Api, workdir: Path, n: int, flux: FluxControllers) -> None:
    """Suspend (so deletion skips the prune), delete the Kustomizations while the controllers run, drop namespaces."""
    suspended = workdir / f"flux-n{n}-suspend.yaml"
    _apply_docs(kubectl, suspended, [kustomization(i, suspend=True) for i in range(n)])
    kubectl("delete", KUSTOMIZATIONS, "--all", "-n", FLUX_NAMESPACE, "--wait=true", "--timeout=300s", timeout=330)
    kubectl(
        "delete", "gitrepositories.source.toolkit.fluxcd.io", "--all", "-n", FLUX_NAMESPACE, "--timeout=60s", timeout=90
    )
    flux.check_alive()
    api.delete_namespaces([f"{FLUX_PREFIX}{app_name(i)}" for i in range(n)])


def start_build(log_path: Path) -> subprocess.Popen[bytes] | None:
    """Start ``python -m tether.devcluster.flux`` in the background when the binaries are missing."""
    from tether.devcluster.flux import is_built

    if is_built():
        return None
    log(f"flux: building source- and kustomize-controller in the background (log {log_path})")
    with log_path.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "tether.devcluster.flux"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=dict(os.environ),
        )


def finish_build(process: subprocess.Popen[bytes] | None, log_path: Path, timeout: float = 3600) -> None:
    """Wait for a background build; a failure is a BenchError quoting its log."""
    if process is None:
        return
    log("flux: waiting for the background build")
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise BenchError(f"flux build did not finish within {timeout:g}s; see {log_path}") from None
    if code != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-10:]
        raise BenchError(f"flux build failed (exit {code}); see {log_path}\n" + "\n".join(tail))


def summarize_costs(rows: Sequence[Mapping[str, Any]], controller: str) -> dict[str, list[float]]:
    """Per-sample CPU seconds and peak RSS of one controller across repetitions."""
    return {
        "cpu_seconds": [r["controllers"][controller]["cpu_seconds"] for r in rows],
        "peak_rss_mib": [r["controllers"][controller]["peak_rss_mib"] for r in rows],
    }
