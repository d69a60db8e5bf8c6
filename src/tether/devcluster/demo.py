"""`make demo`: the GitOps loop on one machine, with nothing to install by hand.

A devcluster, a git server on loopback holding the demo repository (``demo/`` of this
checkout), a throwaway ``pass`` store with the demo's database password, and ``tether serve``
with four Applications with automated sync. The git server calls ``POST /api/webhook`` from its
post-receive hook with a signed GitHub-format push, as a real provider would, so a push reaches the
cluster in about a second; polling (every minute here) stays as the safety net.

    .venv/bin/python -m tether.devcluster.demo [--name demo] [--listen 127.0.0.1:8080] [--keep-cluster]

Ctrl-C (SIGINT) or SIGTERM stops what the run started: ``tether serve``, the git server, the
pass store's gpg-agent (its key is deleted), and the devcluster unless it was already running
or ``--keep-cluster`` is given. Tests drive the same code without the foreground wait:
``demo = await start_demo(config)``, ``await demo.wait_synced()``, ``await demo.stop()``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import fcntl
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from tether.cluster import Cluster
from tether.controller.install import install, installed
from tether.controller.settings import DEFAULT_NAMESPACE
from tether.devcluster import cluster as devcluster
from tether.devcluster.gitserver import DEFAULT_BRANCH, GitHttpServer
from tether.devcluster.passstore import PassStore
from tether.devcluster.ports import free_port, port_taken
from tether.errors import TetherError
from tether.paths import cache_root
from tether.proc import trim

API = "tether.dev/v1alpha1"
DEMO_SOURCE = Path(__file__).resolve().parents[3] / "demo"
PART_OF = ("app.kubernetes.io/part-of", "tether-demo")
SECRET_ENTRY = "demo/db"
DB_USER = "pg_owner_7f3k"
DEFAULT_PORT = 8080
READY_TIMEOUT = 240.0
SERVE_START_TIMEOUT = 60.0
SERVE_STOP_TIMEOUT = 35.0  # tether serve's own watchdog ends it after 30 s
Say = Callable[[str], None]


class DemoError(TetherError):
    """The demo could not start, or a part of it stopped working."""


@dataclass(frozen=True)
class DemoApp:
    """One Application of the demo: its path in the demo repository and what it shows."""

    name: str
    path: str
    what: str
    helm: Mapping[str, Any] | None = None


APPS: tuple[DemoApp, ...] = (
    DemoApp("hello", "apps/hello", "plain YAML: a ConfigMap in wave -1, Deployment, Service, PostSync hook"),
    DemoApp("frontend", "apps/frontend/overlays/demo", "kustomize: a base and a demo overlay"),
    DemoApp("backend", "apps/backend", "helm: a chart kept in the repository", {"valueFiles": ["values-demo.yaml"]}),
    DemoApp("database", "apps/database", f"a Secret whose password comes from pass entry {SECRET_ENTRY}"),
)
# The change the printed push command makes, and where to see it land.
PUSHED_APP, PUSHED_FILE, PUSHED_CONFIGMAP, PUSHED_KEY = "hello", "apps/hello/config.yaml", "hello-config", "GREETING"


def default_state_dir() -> Path:
    return cache_root() / "demo"


def free_listen(preferred: int | None = DEFAULT_PORT) -> str:
    """``127.0.0.1:<preferred>`` when that port is free, else a port the kernel picks."""
    port = preferred if preferred and not port_taken(preferred) else free_port()
    return f"127.0.0.1:{port}"


@dataclass(frozen=True)
class DemoConfig:
    """Where the demo runs. Tests give their own namespaces, state dir and port; the CLI the defaults.

    Each app is synced into namespace ``<app_namespace_prefix><app>``; the Applications live in
    ``namespace``. ``listen`` None: port 8080 when free, else any free port.
    """

    kubeconfig: str
    state_dir: Path = field(default_factory=default_state_dir)
    namespace: str = DEFAULT_NAMESPACE
    app_namespace_prefix: str = "demo-"
    listen: str | None = None
    poll_interval: float = 60.0
    poll_jitter: float = 5.0
    source_dir: Path = DEMO_SOURCE
    python: str = sys.executable

    def app_namespace(self, app: DemoApp) -> str:
        return f"{self.app_namespace_prefix}{app.name}"


def application(config: DemoConfig, app: DemoApp, repo_url: str) -> dict[str, Any]:
    """The Application of ``app``: automated sync with prune and self-heal, its own namespace created."""
    source: dict[str, Any] = {"repoURL": repo_url, "path": app.path, "targetRevision": "HEAD"}
    if app.helm:
        source["helm"] = dict(app.helm)
    return {
        "apiVersion": API,
        "kind": "Application",
        "metadata": {"name": app.name, "namespace": config.namespace, "labels": {PART_OF[0]: PART_OF[1]}},
        "spec": {
            "project": "default",
            "source": source,
            "destination": {"server": "https://kubernetes.default.svc", "namespace": config.app_namespace(app)},
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "syncOptions": ["CreateNamespace=true"],
            },
        },
    }


def _git(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(
            ["git", *args],
            env=dict(env) if env is not None else None,
            cwd=cwd,
            capture_output=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise DemoError(f"git {args[0]}: timed out after 60s") from exc
    if done.returncode != 0:
        raise DemoError(f"git {args[0]} failed (exit {done.returncode}): {trim(done.stderr.decode(errors='replace'))}")
    return done.stdout.decode(errors="replace").strip()


def _shown(path: Path | str) -> str:
    """A path as a user would type it: relative to the current directory when inside it."""
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else str(path)


class Demo:
    """Everything one demo run started; ``stop`` ends it in reverse order and may be called twice."""

    def __init__(self, config: DemoConfig) -> None:
        self.config = config
        self.state_dir = Path(config.state_dir)
        self.clone = self.state_dir / "work"
        self.serve_log = self.state_dir / "serve.log"
        self.listen = config.listen or ""
        self.repo_url = ""
        self.store: PassStore | None = None
        self.git: GitHttpServer | None = None
        self.kube: Cluster | None = None
        self.serve: subprocess.Popen[bytes] | None = None
        self._bare: Path | None = None
        self._lock: IO[str] | None = None

    # ---- where things are

    @property
    def base_url(self) -> str:
        return f"http://{self.listen}"

    @property
    def kubeconfig(self) -> str:
        return self.config.kubeconfig

    @property
    def head(self) -> str:
        """The commit the demo repository's branch points at on the server."""
        if self._bare is None:
            raise DemoError("the demo's git server is not running")
        return _git("--git-dir", str(self._bare), "rev-parse", f"refs/heads/{DEFAULT_BRANCH}")

    @property
    def push_command(self) -> str:
        """One shell line that changes the hello app's greeting, commits and pushes (repeatable)."""
        clone = shlex.quote(str(self.clone))
        target = shlex.quote(str(self.clone / PUSHED_FILE))
        sed = f'sed -i "s/{PUSHED_KEY}: .*/{PUSHED_KEY}: \\"hello, pushed at $(date +%T)\\"/" {target}'
        return f'{sed} && git -C {clone} commit -qam "hello: a new greeting" && git -C {clone} push -q'

    @property
    def rotate_command(self) -> str:
        """One shell line that gives the database a new password in ``pass`` (a commit in the store),
        printing nothing of it."""
        if self.store is None:
            raise DemoError("the demo's pass store is not running")
        env = f"PASSWORD_STORE_DIR={shlex.quote(str(self.store.store_dir))} GNUPGHOME={shlex.quote(str(self.store.gnupg_home))}"
        return f"{env} pass generate --in-place {SECRET_ENTRY} 24 >/dev/null"

    def kubectl(self, *args: str) -> str:
        """A kubectl command line against the demo's cluster, with the pinned kubectl."""
        kubectl = _shown(Path(sys.prefix) / "bin" / "kubectl")
        return shlex.join([kubectl, "--kubeconfig", self.kubeconfig, *args])

    def summary(self, stop_note: str = "") -> str:
        """What to print once every app is Synced and Healthy; it never holds a secret value."""
        state = _shown(self.state_dir)
        apps = "\n".join(
            f"    {app.name:<9} -> namespace {self.config.app_namespace(app):<16} {app.path:<28} {app.what}"
            for app in APPS
        )
        pushed = next(app for app in APPS if app.name == PUSHED_APP)
        lines = [
            "",
            f"Tether's demo is running: {len(APPS)} Applications in namespace {self.config.namespace}, "
            "automated sync (prune, selfHeal), all Synced and Healthy.",
            apps,
            "",
            f"  tether serve  {self.base_url}/healthz   {self.base_url}/metrics   (log: {_shown(self.serve_log)})",
            f"  kubeconfig    {self.kubeconfig}",
            f"  git           {self.repo_url}   (working clone: {_shown(self.clone)})",
            f"  state         {state}/ (git server root, pass store, controller state; replaced at the next start)",
            "",
            "Look around:",
            "  " + self.kubectl("get", "applications.tether.dev", "-n", self.config.namespace, "-o", "wide"),
            "  " + self.kubectl("get", "deployments,services,configmaps,secrets", "-A", "-l", "tether.dev/app"),
            "",
            "Push a change (the git server sends tether a signed webhook; it is live in about a second):",
            "  " + self.push_command,
            "and watch it land:",
            "  "
            + self.kubectl(
                "get",
                "configmap",
                PUSHED_CONFIGMAP,
                "-n",
                self.config.app_namespace(pushed),
                "-o",
                f'jsonpath={{.data.{PUSHED_KEY}}}{{"\\n"}}',
            ),
            "",
            "Rotate the database password in pass (tether sees the store's new commit and re-syncs the database app;",
            "the value is never shown):",
            "  " + self.rotate_command,
            "",
        ]
        if stop_note:
            lines += [stop_note, ""]
        return "\n".join(lines)

    # ---- starting

    async def _start(self, say: Say) -> None:
        config = self.config
        if not (config.source_dir / "apps").is_dir():
            raise DemoError(f"demo repository content not found: {config.source_dir}/apps")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        self._stop_leftover_serve(say)
        self._stop_leftover_agent(say)
        for part in ("git", "work", "pass", "controller"):
            shutil.rmtree(self.state_dir / part, ignore_errors=True)
        self.serve_log.unlink(missing_ok=True)

        say("pass store: a throwaway GnuPG key and the entry demo/db (a random password, never shown)")
        self.store = PassStore.create(self.state_dir / "pass")
        (self.state_dir / "gnupg-home").write_text(f"{self.store.gnupg_home}\n")
        password = secrets.token_urlsafe(18)
        # Tether masks every value it reads from pass wherever it shows up, so the user name must not be a
        # word the demo uses elsewhere ("demo" would turn namespaces and paths in messages into ********).
        self.store.insert(SECRET_ENTRY, f"{password}\nusername: {DB_USER}\n")
        for key, value in (
            ("user.name", "Tether Demo"),
            ("user.email", "demo@tether.invalid"),
            ("commit.gpgsign", "false"),
            ("core.hooksPath", os.devnull),
        ):
            _git("-C", str(self.store.store_dir), "config", key, value)  # `pass generate` from a user's shell commits

        self.git = GitHttpServer(self.state_dir / "git").start()
        repo = self.git.create_repo("demo", from_dir=config.source_dir)
        self.repo_url, self._bare = repo.url, repo.bare_path
        say(f"git server: {self.repo_url} holds {_shown(config.source_dir)}/ at {repo.head[:12]}")
        self._clone()

        self.kube = await Cluster.connect(config.kubeconfig)
        if not await installed(self.kube):
            say("installing Tether's CRDs")
            await install(self.kube, config.namespace)
        await self.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": config.namespace}})
        await self._remove_old_apps(say)

        # The webhook secret: in the Secret tether reads (created before serve starts) and in the git server's hook.
        hook_secret = secrets.token_urlsafe(24)
        await self.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "tether-webhook", "namespace": config.namespace},
                "data": {"github": base64.b64encode(hook_secret.encode()).decode()},
            },
            force=True,
        )
        self.listen = config.listen or free_listen()
        await self._start_serve(say)
        self.git.set_webhook(f"{self.base_url}/api/webhook", hook_secret)
        say(f"git server: pushes are sent to {self.base_url}/api/webhook, signed (GitHub format)")
        for app in APPS:
            await self.kube.apply(application(config, app, self.repo_url), force=True)
        say(f"created {len(APPS)} Applications in namespace {config.namespace}: {', '.join(a.name for a in APPS)}")

    def _take_lock(self) -> None:
        """One demo per state directory: a second run would stop the first one's tether serve."""
        lock = (self.state_dir / "demo.lock").open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "?"
            lock.close()
            raise DemoError(
                f"a demo is already running with state in {self.state_dir} (pid {holder}); stop it first"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock = lock

    def _clone(self) -> None:
        """A working clone for the user, set up so that the printed commit and push work from any shell."""
        assert self.git is not None
        _git("clone", "--quiet", self.repo_url, str(self.clone), env=self.git.git_env())
        for key, value in (
            ("user.name", "Tether Demo"),
            ("user.email", "demo@tether.invalid"),
            ("commit.gpgsign", "false"),  # a user's global signing setting must not stop the demo commit
            ("core.hooksPath", os.devnull),
            ("remote.origin.proxy", ""),  # the server is on loopback: never through an http_proxy
        ):
            _git("-C", str(self.clone), "config", key, value, env=self.git.git_env())

    async def _remove_old_apps(self, say: Say) -> None:
        """Applications of an earlier run name a git server that is gone: delete them (their objects stay)."""
        assert self.kube is not None
        old, _ = await self.kube.list(API, "Application", self.config.namespace, label_selector="=".join(PART_OF))
        if not old:
            return
        say(f"removing {len(old)} Application(s) left by an earlier demo run (their objects stay and are adopted)")
        for obj in old:
            await self.kube.delete(API, "Application", obj["metadata"]["name"], self.config.namespace)
        deadline = time.monotonic() + 30
        while (await self.kube.list(API, "Application", self.config.namespace, label_selector="=".join(PART_OF)))[0]:
            if time.monotonic() > deadline:
                raise DemoError(f"Applications of an earlier demo run in {self.config.namespace} were not deleted")
            await asyncio.sleep(0.2)

    async def _start_serve(self, say: Say) -> None:
        assert self.store is not None
        config = self.config
        argv = [
            config.python,
            "-m",
            "tether.cli",
            "serve",
            "--namespace",
            config.namespace,
            "--listen",
            self.listen,
            "--poll-interval",
            f"{config.poll_interval:g}",
            "--poll-jitter",
            f"{config.poll_jitter:g}",
            "--kubeconfig",
            config.kubeconfig,
            "--state-dir",
            str(self.state_dir / "controller"),
            "--password-store",
            str(self.store.store_dir),
            "--gnupg-home",
            str(self.store.gnupg_home),
        ]
        with self.serve_log.open("ab") as log:
            # its own session: a Ctrl-C reaches only this runner, which then stops serve in order
            self.serve = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        (self.state_dir / "serve.pid").write_text(f"{self.serve.pid}\n")
        say(f"tether serve: pid {self.serve.pid}, {self.base_url}, log {_shown(self.serve_log)}")
        deadline = time.monotonic() + SERVE_START_TIMEOUT
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            while True:
                self.check_serve()
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.base_url}/healthz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise DemoError(
                        f"tether serve did not answer {self.base_url}/healthz within {SERVE_START_TIMEOUT:g}s"
                    )
                await asyncio.sleep(0.2)

    def _stop_leftover_serve(self, say: Say) -> None:
        """A `tether serve` of an earlier run that was killed hard (its pid file names it) is stopped."""
        pid_file = self.state_dir / "serve.pid"
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            pid_file.unlink(missing_ok=True)
            return
        if b"serve" in cmdline and str(self.state_dir / "controller").encode() in cmdline:
            say(f"stopping tether serve left by an earlier demo run (pid {pid})")
            _stop_process_group(pid, lambda: not Path(f"/proc/{pid}").exists())
        pid_file.unlink(missing_ok=True)

    def _stop_leftover_agent(self, say: Say) -> None:
        """The gpg-agent and key of an earlier run that was killed hard (``gnupg-home`` names them) go too."""
        record = self.state_dir / "gnupg-home"
        try:
            home = Path(record.read_text().strip())
        except OSError:
            return
        if home.name.startswith("tg-") and home.parent in (Path("/dev/shm"), Path("/tmp")) and home.is_dir():
            say(f"stopping the gpg-agent left by an earlier demo run and deleting its key ({home})")
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(
                    ["gpgconf", "--kill", "all"],
                    env={**os.environ, "GNUPGHOME": str(home)},
                    capture_output=True,
                    timeout=30,
                    stdin=subprocess.DEVNULL,
                )
            shutil.rmtree(home, ignore_errors=True)
        record.unlink(missing_ok=True)

    # ---- running

    def check_serve(self) -> None:
        """Raise when tether serve has exited, with the end of its log."""
        if self.serve is not None and self.serve.poll() is not None:
            tail = self.serve_log.read_text(errors="replace").splitlines()[-15:] if self.serve_log.exists() else []
            raise DemoError(f"tether serve exited with code {self.serve.returncode}:\n" + "\n".join(tail))

    async def app_statuses(self) -> dict[str, dict[str, Any]]:
        """Each demo Application's status (empty when it has none yet)."""
        assert self.kube is not None
        found: dict[str, dict[str, Any]] = {}
        for app in APPS:
            obj = await self.kube.get(API, "Application", app.name, self.config.namespace)
            found[app.name] = ((obj or {}).get("status")) or {}
        return found

    async def wait_synced(self, timeout: float = READY_TIMEOUT, say: Say = lambda line: None) -> str:
        """Wait until every app is Synced and Healthy at the repository's current commit, its last sync
        (hooks included) finished; returns that commit."""
        revision = self.head
        deadline = time.monotonic() + timeout
        done: set[str] = set()
        while True:
            self.check_serve()
            statuses = await self.app_statuses()
            for name, status in statuses.items():
                if name not in done and _synced_healthy(status, revision):
                    done.add(name)
                    say(f"  {name}: Synced and Healthy at {revision[:12]}")
            if len(done) == len(APPS):
                return revision
            if time.monotonic() > deadline:
                waiting = {n: _describe(s) for n, s in statuses.items() if n not in done}
                raise DemoError(f"not Synced and Healthy at {revision[:12]} within {timeout:g}s: {waiting}")
            await asyncio.sleep(0.5)

    async def greeting(self) -> str | None:
        """The value the push command changes, as it is live in the cluster."""
        assert self.kube is not None
        pushed = next(app for app in APPS if app.name == PUSHED_APP)
        obj = await self.kube.get("v1", "ConfigMap", PUSHED_CONFIGMAP, self.config.app_namespace(pushed))
        return ((obj or {}).get("data") or {}).get(PUSHED_KEY)

    async def live_secret(self) -> str | None:
        """The database password as the cluster holds it (for tests; the demo never prints it)."""
        assert self.kube is not None
        database = next(app for app in APPS if app.name == "database")
        obj = await self.kube.get("v1", "Secret", "db-credentials", self.config.app_namespace(database))
        encoded = ((obj or {}).get("data") or {}).get("password")
        return base64.b64decode(encoded).decode() if encoded else None

    # ---- stopping

    async def stop(self, say: Say = lambda line: None) -> None:
        """Stop tether serve (it saves its operations), then the git server, then the pass store's agent."""
        if self.serve is not None:
            serve, self.serve = self.serve, None
            if serve.poll() is None:
                say(f"stopping tether serve (pid {serve.pid})")
                with contextlib.suppress(ProcessLookupError):
                    serve.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + SERVE_STOP_TIMEOUT
                while serve.poll() is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
            _stop_process_group(serve.pid, lambda: serve.poll() is not None, grace=0.0)  # waited above
            (self.state_dir / "serve.pid").unlink(missing_ok=True)
        if self.kube is not None:
            kube, self.kube = self.kube, None
            await kube.close()
        if self.git is not None:
            say("stopping the git server")
            git, self.git = self.git, None
            git.stop()
        if self.store is not None:
            say("stopping the pass store's gpg-agent and deleting its key")
            store, self.store = self.store, None
            store.close()
            (self.state_dir / "gnupg-home").unlink(missing_ok=True)
        if self._lock is not None:
            lock, self._lock = self._lock, None
            lock.close()  # releases the flock


def _stop_process_group(pid: int, gone: Callable[[], bool], grace: float = SERVE_STOP_TIMEOUT) -> None:
    """SIGTERM, ``grace`` seconds, then SIGKILL to the whole group (helm, git or pass children too)."""
    for signum, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if not gone():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signum)
            deadline = time.monotonic() + wait
            while not gone() and time.monotonic() < deadline:
                time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # children the leader left behind


def _synced_healthy(status: Mapping[str, Any], revision: str) -> bool:
    sync = status.get("sync") or {}
    return (
        sync.get("status") == "Synced"
        and sync.get("revision") == revision
        and (status.get("health") or {}).get("status") == "Healthy"
        and (status.get("operationState") or {}).get("phase") in (None, "Succeeded")  # PostSync hooks done too
    )


def _describe(status: Mapping[str, Any]) -> str:
    sync, health = status.get("sync") or {}, status.get("health") or {}
    text = f"{sync.get('status', '-')}/{health.get('status', '-')} at {str(sync.get('revision', '-'))[:12]}"
    conditions = [f"{c.get('type')}: {c.get('message')}" for c in status.get("conditions") or [] if c.get("message")]
    phase = (status.get("operationState") or {}).get("phase")
    return text + (f", operation {phase}" if phase else "") + (f" ({'; '.join(conditions)})" if conditions else "")


async def start_demo(config: DemoConfig, say: Say = lambda line: None) -> Demo:
    """Start the git server, the pass store and tether serve, and create the Applications.

    Returns at once (``Demo.wait_synced`` waits for the apps); on any failure, or when cancelled,
    whatever was started is stopped again.
    """
    demo = Demo(config)
    try:
        await demo._start(say)
    except BaseException:
        await demo.stop()
        raise
    return demo


# ---- the command


def _cluster_up(name: str, say: Say) -> bool:
    """Reuse devcluster ``name`` when it runs, else start it; True when this call started it."""
    components = devcluster.status(name)
    if components and all(components.values()):
        say(f"devcluster {name!r}: reusing the running cluster")
        return False
    if any(components.values()):
        raise DemoError(f"devcluster {name!r} is only partly running; `make demo-down` stops it, then run again")
    devcluster.up(name, log=say)
    return True


async def _run(config: DemoConfig, say: Say, stop_note: str) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)  # also when `nohup … &` started us with SIGINT ignored

    async def starting() -> Demo:
        demo = await start_demo(config, say)
        try:
            say(f"waiting for the {len(APPS)} apps to be Synced and Healthy")
            await demo.wait_synced(say=say)
        except BaseException:
            await demo.stop(say)
            raise
        return demo

    task = asyncio.create_task(starting())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not task.done():
        say("interrupted while starting; stopping what was started")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TetherError):
            await task
        return 130
    demo = task.result()
    print(demo.summary(stop_note), flush=True)
    code = 0
    try:
        while not stop.is_set():
            demo.check_serve()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
        say("stopping the demo")
    except DemoError as exc:
        say(f"error: {exc}")
        code = 1
    finally:
        await demo.stop(say)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tether.devcluster.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="demo", help="devcluster name (default: demo)")
    parser.add_argument("--listen", default=None, help="tether serve's address (default 127.0.0.1:8080 if free)")
    parser.add_argument(
        "--poll-interval", type=float, default=60.0, help="seconds between polls (default 60; pushes come by webhook)"
    )
    parser.add_argument("--state-dir", type=Path, default=None, help="default: <cache root>/demo")
    parser.add_argument("--keep-cluster", action="store_true", help="leave the devcluster running at the end")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(f"demo: {line}" if line else "", file=sys.stderr, flush=True)

    try:
        started = _cluster_up(args.name, say)
    except (TetherError, KeyboardInterrupt) as exc:
        say(f"error: {exc}" if isinstance(exc, TetherError) else "interrupted")
        return 2
    stops_cluster = started and not args.keep_cluster
    note = f"Ctrl-C (or kill -INT {os.getpid()}) stops tether serve, the git server, the pass store's gpg-agent" + (
        f" and the devcluster {args.name!r}." if stops_cluster else "; the devcluster stays up: `make demo-down`."
    )
    config = DemoConfig(
        kubeconfig=str(devcluster.kubeconfig_path(args.name)),
        state_dir=args.state_dir or default_state_dir(),
        listen=args.listen,
        poll_interval=args.poll_interval,
    )
    try:
        return asyncio.run(_run(config, say, note))
    except TetherError as exc:
        say(f"error: {exc}")
        return 1
    finally:
        if stops_cluster:
            say(f"stopping the devcluster {args.name!r}")
            devcluster.down(args.name)
        else:
            say(f"the devcluster {args.name!r} is still running; `make demo-down` stops it")


if __name__ == "__main__":
    sys.exit(main())
