"""C1's floor: the least any controller of Application objects asks of the API server, in a few threads.

The kubectl baseline has no Applications. Every controller that has them pays, on the same two
cores, for the API server to create them, to write their status and to send both to the watches.
This controller does only that, and what the sync itself needs:

- for each new Application (one watch), POST its Namespace and server-side apply its four objects
  under Tether's field manager, labelled as Tether labels them;
- once its Deployment is Available (one cluster-wide watch), one merge patch of a status the size
  and shape of Tether's (conditions, resources, operationState with its syncResult, history, summary).

No git fetch, render, diff, health rules, Events, audit log or LIST of every kind; the revision is
resolved once, before the clock. Timed beside kubectl and Tether (``--floor-reps``), it shows what
part of Tether's distance from kubectl any controller of Applications pays on this machine.

Run as ``python -m bench.floor KUBECONFIG NAMESPACE REPO_URL``; it prints ``ready`` once both
watches are open, and runs until killed.
"""

from __future__ import annotations

import json
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.common import BenchError
from bench.flux import Api
from bench.workload import flux_app, tracked

WORKERS = 8
READY_TIMEOUT = 60.0
_PATHS = {
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts/{name}",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
    "Service": "/api/v1/namespaces/{ns}/services/{name}",
    "Ingress": "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/{name}",
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(app: dict[str, Any], revision: str) -> dict[str, Any]:
    """A Synced and Healthy status with the fields and sizes Tether writes after a first sync."""
    name, spec = app["metadata"]["name"], app["spec"]
    source, destination = spec["source"], spec["destination"]
    ns, now = destination["namespace"], _now()
    objects = [(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in flux_app(name)]

    def group(api_version: str) -> str:
        return api_version.rpartition("/")[0]

    results = [
        {"action": "created", "group": "", "kind": "Namespace", "message": "namespace created (CreateNamespace)"}
        | {"name": ns, "namespace": "", "status": "Synced", "syncPhase": "PreSync"}
    ] + [
        {"action": "created", "group": group(v), "kind": k, "message": "created", "name": n, "namespace": ns}
        | {"status": "Synced", "syncPhase": "Sync"}
        for v, k, n in objects
    ]
    condition = {"lastTransitionTime": now, "message": ""}
    return {
        "conditions": [
            {**condition, "reason": "Succeeded", "status": "True", "type": "Ready"},
            {**condition, "reason": "Idle", "status": "False", "type": "Reconciling"},
            {**condition, "reason": "Idle", "status": "False", "type": "Stalled"},
        ],
        "health": {"lastTransitionTime": now, "status": "Healthy"},
        "history": [
            {"deployStartedAt": now, "deployedAt": now, "id": 0, "initiatedBy": {"automated": True, "username": ""}}
            | {"revision": revision, "source": source}
        ],
        "observedGeneration": app["metadata"].get("generation", 1),
        "operationState": {
            "finishedAt": now,
            "message": f"app {name}: successfully synced ({len(results)} tasks run)",
            "operation": {
                "id": f"{name}-{revision[:12]}",
                "initiatedBy": {"automated": True},
                "retry": {},
                "sync": {"prune": True, "revision": revision},
            },
            "phase": "Succeeded",
            "retryCount": 0,
            "startedAt": now,
            "syncResult": {"resources": results, "revision": revision, "source": source},
        },
        "reconciledAt": now,
        "resources": [
            {"group": group(v), "kind": k, "name": n, "namespace": ns, "status": "Synced", "version": "v1"}
            | ({} if k == "ServiceAccount" else {"health": {"status": "Healthy"}})
            for v, k, n in objects
        ],
        "sourceType": "Directory",
        "summary": {"externalURLs": [f"http://{name}.example.com"], "images": ["ghcr.io/stefanprodan/podinfo:6.7.0"]},
        "sync": {
            "comparedTo": {"destination": destination, "source": source},
            "revision": revision,
            "status": "Synced",
        },
    }


class Floor:
    """The two watches and the workers; ``errors`` collects what the API server refused."""

    def __init__(self, api: Api, namespace: str, revision: str) -> None:
        self.api = api
        self.apps = f"/apis/tether.dev/v1alpha1/namespaces/{namespace}/applications"
        self.revision = revision
        self.work: queue.Queue[dict[str, Any]] = queue.Queue()
        self.waiting: dict[str, dict[str, Any]] = {}  # destination namespace → its Application
        self.lock = threading.Lock()

    def run(self) -> None:
        """Start the workers and both watches; return once both watches are open."""
        for _ in range(WORKERS):
            threading.Thread(target=self._sync, daemon=True).start()
        opened = []
        for path, on in (("/apis/apps/v1/deployments", self._deployment), (self.apps, self._application)):
            event = threading.Event()
            opened.append(event)
            follow = {"stop": threading.Event(), "on_error": self._report, "opened": event.set, "watch_seconds": 60}
            threading.Thread(target=self.api.follow, args=(path, on), kwargs=follow, daemon=True).start()
        for event in opened:
            event.wait()

    @staticmethod
    def _report(exc: Exception) -> None:
        print(f"floor: watch: {exc}", file=sys.stderr, flush=True)

    def _application(self, app: dict[str, Any]) -> None:
        if not app.get("status"):
            self.work.put(app)

    def _deployment(self, deployment: dict[str, Any]) -> None:
        conditions = (deployment.get("status") or {}).get("conditions") or []
        if not any(c.get("type") == "Available" and c.get("status") == "True" for c in conditions):
            return
        with self.lock:
            app = self.waiting.pop(deployment["metadata"].get("namespace", ""), None)
        if app is not None:
            body = json.dumps({"status": status(app, self.revision)})
            path = f"{self.apps}/{app['metadata']['name']}/status"
            headers = {"Content-Type": "application/merge-patch+json"}
            self._check(self.api.client.patch(path, content=body, headers=headers), path)

    def _sync(self) -> None:
        while True:
            app = self.work.get()
            try:
                self._sync_one(app)
            except httpx.HTTPError as exc:  # logged; the bench's wait then names the app that never became ready
                print(f"floor: {app['metadata']['name']}: {exc}", file=sys.stderr, flush=True)

    def _sync_one(self, app: dict[str, Any]) -> None:
        name, ns = app["metadata"]["name"], app["spec"]["destination"]["namespace"]
        created = self.api.client.post("/api/v1/namespaces", json={"metadata": {"name": ns}})
        if created.status_code != 409:
            self._check(created, f"namespace {ns}")
        with self.lock:
            self.waiting[ns] = app
        for obj in flux_app(name):
            path = _PATHS[obj["kind"]].format(ns=ns, name=obj["metadata"]["name"])
            body = json.dumps(tracked(obj, name, ns))
            params = {"fieldManager": "tether", "force": "true"}
            headers = {"Content-Type": "application/apply-patch+yaml"}
            self._check(self.api.client.patch(path, params=params, content=body, headers=headers), path)

    @staticmethod
    def _check(response: Any, what: str) -> None:
        if response.status_code >= 300:
            print(f"floor: {what}: HTTP {response.status_code} {response.text[:300]}", file=sys.stderr, flush=True)


class FloorProcess:
    """The floor as the bench runs it beside ``tether serve``: ``start``, ``pid``, ``check_alive``, ``stop``."""

    def __init__(self, kubeconfig: str, namespace: str, repo_url: str, log_path: Path) -> None:
        self.argv = [sys.executable, "-m", "bench.floor", kubeconfig, namespace, repo_url]
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as sink:
            self.process = subprocess.Popen(
                self.argv, cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, stderr=sink
            )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], READY_TIMEOUT)
        if not ready or self.process.stdout.readline().strip() != b"ready":
            self.process.kill()
            raise BenchError(f"the floor controller did not start; see {self.log_path}")

    @property
    def pid(self) -> int:
        if self.process is None:
            raise BenchError("the floor controller is not running")
        return self.process.pid

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise BenchError(f"the floor controller exited with {self.process.returncode}; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def main(argv: list[str]) -> None:
    kubeconfig, namespace, repo_url = argv
    refs = subprocess.run(
        ["git", "ls-remote", repo_url, "main"], capture_output=True, text=True, timeout=60, check=True
    )
    revision = refs.stdout.split()[0]
    Floor(Api(kubeconfig), namespace, revision).run()
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main(sys.argv[1:])
