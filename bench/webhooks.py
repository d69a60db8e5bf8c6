"""W1 push to healthy, W2 one app of 300, W3 load: the webhook path of ``tether serve`` (issue 10).

One devcluster, one git server and one ``tether serve`` for all three. ``tether serve`` polls
600 s apart, so only a webhook moves an app; the git server's ``post-receive`` hook sends it a
signed GitHub-format push for every push (``GitHttpServer.set_webhook``), with the secret that the
``tether-webhook`` Secret holds (key ``github``). A throwaway ``pass`` store holds one entry.

- **W1** — one app of 20 objects (5 Deployments of one replica, 5 Services, 9 ConfigMaps, and a
  Secret whose value is ``<pass:bench/db>``). Each push changes a ConfigMap value and one
  Deployment's pod-template annotation; the clock runs from the start of the commit and push until
  a watch sees the Application Synced and Healthy at the new revision. The baseline, round by
  round in the same run (kubectl first, then Tether): the same manifests, with the secret value
  put in by the bench, applied with ``kubectl apply --server-side`` into a namespace of their own,
  then ``kubectl wait --for=condition=Available`` on the changed Deployment; and beside it
  ``kubectl rollout status``, which waits for the finished rollout that Tether's Healthy means.
- **W2** — 300 apps in one monorepo (``apps/app-NNN/configmap.yaml``, one ConfigMap each), all in
  one shared namespace, automated sync, all Synced first. Each commit changes one app's file; the
  clock runs from the start of the commit and push until a watch sees that app's ConfigMap hold
  the new value. The renders are ``tether_renders_total`` from serve's /metrics before and after
  (read once all 300 apps show the new revision). Baseline: ``kubectl apply --server-side`` of the
  changed file.
- **W3** — the W2 monorepo under load: for the window, deliveries on a fixed schedule (one every
  1/rate s, at most ``IN_FLIGHT`` waiting for an answer; loopback only): real commits pushed
  through the git server about once a second (each touching one random app; its hook delivers
  them), and signed deliveries built by the bench: duplicates of those pushes (the latest or an
  earlier one, as a provider's redelivery would), pushes for repositories no app uses, pings and
  events Tether ignores. Answer times are measured by the client from sending to the answer;
  afterwards the bench waits until every touched app shows the last pushed revision and its
  ConfigMap the last value written, and reads Tether's webhook counters.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from bench.common import BenchError, Kubectl, Result, log, summary
from bench.controller import (
    APP_API,
    TETHER_NAMESPACE,
    TetherServe,
    synced_and_healthy,
    tether_counters,
)
from bench.flux import Api, Watch, cost, cpu_mark, machine_mark, machine_since

POLL_INTERVAL = 600.0
PASS_ENTRY = "bench/db"
APPLICATIONS_PATH = f"/apis/{APP_API}/namespaces/{TETHER_NAMESPACE}/applications"
TARGETS = {
    "w1_ratio_to_kubectl_p50": 1.3,
    "w2_renders": 1,
    "w2_seconds": 3.0,
    "w3_p99_ms": 100.0,
    "w3_5xx": 0,
    "w3_every_app_at_last_revision": True,
}
W1_APP = "w1"
W1_NAMESPACE = "bench-w1"
W1_KUBECTL_NAMESPACE = "bench-w1-kubectl"
W1_DEPLOYMENTS = 5
W1_CONFIGMAPS = 9
W1_TIMEOUT = 180.0
W2_APPS = 300
W2_COMMITS = 5
W2_NAMESPACE = "bench-w2"
W2_KUBECTL_NAMESPACE = "bench-w2-kubectl"
W2_TIMEOUT = 120.0
W3_PUSH_INTERVAL = 1.0
W3_UNUSED_REPOSITORIES = 20
W3_CONVERGE_TIMEOUT = 300.0
IN_FLIGHT = 64
ANNOTATION = "bench.tether.dev/round"
IMAGE = "ghcr.io/stefanprodan/podinfo:6.7.0"


# --------------------------------------------------------------------------- figures


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) by linear interpolation between the closest ranks."""
    if not samples:
        raise BenchError("no samples")
    ordered = sorted(samples)
    at = (len(ordered) - 1) * q / 100.0
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def spread(samples: Sequence[float], unit: str = "s", quantiles: Sequence[int] = (90,)) -> dict[str, Any]:
    """``summary`` (samples, min, median, max) with the percentiles asked for (``p90``, ``p99``)."""
    out = summary(samples, unit)
    for q in quantiles:
        out[f"p{q}"] = round(percentile(samples, q), 6)
    return out


def revision_of(obj: dict[str, Any]) -> str:
    return str(((obj.get("status") or {}).get("sync") or {}).get("revision") or "")


# --------------------------------------------------------------------------- CPU contention


def run_delay(pid: int | str = "self") -> float:
    """Seconds the threads of ``pid`` alive now have spent runnable but waiting for a CPU (schedstat)."""
    total = 0.0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0.0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            pass
    return total


# --------------------------------------------------------------------------- watches


def configmap_holds(value: str) -> Callable[[dict[str, Any]], bool]:
    return lambda obj: (obj.get("data") or {}).get("value") == value


# --------------------------------------------------------------------------- W1: the app of 20 objects


def w1_objects(rounds: Sequence[int], value: str, secret: str) -> list[dict[str, Any]]:
    """The W1 app: ``rounds[d]`` is the annotation of Deployment ``d``, ``value`` ConfigMap 0's value."""
    objects: list[dict[str, Any]] = []
    for d in range(W1_DEPLOYMENTS):
        name = f"w1-web-{d}"
        labels = {"app.kubernetes.io/name": name}
        container: dict[str, Any] = {
            "name": "web",
            "image": IMAGE,
            "ports": [{"name": "http", "containerPort": 9898}],
            "envFrom": [{"configMapRef": {"name": "w1-config-0"}}],
        }
        if d == 0:
            container["env"] = [
                {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "w1-db", "key": "password"}}}
            ]
        objects.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "labels": dict(labels)},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": dict(labels)},
                    "template": {
                        "metadata": {"labels": dict(labels), "annotations": {ANNOTATION: str(rounds[d])}},
                        "spec": {"containers": [container]},
                    },
                },
            }
        )
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "labels": dict(labels)},
                "spec": {"selector": dict(labels), "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
            }
        )
    for c in range(W1_CONFIGMAPS):
        data = {"value": value} if c == 0 else {"value": f"static-{c}", "settings.yaml": f"index: {c}\n"}
        objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"w1-config-{c}"}, "data": data})
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "w1-db"},
            "type": "Opaque",
            "stringData": {"password": secret},
        }
    )
    return objects


def w1_files(rounds: Sequence[int], value: str) -> dict[str, str]:
    """The W1 app's files in git: the Secret holds the ``pass`` placeholder, never the value."""
    objects = w1_objects(rounds, value, f"<pass:{PASS_ENTRY}>")
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"].lower(), []).append(obj)
    return {f"app/{kind}s.yaml": yaml.safe_dump_all(docs, sort_keys=False) for kind, docs in by_kind.items()}


def application(name: str, repo_url: str, path: str, namespace: str, *, create_namespace: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "project": "default",
        "source": {"repoURL": repo_url, "path": path, "targetRevision": "main"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
        "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
    }
    if create_namespace:
        spec["syncPolicy"]["syncOptions"] = ["CreateNamespace=true"]
    return {"apiVersion": APP_API, "kind": "Application", "metadata": {"name": name}, "spec": spec}


def apply_objects(kubectl: Kubectl, path: Path, objects: list[dict[str, Any]], namespace: str | None = None) -> None:
    """``kubectl apply --server-side`` of ``objects`` (in ``namespace`` when given) from a 0600 file."""
    if namespace is not None:
        objects = [{**o, "metadata": {**o["metadata"], "namespace": namespace}} for o in objects]
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path), timeout=120)


def revision_is(sha: str) -> Callable[[dict[str, Any]], bool]:
    return lambda obj: revision_of(obj) == sha


def at_revision(sha: str) -> Callable[[dict[str, Any]], bool]:
    return lambda obj: revision_of(obj) == sha and synced_and_healthy(obj)


def run_w1(*, kubectl: Kubectl, serve: TetherServe, git: Any, workdir: Path, secret_value: str, pushes: int) -> Result:
    """W1: ``pushes`` rounds, each a kubectl round then a Tether round with the same change."""
    kubeconfig = kubectl.kubeconfig
    rounds = [0] * W1_DEPLOYMENTS
    repo = git.create_repo("w1-app")
    head = repo.commit("w1: 20 objects", files=w1_files(rounds, "round-0"))
    kubectl("create", "namespace", W1_KUBECTL_NAMESPACE, timeout=60)
    secret_file = workdir / "w1-kubectl.yaml"
    apply_objects(kubectl, secret_file, w1_objects(rounds, "round-0", secret_value), W1_KUBECTL_NAMESPACE)
    app = {**application(W1_APP, repo.url, "app", W1_NAMESPACE, create_namespace=True)}
    app["metadata"]["namespace"] = TETHER_NAMESPACE
    (workdir / "w1-app.yaml").write_text(yaml.safe_dump(app, sort_keys=False))
    started = time.monotonic()
    watch = Watch(kubeconfig, APPLICATIONS_PATH, {W1_APP}, at_revision(head), timeout=W1_TIMEOUT, what="W1 app")
    kubectl("apply", "--server-side", "-f", str(workdir / "w1-app.yaml"), timeout=60)
    first = watch.result(W1_TIMEOUT)[W1_APP] - started
    log(f"W1: the app of 20 objects Synced and Healthy {first:.1f}s after its creation")
    for d in range(W1_DEPLOYMENTS):  # the baseline's Deployments are rolled out before its first round
        kubectl("rollout", "status", f"deployment/w1-web-{d}", "-n", W1_KUBECTL_NAMESPACE, "--timeout=120s")
    tether: list[float] = []
    push_seconds: list[float] = []
    k_wait: list[float] = []
    k_apply: list[float] = []
    k_rollout: list[float] = []
    for r in range(1, pushes + 1):
        changed = r % W1_DEPLOYMENTS
        rounds[changed] = r
        value = f"round-{r}"
        deployment = f"w1-web-{changed}"
        # kubectl: apply, wait Available (the baseline), then rollout status (what Healthy means).
        t0 = time.monotonic()
        apply_objects(kubectl, secret_file, w1_objects(rounds, value, secret_value), W1_KUBECTL_NAMESPACE)
        t_apply = time.monotonic()
        kubectl(
            "wait",
            "--for=condition=Available",
            f"deployment/{deployment}",
            "-n",
            W1_KUBECTL_NAMESPACE,
            "--timeout=120s",
            timeout=150,
        )
        t_wait = time.monotonic()
        kubectl("rollout", "status", f"deployment/{deployment}", "-n", W1_KUBECTL_NAMESPACE, "--timeout=120s")
        t_rollout = time.monotonic()
        k_apply.append(t_apply - t0)
        k_wait.append(t_wait - t0)
        k_rollout.append(t_rollout - t0)
        # Tether: commit and push (the hook delivers the webhook), until Synced and Healthy there.
        old = head

        def moved_on(obj: dict[str, Any], old: str = old) -> bool:
            return revision_of(obj) not in ("", old) and synced_and_healthy(obj)

        watch = Watch(
            kubeconfig,
            APPLICATIONS_PATH,
            {W1_APP},
            moved_on,
            timeout=W1_TIMEOUT,
            what="W1 app at the pushed revision",
            alive=serve.check_alive,
        )
        t0 = time.monotonic()
        head = repo.commit(f"w1 round {r}", files=w1_files(rounds, value))
        pushed = time.monotonic()
        done = watch.result(W1_TIMEOUT)[W1_APP]
        seen = revision_of(watch.objects[W1_APP])
        if seen != head:
            raise BenchError(f"W1 round {r}: the app became Synced and Healthy at {seen[:12]}, not {head[:12]}")
        tether.append(done - t0)
        push_seconds.append(pushed - t0)
        log(
            f"W1 round {r}/{pushes}: tether {done - t0:.2f}s (push {pushed - t0:.2f}s); kubectl apply+wait "
            f"{k_wait[-1]:.2f}s, +rollout status {k_rollout[-1]:.2f}s"
        )
    secret_file.unlink(missing_ok=True)
    figures = {"tether": spread(tether), "push_seconds": spread(push_seconds)}
    baseline = {
        "kubectl_apply_wait_available": spread(k_wait),
        "kubectl_apply_rollout_status": spread(k_rollout),
        "kubectl_apply_only": spread(k_apply),
    }
    t50 = figures["tether"]["median"]
    return Result(
        name="w1-push-to-healthy",
        title="W1: push to Synced and Healthy through the webhook, an app of 20 objects (one Secret from pass)",
        params={
            "pushes": pushes,
            "objects": 2 * W1_DEPLOYMENTS + W1_CONFIGMAPS + 1,
            "deployments": W1_DEPLOYMENTS,
            "replicas": 1,
            "poll_interval": POLL_INTERVAL,
            "first_sync_seconds": round(first, 3),
        },
        figures=figures,
        baseline=baseline,
        ratios={
            "tether_to_kubectl_wait_p50": round(t50 / baseline["kubectl_apply_wait_available"]["median"], 3),
            "tether_to_kubectl_wait_p90": round(
                figures["tether"]["p90"] / baseline["kubectl_apply_wait_available"]["p90"], 3
            ),
            "tether_to_kubectl_rollout_p50": round(t50 / baseline["kubectl_apply_rollout_status"]["median"], 3),
        },
        targets={"ratio_to_kubectl_p50": TARGETS["w1_ratio_to_kubectl_p50"]},
        notes=[
            "Rounds alternate: kubectl's round r, then Tether's round r, with the same change (ConfigMap w1-config-0's "
            "value and one Deployment's pod-template annotation, the Deployments in turn).",
            "Tether: from the start of `git commit` + `git push` (whose post-receive hook delivers the signed webhook) "
            "until a watch sees the Application Synced and Healthy at the pushed revision. Polling is 600 s apart.",
            "kubectl: `apply --server-side` of the same 20 objects (secret value put in by the bench), then `kubectl "
            "wait --for=condition=Available` of the changed Deployment: the baseline the target is about. With one "
            "replica and maxUnavailable 0 a Deployment stays Available through its rollout, so that wait returns "
            "before the new Pod runs; `kubectl rollout status` (after it) waits for what Tether's Healthy means.",
        ],
    )


# --------------------------------------------------------------------------- W2: one app of 300


def w2_name(i: int) -> str:
    return f"app-{i:03d}"


def w2_configmap(name: str, value: str) -> str:
    return yaml.safe_dump(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"value": value}}
    )


def w2_file(name: str) -> str:
    return f"apps/{name}/configmap.yaml"


@dataclass
class Monorepo:
    """The W2/W3 monorepo: its working clone, each app's last value, every push (before, after)."""

    repo: Any
    values: dict[str, str]
    pushes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def head(self) -> str:
        return str(self.repo.head)

    def change(self, name: str, value: str) -> str:
        before = self.head
        after = str(self.repo.commit(f"{name}: {value}", files={w2_file(name): w2_configmap(name, value)}))
        self.values[name] = value
        self.pushes.append((before, after))
        return after


def w2_setup(*, kubectl: Kubectl, serve: TetherServe, git: Any, workdir: Path) -> tuple[Monorepo, float]:
    """The 300 apps of one monorepo, all Synced and Healthy; the seconds that took."""
    root = workdir / "w2-tree"
    values = {}
    for i in range(W2_APPS):
        name = w2_name(i)
        target = root / w2_file(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(w2_configmap(name, "v0"))
        values[name] = "v0"
    repo = git.create_repo("w2-monorepo", from_dir=root)
    mono = Monorepo(repo, values)
    kubectl("create", "namespace", W2_NAMESPACE, timeout=60)
    apps = []
    for i in range(W2_APPS):
        app = application(w2_name(i), repo.url, f"apps/{w2_name(i)}", W2_NAMESPACE, create_namespace=False)
        app["metadata"]["namespace"] = TETHER_NAMESPACE
        apps.append(app)
    path = workdir / "w2-applications.yaml"
    path.write_text(yaml.safe_dump_all(apps, sort_keys=False))
    names = {w2_name(i) for i in range(W2_APPS)}
    started = time.monotonic()
    kubectl("apply", "--server-side", "-f", str(path), timeout=300)
    api = Api(kubectl.kubeconfig)
    try:
        done = api.wait_all(
            APPLICATIONS_PATH,
            names,
            at_revision(mono.head),
            timeout=1200,
            alive=serve.check_alive,
            what="W2 Applications Synced and Healthy",
        )
    finally:
        api.close()
    seconds = max(done.values()) - started
    log(f"W2: {W2_APPS} apps Synced and Healthy in {seconds:.1f}s")
    settle(serve)
    return mono, seconds


def settle(serve: TetherServe, quiet: float = 3.0, timeout: float = 120.0) -> None:
    """Until serve's queue is empty and its render and reconcile counts stand still for ``quiet`` s."""
    deadline = time.monotonic() + timeout
    last: tuple[float, float] | None = None
    since = time.monotonic()
    while time.monotonic() < deadline:
        serve.check_alive()
        text = serve.metrics()
        counters = tether_counters(text)
        now = (counters.get("tether_renders_total", -1.0), counters.get("tether_reconciles_total", -1.0))
        depth = gauge(text, "tether_queue_depth")
        if now != last or depth:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.5)
    log(f"serve did not settle within {timeout:.0f}s (continuing)")


def gauge(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


WEBHOOK_COUNTERS = (
    "tether_renders_total",
    "tether_reconciles_total",
    "tether_status_writes_total",
    "tether_webhook_pushes_total",
    "tether_webhook_batches_total",
    "tether_webhook_refreshes_total",
    "tether_webhook_moves_total",
    "tether_webhook_unmatched_total",
    "tether_webhook_diffs_total",
    "tether_webhook_refused_total",
)


def counter_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    return {k: int(after.get(k, 0.0) - before.get(k, 0.0)) for k in WEBHOOK_COUNTERS}


def run_w2(*, kubectl: Kubectl, serve: TetherServe, mono: Monorepo, workdir: Path, setup_seconds: float) -> Result:
    """W2: ``W2_COMMITS`` commits, each changing one app's ConfigMap; kubectl's apply of that file beside each."""
    kubeconfig = kubectl.kubeconfig
    kubectl("create", "namespace", W2_KUBECTL_NAMESPACE, timeout=60)
    seconds: list[float] = []
    all_moved: list[float] = []
    renders: list[float] = []
    baseline: list[float] = []
    rows: list[dict[str, Any]] = []
    for k in range(W2_COMMITS):
        name = w2_name((61 * k + 17) % W2_APPS)
        value = f"w2-{k}"
        # kubectl: the file as it was (untimed), then the changed one.
        path = workdir / "w2-kubectl.yaml"
        path.write_text(w2_configmap(name, mono.values[name]))
        kubectl("apply", "--server-side", "-n", W2_KUBECTL_NAMESPACE, "-f", str(path), timeout=60)
        path.write_text(w2_configmap(name, value))
        t0 = time.monotonic()
        kubectl("apply", "--server-side", "-n", W2_KUBECTL_NAMESPACE, "-f", str(path), timeout=60)
        baseline.append(time.monotonic() - t0)
        # Tether.
        before = tether_counters(serve.metrics())
        watch = Watch(
            kubeconfig,
            f"/api/v1/namespaces/{W2_NAMESPACE}/configmaps",
            {name},
            configmap_holds(value),
            timeout=W2_TIMEOUT,
            what=f"ConfigMap {name} = {value}",
            alive=serve.check_alive,
        )
        t0 = time.monotonic()
        head = mono.change(name, value)
        pushed = time.monotonic() - t0
        live = watch.result(W2_TIMEOUT)[name] - t0
        api = Api(kubeconfig)
        try:
            moved = api.wait_all(
                APPLICATIONS_PATH,
                {w2_name(i) for i in range(W2_APPS)},
                revision_is(head),
                timeout=W2_TIMEOUT,
                alive=serve.check_alive,
                what="W2 apps at the pushed revision",
            )
        finally:
            api.close()
        settle(serve, quiet=2.0, timeout=30.0)
        delta = counter_delta(before, tether_counters(serve.metrics()))
        seconds.append(live)
        all_moved.append(max(moved.values()) - t0)
        renders.append(delta["tether_renders_total"])
        rows.append({"app": name, "push_seconds": round(pushed, 3), "live_seconds": round(live, 3), **delta})
        log(
            f"W2 commit {k + 1}/{W2_COMMITS} ({name}): live in {live:.2f}s (push {pushed:.2f}s), all {W2_APPS} apps "
            f"at the revision in {all_moved[-1]:.2f}s; renders {delta['tether_renders_total']}, refreshes "
            f"{delta['tether_webhook_refreshes_total']}, moves {delta['tether_webhook_moves_total']}; kubectl "
            f"{baseline[-1]:.2f}s"
        )
    figures = {
        "seconds_until_live": spread(seconds),
        "renders": spread(renders, "renders"),
        "seconds_until_all_apps_at_revision": spread(all_moved),
    }
    base = {"kubectl_apply": spread(baseline)}
    return Result(
        name="w2-one-app-of-300",
        title=f"W2: a commit touching one app of {W2_APPS} in one monorepo, until it is live",
        params={
            "apps": W2_APPS,
            "commits": W2_COMMITS,
            "namespace": "one shared",
            "setup_seconds": round(setup_seconds, 1),
        },
        figures=figures,
        baseline=base,
        ratios={
            "tether_to_kubectl": round(figures["seconds_until_live"]["median"] / base["kubectl_apply"]["median"], 3)
        },
        targets={"renders": TARGETS["w2_renders"], "seconds": TARGETS["w2_seconds"]},
        notes=[
            f"{W2_APPS} Applications (automated sync, prune, self-heal) on one monorepo, each `apps/app-NNN/` with one "
            f"ConfigMap, all synced into one shared namespace ({W2_NAMESPACE}): one namespace keeps the setup light on "
            "this machine, and the path under test (webhook → match → render one app) does not depend on namespaces.",
            "Live: from the start of `git commit` + `git push` until a watch of the namespace sees the ConfigMap hold "
            "the new value. Renders: `tether_renders_total` from serve's /metrics, before the commit and after all "
            f"{W2_APPS} apps show the new revision (the other apps move to it without a render).",
            "kubectl: `apply --server-side` of the changed file into a namespace of its own (the ConfigMap already "
            "there with its old value): the time the command takes.",
        ],
        extra={"commits": rows},
    )


# --------------------------------------------------------------------------- W3: load


@dataclass
class Delivery:
    kind: str
    scheduled: float
    sent: float = 0.0
    answered: float = 0.0
    status: int = 0
    error: str = ""


class Pusher(threading.Thread):
    """Real commits to the monorepo about every ``interval`` s from ``start``, each touching one random app.

    The GitHub event of each push goes to ``events`` (the load client's duplicates).
    """

    def __init__(self, mono: Monorepo, events: Any, start: float, seconds: float, interval: float) -> None:
        super().__init__(name="w3-pusher", daemon=True)
        self.mono, self.events, self.start_at, self.until, self.interval = (
            mono,
            events,
            start,
            start + seconds,
            interval,
        )
        self.rng = random.Random(11)
        self.touched: set[str] = set()
        self.push_seconds: list[float] = []
        self.push_started: list[float] = []  # monotonic
        self.error: BaseException | None = None

    def run(self) -> None:
        from tether.devcluster import githook

        n = 0
        next_at = self.start_at
        try:
            while next_at < self.until:
                time.sleep(max(0.0, next_at - time.monotonic()))
                name = w2_name(self.rng.randrange(W2_APPS))
                t0 = time.monotonic()
                before = self.mono.head
                after = self.mono.change(name, f"w3-{n}")
                self.push_started.append(t0)
                self.push_seconds.append(time.monotonic() - t0)
                self.touched.add(name)
                event = githook.push_event(
                    self.mono.repo.bare_path,
                    githook.RefUpdate(before, after, "refs/heads/main"),
                    clone_url=self.mono.repo.url,
                )
                self.events.put(json.dumps(event, separators=(",", ":")).encode())
                n += 1
                next_at += self.interval
        except BaseException as exc:  # reported by the caller
            self.error = exc


def unused_repository_bodies(template: dict[str, Any], base_url: str, rng: random.Random) -> list[bytes]:
    """Push events for ``W3_UNUSED_REPOSITORIES`` repositories on the same server that no app uses."""
    bodies = []
    for r in range(W3_UNUSED_REPOSITORIES):
        url = f"{base_url.rstrip('/')}/elsewhere-{r:02d}.git"
        for _ in range(10):
            event = json.loads(json.dumps(template))
            repo = event["repository"]
            repo.update(name=f"elsewhere-{r:02d}", full_name=f"elsewhere-{r:02d}", html_url=url, url=url, clone_url=url)
            repo["ssh_url"] = f"git@127.0.0.1:elsewhere-{r:02d}.git"
            repo["git_url"] = f"git://127.0.0.1/elsewhere-{r:02d}.git"
            event["before"], event["after"] = rng.randbytes(20).hex(), rng.randbytes(20).hex()
            for commit in event.get("commits") or []:
                commit["id"] = event["after"]
            if event.get("head_commit"):
                event["head_commit"]["id"] = event["after"]
            bodies.append(json.dumps(event, separators=(",", ":")).encode())
    return bodies


@dataclass
class LoadPlan:
    """What the load client process is told (picklable)."""

    url: str
    secret: str
    rate: float
    seconds: float
    unused: list[bytes]
    seed: int
    duplicates: bool


class Http11:
    """A minimal HTTP/1.1 client for the load: keep-alive connections to one loopback server, one request
    at a time on each. An httpx client spent about 4 ms of CPU a delivery on this machine, enough to
    take a share of the CPU that serve needs; this one spends a fraction of that."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.retries = 0  # requests sent again on a new connection (the kept-alive one had been closed)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        """The answer's status code; OSError, TimeoutError or ValueError when there is none.

        A kept-alive connection the server has closed meanwhile (uvicorn closes idle ones after 5 s) is
        replaced: one that the server closed is skipped, and one that it closes as the request goes
        out (no byte of an answer read) is tried once more on a new connection, as httpx does.
        """
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        for attempt in (0, 1):
            reused = False
            while self.idle:
                reader, writer = self.idle.pop()
                if reader.at_eof() or writer.is_closing():
                    writer.close()
                    continue
                reused = True
                break
            if not reused:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.timeout)
            try:
                writer.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.timeout)
                status_line, *header_lines = head.decode("latin-1").split("\r\n")
                status = int(status_line.split(" ", 2)[1])
                fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
                await asyncio.wait_for(reader.readexactly(int(fields.get("content-length", "0"))), self.timeout)
            except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
                writer.close()
                partial = getattr(exc, "partial", b"")
                if reused and not partial and attempt == 0:
                    self.retries += 1
                    continue
                raise
            except BaseException:
                writer.close()
                raise
            if fields.get("connection", "").lower() == "close":
                writer.close()
            else:
                self.idle.append((reader, writer))
            return status
        raise AssertionError("unreachable")

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def send_load(plan: LoadPlan, start: float, events: Any) -> tuple[list[Delivery], list[float], int]:
    """Deliveries on a fixed schedule from ``start`` (``rate`` a second for ``seconds``), at most ``IN_FLIGHT``
    unanswered; and how late this loop woke for each (its own lag, the client's share of any delay)."""
    import queue as queues

    from tether.devcluster import githook

    rng = random.Random(plan.seed)
    pushed: list[bytes] = []
    deliveries: list[Delivery] = []
    lags: list[float] = []
    gate = asyncio.Semaphore(IN_FLIGHT)
    ping = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    ignored = json.dumps({"action": "completed", "check_run": {"id": 1}}).encode()
    client = Http11(plan.url)

    def duplicate() -> bytes | None:
        while True:
            try:
                pushed.append(events.get_nowait())
            except queues.Empty:
                break
        if not pushed:
            return None
        # Mostly the latest push, as a retry would; sometimes an earlier one, as a redelivery.
        return pushed[-1] if rng.random() < 0.7 else rng.choice(pushed)

    async def deliver(d: Delivery, body: bytes, event: str) -> None:
        async with gate:
            d.sent = time.monotonic()
            try:
                d.status = await client.post("/api/webhook", body, githook.headers(body, plan.secret, event))
            except (OSError, TimeoutError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
                d.error = f"{type(exc).__name__}: {exc}"[:200]
            d.answered = time.monotonic()

    tasks = []
    try:
        for i in range(int(plan.rate * plan.seconds)):
            at = start + i / plan.rate
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            lags.append(time.monotonic() - at)
            roll = rng.random()
            body, event, kind = None, "push", ""
            if roll < 0.45 and plan.duplicates:
                body, kind = duplicate(), "duplicate"
            if body is None and roll < 0.90:
                body, kind = rng.choice(plan.unused), "unused_repository"
            if body is None:
                body, event, kind = (ping, "ping", "ping") if roll < 0.95 else (ignored, "check_run", "ignored_event")
            d = Delivery(kind, at)
            deliveries.append(d)
            tasks.append(asyncio.create_task(deliver(d, body, event)))
        await asyncio.gather(*tasks)
    finally:
        client.close()
    return deliveries, lags, client.retries


def _load_client(plan: LoadPlan, events: Any, conn: Any) -> None:
    """The load client process: ready, told when to start, the deliveries back (as tuples)."""
    import resource

    conn.send("ready")
    start = conn.recv()
    cpu0, wait0 = resource.getrusage(resource.RUSAGE_SELF), run_delay()
    deliveries, lags, retries = asyncio.run(send_load(plan, start, events))
    cpu1, wait1 = resource.getrusage(resource.RUSAGE_SELF), run_delay()
    spent = {
        "cpu_seconds": round((cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime), 3),
        "runqueue_wait_seconds": round(wait1 - wait0, 3),
        "retries_on_a_new_connection": retries,
    }
    conn.send(([(d.kind, d.scheduled, d.sent, d.answered, d.status, d.error) for d in deliveries], lags, spent))
    conn.close()


def load_from_process(
    plan: LoadPlan, begin: Callable[[float, Any], None] = lambda start, events: None
) -> tuple[list[Delivery], list[float], dict[str, float]]:
    """Run the load client in a process of its own (no GIL shared with the bench's threads).

    ``begin(start, events)`` is called with the schedule's first instant (monotonic: the same clock in
    both processes) and the queue the client takes its duplicates from.
    """
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    events = ctx.Queue()
    ours, theirs = ctx.Pipe()
    process = ctx.Process(target=_load_client, args=(plan, events, theirs), name="w3-load", daemon=True)
    process.start()
    try:
        if not ours.poll(60) or ours.recv() != "ready":
            raise BenchError("W3: the load client process did not start")
        start = time.monotonic() + 0.5
        ours.send(start)
        begin(start, events)
        if not ours.poll(plan.seconds + 120):
            raise BenchError("W3: the load client process did not report")
        rows, lags, cost = ours.recv()
    finally:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
    deliveries = [Delivery(kind, at, sent, answered, status, error) for kind, at, sent, answered, status, error in rows]
    return deliveries, lags, cost


def run_w3(
    *,
    kubectl: Kubectl,
    serve: TetherServe,
    git: Any,
    mono: Monorepo,
    secret: str,
    rate: float,
    seconds: float,
) -> Result:
    """W3: the load of ``rate`` deliveries a second for ``seconds``, then convergence and counters."""
    from tether.devcluster import githook

    rng = random.Random(10)
    template = githook.push_event(
        mono.repo.bare_path,
        githook.RefUpdate(mono.pushes[-1][0], mono.pushes[-1][1], "refs/heads/main"),
        clone_url=mono.repo.url,
    )
    unused = unused_repository_bodies(template, git.base_url, rng)
    bench_rate = rate - 1.0 / W3_PUSH_INTERVAL  # the git server's own deliveries make up the rest
    # The baseline: the same schedule with nothing for the worker to do (no pushes, no duplicates).
    settle(serve, quiet=2.0, timeout=60.0)
    quiet_seconds = max(5.0, seconds / 4)
    plan = LoadPlan(serve.url, secret, bench_rate, quiet_seconds, unused, seed=9, duplicates=False)
    quiet, _, _ = load_from_process(plan)
    settle(serve, quiet=2.0, timeout=60.0)
    before = tether_counters(serve.metrics())
    pid = serve.pid
    cpu0 = cpu_mark(pid)
    load_before = os.getloadavg()
    plan = LoadPlan(serve.url, secret, bench_rate, seconds, unused, seed=10, duplicates=True)
    pushers: list[Pusher] = []

    def begin(start: float, events: Any) -> None:
        pushers.append(Pusher(mono, events, start, seconds, W3_PUSH_INTERVAL))
        pushers[-1].start()

    wait0, machine0 = run_delay(pid), machine_mark()
    deliveries, lags, client_cost = load_from_process(plan, begin)
    pusher = pushers[0]
    started = pusher.start_at
    pusher.join(timeout=60)
    window = time.monotonic() - started
    contention = {
        **machine_since(machine0, window),
        "serve_runqueue_wait_seconds": round(run_delay(pid) - wait0, 3),
        "serve_cpu_seconds": round(cost(pid, cpu0)["cpu_seconds"], 3),
        "client_runqueue_wait_seconds": client_cost["runqueue_wait_seconds"],
        "client_cpu_seconds": client_cost["cpu_seconds"],
        "client_retries_on_a_new_connection": client_cost["retries_on_a_new_connection"],
        "window_seconds": round(window, 2),
    }
    log(f"W3: during the window: {contention}")
    load_after = os.getloadavg()
    serve.check_alive()
    if pusher.error is not None:
        raise BenchError(f"W3: a push failed: {pusher.error}")
    final = mono.head
    touched = sorted(pusher.touched)
    log(f"W3: {len(deliveries)} deliveries and {len(pusher.push_seconds)} pushes in {window:.1f}s; waiting for apps")
    converged, laggards, converge_seconds = True, [], 0.0
    t0 = time.monotonic()
    api = Api(kubectl.kubeconfig)
    try:
        for path, names, done, what in (
            (APPLICATIONS_PATH, set(touched), at_revision(final), "touched apps Synced at the last revision"),
            (
                f"/api/v1/namespaces/{W2_NAMESPACE}/configmaps",
                set(touched),
                lambda obj: (obj.get("data") or {}).get("value") == mono.values.get(obj["metadata"]["name"]),
                "touched ConfigMaps at their last value",
            ),
        ):
            try:
                api.wait_all(path, names, done, timeout=W3_CONVERGE_TIMEOUT, alive=serve.check_alive, what=what)
            except BenchError as exc:
                converged = False
                laggards.append(str(exc)[:300])
                log(f"W3: {exc}")
        converge_seconds = time.monotonic() - t0
        # The apps no push touched only move to the last revision: all of them should get there too.
        everyone = {w2_name(i) for i in range(W2_APPS)}
        try:
            reached = api.wait_all(
                APPLICATIONS_PATH, everyone, revision_is(final), timeout=120, alive=serve.check_alive, what="W2 apps"
            )
            all_seconds: float | None = max(reached.values()) - t0
        except BenchError as exc:
            log(f"W3: {exc}")
            all_seconds = None
        listing = api.client.get(APPLICATIONS_PATH)
        listing.raise_for_status()
        apps = [i for i in listing.json()["items"] if i["metadata"]["name"] in everyone]
        at_final = sum(1 for i in apps if revision_of(i) == final)
    finally:
        api.close()
    settle(serve, quiet=2.0, timeout=60.0)
    spent = cost(pid, cpu0)
    counters = counter_delta(before, tether_counters(serve.metrics()))
    answered = [d for d in deliveries if d.status]
    times_ms = [1000 * (d.answered - d.sent) for d in answered]
    late_ms = [1000 * (d.answered - d.scheduled) for d in answered]
    send_lag_ms = [1000 * (d.sent - d.scheduled) for d in answered]
    quiet_ms = [1000 * (d.answered - d.sent) for d in quiet if d.status]
    quiet_5xx = sum(1 for d in quiet if d.status >= 500)
    statuses: dict[str, int] = {}
    kinds: dict[str, int] = {}
    for d in deliveries:
        key = str(d.status) if d.status else "no answer"
        statuses[key] = statuses.get(key, 0) + 1
        kinds[d.kind] = kinds.get(d.kind, 0) + 1
    errors = [d.error for d in deliveries if d.error]
    server_errors = sum(1 for d in answered if d.status >= 500)
    by_kind = {}
    for kind in kinds:
        ms = [1000 * (d.answered - d.sent) for d in answered if d.kind == kind]
        if ms:
            by_kind[kind] = {k: v for k, v in spread(ms, "ms", (99,)).items() if k != "samples"}
    log(
        f"W3: answers p50 {percentile(times_ms, 50):.1f} ms, p99 {percentile(times_ms, 99):.1f} ms (quiet baseline "
        f"p50 {percentile(quiet_ms, 50):.1f} ms, p99 {percentile(quiet_ms, 99):.1f} ms); statuses "
        f"{statuses}; touched apps {len(touched)}, converged {converged} in {converge_seconds:.1f}s; counters {counters}"
    )
    return Result(
        name="w3-load",
        title=f"W3: {rate:g} webhook deliveries a second for {seconds:g} s on the {W2_APPS}-app monorepo",
        params={
            "rate_per_second": rate,
            "seconds": seconds,
            "bench_rate_per_second": round(bench_rate, 3),
            "push_interval": W3_PUSH_INTERVAL,
            "in_flight_cap": IN_FLIGHT,
            "unused_repositories": W3_UNUSED_REPOSITORIES,
            "apps": W2_APPS,
            "quiet_seconds": quiet_seconds,
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
        },
        figures={
            "answer_ms": spread(times_ms, "ms", (99,)),
            "answer_ms_from_schedule": spread(late_ms, "ms", (99,)),
            "client_send_lag_ms": spread(send_lag_ms, "ms", (99,)),
            "client_loop_lag_ms": spread([1000 * x for x in lags], "ms", (99,)),
            "server_errors": {"median": server_errors, "samples": [], "unit": "answers"},
            "push_seconds": spread(pusher.push_seconds),
        },
        baseline={"answer_ms_quiet": spread(quiet_ms, "ms", (99,))},
        ratios={"p99_to_quiet_p99": round(percentile(times_ms, 99) / percentile(quiet_ms, 99), 3)},
        targets={
            "p99_ms": TARGETS["w3_p99_ms"],
            "server_errors": TARGETS["w3_5xx"],
            "every_app_at_last_revision": TARGETS["w3_every_app_at_last_revision"],
        },
        notes=[
            "The bench's deliveries (signed GitHub events, X-Hub-Signature-256) go out on a fixed schedule from one "
            f"asyncio client of HTTP/1.1 (keep-alive connections, at most {IN_FLIGHT} unanswered; a process of its "
            "own); the git server's post-receive "
            "hook delivers each real push itself (its answer times are not in the figures). Mix of the bench's: 45 % "
            "duplicates of the window's real pushes (70 % the latest, 30 % an earlier one), 45 % pushes for "
            f"{W3_UNUSED_REPOSITORIES} repositories no app uses, 5 % pings, 5 % check_run events (ignored).",
            "Answer time: from sending the request to its answer, on the client. From schedule: from the instant the "
            "schedule gave it (shows any queueing in the client); client send lag: from that instant to the send; "
            "client loop lag: how late the client's loop woke for each instant. The client is a process of its own "
            "(no interpreter shared with the bench's pusher thread); the machine's 2 cores are shared by everything.",
            "Baseline (quiet): before the load, the same schedule for a shorter time with nothing for the worker to "
            "do: pushes for unused repositories, pings and ignored events only, no commits. It shows what the "
            "receiver costs on its own on this machine; the load shows it beside the worker's refreshes and moves.",
            "Converged: every app a real push touched shows Synced at the last pushed revision and its ConfigMap holds "
            "the last value written to it; counters are serve's /metrics from before the window until it settled after.",
        ],
        extra={
            "load": {
                "deliveries": len(deliveries),
                "pushes": len(pusher.push_seconds),
                "window_seconds": round(window, 2),
                "statuses": statuses,
                "kinds": kinds,
                "client_errors": errors[:10],
                "client_error_count": len(errors),
                "answer_ms_by_kind": by_kind,
                "push_at_seconds": [round(t - started, 3) for t in pusher.push_started],
                "quiet_deliveries": len(quiet),
                "quiet_server_errors": quiet_5xx,
            },
            "convergence": {
                # every app, not only those a push touched: a moved app left behind is as wrong
                "every_app_at_last_revision": converged and at_final == len(everyone),
                "touched_apps": len(touched),
                "seconds_after_window": round(converge_seconds, 2),
                "apps_at_last_revision": at_final,
                "all_apps_at_last_revision_seconds_after_window": None
                if all_seconds is None
                else round(all_seconds, 2),
                "apps": len(apps),
                "laggards": laggards,
            },
            "counters": counters,
            "serve_cost": spent,
            "contention": contention,
        },
    )


# --------------------------------------------------------------------------- W1–W3


def run_webhooks(
    *,
    kubeconfig: str,
    workdir: Path,
    pushes: int,
    load_seconds: float,
    rate: float,
    only: set[str],
    out: Path,
    run_info: dict[str, Any],
) -> list[Path]:
    """One git server with the webhook, a pass store and ``tether serve``; then W1, W2 and W3 as asked."""
    from tether.devcluster.gitserver import GitHttpServer
    from tether.devcluster.passstore import PassStore

    kubectl = Kubectl(kubeconfig)
    written: list[Path] = []
    hook_secret = secrets.token_urlsafe(24)
    secret_value = secrets.token_urlsafe(18)
    store = PassStore.create(workdir / "pass")
    serve: TetherServe | None = None
    try:
        store.insert(PASS_ENTRY, f"{secret_value}\n")
        TetherServe.install(kubeconfig)
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "tether-webhook", "namespace": TETHER_NAMESPACE},
            "data": {"github": base64.b64encode(hook_secret.encode()).decode()},
        }
        path = workdir / "tether-webhook.yaml"
        path.touch(mode=0o600)
        path.write_text(yaml.safe_dump(secret))
        kubectl("apply", "--server-side", "-f", str(path), timeout=60)
        path.unlink()
        serve = TetherServe(
            kubeconfig,
            workdir,
            POLL_INTERVAL,
            extra_args=["--password-store", str(store.store_dir), "--gnupg-home", str(store.gnupg_home)],
        )
        with GitHttpServer(workdir / "git") as git:
            git.set_webhook(f"{serve.url}/api/webhook", hook_secret)
            serve.start()
            if "W1" in only:
                log(f"W1: {pushes} pushes")
                result = run_w1(
                    kubectl=kubectl, serve=serve, git=git, workdir=workdir, secret_value=secret_value, pushes=pushes
                )
                written.append(result.write(out, run_info))
            if only & {"W2", "W3"}:
                log(f"W2: {W2_APPS} apps")
                mono, setup_seconds = w2_setup(kubectl=kubectl, serve=serve, git=git, workdir=workdir)
                if "W2" in only:
                    result = run_w2(
                        kubectl=kubectl, serve=serve, mono=mono, workdir=workdir, setup_seconds=setup_seconds
                    )
                    written.append(result.write(out, run_info))
                else:
                    mono.change(w2_name(0), "w2-warm-up")  # W3 duplicates a push of the monorepo from the start
                if "W3" in only:
                    log(f"W3: {rate:g} deliveries a second for {load_seconds:g}s")
                    result = run_w3(
                        kubectl=kubectl,
                        serve=serve,
                        git=git,
                        mono=mono,
                        secret=hook_secret,
                        rate=rate,
                        seconds=load_seconds,
                    )
                    written.append(result.write(out, run_info))
    finally:
        if serve is not None:
            serve.stop()
        store.close()
    return written
