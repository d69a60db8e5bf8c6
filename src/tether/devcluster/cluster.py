"""Start and stop a local Kubernetes control plane on loopback: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok (fake nodes that run pods).

A cluster is a set of processes we started ourselves, recorded by pid in a state file, so
``down`` stops exactly those and nothing else. Data lives in a temp dir (``/dev/shm`` when
available: etcd without a disk is fast); logs and the kubeconfig live in the state dir so a
failure can name the log file after the data is gone.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from tether.devcluster.build import COMPONENTS, build, is_built
from tether.devcluster.ports import free_ports, port_taken
from tether.devcluster.versions import bin_dir
from tether.errors import TetherError
from tether.paths import cache_root

READY_TIMEOUT = 60.0
NODE_COUNT = 2
# Client QPS/burst for the controllers and kwok, so the control plane never throttles Tether's benchmarks.
CLIENT_QPS, CLIENT_BURST = 500, 1000
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
# kube-controller-manager's workers. Its defaults (5 concurrent deployment and replica-set syncs) set the
# pace when 1000 Deployments must become Available (117 s after a 15 s apply), so the control plane was
# what a benchmark measured; 50 workers each keep it ahead of any client (they wait on the apiserver, not CPU).
CONTROLLER_CONCURRENCY = {
    "concurrent-deployment-syncs": 50,
    "concurrent-replicaset-syncs": 50,
    "concurrent-service-endpoint-syncs": 50,
    "concurrent-endpoint-syncs": 50,
    "concurrent-namespace-syncs": 50,
    "concurrent-gc-syncs": 50,
    "concurrent-serviceaccount-token-syncs": 50,
}


class DevClusterError(TetherError):
    """A devcluster could not be started, found or stopped."""


@dataclass
class ClusterState:
    """What `up` recorded: enough for `status`, `kubeconfig` and `down` in another process."""

    name: str
    data_dir: str
    kubeconfig: str
    server: str
    token: str
    pids: dict[str, int] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    started_at: float = 0.0


def state_dir(name: str) -> Path:
    return cache_root() / "devcluster" / "run" / name


def _state_file(name: str) -> Path:
    return state_dir(name) / "state.json"


def log_file(name: str, component: str) -> Path:
    return state_dir(name) / "logs" / f"{component}.log"


def load_state(name: str) -> ClusterState | None:
    path = _state_file(name)
    if not path.is_file():
        return None
    try:
        return ClusterState(**json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise DevClusterError(f"devcluster {name!r}: unreadable state file {path}: {exc}") from exc


def _pid_alive(pid: int, binary: str) -> bool:
    """True if ``pid`` runs our binary (a recycled pid of another program does not count)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        status = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return status != "Z" and Path(cmdline).name == binary


def status(name: str) -> dict[str, int | None]:
    """Component → pid if running, None if recorded but gone. Empty when no cluster is recorded."""
    state = load_state(name)
    if state is None:
        return {}
    return {c: (pid if _pid_alive(pid, c) else None) for c, pid in state.pids.items()}


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise DevClusterError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def _make_pki(pki: Path) -> None:
    """A CA, an apiserver serving cert for 127.0.0.1/localhost, and the service-account key pair."""
    pki.mkdir(parents=True)
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "3650",
        "-subj",
        "/CN=tether-devcluster-ca",
        cwd=pki,
    )
    _openssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "apiserver.key",
        "-out",
        "apiserver.csr",
        "-subj",
        "/CN=kube-apiserver",
        cwd=pki,
    )
    (pki / "san.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
        "DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        "apiserver.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "apiserver.crt",
        "-days",
        "3650",
        "-extfile",
        "san.ext",
        cwd=pki,
    )
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def _kubeconfig(name: str, server: str, ca: Path, token: str) -> dict:
    import base64

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca.read_bytes()).decode(),
                },
            }
        ],
        "users": [{"name": f"{name}-admin", "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin"}}],
        "current-context": name,
    }


def _command_lines(state: ClusterState, data: Path, bins: Path) -> dict[str, list[str]]:
    """The argv of each component, in start order."""
    pki = data / "pki"
    kubeconfig = state.kubeconfig
    ports = state.ports
    etcd_url = f"http://127.0.0.1:{ports['etcd']}"
    peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
    scheduler_config = data / "scheduler.yaml"
    scheduler_config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kubescheduler.config.k8s.io/v1",
                "kind": "KubeSchedulerConfiguration",
                "clientConnection": {"kubeconfig": kubeconfig, "qps": CLIENT_QPS, "burst": CLIENT_BURST},
                "leaderElection": {"leaderElect": False},
            }
        )
    )
    return {
        "etcd": [
            str(bins / "etcd"),
            "--name",
            "devcluster",
            "--data-dir",
            str(data / "etcd"),
            "--listen-client-urls",
            etcd_url,
            "--advertise-client-urls",
            etcd_url,
            "--listen-peer-urls",
            peer_url,
            "--initial-advertise-peer-urls",
            peer_url,
            "--initial-cluster",
            f"devcluster={peer_url}",
            "--listen-metrics-urls",
            "",
            "--unsafe-no-fsync",
            "--log-level",
            "warn",
            "--quota-backend-bytes",
            str(4 << 30),
        ],
        "kube-apiserver": [
            str(bins / "kube-apiserver"),
            "--etcd-servers",
            etcd_url,
            "--bind-address",
            "127.0.0.1",
            "--advertise-address",
            "127.0.0.1",
            "--secure-port",
            str(ports["kube-apiserver"]),
            "--tls-cert-file",
            str(pki / "apiserver.crt"),
            "--tls-private-key-file",
            str(pki / "apiserver.key"),
            "--token-auth-file",
            str(data / "tokens.csv"),
            "--authorization-mode",
            "RBAC",
            "--service-account-issuer",
            "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file",
            str(pki / "sa.pub"),
            "--service-account-signing-key-file",
            str(pki / "sa.key"),
            "--service-cluster-ip-range",
            "10.96.0.0/16",
            "--allow-privileged=true",
            # In-flight limits lifted: the control plane must never be what throttles Tether.
            "--enable-priority-and-fairness=false",
            "--max-requests-inflight",
            "0",
            "--max-mutating-requests-inflight",
            "0",
            "--profiling=false",
            "--v",
            "1",
        ],
        "kube-controller-manager": [
            str(bins / "kube-controller-manager"),
            "--kubeconfig",
            kubeconfig,
            "--authentication-kubeconfig",
            kubeconfig,
            "--authorization-kubeconfig",
            kubeconfig,
            "--leader-elect=false",
            "--bind-address",
            "127.0.0.1",
            "--secure-port",
            str(ports["kube-controller-manager"]),
            "--service-account-private-key-file",
            str(pki / "sa.key"),
            "--root-ca-file",
            str(pki / "ca.crt"),
            "--use-service-account-credentials=false",
            "--kube-api-qps",
            str(CLIENT_QPS),
            "--kube-api-burst",
            str(CLIENT_BURST),
            *(f"--{flag}={value}" for flag, value in CONTROLLER_CONCURRENCY.items()),
            "--controllers",
            "*,-nodeipam,-service-lb-controller,-route,-cloud-node-lifecycle",
            "--profiling=false",
            "--v",
            "1",
        ],
        "kube-scheduler": [
            str(bins / "kube-scheduler"),
            "--config",
            str(scheduler_config),
            "--authentication-kubeconfig",
            kubeconfig,
            "--authorization-kubeconfig",
            kubeconfig,
            "--bind-address",
            "127.0.0.1",
            "--secure-port",
            str(ports["kube-scheduler"]),
            "--profiling=false",
            "--v",
            "1",
        ],
        "kwok": [
            str(bins / "kwok"),
            "--kubeconfig",
            kubeconfig,
            "--config",
            str(bins / "kwok-stages.yaml"),
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
            "--node-ip",
            "127.0.0.1",
            "--node-port",
            "0",
            "--server-address",
            f"127.0.0.1:{ports['kwok']}",
            "--v",
            "1",
        ],
    }


class _Api:
    """Just enough HTTPS to the apiserver to bring the cluster up, with no client library."""

    def __init__(self, server: str, token: str, ca: Path) -> None:
        self.server, self.token = server, token
        self.context = ssl.create_default_context(cafile=str(ca))

    def request(self, method: str, path: str, body: dict | None = None, timeout: float = 5.0) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=timeout) as resp:
                raw = resp.read(8 << 20)
                return resp.status, json.loads(raw) if raw.startswith(b"{") else {"text": raw.decode(errors="replace")}
        except urllib.error.HTTPError as exc:
            return exc.code, {}


def _fake_node(index: int) -> dict:
    name = f"kwok-node-{index}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {FAKE_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
            },
        },
        "spec": {},
        "status": {
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "500"},
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "500"},
            "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": "fake"},
        },
    }


class _Starter:
    """Starts components one by one; on any failure stops everything it started."""

    def __init__(self, state: ClusterState, log: Callable[[str], None]) -> None:
        self.state, self.log = state, log
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(self, component: str, argv: list[str]) -> None:
        path = log_file(self.state.name, component)
        with path.open("ab") as sink:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        self.processes[component] = process
        self.state.pids[component] = process.pid

    def check_alive(self) -> None:
        for component, process in self.processes.items():
            code = process.poll()
            if code is not None:
                raise DevClusterError(
                    f"devcluster {self.state.name!r}: {component} exited with code {code} at start; "
                    f"see {log_file(self.state.name, component)}\n{_tail(log_file(self.state.name, component))}"
                )

    def wait_until(self, what: str, component: str, ready: Callable[[], bool], deadline: float) -> None:
        while True:
            self.check_alive()
            try:
                if ready():
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise DevClusterError(
                    f"devcluster {self.state.name!r}: timed out waiting for {what}; "
                    f"see {log_file(self.state.name, component)}\n{_tail(log_file(self.state.name, component))}"
                )
            time.sleep(0.1)


def _tail(path: Path, lines: int = 12) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def up(
    name: str = "default",
    *,
    apiserver_port: int | None = None,
    timeout: float = READY_TIMEOUT,
    log: Callable[[str], None] = lambda line: None,
) -> ClusterState:
    """Start a cluster called ``name`` and return its state once it is usable.

    Usable means: the apiserver answers, ``NODE_COUNT`` fake nodes are Ready, and the
    ``default`` namespace has its ServiceAccount (the controllers are working).
    """
    _check_name(name)
    existing = load_state(name)
    if existing is not None:
        alive = {c: pid for c, pid in status(name).items() if pid}
        if alive:
            raise DevClusterError(
                f"devcluster {name!r} is already up (pids {sorted(alive.values())}); "
                f"`tether devcluster down --name {name}` first"
            )
        log(f"devcluster {name!r}: removing stale state from a cluster that is no longer running")
        _cleanup(existing)
    if apiserver_port is not None and port_taken(apiserver_port):
        raise DevClusterError(
            f"devcluster {name!r}: kube-apiserver port {apiserver_port} on 127.0.0.1 is already in use"
        )
    if not is_built():
        build(log=log)
    bins = bin_dir()
    root = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else None
    data = Path(tempfile.mkdtemp(prefix=f"tether-devcluster-{name}-", dir=root))
    run_dir = state_dir(name)
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    for component in COMPONENTS:
        log_file(name, component).write_bytes(b"")
    components = ("etcd", "etcd-peer", "kube-controller-manager", "kube-scheduler", "kwok", "kube-apiserver")
    ports = dict(zip(components, free_ports(len(components)), strict=True))
    if apiserver_port:
        ports["kube-apiserver"] = apiserver_port
    token = secrets.token_hex(24)
    server = f"https://127.0.0.1:{ports['kube-apiserver']}"
    state = ClusterState(
        name=name,
        data_dir=str(data),
        kubeconfig=str(run_dir / "kubeconfig"),
        server=server,
        token=token,
        ports=ports,
        started_at=time.time(),
    )
    starter = _Starter(state, log)
    started = time.monotonic()
    deadline = started + timeout
    try:
        _make_pki(data / "pki")
        (data / "tokens.csv").write_text(f'{token},tether-admin,tether-admin,"system:masters"\n')
        os.chmod(data / "tokens.csv", 0o600)
        kubeconfig = Path(state.kubeconfig)
        kubeconfig.write_text(yaml.safe_dump(_kubeconfig(name, server, data / "pki" / "ca.crt", token)))
        os.chmod(kubeconfig, 0o600)
        _save(state)
        argv = _command_lines(state, data, bins)
        api = _Api(server, token, data / "pki" / "ca.crt")

        starter.spawn("etcd", argv["etcd"])
        starter.spawn("kube-apiserver", argv["kube-apiserver"])
        _save(state)
        starter.wait_until(
            "the kube-apiserver to be ready",
            "kube-apiserver",
            lambda: api.request("GET", "/readyz", timeout=2)[0] == 200,
            deadline,
        )
        log(f"devcluster {name!r}: kube-apiserver ready at {server} after {time.monotonic() - started:.1f}s")
        for component in ("kube-controller-manager", "kube-scheduler", "kwok"):
            starter.spawn(component, argv[component])
        _save(state)
        for index in range(NODE_COUNT):
            code, _ = api.request("POST", "/api/v1/nodes", _fake_node(index))
            if code not in (201, 409):
                raise DevClusterError(f"devcluster {name!r}: creating fake node {index} failed with HTTP {code}")
        starter.wait_until(f"{NODE_COUNT} Ready nodes", "kwok", lambda: _ready_nodes(api) >= NODE_COUNT, deadline)
        starter.wait_until(
            "the default ServiceAccount",
            "kube-controller-manager",
            lambda: api.request("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
            deadline,
        )
        starter.check_alive()
    except BaseException:
        _stop_pids(state, grace=2.0)  # a cluster that failed to start needs no graceful shutdown
        _cleanup(state)
        raise
    log(f"devcluster {name!r}: ready in {time.monotonic() - started:.1f}s; kubeconfig {state.kubeconfig}")
    return state


def _ready_nodes(api: _Api) -> int:
    code, body = api.request("GET", "/api/v1/nodes")
    if code != 200:
        return 0
    return sum(
        1
        for node in body.get("items", [])
        for cond in node.get("status", {}).get("conditions", [])
        if cond.get("type") == "Ready" and cond.get("status") == "True"
    )


def _check_name(name: str) -> None:
    if not name or not all(ch.isalnum() or ch in "-_" for ch in name) or len(name) > 40:
        raise DevClusterError(f"invalid devcluster name {name!r}: use letters, digits, '-' and '_' (max 40)")


def _save(state: ClusterState) -> None:
    path = _state_file(state.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2))
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def _stop_pids(state: ClusterState, grace: float = 10.0) -> None:
    """Stop what we started, newest first and one at a time, SIGKILL after ``grace`` seconds.

    One at a time because the apiserver shuts down in about a second while etcd is there,
    but hangs retrying for its whole grace period when both are signalled together.
    """
    for component, pid in reversed(list(state.pids.items())):
        if not _pid_alive(pid, component):
            continue
        _signal(pid, signal.SIGTERM)
        if not _wait_exit(pid, component, grace):
            _signal(pid, signal.SIGKILL)
            _wait_exit(pid, component, 5.0)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _wait_exit(pid: int, component: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid, component):
        _reap((pid,))
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _reap(pids: Iterable[int]) -> None:
    """Collect those of ``pids`` that are our exited children, so they do not linger as zombies."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def _cleanup(state: ClusterState) -> None:
    shutil.rmtree(state.data_dir, ignore_errors=True)
    for leftover in ("state.json", "kubeconfig"):
        (state_dir(state.name) / leftover).unlink(missing_ok=True)


def down(name: str = "default") -> bool:
    """Stop exactly the processes ``up`` started and remove the data dir. False if none was recorded."""
    _check_name(name)
    state = load_state(name)
    if state is None:
        return False
    _stop_pids(state)
    still = [c for c, pid in state.pids.items() if _pid_alive(pid, c)]
    if still:
        raise DevClusterError(f"devcluster {name!r}: could not stop {', '.join(still)}")
    _cleanup(state)
    shutil.rmtree(state_dir(name), ignore_errors=True)  # logs too: a clean stop leaves nothing
    return True


def signal_component(name: str, component: str, signum: int) -> int:
    """Send ``signum`` to one running component of cluster ``name``; returns its pid.

    For fault tests: SIGKILL stops the apiserver dead, SIGSTOP freezes it (connections are
    accepted by the kernel but never answered), SIGCONT thaws it. Only a pid recorded by
    ``up`` and still running our binary is signalled.
    """
    _check_name(name)
    state = load_state(name)
    if state is None:
        raise DevClusterError(f"devcluster {name!r} is not up")
    pid = state.pids.get(component)
    if pid is None or not _pid_alive(pid, component):
        raise DevClusterError(f"devcluster {name!r}: {component} is not running")
    os.kill(pid, signum)
    if signum == signal.SIGKILL:
        _wait_exit(pid, component, 10.0)
    return pid


def restart_component(
    name: str, component: str = "kube-apiserver", *, timeout: float = READY_TIMEOUT, log: Callable[[str], None] = print
) -> int:
    """Start a stopped component of cluster ``name`` again, with its original command line; returns its pid.

    The apiserver is waited for until ``/readyz`` answers 200 (on the same port, with the same
    certificates and token), so a test can hand the cluster back in working order.
    """
    _check_name(name)
    state = load_state(name)
    if state is None:
        raise DevClusterError(f"devcluster {name!r} is not up")
    old = state.pids.get(component)
    if old is not None and _pid_alive(old, component):
        raise DevClusterError(f"devcluster {name!r}: {component} is still running (pid {old})")
    data = Path(state.data_dir)
    argv = _command_lines(state, data, bin_dir())[component]
    starter = _Starter(state, log)
    starter.spawn(component, argv)
    _save(state)
    if component == "kube-apiserver":
        api = _Api(state.server, state.token, data / "pki" / "ca.crt")
        starter.wait_until(
            "the kube-apiserver to be ready again",
            component,
            lambda: api.request("GET", "/readyz", timeout=2)[0] == 200,
            time.monotonic() + timeout,
        )
    return state.pids[component]


def wait_ready(name: str, timeout: float = READY_TIMEOUT) -> None:
    """Wait until the apiserver of cluster ``name`` answers ``/readyz`` with 200 (after a thaw, say)."""
    _check_name(name)
    state = load_state(name)
    if state is None:
        raise DevClusterError(f"devcluster {name!r} is not up")
    api = _Api(state.server, state.token, Path(state.data_dir) / "pki" / "ca.crt")
    deadline = time.monotonic() + timeout
    while True:
        try:
            if api.request("GET", "/readyz", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise DevClusterError(f"devcluster {name!r}: kube-apiserver not ready within {timeout:g}s")
        time.sleep(0.1)


def kubeconfig_path(name: str = "default") -> Path:
    """Path of a running cluster's kubeconfig."""
    _check_name(name)
    state = load_state(name)
    if state is None:
        raise DevClusterError(f"devcluster {name!r} is not up; start it with `tether devcluster up --name {name}`")
    return Path(state.kubeconfig)
