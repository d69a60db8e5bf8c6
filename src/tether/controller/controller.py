"""The controller: informers and triggers feed one work queue; workers compare apps and start operations.

One process, one asyncio loop. What it shares across apps: one ``LiveCache`` and one
``DryRuns`` store per destination cluster, one git cache (one ``ls-remote`` per repository
per poll interval), one render cache, and bounded pools for comparisons, syncs and renders.
Nothing about one app waits on another: each reconcile runs under the comparison limit with
its own timeouts, operations run as their own tasks under the sync limit, and a repository
or cluster that fails backs off on its own.

Triggers (docs/controller.md): the poller (refs moved), watch events on managed objects
(drift), ``pass`` store commits (only the apps that used a changed entry), the refresh
annotation, spec and project changes, the ``operation`` field, and a Terminating
``status.operationState.phase``.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from tether.cluster import Cluster
from tether.cluster.cache import DELETED, MODIFIED, RESYNC, CacheEvent
from tether.cluster.errors import ClusterError
from tether.controller import conditions as cond
from tether.controller.audit import AuditEntry, AuditLog, default_url
from tether.controller.autosync import AutoSyncInputs, LastOperation, ResourceState, decide
from tether.controller.clusters import ClusterRegistry, Destination
from tether.controller.compare import (
    GIT_REASONS,
    Comparer,
    Comparison,
    compared_to,
    fingerprint,
    scopes,
    spec_digest,
)
from tether.controller.events import EventRecorder
from tether.controller.informer import Informer
from tether.controller.memory import AppMemory
from tether.controller.operations import OperationRequest, Operations, automated_request, request_from_field
from tether.controller.orphans import orphans
from tether.controller.repos import RepoCredentials
from tether.controller.settings import Settings
from tether.controller.signatures import CommitSignatures
from tether.controller.sources import git_sources
from tether.controller.status import (
    APP_API_VERSION,
    Standing,
    StatusWriter,
    in_motion,
    now_iso,
    parse_time,
    resource_rows,
    short,
    standing,
    summary,
)
from tether.controller.webhooks import WebhookTrigger
from tether.controller.workqueue import WorkQueue
from tether.errors import TetherError
from tether.model import DEFAULT_PROJECT, Application, Project
from tether.model.application import skips_reconcile
from tether.model.windows import WindowVerdict
from tether.render.cache import RenderCache
from tether.render.versions import tool_versions
from tether.resource import ResourceKey, owner_app
from tether.secrets import PassBackend
from tether.secrets.rotation import StoreWatcher
from tether.server.webhook.secrets import WebhookSecrets
from tether.source import GitCache, normalise_url
from tether.source.cache import GitError
from tether.source.revisions import NeedsFetch, RemoteRefs, RevisionNotFound, pick
from tether.source.signatures import KEYS_CONFIGMAP
from tether.sync.operation import OperationState

log = structlog.get_logger(__name__)

REFRESH_ANNOTATIONS = ("tether.dev/refresh", "argocd.argoproj.io/refresh")
ERROR_RETRY_FIRST, ERROR_RETRY_MAX = 5.0, 300.0
EVENT_QPS, EVENT_BURST = 50.0, 200
WEBHOOK_SECRET = "tether-webhook"  # the Secret holding each provider's webhook secret
KEPT_CHECKOUTS = 4
STOP_STEP_TIMEOUT = 10.0


class Controller:
    """Keeps every Application in ``settings.namespace`` in sync with git."""

    def __init__(self, settings: Settings, home: Cluster) -> None:
        self.settings = settings
        self.home = home
        state = Path(settings.state_dir)
        state.mkdir(parents=True, exist_ok=True)
        max_age = settings.poll_interval + settings.poll_jitter + 5.0  # only the poller lists refs
        # Materialised commits are kept for the next render: a monorepo is extracted once per commit.
        self.git = GitCache(state / "git", refs_max_age=max_age, kept_checkouts=KEPT_CHECKOUTS)
        self.render_cache = RenderCache(state / "render")
        self.backend = PassBackend(settings.password_store, settings.gnupg_home)
        self.repo_credentials = RepoCredentials()
        self.signatures = CommitSignatures(
            self.git, state / "gnupg", self.repo_credentials.lookup, required_keys=self._signature_keys
        )
        self.comparer = Comparer(
            git=self.git,
            render_cache=self.render_cache,
            render_slots=asyncio.Semaphore(settings.max_renders),
            secrets_backend=self.backend,
            credentials_for=self.repo_credentials.lookup,
            signature_check=self.signatures.check,
        )
        self.sync_slots = asyncio.Semaphore(settings.max_syncs)
        self.queue = WorkQueue()
        self.registry = ClusterRegistry(home, self._on_cache_event)
        ns = settings.namespace
        self.apps = Informer(home, APP_API_VERSION, "Application", ns, self._on_app)
        self.projects = Informer(home, APP_API_VERSION, "Project", ns, self._on_project)
        self.cluster_secrets = Informer(
            home, "v1", "Secret", ns, self._on_cluster_secret, label_selector="tether.dev/secret-type=cluster"
        )
        self.repo_secrets = Informer(
            home, "v1", "Secret", ns, self._on_repo_secret, label_selector="tether.dev/secret-type=repository"
        )
        # Looked up by name: the operator creates it (docs/webhooks.md); a change applies at once.
        self.webhook_secret = Informer(
            home, "v1", "Secret", ns, self._on_webhook_secret, field_selector=f"metadata.name={WEBHOOK_SECRET}"
        )
        self.on_webhook_secrets: Callable[[WebhookSecrets], None] | None = None  # the receiver, told of changes
        # The public keys commits are verified with, for projects with signatureKeys (docs/applications.md).
        self.signature_keys = Informer(
            home, "v1", "ConfigMap", ns, self._on_signature_keys, field_selector=f"metadata.name={KEYS_CONFIGMAP}"
        )
        self._keys_load: asyncio.Task[None] | None = None
        self.webhooks = WebhookTrigger(self, max_pending=settings.webhook_queue)
        self.writer = StatusWriter(home, ns, settle=settings.status_settle, on_written=self._on_status_written)
        # Events have a rate limit of their own: a burst of them never delays a sync or a status write.
        self.events = EventRecorder(home.sibling("events", qps=EVENT_QPS, burst=EVENT_BURST))
        self.operations = Operations(self)
        self.audit: AuditLog | None = None
        self.memory: dict[str, AppMemory] = {}
        self.statuses: dict[str, dict[str, Any]] = {}
        self.repo_errors: dict[str, tuple[float, float, str]] = {}  # url -> (retry at, backoff, message)
        self.refs_seen: dict[str, Any] = {}
        self.error_backoff: dict[str, float] = {}
        # (destination, object) -> what a comparison can see of it, to tell status-only watch events apart
        self.fingerprints: dict[tuple[str, Any], str] = {}
        self.stopping = False
        self.reconciles = 0
        self._tasks: list[asyncio.Task[Any]] = []
        self.deletions: dict[str, asyncio.Task[None]] = {}  # app -> its deletion pass, while one runs
        self._delete_again: set[str] = set()  # apps asked to delete while their pass ran

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open the audit log, start the informers, workers and triggers; returns once the apps are listed."""
        self.audit = await AuditLog.open(self.settings.database_url or default_url(Path(self.settings.state_dir)))
        informers = (
            self.cluster_secrets,
            self.repo_secrets,
            self.webhook_secret,
            self.signature_keys,
            self.projects,
            self.apps,
        )
        for informer in informers:
            informer.start()
        await asyncio.gather(
            asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in informers)), timeout=60),
            self._know_tool_versions(),
        )
        if self._keys_load is not None:  # the keys listed at start verify the first comparisons
            await asyncio.wait_for(asyncio.shield(self._keys_load), timeout=60)
        spawn = self._tasks.append
        spawn(asyncio.create_task(self.queue.run_timers(), name="queue timers"))
        for index in range(self.settings.max_compares):
            spawn(asyncio.create_task(self._worker(), name=f"worker {index}"))
        spawn(asyncio.create_task(self._poll_loop(), name="poller"))
        spawn(asyncio.create_task(self.webhooks.run(), name="webhooks"))
        spawn(asyncio.create_task(self._watch_store(), name="pass store"))
        log.info("controller started", namespace=self.settings.namespace, apps=len(self.apps.objects))

    async def _know_tool_versions(self) -> None:
        """Ask the render tools' versions (in every render cache key) now, not in the first app's render."""
        try:
            await tool_versions()
        except TetherError as exc:  # each render says so again, in its app's ComparisonError
            log.warning("cannot tell the render tools' versions", error=str(exc))

    def webhook_secrets(self) -> WebhookSecrets:
        """The providers' secrets as the ``tether-webhook`` Secret holds them now."""
        secret = self.webhook_secret.get(WEBHOOK_SECRET)
        return WebhookSecrets.from_secret_data((secret or {}).get("data"))

    def _on_signature_keys(self, name: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if (old or {}).get("data") == (new or {}).get("data"):
            return

        async def reload() -> None:
            await self.signatures.load(new)
            self.queue.add_many([a for a, obj in self.apps.objects.items() if self.requires_signatures(obj)], "project")

        self._keys_load = asyncio.get_running_loop().create_task(reload(), name="signature keys")
        self._tasks.append(self._keys_load)  # cancelled with the workers at stop

    def _signature_keys(self, app: Application) -> tuple[str, ...]:
        """The key IDs ``app``'s project requires its commits to be signed with (none: no check)."""
        project = self._project(app)
        return () if isinstance(project, str) else tuple(k.key_id for k in project.spec.signature_keys)

    def requires_signatures(self, obj: dict[str, Any]) -> bool:
        """Whether the Application ``obj``'s project has signatureKeys (every commit it moves to is verified)."""
        raw = self.projects.get((obj.get("spec") or {}).get("project") or "default")
        return bool(((raw or {}).get("spec") or {}).get("signatureKeys"))

    def _on_webhook_secret(self, name: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if self.on_webhook_secrets is not None:
            self.on_webhook_secrets(self.webhook_secrets())

    @property
    def ready(self) -> bool:
        return all(i.healthy for i in (self.apps, self.projects)) and not self.stopping

    async def stop(self) -> None:
        """Stop taking work, let operations save a resumable state, close everything (within the grace).

        Every step is bounded: a component that does not stop in time is logged and left behind,
        so a SIGTERM always ends the process (`tether serve` has a watchdog besides).
        """
        self.stopping = True
        self.queue.close()
        for task in self._tasks:
            task.cancel()
        await self._bounded("workers", asyncio.gather(*self._tasks, return_exceptions=True))
        deleting = list(self.deletions.values())
        for task in deleting:  # each pass is idempotent: the next controller runs it again
            task.cancel()
        await self._bounded("deletions", asyncio.gather(*deleting, return_exceptions=True))
        running = [m.operation for m in self.memory.values() if m.operation is not None and not m.operation.done()]
        # Syncs under way are saved where they are and suspended (not terminated: their hooks stay);
        # status keeps phase Running, so the next controller resumes each from its saved state.
        await self._bounded("saving running syncs", self.operations.suspend_all(), self.settings.shutdown_grace)
        for task in running:
            task.cancel()  # the ones still rendering or waiting for a sync slot: started again after a restart
        if running:
            await asyncio.wait(running, timeout=self.settings.shutdown_grace)
        await self._bounded("staged statuses", self._write_statuses())
        await self._bounded("statuses in motion", self.writer.close())
        for informer in (
            self.apps,
            self.projects,
            self.cluster_secrets,
            self.repo_secrets,
            self.webhook_secret,
            self.signature_keys,
        ):
            await self._bounded(f"informer {informer.kind}", informer.close())
        await self._bounded("events", self.events.close())
        await self._bounded("destinations", self.registry.close())
        await self._bounded("git cache", self.git.close())
        if self.audit is not None:
            await self._bounded("audit log", self.audit.close())

    async def _write_statuses(self) -> None:
        """Write what operations staged and no reconcile wrote yet (nothing for a status already written)."""
        for name in list(self.statuses):
            if name in self.apps.objects:
                await self.update_status(name, lambda s: None)

    async def _bounded(self, what: str, step: Awaitable[Any], timeout: float = STOP_STEP_TIMEOUT) -> None:
        try:
            await asyncio.wait_for(step, timeout)
        except TimeoutError:
            log.warning("did not stop in time; left behind", what=what, timeout=timeout)

    # ------------------------------------------------------------------ triggers

    def memory_of(self, name: str) -> AppMemory:
        return self.memory.setdefault(name, AppMemory())

    def _on_app(self, name: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if new is None:
            self.queue.add(name, "deleted")
            return
        if old is None:
            self.writer.seen(name, new.get("status"))
            self.queue.add(name, "start")
            return
        old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
        if old_meta.get("generation") != new_meta.get("generation") or old.get("spec") != new.get("spec"):
            self.queue.add(name, "spec")
        annotations = new_meta.get("annotations") or {}
        refresh = next((annotations[a] for a in REFRESH_ANNOTATIONS if a in annotations), None)
        if refresh is not None:
            self.queue.add(name, "hard-refresh" if refresh == "hard" else "refresh")
        if new.get("operation") and new.get("operation") != old.get("operation"):
            self.queue.add(name, "operation")
        if not new.get("operation") and name in self.memory:
            self.memory[name].handled_operation = None
        phase = ((new.get("status") or {}).get("operationState") or {}).get("phase")
        if phase == "Terminating":
            self.queue.add(name, "terminate")
        if new_meta.get("deletionTimestamp") and not old_meta.get("deletionTimestamp"):
            self.queue.add(name, "deleting")
        if old_meta.get("finalizers") != new_meta.get("finalizers") or old_meta.get("labels") != new_meta.get("labels"):
            self.queue.add(name, "spec")
        if skips_reconcile(old) and not skips_reconcile(new):
            self.queue.add(name, "start")  # whatever moved meanwhile (git, the cluster) is looked at afresh

    def _on_status_written(self, name: str, before: Standing, after: Mapping[str, Any]) -> None:
        """An Event per change of sync or health status the server now holds (Argo CD's persistAppStatus)."""
        if not in_motion(after):
            self.operations.settled(name, after)
        obj = self.apps.get(name)
        if obj is None:
            return
        for what, old, new in zip(("sync", "health"), before, standing(after), strict=True):
            if new is not None and old != new:
                self.events.emit(obj, "ResourceUpdated", f"Updated {what} status: {old or 'Unknown'} -> {new}")

    def _on_project(self, name: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if (old or {}).get("spec") == (new or {}).get("spec"):
            return
        for app_name, app in self.apps.objects.items():
            if ((app.get("spec") or {}).get("project") or "default") == name:
                self.queue.add(app_name, "project")
                self.operations.wake(app_name)  # its windows may have changed

    def _on_cluster_secret(self, name: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        for dropped in self.registry.secret_changed(name, new):
            asyncio.get_running_loop().create_task(self.registry.drop(dropped))
        self.queue.add_many(list(self.apps.objects), "project")

    def _on_repo_secret(self, name: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        urls = self.repo_credentials.secret_changed(name, new)
        for url in urls:
            self.repo_errors.pop(url, None)
            self.git.forget_refs(url)
        self.queue.add_many([a for a, m in self.memory.items() if m.repos & urls or m.comparison_error], "repo")

    def _on_cache_event(self, destination: Destination, change: CacheEvent) -> None:
        if change.type == RESYNC:
            self.queue.add_many([a for a, m in self.memory.items() if m.destination == destination.name], "drift")
            return
        app = owner_app(change.object) if change.object is not None else None
        if app is None or app not in self.apps.objects:
            return
        memory = self.memory_of(app)
        if memory.destination != destination.name:
            return
        reason = "drift"
        if change.key is not None and change.object is not None:
            slot = (destination.name, change.key)
            if change.type == DELETED:
                self.fingerprints.pop(slot, None)
            else:
                key = change.key
                seen = fingerprint(change.object, memory.declared.get((key.group, key.kind, key.name)))
                if change.type == MODIFIED and self.fingerprints.get(slot) == seen:
                    reason = "health"  # only its status moved: what drifts is the same, health may not be
                self.fingerprints[slot] = seen
        self.queue.add(app, reason)

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval + random.uniform(0, self.settings.poll_jitter))
            await self.poll()

    async def poll(self) -> None:
        """One ``ls-remote`` per repository; the apps whose revision moved, or that have no desired state
        or an error, are queued for a comparison."""
        repos: dict[str, str] = {}  # normalised -> as the apps spell it (userinfo and all)
        for obj in self.apps.objects.values():
            for source in git_sources(obj):
                repos.setdefault(normalise_url(source.url), source.url)
        limit = asyncio.Semaphore(8)
        await asyncio.gather(*(self._poll_repo(key, url, limit) for key, url in repos.items()))
        stale = [a for a, m in self.memory.items() if m.desired is None or m.comparison_error]
        self.queue.add_many(stale, "poll")

    async def _poll_repo(self, key: str, url: str, limit: asyncio.Semaphore) -> None:
        failure = self.repo_errors.get(key)
        if failure is not None and time.monotonic() < failure[0]:
            return
        async with limit:
            self.git.forget_refs(url)
            try:
                refs = await self.git.repository(url, self.repo_credentials.lookup(url)).ls_remote()
            except TetherError as exc:
                self._repository_failed(key, str(exc))
                return
        moved = self.refs_seen.get(key) != refs
        self.refs_seen[key] = refs
        if not self.repository_answers(key, "poll") and moved:
            self.queue.add_many(self._behind(key, refs), "poll")

    def repository_answers(self, key: str, reason: str) -> bool:
        """Repository ``key`` (normalised URL) answered a poll, a webhook's listing or a comparison: a
        backoff from an outage ends, and its apps (and those that never rendered) are compared again
        with ``reason``. False when it was not backed off."""
        if self.repo_errors.pop(key, None) is None:
            return False
        log.info("repository answers again", repo=key)
        self.queue.add_many([a for a, m in self.memory.items() if key in m.repos or m.desired is None], reason)
        return True

    def _repository_failed(self, key: str, message: str) -> None:
        """Back off repository ``key`` (normalised URL) after a poll or a comparison could not reach it.

        Until the backoff ends, the comparisons of its apps that would ask it fail at once with the
        error, so a repository that hangs takes no worker for a git timeout per app; the waits double
        from 5 s to 5 min, and any git call that reaches it again ends the backoff (``repository_answers``).
        """
        failure = self.repo_errors.get(key)
        if failure is not None and time.monotonic() < failure[0]:
            return  # recorded already by a caller that waited on the same git call
        backoff = min((failure[1] * 2) if failure else ERROR_RETRY_FIRST, ERROR_RETRY_MAX)
        self.repo_errors[key] = (time.monotonic() + backoff, backoff, message)
        log.warning("repository unreachable", repo=key, retry_in=backoff, error=message)
        if failure is None:  # the apps on it show the error (a ComparisonError naming the repository)
            self.queue.add_many([a for a, m in self.memory.items() if key in m.repos], "repo")

    def _behind(self, key: str, refs: RemoteRefs) -> list[str]:
        """Apps on repository ``key`` rendered at another commit than their targetRevision names in ``refs``.

        One ref that moved (another branch, a tag) leaves the apps that track the others alone, and the
        first poll after a start, which has no listing to compare with, compares none of the apps the
        start compared already. An app with no desired state, or a revision only a fetch can tell
        (an abbreviated commit id), is always compared.
        """
        behind = []
        for name, memory in self.memory.items():
            if memory.desired is None:
                behind.append(name)
                continue
            if key not in memory.repos:
                continue
            for source in git_sources(self.apps.get(name) or {}):
                if normalise_url(source.url) != key:
                    continue
                try:
                    now = pick(refs, source.revision)
                except (NeedsFetch, RevisionNotFound):
                    now = None
                if now is None or source.position >= len(memory.revisions) or memory.revisions[source.position] != now:
                    behind.append(name)
                    break
        return behind

    async def _watch_store(self) -> None:
        """Re-sync exactly the apps that used a `pass` entry that changed (names only are kept)."""
        if not (Path(self.backend.store_dir) / ".git").exists():
            log.info(
                "pass store is not a git repository; secret rotation is not watched", store=str(self.backend.store_dir)
            )
            return
        watcher = StoreWatcher(self.backend, interval=self.settings.pass_poll_interval)
        async for changed in watcher.changes():
            for name, memory in self.memory.items():
                if memory.secret_entries and (changed is None or memory.secret_entries & changed):
                    memory.secrets_generation += 1
                    self.queue.add(name, "secrets")

    # ------------------------------------------------------------------ workers

    async def _worker(self) -> None:
        while True:
            name, reasons = await self.queue.get()
            try:
                await asyncio.wait_for(self.reconcile(name, reasons), timeout=600)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in one reconcile never stops the worker
                log.exception("reconcile failed", app=name, reasons=sorted(reasons))
                self.queue.add_after(name, "retry", self._backoff(name))
            finally:
                self.queue.done(name)

    def _backoff(self, name: str) -> float:
        delay = min(self.error_backoff.get(name, ERROR_RETRY_FIRST / 2) * 2, ERROR_RETRY_MAX)
        self.error_backoff[name] = delay
        return delay

    # ------------------------------------------------------------------ status

    def stage_status(self, name: str, mutate: Callable[[dict[str, Any]], Any]) -> None:
        """Change the app's status in memory only: the next reconcile of the app writes it (``operation-done``)."""
        mutate(self._status_of(name))

    def _status_of(self, name: str) -> dict[str, Any]:
        status = self.statuses.get(name)
        if status is None:
            obj = self.apps.get(name)
            status = copy.deepcopy((obj or {}).get("status") or {})
            self.statuses[name] = status
        return status

    async def update_status(self, name: str, mutate: Callable[[dict[str, Any]], Any], *, settle: bool = False) -> None:
        """Change the app's status in memory and write it if it changed (operations call this too).

        ``settle``: the reconcile loop's own writes, which may hold a status in motion for a moment
        (``StatusWriter``); the others are written at once.
        """
        status = self._status_of(name)
        mutate(status)
        try:
            await self.writer.write(name, status, settle=settle)
        except ClusterError as exc:
            log.warning("status write failed", app=name, error=str(exc))

    async def clear_operation(self, name: str) -> None:
        """Remove the ``operation`` field an operation ran for; the informer's copy is updated at once, so
        the reconcile that follows the operation never reads the field it just cleared."""
        try:
            cleared = await self.home.patch(
                APP_API_VERSION, "Application", name, self.settings.namespace, {"operation": None}
            )
            current = self.apps.get(name)
            if current is not None and _rv(cleared) >= _rv(current):
                self.apps.objects[name] = cleared
        except ClusterError as exc:
            if not exc.not_found:
                log.warning("cannot clear the operation field", app=name, error=str(exc))

    async def audit_record(self, entry: AuditEntry) -> None:
        if self.audit is None:
            return
        try:
            await self.audit.record(entry)
        except TetherError as exc:
            log.error("audit log write failed", app=entry.app, error=str(exc))

    # ------------------------------------------------------------------ reconcile

    async def reconcile(self, name: str, reasons: frozenset[str]) -> None:
        """Compare one app, update its status, and start the operation its state calls for."""
        self.reconciles += 1
        try:
            await self._reconcile(name, reasons)
        finally:
            if "operation-done" in reasons and name in self.statuses and name in self.apps.objects:
                # what the operation staged, whatever happened
                await self.update_status(name, lambda s: None, settle=True)

    async def _reconcile(self, name: str, reasons: frozenset[str]) -> None:
        obj = self.apps.get(name)
        if obj is None:
            self._forget(name)
            return
        memory = self.memory_of(name)
        if memory.operating and reasons <= {"health", "drift"} and not self.operations.shows_wait(name):
            # The app's own operation is writing its objects: the comparison after it ends sees them
            # all. A sync that has been waiting a while (for health, a hook) is the exception: its app
            # is compared meanwhile, so what the sync waits for shows, as in Argo CD.
            return
        if "moved" in reasons and memory.moved is not None:
            before, after = memory.moved
            memory.moved = None
            if memory.revisions == before:  # no render since the webhook looked: the app is at the new revision
                memory.revisions = after
        if "terminate" in reasons:
            memory.terminate_requested = True
            self.operations.terminate(name)
        if skips_reconcile(obj):
            return  # no comparison, sync, operation, deletion or status write until the annotation goes
        try:
            app = memory.application(obj)
        except TetherError as exc:
            await self._invalid(name, str(exc))
            return
        if app.deleting:
            self._delete(name, app, obj)
            return
        refresh = app.annotation("refresh")
        if refresh is not None:
            reasons = reasons | {"hard-refresh" if refresh == "hard" else "refresh"}
            await self._remove_refresh(name, obj)
        project = self._project(app)
        if isinstance(project, str):
            await self._invalid(name, project)
            return
        try:
            destination = await self.registry.resolve(
                app.spec.destination.server or None, app.spec.destination.name or None
            )
        except TetherError as exc:
            await self._invalid(name, str(exc))
            return
        memory.destination = destination.name
        violations = project.app_violations(app.spec, destination.server, destination.name)
        if violations:
            await self._invalid(name, "; ".join(violations))
            return
        if memory.comparison_error and not reasons & GIT_REASONS:
            return  # the error stands until a trigger that may cure it (a poll, a retry, a refresh) compares again
        if reasons <= {"health", "moved"} and memory.diff is not None and memory.desired is not None:
            # Only objects' status moved since the last comparison, or a push moved the app to a revision
            # whose files its render did not read: the diff stands, health is judged again.
            comparison = await self.comparer.judge(memory.diff, memory.desired, destination)
            await self._after_compare(name, app, obj, memory, project, destination, comparison)
            return
        try:
            # Drift compares from memory, repository or not; a refresh, asked for by hand, tries the
            # repository even while it is backed off (as Argo CD, which has no such backoff, always does).
            if (reasons & GIT_REASONS or memory.desired is None) and not reasons & {"refresh", "hard-refresh"}:
                self._check_repo_backoff(app)
            desired, origins = await self.comparer.desired(app, memory, reasons, destination)
            self._repositories_answered(app)
            resource_violations = await self.resource_violations(app, project, destination, desired)
            if resource_violations:
                await self._invalid(name, "; ".join(resource_violations))
                return
            extra = [
                (
                    r.get("group", "") + "/" + r.get("version", "") if r.get("group") else r.get("version", "v1"),
                    r["kind"],
                )
                for r in (obj.get("status") or {}).get("resources") or []
                if isinstance(r, dict) and r.get("kind")
            ]
            kinds = [e for e in extra if e[0].strip("/")]
            comparison = await self.comparer.compare(app, desired, destination, kinds, origins)
        except TetherError as exc:
            if isinstance(exc, GitError) and exc.repository is not None:
                self._repository_failed(exc.repository, str(exc))
            await self._comparison_error(name, app, memory, exc)
            await self._operate_despite_error(name, app, obj, memory)
            return
        memory.comparison_error = None
        self.error_backoff.pop(name, None)
        memory.diff = comparison.diff
        if (
            project.warns_orphans
            and app.spec.destination.namespace
            and (reasons & GIT_REASONS or memory.orphans is None)
        ):
            try:
                memory.orphans = await orphans(destination.cluster, app.spec.destination.namespace, project)
            except TetherError as exc:
                log.info("cannot list the destination namespace for orphaned resources", app=name, error=str(exc))
        elif not project.warns_orphans:
            memory.orphans = None
        await self._after_compare(name, app, obj, memory, project, destination, comparison)

    def _delete(self, name: str, app: Application, obj: dict[str, Any]) -> None:
        """Run a pass of the app's deletion as a task of its own, as an operation runs: its waits (a
        PreDelete hook, each wave gone, a sync ending) hold no worker, so no other app waits for them.

        One pass at a time per app; a request during one runs another after it.
        """
        if name in self.deletions:
            self._delete_again.add(name)
            return

        async def one_pass() -> None:
            from tether.controller.deletion import delete_app

            try:
                await delete_app(self, app, obj)
            except Exception:  # a bug in one deletion never stops the controller
                log.exception("deletion pass failed", app=name)
                self.queue.add_after(name, "deleting", self._backoff(name))
            finally:
                del self.deletions[name]
                if name in self._delete_again:
                    self._delete_again.discard(name)
                    self.queue.add(name, "deleting")

        self.deletions[name] = asyncio.get_running_loop().create_task(one_pass(), name=f"deletion {name}")

    def _repositories_answered(self, app: Application) -> None:
        """End the backoff of each of ``app``'s repositories that git reached since it failed (this
        comparison, or another's), so the other apps on it need not wait for the next poll."""
        for source in app.spec.sources_list():
            key = normalise_url(source.repo_url)
            failure = self.repo_errors.get(key)
            if failure is not None and self.git.answered.get(key, float("-inf")) > failure[0] - failure[1]:
                self.repository_answers(key, "repo")

    def _check_repo_backoff(self, app: Application) -> None:
        for source in app.spec.sources_list():
            failure = self.repo_errors.get(normalise_url(source.repo_url))
            if failure is not None and time.monotonic() < failure[0]:
                raise TetherError(
                    f"{failure[2]} (retrying the repository in {failure[0] - time.monotonic():.0f}s)",
                    reason="SourceFailed",
                    retryable=True,
                )

    async def resource_violations(
        self,
        app: Application,
        project: Project,
        destination: Destination,
        desired: Sequence[Mapping[str, Any]],
        sync_options: Sequence[str] = (),
    ) -> list[str]:
        """What in ``desired`` ``project`` forbids: kinds, the namespaces objects name for themselves, and
        the Namespace ``CreateNamespace=true`` would make.

        The comparison asks it of the app's render, and every operation of what it is about to sync
        (a rollback's revision, an operation's own sources and options), as Argo CD validates each
        object a sync writes.
        """
        kinds = await scopes(destination, desired)
        violations = project.resource_violations(kinds)
        namespace = app.spec.destination.namespace
        namespaced = {(group, kind) for group, kind, is_namespaced in kinds if is_namespaced}
        elsewhere = sorted(
            {
                str(meta["namespace"])
                for obj in desired
                if (meta := obj.get("metadata") or {}).get("namespace") not in (None, "", namespace)
                and (str(obj.get("apiVersion") or "").rpartition("/")[0], str(obj.get("kind") or "")) in namespaced
            }
        )
        violations += [  # an object naming its own namespace goes there, not to the destination's
            f"namespace {other!r} is not permitted in project {project.name!r}"
            for other in elsewhere
            if project.destination_violations(destination.server, destination.name, other)
        ]
        options = {str(o).strip() for o in (*app.spec.sync_options, *sync_options)}
        if (
            namespace
            and "CreateNamespace=true" in options
            and destination.cache.proves_absent(ResourceKey("", "Namespace", "", namespace))
        ):
            # a cluster-scoped object, created only when missing: an existing namespace is not written
            violations += [
                f"{problem} (CreateNamespace=true would create Namespace {namespace!r})"
                for problem in project.resource_violations([("", "Namespace", False)])
            ]
        return violations

    def _project(self, app: Application) -> Project | str:
        raw = self.projects.get(app.spec.project)
        if raw is None:
            if app.spec.project == "default":
                return DEFAULT_PROJECT
            return f"Application referencing project {app.spec.project} which does not exist"
        try:
            return Project.from_object(raw)
        except TetherError as exc:
            return f"project {app.spec.project!r} is invalid: {exc}"

    async def _remove_refresh(self, name: str, obj: dict[str, Any]) -> None:
        """Remove the refresh annotation first, with a test of its value: a request made later sets it again."""
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        ops: list[dict[str, Any]] = []
        for key in REFRESH_ANNOTATIONS:
            if key in annotations:
                path = "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1")
                ops += [{"op": "test", "path": path, "value": annotations[key]}, {"op": "remove", "path": path}]
        if not ops:
            return
        try:
            await self.home.patch(APP_API_VERSION, "Application", name, self.settings.namespace, ops, patch_type="json")
        except ClusterError as exc:
            log.info("refresh annotation changed meanwhile; it stays for the next refresh", app=name, error=str(exc))

    async def _invalid(self, name: str, message: str) -> None:
        now = now_iso()
        memory = self.memory_of(name)
        memory.drop_desired()

        def mutate(status: dict[str, Any]) -> None:
            conditions = status.get("conditions") or []
            conditions = cond.set_condition(conditions, cond.INVALID_SPEC_ERROR, "True", "InvalidSpec", message, now)
            conditions = cond.set_condition(conditions, cond.READY, "False", "InvalidSpec", message, now)
            conditions = cond.set_condition(conditions, cond.STALLED, "True", "InvalidSpec", message, now)
            conditions = cond.set_condition(conditions, cond.RECONCILING, "False", "InvalidSpec", "", now)
            status["conditions"] = conditions
            status.setdefault("sync", {})["status"] = "Unknown"

        await self.update_status(name, mutate)
        obj = self.apps.get(name)
        requested = (obj or {}).get("operation")
        if (
            obj is not None
            and requested
            and not memory.operating
            and _fingerprint(requested) != memory.handled_operation
        ):
            memory.handled_operation = _fingerprint(requested)  # nothing may run for an invalid app: say so
            await self._refuse_operation(name, obj, message)

    async def _comparison_error(self, name: str, app: Application, memory: AppMemory, exc: TetherError) -> None:
        message = short(str(exc.for_app(name)))
        memory.comparison_error = message
        now = now_iso()
        log.warning("comparison failed", app=name, error=message)

        def mutate(status: dict[str, Any]) -> None:
            conditions = cond.remove_condition(status.get("conditions") or [], cond.INVALID_SPEC_ERROR)
            conditions = cond.set_condition(
                conditions, cond.COMPARISON_ERROR, "True", exc.reason or "ComparisonError", message, now
            )
            conditions = cond.set_condition(conditions, cond.READY, "False", "ComparisonError", message, now)
            conditions = cond.set_condition(conditions, cond.STALLED, "False", "ComparisonError", "", now)
            status["conditions"] = conditions
            status.setdefault("sync", {})["status"] = "Unknown"

        await self.update_status(name, mutate)
        if exc.retryable or exc.reason in ("SourceFailed", "ClusterUnreachable", "SecretMissing", "Timeout"):
            self.queue.add_after(name, "retry", self._backoff(name))

    async def _after_compare(
        self,
        name: str,
        app: Application,
        obj: dict[str, Any],
        memory: AppMemory,
        project: Project,
        destination: Destination,
        comparison: Comparison,
    ) -> None:
        now = now_iso()
        diff = comparison.diff
        sync_status = "Synced" if diff.in_sync else "OutOfSync"
        status = self.statuses.get(name)
        if status is None:
            status = copy.deepcopy(obj.get("status") or {})
            self.statuses[name] = status
        # A rotated `pass` entry counts as a new spec: the app gets a full sync, not a self-heal.
        digest = f"{spec_digest(app, memory)}:{memory.rendered_generation}"
        # --- operations: a requested one, one to resume, or automated sync
        op_state = status.get("operationState") or {}
        request: OperationRequest | None = None
        sync_error: str | None = None
        window_block: str | None = None
        if not memory.operating and not self.stopping:
            request, requested, op_state = await self._requested_operation(name, app, obj, memory, op_state)
            status = self.statuses.get(name, status)
            if request is None and not requested:
                decision = decide(
                    self._autosync_inputs(app, memory, digest, sync_status, diff, op_state, project, destination)
                )
                if decision.sync:
                    request = automated_request(app, memory.revisions, decision.partial, decision.self_heal_attempt)
                    request.operation["specDigest"] = digest
                    log.info("automated sync", app=name, reason=decision.reason)
                elif decision.requeue_after is not None:
                    self.queue.add_after(name, "self-heal", decision.requeue_after)
                elif decision.reason.startswith("a sync window denies"):
                    window_block = decision.reason
                    self.queue.add_after(name, "window", 60.0)  # look again when the window may have moved
                sync_error = decision.error
        # --- status
        revisions = list(memory.revisions)
        sync_block: dict[str, Any] = {"status": sync_status, "comparedTo": compared_to(app)}
        if app.spec.multi_source:
            sync_block["revisions"] = revisions
        else:
            sync_block["revision"] = revisions[0] if revisions else ""
        health_block: dict[str, Any] = {"status": comparison.health.value}
        if comparison.health_message:
            health_block["message"] = short(comparison.health_message, 512)
        previous_health = status.get("health") or {}
        health_block["lastTransitionTime"] = (
            previous_health.get("lastTransitionTime", now)
            if previous_health.get("status") == comparison.health.value
            else now
        )
        conditions = status.get("conditions") or []
        for gone in (cond.INVALID_SPEC_ERROR, cond.COMPARISON_ERROR):
            conditions = cond.remove_condition(conditions, gone)
        shared = [f"{r.key} is also part of app {r.shared_with}" for r in diff.resources if r.shared_with]
        conditions = (
            cond.set_condition(
                conditions, cond.SHARED_RESOURCE_WARNING, "True", "SharedResource", "; ".join(shared)[:1000], now
            )
            if shared
            else cond.remove_condition(conditions, cond.SHARED_RESOURCE_WARNING)
        )
        repeated = [w.removeprefix("RepeatedResourceWarning: ") for w in memory.render_warnings if "Repeated" in w]
        conditions = (
            cond.set_condition(
                conditions, "RepeatedResourceWarning", "True", "RepeatedResource", "; ".join(repeated), now
            )
            if repeated
            else cond.remove_condition(conditions, "RepeatedResourceWarning")
        )
        if memory.orphans:
            listed = ", ".join(memory.orphans[:10]) + (" …" if len(memory.orphans) > 10 else "")
            message = f"Application has {len(memory.orphans)} orphaned resources: {listed}"
            conditions = cond.set_condition(
                conditions, cond.ORPHANED_RESOURCE_WARNING, "True", "OrphanedResources", message, now
            )
        else:
            conditions = cond.remove_condition(conditions, cond.ORPHANED_RESOURCE_WARNING)
        if sync_error:
            conditions = cond.set_condition(conditions, cond.SYNC_ERROR, "True", "SyncFailed", sync_error, now)
        elif request is not None or sync_status == "Synced":
            conditions = cond.remove_condition(conditions, cond.SYNC_ERROR)
        operating = request is not None or memory.operating
        ready = sync_status == "Synced" and comparison.health.value == "Healthy" and not sync_error
        conditions = cond.set_condition(
            conditions,
            cond.READY,
            "True" if ready else "False",
            "Succeeded"
            if ready
            else "SyncWindowClosed"
            if window_block
            else ("Progressing" if operating else sync_status if sync_status != "Synced" else comparison.health.value),
            "" if ready else (window_block or comparison.health_message or f"{sync_status}, {comparison.health.value}"),
            now,
        )
        conditions = cond.set_condition(
            conditions,
            cond.RECONCILING,
            "True" if operating else "False",
            "Progressing" if operating else "Idle",
            "",
            now,
        )
        conditions = cond.set_condition(
            conditions,
            cond.STALLED,
            "True" if sync_error else "False",
            "SyncFailed" if sync_error else "Idle",
            sync_error or "",
            now,
        )
        status["conditions"] = conditions
        status["sync"] = sync_block
        status["health"] = health_block
        status["resources"] = resource_rows(diff, comparison.healths, comparison.versions)
        status["summary"] = summary(comparison.live)
        if app.spec.multi_source:
            status["sourceTypes"] = [t.capitalize() for t in memory.source_types]
            status.pop("sourceType", None)
        else:
            status["sourceType"] = (memory.source_types[0] if memory.source_types else "").capitalize()
        status["reconciledAt"] = now
        status["observedGeneration"] = (obj.get("metadata") or {}).get("generation")
        if request is not None:  # one write announces the operation with the comparison that started it
            request.operation.setdefault("id", f"{name}-{uuid.uuid4().hex[:12]}")
            status["operationState"] = request.running_state()
            request.announced = True
        await self.update_status(name, lambda s: None, settle=True)
        if request is not None:
            self.operations.start(name, request)

    async def _requested_operation(
        self, name: str, app: Application, obj: dict[str, Any], memory: AppMemory, op_state: dict[str, Any]
    ) -> tuple[OperationRequest | None, bool, dict[str, Any]]:
        """The operation to start now: the one the ``operation`` field asks for, or one a process that died left
        running (resumed). One that cannot run is refused here (recorded as failed, the field cleared).

        Also returns whether the field asks for one, and ``status.operationState`` as it now stands.
        """
        requested = obj.get("operation")
        left_running = op_state.get("phase") in ("Running", "Terminating")
        request = None
        if requested and _fingerprint(requested) == memory.handled_operation:
            pass  # already run; the informer has not yet seen the field cleared
        elif left_running and (not requested or _same_operation(op_state.get("operation"), requested)):
            # Left running by a process that died: resume from the saved state, or start the same
            # operation again when it died before the engine saved any (nothing was applied yet).
            memory.handled_operation = _fingerprint(requested) if requested else None
            request = self._resume_request(app, op_state)
        elif requested:
            memory.handled_operation = _fingerprint(requested)
            try:
                request = request_from_field(app, obj["operation"])
            except TetherError as exc:
                await self._refuse_operation(name, obj, str(exc))
                op_state = self.statuses[name].get("operationState") or {}
        return request, bool(requested), op_state

    async def _operate_despite_error(self, name: str, app: Application, obj: dict[str, Any], memory: AppMemory) -> None:
        """The comparison failed, yet an operation asked for (or left running) still starts: it renders for itself,
        so a rollback to a good revision can succeed, and otherwise it ends in Error saying why, where waiting
        would leave the request unanswered until the error went away."""
        if memory.operating or self.stopping:
            return
        status = self.statuses.get(name) or obj.get("status") or {}
        request, _, _ = await self._requested_operation(name, app, obj, memory, status.get("operationState") or {})
        if request is not None:
            self.operations.start(name, request)

    async def _refuse_operation(self, name: str, obj: dict[str, Any], message: str) -> None:
        """An operation that cannot run (e.g. a rollback with auto-sync on): recorded as failed, field cleared."""
        now = now_iso()
        op_state = {
            "operation": obj.get("operation"),
            "phase": "Failed",
            "message": short(message),
            "startedAt": now,
            "finishedAt": now,
            "retryCount": 0,
        }
        await self.update_status(name, lambda s: s.__setitem__("operationState", op_state))
        self.events.emit(obj, "OperationRefused", short(message, 500), warning=True)
        await self.clear_operation(name)

    @staticmethod
    def window_verdict(project: Project, app: Application, destination: Destination, *, manual: bool) -> WindowVerdict:
        """Whether ``project``'s sync windows let ``app`` sync to ``destination`` now (by its name or server)."""
        where = (destination.name, destination.server)
        return project.windows.verdict(
            app.name, app.spec.destination.namespace, where, datetime.now(UTC), manual=manual
        )

    def _resume_request(self, app: Application, op_state: dict[str, Any]) -> OperationRequest | None:
        try:
            saved = OperationState.from_dict(op_state["syncState"]) if op_state.get("syncState") else None
            raw = op_state.get("operation") or {}
            asked = {k: v for k, v in raw.items() if k not in ("id", "specDigest")}  # what the user's field held
            fake = dict(app.model_dump(by_alias=True, mode="json"))
            fake["operation"] = asked
            if raw.get("initiatedBy", {}).get("automated"):
                sync = raw.get("sync") or {}
                request = automated_request(
                    app,
                    tuple(sync.get("revisions") or ([sync["revision"]] if sync.get("revision") else [])),
                    None,
                    int(sync.get("selfHealAttemptsCount") or 0),
                )
                if sync.get("resources"):
                    from tether.sync.options import Selector

                    request.resources = tuple(
                        Selector(r.get("group", ""), r["kind"], r["name"], r.get("namespace", ""))
                        for r in sync["resources"]
                    )
                request.operation = copy.deepcopy(raw)
            else:
                request = request_from_field(Application.from_object(fake), asked)
                request.operation = copy.deepcopy(raw)  # keeps its id: one audit record for the whole operation
                request.manual = True
            request.resume = saved
            own = app.spec.sources_list()
            started_at = tuple(saved.revisions or [saved.revision]) if saved is not None and saved.revision else ()
            if request.sources is None and len(started_at) == len(own):
                # It goes on at the commits it started at, not ones pushed while the controller was down.
                request.revisions = started_at
                request.sources = tuple(
                    s.model_copy(update={"target_revision": r}) for s, r in zip(own, started_at, strict=True)
                )
            request.started_at = str(op_state.get("startedAt") or now_iso())
            request.retry_count = int(op_state.get("retryCount") or 0)
            if saved is None and request.retry_count > 0 and op_state.get("finishedAt"):
                # Stopped during a retry's backoff: the retry waits out what is left of it.
                request.backoff = {"message": str(op_state.get("message") or ""), "finishedAt": op_state["finishedAt"]}
            return request
        except Exception as exc:  # a saved state this version cannot use must not stop the app for ever
            log.warning("cannot resume the saved operation; it is abandoned", app=app.name, error=repr(exc))
            return None

    def _autosync_inputs(
        self,
        app: Application,
        memory: AppMemory,
        digest: str,
        sync_status: str,
        diff: Any,
        op_state: dict[str, Any],
        project: Project,
        destination: Destination,
    ) -> AutoSyncInputs:
        automated = app.spec.automated
        last = None
        if op_state.get("phase"):
            result = op_state.get("syncResult") or {}
            op = op_state.get("operation") or {}
            revisions = tuple(result.get("revisions") or ([result["revision"]] if result.get("revision") else []))
            finished = op_state.get("finishedAt")
            finished_time = parse_time(finished) if isinstance(finished, str) else None
            finished_at = finished_time.timestamp() if finished_time is not None else None
            last = LastOperation(
                revisions=revisions,
                compared_digest=str(op.get("specDigest") or digest),
                phase=str(op_state.get("phase")),
                message=str(op_state.get("message") or ""),
                finished_at=finished_at,
                automated=bool((op.get("initiatedBy") or {}).get("automated")),
                self_heal_attempts=int((op.get("sync") or {}).get("selfHealAttemptsCount") or 0),
            )
        verdict = self.window_verdict(project, app, destination, manual=False)
        return AutoSyncInputs(
            automated=automated is not None,
            enabled=automated is not None,
            prune=bool(automated and automated.prune),
            self_heal=bool(automated and automated.self_heal),
            allow_empty=bool(automated and automated.allow_empty),
            sync_status=sync_status,
            operation_running=memory.operating,
            deleting=app.deleting,
            revisions=memory.revisions,
            compared_digest=digest,
            resources=tuple(
                ResourceState(
                    r.key,
                    "OutOfSync" if r.counts_as_drift else "Synced",
                    requires_pruning=r.status == "Extraneous" and not r.ignore_extraneous,
                )
                for r in diff.resources
            ),
            last=last,
            window_allows=verdict.allowed,
            window_reason=verdict.reason,
            now=time.time(),
        )

    def _forget(self, name: str) -> None:
        self.operations.settled(name)
        self.memory.pop(name, None)
        self.statuses.pop(name, None)
        self.writer.forget(name)
        self.queue.forget(name)
        self.error_backoff.pop(name, None)


def _fingerprint(operation: Any) -> str:
    return json.dumps(operation, sort_keys=True, default=str)


def _same_operation(saved: Any, requested: Any) -> bool:
    """Whether the operation saved in status is the one the ``operation`` field asks for (ids aside)."""
    if not isinstance(saved, dict) or not isinstance(requested, dict):
        return False
    return _fingerprint({k: v for k, v in saved.items() if k not in ("id", "specDigest")}) == _fingerprint(requested)


def _rv(obj: dict[str, Any]) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0
