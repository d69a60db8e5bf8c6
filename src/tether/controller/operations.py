"""Sync operations: started by the ``operation`` field (a user, the API, ``kubectl``) or by automated
sync, recorded in ``status.operationState`` as they run, resumed after a restart, terminated on request.

An operation runs as its own task under the sync limit, never inside a reconcile, so a long
hook or wave wait stalls no comparison; and it gives its slot back while it only waits
(``SyncSlot``), so no other app's sync either. Its engine state (the small,
secret-free ``tether.sync.OperationState``) is saved in ``status.operationState.syncState``
every few seconds while it runs, with what it waits for and each object's result so far, and
always when it ends, so a controller killed mid-sync resumes it and never runs a finished hook
twice. Retries follow the app's ``retry`` strategy, for an attempt that failed or erred (as Argo CD).
At the end: the history entry (a full, successful, real sync only), the audit record, an
Event, and the ``operation`` field cleared.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from tether.controller import history
from tether.controller.audit import AuditEntry, AuditResource
from tether.controller.status import MAX_MESSAGE, now_iso, parse_time, short
from tether.diff.migration import MIGRATION_MANAGER_ANNOTATION, app_manager
from tether.errors import TetherError
from tether.hooks import is_hook
from tether.model import Application
from tether.model.source import ApplicationSource
from tether.sync import OperationPhase, SyncOperation, SyncOptions, SyncResult
from tether.sync.operation import OperationState
from tether.sync.options import Selector
from tether.sync.result import ResourceResult, SyncEvent

if TYPE_CHECKING:
    from tether.controller.clusters import Destination
    from tether.controller.controller import Controller
    from tether.controller.memory import AppMemory

log = structlog.get_logger(__name__)

SAVE_EVERY = 5.0  # seconds between saves of a running sync's state (hook changes are saved at once)
WINDOW_RECHECK = 30.0  # seconds between looks at the sync windows holding an operation back
ROLLBACK_REFUSED = "rollback cannot be initiated when auto-sync is enabled"


@dataclass
class OperationRequest:
    """One operation to run: what the ``operation`` field (or automated sync) asked for."""

    operation: dict[str, Any]  # Argo CD's Operation, as stored in status.operationState.operation
    revisions: tuple[str, ...] | None = None  # pinned (rollback, sync --revision); None: the app's own
    sources: tuple[ApplicationSource, ...] | None = None
    prune: bool = False
    dry_run: bool = False
    sync_options: tuple[str, ...] = ()
    resources: tuple[Selector, ...] | None = None
    hooks: bool = True  # false: Argo CD's ``apply`` sync strategy
    force: bool = False  # the strategy's ``force``: as the ``Force=true`` sync option
    automated: bool = False
    manual: bool = False  # clear the ``operation`` field when done
    self_heal_attempt: int = 0
    retry_limit: int = 0
    retry: Any = None  # tether.model.RetryStrategy or None
    resume: OperationState | None = None
    retry_count: int = 0
    started_at: str = field(default_factory=now_iso)
    # A retry's backoff that a restart interrupted: the saved ``message`` and ``finishedAt`` (Argo CD's
    # record of a backoff, from which the retry's time follows).
    backoff: dict[str, str] | None = None

    announced: bool = False  # operationState Running already written with the reconcile's status

    def running_state(self) -> dict[str, Any]:
        """``status.operationState`` while this operation runs."""
        state: dict[str, Any] = {
            "operation": self.operation,
            "phase": "Running",
            "message": "resuming" if self.resume is not None else "syncing",
            "startedAt": self.started_at,
            "retryCount": self.retry_count,
        }
        if self.resume is not None:
            state["syncState"] = self.resume.to_dict()
        if self.backoff is not None:
            state.update(self.backoff)
        return state

    def backoff_left(self) -> float:
        """Seconds left of an interrupted retry's backoff: from the failed attempt's ``finishedAt``, the
        delay of the retry to come, as Argo CD's ``NextRetryAt``."""
        finished = parse_time((self.backoff or {}).get("finishedAt", ""))
        if finished is None or self.retry is None:
            return 0.0
        return finished.timestamp() + self.retry.delay(self.retry_count - 1) - datetime.now(UTC).timestamp()

    @property
    def initiated_by(self) -> dict[str, Any]:
        return dict(self.operation.get("initiatedBy") or {"automated": self.automated})

    @property
    def partial(self) -> bool:
        return self.resources is not None


def request_from_field(app: Application, raw: dict[str, Any]) -> OperationRequest:
    """The operation a user set on the app; ``TetherError`` when it cannot run (e.g. a refused rollback)."""
    op = app.operation
    assert op is not None and op.sync is not None
    sync = op.sync
    pinned: tuple[str, ...] | None = None
    if sync.revisions:
        pinned = tuple(sync.revisions)
    elif sync.revision:
        pinned = (sync.revision,)
    sources = sync.sources or ((sync.source,) if sync.source is not None else None)
    if pinned is not None:
        own = app.spec.sources_list()
        if app.spec.automated is not None and tuple(s.target_revision for s in own) != pinned:
            rollback = any(i.name.lower() == "rollback" for i in op.info)
            raise TetherError(
                (
                    ROLLBACK_REFUSED
                    if rollback
                    else f"Cannot sync to {', '.join(pinned)}: auto-sync currently set to "
                    + ", ".join(s.target_revision for s in own)
                )
                + " (turn automated sync off first: remove spec.syncPolicy.automated, e.g. "
                f"`kubectl -n {app.namespace} patch application {app.name} --type json "
                '-p \'[{"op":"remove","path":"/spec/syncPolicy/automated"}]\'`)'
            ).for_app(app.name)
        base = sources or app.spec.sources_list()
        if len(pinned) != len(base):
            raise TetherError(f"operation.sync: {len(pinned)} revisions for {len(base)} sources").for_app(app.name)
        sources = tuple(s.model_copy(update={"target_revision": r}) for s, r in zip(base, pinned, strict=True))
    resources = (
        tuple(Selector(r.group, r.kind, r.name, r.namespace) for r in sync.resources) if sync.resources else None
    )
    retry = op.retry or (app.spec.sync_policy.retry if app.spec.sync_policy else None)
    strategy = sync.sync_strategy
    return OperationRequest(
        operation=copy.deepcopy(raw),
        revisions=pinned,
        sources=sources,
        prune=sync.prune,
        dry_run=sync.dry_run,
        sync_options=tuple(sync.sync_options),
        resources=resources,
        hooks=strategy is None or strategy.runs_hooks,
        force=strategy is not None and strategy.force,
        automated=op.initiated_by.automated,
        manual=True,
        retry=retry,
    )


def automated_request(app: Application, revisions: tuple[str, ...], partial: Any, attempt: int) -> OperationRequest:
    """The operation automated sync starts (Argo CD's shape, ``initiatedBy.automated: true``)."""
    automated = app.spec.automated
    assert automated is not None
    sync: dict[str, Any] = {"prune": automated.prune}
    if len(revisions) > 1:
        sync["revisions"] = list(revisions)
    elif revisions:
        sync["revision"] = revisions[0]
    selectors = None
    if partial is not None:
        sync["resources"] = [
            {"group": k.group, "kind": k.kind, "name": k.name, **({"namespace": k.namespace} if k.namespace else {})}
            for k in partial
        ]
        sync["selfHealAttemptsCount"] = attempt
        selectors = tuple(Selector(k.group, k.kind, k.name, k.namespace) for k in partial)
    return OperationRequest(
        operation={"sync": sync, "initiatedBy": {"automated": True}, "retry": {}},
        prune=automated.prune,
        resources=selectors,
        automated=True,
        self_heal_attempt=attempt,
        retry=app.spec.sync_policy.retry if app.spec.sync_policy else None,
    )


def _result_rows(results: Iterable[ResourceResult]) -> list[dict[str, Any]]:
    return [_result_row(r) for r in results]


def _result_row(r: ResourceResult) -> dict[str, Any]:
    row: dict[str, Any] = {
        "group": r.group,
        "kind": r.kind,
        "namespace": r.namespace,
        "name": r.name,
        "status": r.status.value,
        "message": short(r.message, 256),
        "syncPhase": r.phase.value if hasattr(r.phase, "value") else str(r.phase),
        "action": r.action.value,
    }
    if r.hook_phase is not None:
        row["hookPhase"] = r.hook_phase.value
    return row


def _namespace_metadata(app: Application) -> dict[str, Any]:
    """``managedNamespaceMetadata`` as sync options (used with ``CreateNamespace=true``)."""
    managed = app.spec.sync_policy.managed_namespace_metadata if app.spec.sync_policy else None
    if managed is None:
        return {}
    return {
        "namespace_labels": tuple(sorted(managed.labels.items())),
        "namespace_annotations": tuple(sorted(managed.annotations.items())),
    }


def _failed(message: str, request: OperationRequest) -> str:
    """A failed operation's message; one that was retried says how often, as Argo CD's does."""
    if request.retry_count <= 0:
        return short(message)
    said = f" (retried {request.retry_count} times)."
    return short(message, MAX_MESSAGE - len(said)) + said


def _with_sync_state(state: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(status: dict[str, Any]) -> None:
        status.setdefault("operationState", {})["syncState"] = state

    return mutate


def retrying_message(said: str, attempt: int, at: float) -> str:
    """Argo CD's message while a retry waits: why the last attempt failed, then
    ``Retrying attempt #n at 3:04PM.`` (Go's ``time.Kitchen``, in UTC)."""
    when = datetime.fromtimestamp(at, UTC)
    clock = f"{when.hour % 12 or 12}:{when.minute:02d}{'AM' if when.hour < 12 else 'PM'}"
    return f"{short(said, 512).rstrip('.')}. Retrying attempt #{attempt} at {clock}."


class StateSaver:
    """The ``on_state`` and ``progress`` sink of one running sync.

    At most one status write every ``SAVE_EVERY`` seconds, but a change of any hook's status
    (created, finished, deleted) is written at once, so a restarted controller never runs a hook
    of this run again because its finish was not yet saved. A sync shorter than ``SAVE_EVERY``
    (most) writes no running state at all. Each write carries, as Argo CD's does, what the sync
    is waiting for (``operationState.message``) and each object's result so far
    (``operationState.syncResult``). ``close`` ends the saves (the final record replaces them);
    ``park`` writes the newest state now and then closes (a shutdown).

    ``shown_wait``: a wait of this sync (for health, a hook) has been written. From then until
    the next step starts, the app is compared while its operation runs, so its resources and
    health follow what the sync waits for instead of the state before it.
    """

    def __init__(self, controller: Controller, name: str) -> None:
        self.controller, self.name = controller, name
        self.latest: dict[str, Any] | None = None
        self.closed = False
        self._last_write = asyncio.get_running_loop().time()
        self._hooks: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self.message: str | None = None  # None: the running message stands (syncing, resuming, retrying)
        self.waiting = False
        self.shown_wait = False
        self.results: dict[tuple[str, str, str, str, str], dict[str, Any]] = {}

    def __call__(self, state: OperationState) -> None:
        data = state.to_dict()
        hooks = {t["hookName"]: t["status"] for t in data["tasks"] if t.get("hookName")}
        urgent = hooks != self._hooks
        self._hooks = hooks
        self.latest = data
        self._schedule(urgent)

    def progress(self, event: SyncEvent) -> None:
        if event.type == "resource" and event.resource is not None:
            row = _result_row(event.resource)
            self.results[(row["group"], row["kind"], row["namespace"], row["name"], row["syncPhase"])] = row
        elif event.type == "waiting":
            self.message, self.waiting = event.message, True
            self._schedule(False)
        elif event.type == "step" and self.waiting:
            self.message, self.waiting, self.shown_wait = "syncing", False, False

    def _schedule(self, urgent: bool) -> None:
        if self.closed or (self._task is not None and not urgent):
            return
        since = asyncio.get_running_loop().time() - self._last_write
        self._task = asyncio.create_task(self._flush(0.0 if urgent else max(0.0, SAVE_EVERY - since)))

    async def _flush(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._task = None
        if self.closed:
            return
        self._last_write = asyncio.get_running_loop().time()
        await self._write()
        if self.waiting and not self.shown_wait:
            self.shown_wait = True
            self.controller.queue.add(self.name, "drift")  # what the sync applied, compared while it waits

    async def _write(self) -> None:
        state, self.latest = self.latest, None
        message, results = self.message, list(self.results.values())

        def mutate(status: dict[str, Any]) -> None:
            op_state = status.setdefault("operationState", {})
            op_state.pop("finishedAt", None)  # a retry's backoff ended: this attempt runs
            if state is not None:
                op_state["syncState"] = state
            if message is not None:
                op_state["message"] = short(message)
            if results:
                op_state["syncResult"] = {**(op_state.get("syncResult") or {}), "resources": results}

        await self.controller.update_status(self.name, mutate)

    def close(self) -> None:
        self.closed = True

    async def park(self) -> None:
        self.closed = True
        if self.latest is not None:
            await self._write()


class SyncSlot:
    """One operation's hold on a ``--max-syncs`` slot, given back while the operation only waits.

    As Argo CD's operation processors are free while an operation waits, an operation waiting for
    health or a hook, a retry's backoff or a sync window holds no slot: one app's long wait never
    holds up another app's sync. It takes a slot again before it writes anything more.
    """

    def __init__(self, slots: asyncio.Semaphore) -> None:
        self._slots = slots
        self._held = False
        self._waits = 0

    async def __aenter__(self) -> SyncSlot:
        await self._slots.acquire()
        self._held = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._held:
            self._held = False
            self._slots.release()

    @contextlib.asynccontextmanager
    async def idle(self) -> AsyncIterator[None]:
        """Without the slot for the block (nested and concurrent blocks share one release)."""
        self._waits += 1
        if self._waits == 1 and self._held:
            self._held = False
            self._slots.release()
        try:
            yield
        except asyncio.CancelledError:
            self._waits -= 1  # terminated or suspended: what remains (deleting its hooks, saving) waits for no slot
            raise
        except BaseException:
            await self._leave()
            raise
        await self._leave()

    async def _leave(self) -> None:
        self._waits -= 1
        if self._waits == 0 and not self._held:
            await self._slots.acquire()
            self._held = True


class Operations:
    """Starts, saves, resumes and terminates the controller's sync operations."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.running: dict[str, SyncOperation] = {}
        self.savers: dict[str, StateSaver] = {}
        self.active: dict[str, str] = {}  # app -> id of its operation, started and not finished (queued or running)
        self.unsettled: set[str] = set()  # apps synced while Events are held, their status still in motion
        self.waiting: dict[str, asyncio.Event] = {}  # app -> set to wake its operation held by a window or a backoff

    def start(self, name: str, request: OperationRequest) -> None:
        memory = self.controller.memory_of(name)
        memory.terminate_requested = False
        request.operation.setdefault("id", f"{name}-{uuid.uuid4().hex[:12]}")  # one audit record per operation
        self.controller.writer.queued(name)  # its announcement waits for its slot (at once if one is free)
        self.active[name] = str(request.operation["id"])
        events = self.controller.events
        if self.controller.sync_slots.locked() and events.hold():  # a queue of syncs: a burst begins
            self.unsettled = set(self.active)  # the syncs already running are part of it
        if events.held:
            self.unsettled.add(name)
        memory.operation = asyncio.create_task(self._run(name, request), name=f"operation {name}")

    def settled(self, name: str, status: Mapping[str, Any] | None = None) -> None:
        """``name``'s written ``status`` is no longer in motion (tether.controller.status.in_motion), or the app is gone.

        While ``name``'s operation has not ended, only a status about that operation counts: a
        write already on its way when the operation started carries the previous one's settled
        state, and must not take the app out of the burst before its sync has even run.
        """
        awaited = self.active.get(name)
        if status is not None and awaited is not None and _operation_id(status) != awaited:
            return
        if name in self.unsettled:
            self.unsettled.discard(name)
            self._release_when_settled()

    def shows_wait(self, name: str) -> bool:
        """``name``'s sync waits (for health, a hook) and has said so: its app is compared meanwhile."""
        saver = self.savers.get(name)
        return saver is not None and saver.shown_wait

    def wake(self, name: str) -> None:
        """Have ``name``'s operation, if a sync window or a retry's backoff holds it, look again now (at the
        windows, at a request to terminate)."""
        waiting = self.waiting.get(name)
        if waiting is not None:
            waiting.set()

    def terminate(self, name: str) -> bool:
        self.wake(name)  # held by a sync window or a retry's backoff: it ends, terminated, without syncing
        operation = self.running.get(name)
        if operation is None:
            return False
        operation.terminate()
        return True

    async def _run(self, name: str, request: OperationRequest) -> None:
        c = self.controller
        try:
            async with SyncSlot(c.sync_slots) as slot:
                c.writer.started(name)
                await self._operate(name, request, slot)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never let one app's operation end the controller
            log.exception("operation failed", app=name)
            await self._finish_error(name, request, f"internal error: {exc!r}")
        finally:
            self._ended(name)
            c.writer.ended(name)  # the reconcile queued below writes the app's status
            self.running.pop(name, None)
            self.savers.pop(name, None)
            c.queue.add(name, "operation-done")

    def _ended(self, name: str) -> None:
        self.active.pop(name, None)
        self._release_when_settled()

    def _release_when_settled(self) -> None:
        """The Events held for a burst of syncs go out when its last operation has ended and its apps settled.

        Not when the last one gets its slot, nor when it ends: the burst's final syncs are then
        still applying, and its apps' Deployments still rolling out; the Events would share the API
        server with them. ``max_hold`` bounds the wait for an app that never settles.
        """
        if not self.active and not self.unsettled:
            self.controller.events.release()

    def _state_saver(self, name: str) -> StateSaver:
        saver = StateSaver(self.controller, name)
        self.savers[name] = saver
        return saver

    async def suspend_all(self) -> None:
        """Shutting down: save where each running sync is, then stop it without terminating it."""
        for name, operation in list(self.running.items()):
            saver = self.savers.get(name)
            if saver is not None:
                await saver.park()
            operation.suspend()

    async def _operate(self, name: str, request: OperationRequest, slot: SyncSlot) -> None:
        c = self.controller
        obj = c.apps.get(name)
        if obj is None:
            return
        memory = c.memory_of(name)
        app = memory.application(obj)
        destination = await c.registry.resolve(app.spec.destination.server or None, app.spec.destination.name or None)
        op_state = request.running_state()
        if not request.announced:  # the reconcile that started it usually wrote this already
            await c.update_status(name, lambda s: s.__setitem__("operationState", op_state))
        if request.resume is None:
            c.events.emit(
                obj,
                "OperationStarted",
                f"Initiated {'automated ' if request.automated else ''}sync to "
                f"{', '.join(request.revisions or memory.revisions) or 'HEAD'}",
            )
            app = await self._wait_for_window(name, app, destination, request, op_state, slot)
        if request.backoff is not None:
            # What is left of a retry's backoff when the controller restarted, as Argo CD waits
            # until ``finishedAt`` plus the retry's delay.
            async with slot.idle():
                await self._back_off(name, request.backoff_left())
        resume = request.resume
        while True:
            outcome, revisions = await self._attempt(name, app, memory, destination, request, resume, slot)
            terminated = memory.terminate_requested
            failed = isinstance(outcome, str) or outcome.phase in (OperationPhase.FAILED, OperationPhase.ERROR)
            retry = request.retry
            if not (failed and not terminated and retry is not None and retry.allows(request.retry_count)):
                break
            # As Argo CD: a sync that failed or erred (its render included) is retried while the app's
            # ``retry`` allows; the slot is free while the backoff runs.
            delay = retry.delay(request.retry_count)
            request.retry_count += 1
            resume = None
            said = outcome if isinstance(outcome, str) else outcome.message
            message = retrying_message(said, request.retry_count, datetime.now(UTC).timestamp() + delay)
            op_state.update(
                {"phase": "Running", "message": message, "retryCount": request.retry_count, "finishedAt": now_iso()}
            )
            op_state.pop("syncState", None)
            await c.update_status(name, lambda s: s.__setitem__("operationState", dict(op_state)))
            async with slot.idle():
                await self._back_off(name, delay)
            obj = c.apps.get(name) or obj
            app = memory.application(obj)
        if isinstance(outcome, str):
            await self._finish_error(name, request, outcome)
        else:
            await self._finish(name, app, obj, request, outcome, revisions, terminated)

    async def _back_off(self, name: str, delay: float) -> None:
        """A retry's wait, cut short by a request to terminate (``terminate`` wakes it): the next attempt
        then ends at once, terminated."""
        memory = self.controller.memory_of(name)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        wake = self.waiting[name] = asyncio.Event()
        try:
            while not memory.terminate_requested and (left := deadline - loop.time()) > 0:
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=left)
        finally:
            self.waiting.pop(name, None)

    async def _attempt(
        self,
        name: str,
        app: Application,
        memory: AppMemory,
        destination: Destination,
        request: OperationRequest,
        resume: OperationState | None,
        slot: SyncSlot,
    ) -> tuple[SyncResult | str, tuple[str, ...]]:
        """One attempt of the operation: its sync's result, or why it ended before its sync ran (its render
        failed, its project forbids what it would sync); and the revisions it synced."""
        c = self.controller
        try:
            if request.sources is not None:
                desired, origins = await c.comparer.desired(
                    app, memory, frozenset({"operation"}), destination, sources=request.sources, remember=False
                )
                revisions = request.revisions or ()
            else:
                # As Argo CD: a manual sync goes to what targetRevision names now, not at the last poll, and
                # so does a retry with ``retry.refresh``; other retries sync what the first attempt did.
                first = request.retry_count == 0 and resume is None
                latest = (request.manual and first) or (request.retry_count > 0 and bool(request.retry.refresh))
                if latest:
                    c.comparer.forget_refs(app.spec.sources_list())
                desired, origins = await c.comparer.desired(
                    app,
                    memory,
                    frozenset({"operation"}) if latest or memory.desired is None else frozenset(),
                    destination,
                )
                revisions = memory.revisions
        except TetherError as exc:
            return str(exc), ()
        forbidden = await self._forbidden(app, destination, request, desired)
        if forbidden:
            return f"app {name}: " + "; ".join(forbidden), tuple(revisions)
        options = SyncOptions.from_strings(
            list(app.spec.sync_options) + list(request.sync_options),
            namespace=app.spec.destination.namespace,
            prune=request.prune,
            dry_run=request.dry_run,
            resources=request.resources,
            hooks=request.hooks,
            **({"force": True} if request.force else {}),  # else the app's own Force option stands
            allow_empty=bool(app.spec.automated and app.spec.automated.allow_empty),
            ignore_differences=tuple(app.spec.ignore_differences_dicts()),
            timeout=c.settings.sync_timeout,
            csa_manager=app_manager(
                (*app.spec.sync_options, *request.sync_options), app.annotation(MIGRATION_MANAGER_ANNOTATION)
            ),
            revision=revisions[0] if revisions else "",
            revisions=tuple(revisions) if len(revisions) > 1 else (),
            **_namespace_metadata(app),
        )
        saver = self._state_saver(name)
        operation = SyncOperation(
            name,
            desired,
            cluster=destination.cluster,
            cache=destination.cache,
            options=options,
            lua=c.comparer.lua,
            dry_runs=destination.dry_runs,
            on_state=saver,
            progress=saver.progress,
            resume=resume,
            origins=origins,
            idle=slot.idle,
        )
        if resume is None and any(is_hook(o) for o in desired):
            # The run id is saved before anything is applied, so a restart resumes this run and adopts
            # its hooks by name. Without hooks a restart may start afresh: applies are idempotent.
            await c.update_status(name, _with_sync_state(operation.state.to_dict()))
        self.running[name] = operation
        if memory.terminate_requested:
            operation.terminate()
        try:
            return await operation.run(), tuple(revisions)
        finally:
            saver.close()
            self.running.pop(name, None)

    async def _forbidden(
        self, app: Application, destination: Any, request: OperationRequest, desired: list[dict[str, Any]]
    ) -> list[str]:
        """What the app's project forbids in what this operation is about to sync: its own sources (an
        override, a rollback's), the kinds it renders, the Namespace its options would create."""
        c = self.controller
        project = c._project(app)
        if isinstance(project, str):
            return [project]
        found = project.source_violations(s.repo_url for s in request.sources or ())
        return found + await c.resource_violations(app, project, destination, desired, request.sync_options)

    def _blocked_by(self, app: Application, destination: Any, request: OperationRequest) -> str | None:
        """Why the app's project's sync windows block this operation now; None when they let it run (or
        the project is not valid: the reconcile refuses such an app, there is nothing to wait for)."""
        c = self.controller
        project = c._project(app)
        if isinstance(project, str):
            return None
        verdict = c.window_verdict(project, app, destination, manual=not request.automated)
        return None if verdict.allowed else verdict.reason

    async def _wait_for_window(
        self,
        name: str,
        app: Application,
        destination: Any,
        request: OperationRequest,
        op_state: dict[str, Any],
        slot: SyncSlot,
    ) -> Application:
        """Argo CD's rule for a sync its project's windows block (a manual one passes a deny window with
        ``manualSync``): it stays Running, saying why, until a window lets it run or it is terminated.
        The slot is free while it waits, and only then: an operation no window holds keeps its slot
        (giving it back would queue it for a slot a second time).

        Returns the app as it stands when the wait ends (its spec or project may have changed meanwhile).
        """
        if self._blocked_by(app, destination, request) is None:
            return app
        async with slot.idle():
            return await self._wait_while_blocked(name, app, destination, request, op_state)

    async def _wait_while_blocked(
        self, name: str, app: Application, destination: Any, request: OperationRequest, op_state: dict[str, Any]
    ) -> Application:
        c = self.controller
        memory = c.memory_of(name)
        wake = self.waiting[name] = asyncio.Event()
        shown = ""
        try:
            while not memory.terminate_requested:
                reason = self._blocked_by(app, destination, request)
                if reason is None:
                    break
                message = short(f"Sync operation blocked by sync window: {reason}")
                if message != shown:
                    shown = op_state["message"] = message
                    await c.update_status(name, lambda s: s.__setitem__("operationState", dict(op_state)))
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=WINDOW_RECHECK)
                obj = c.apps.get(name)
                if obj is not None:
                    app = memory.application(obj)
        finally:
            self.waiting.pop(name, None)
        if shown:
            op_state["message"] = "syncing"
        return app

    async def _finish(
        self,
        name: str,
        app: Application,
        obj: dict[str, Any],
        request: OperationRequest,
        result: SyncResult,
        revisions: tuple[str, ...],
        terminated: bool,
    ) -> None:
        c = self.controller
        # A terminated sync ends Failed (Error when its hooks could not be deleted), as Argo CD's does.
        phase = result.phase.value
        finished = now_iso()
        sync_result: dict[str, Any] = {"resources": _result_rows(result.resources)}
        sources = [
            s.model_dump(by_alias=True, exclude_defaults=True, mode="json")
            for s in (request.sources or app.spec.sources_list())
        ]
        if len(revisions) > 1:
            sync_result["revisions"], sync_result["sources"] = list(revisions), sources
        else:
            sync_result["revision"] = revisions[0] if revisions else ""
            sync_result["source"] = sources[0] if sources else {}
        op_state = {
            "operation": request.operation,
            "phase": phase,
            "message": short(result.message or phase)
            if result.succeeded
            else _failed(result.message or phase, request),
            "startedAt": request.started_at,
            "finishedAt": finished,
            "retryCount": request.retry_count,
            "syncResult": sync_result,
        }
        full = result.succeeded and not request.dry_run and not request.partial

        def record(status: dict[str, Any]) -> None:
            status["operationState"] = op_state
            if full:
                status["history"] = history.append(
                    status.get("history") or [],
                    revisions=list(revisions) if len(revisions) > 1 else (revisions[0] if revisions else ""),
                    sources=sources,
                    deployed_at=finished,
                    started_at=request.started_at,
                    initiated_by=request.initiated_by,
                    limit=app.spec.revision_history_limit,
                )

        if request.manual:
            await c.update_status(name, record)  # before the operation field is cleared, as Argo CD's one patch
        else:
            # The comparison that follows every operation writes this with its own result: one write, not two.
            c.stage_status(name, record)
        c.events.emit(
            obj,
            "OperationCompleted",
            f"{'Partial ' if request.partial else ''}Sync operation to {', '.join(revisions) or 'HEAD'} {phase.lower()}"
            + (f": {short(result.message, 300)}" if result.message and not result.succeeded else ""),
            warning=not result.succeeded,
        )
        await c.audit_record(
            _audit_entry(
                f"{app.namespace}/{name}",
                request,
                revisions,
                "Terminated" if terminated and not result.succeeded else phase,  # the audit log says what ended it
                short(result.message or phase),
                finished,
                tuple(
                    AuditResource(
                        group=r.group,
                        kind=r.kind,
                        namespace=r.namespace or None,
                        name=r.name,
                        action=r.action.value,
                        status=r.status.value,
                        message=short(r.message, 512),
                        hook_phase=r.hook_phase.value if r.hook_phase is not None else None,
                    )
                    for r in result.resources
                ),
            )
        )
        if request.manual:
            await c.clear_operation(name)

    async def _finish_error(self, name: str, request: OperationRequest, message: str) -> None:
        """An operation that ended before its sync ran (its render failed, say): status, Event and audit say so."""
        c = self.controller
        finished = now_iso()
        op_state = {
            "operation": request.operation,
            "phase": "Error",
            "message": _failed(message, request),
            "startedAt": request.started_at,
            "finishedAt": finished,
            "retryCount": request.retry_count,
        }
        await c.update_status(name, lambda s: s.__setitem__("operationState", op_state))
        obj = c.apps.get(name)
        if obj is not None:
            c.events.emit(obj, "OperationCompleted", f"Sync operation failed: {short(message, 300)}", warning=True)
        namespace = ((obj or {}).get("metadata") or {}).get("namespace") or c.settings.namespace
        await c.audit_record(
            _audit_entry(f"{namespace}/{name}", request, request.revisions or (), "Error", short(message), finished)
        )
        if request.manual:
            await c.clear_operation(name)


def _audit_entry(
    app: str,
    request: OperationRequest,
    revisions: tuple[str, ...],
    phase: str,
    message: str,
    finished: str,
    resources: tuple[AuditResource, ...] = (),
) -> AuditEntry:
    """The audit log's record of ``request``, ended in ``phase`` at ``finished`` (one per operation id)."""
    rollback = any(i.get("name", "").lower() == "rollback" for i in request.operation.get("info") or [])
    return AuditEntry(
        app=app,
        operation_id=str(request.operation.get("id") or app),
        kind="rollback" if rollback else "sync",
        initiated_by=str(request.initiated_by.get("username") or ("automated" if request.automated else "unknown")),
        automated=request.automated,
        revisions=tuple(revisions),
        phase=phase,
        message=message,
        started_at=parse_time(request.started_at) or datetime.now(UTC),
        finished_at=parse_time(finished) or datetime.now(UTC),
        resources=resources,
    )


def _operation_id(status: Mapping[str, Any]) -> str | None:
    """The id of the operation ``status.operationState`` describes (None when it describes none)."""
    operation = (status.get("operationState") or {}).get("operation") or {}
    found = operation.get("id") if isinstance(operation, Mapping) else None
    return str(found) if found is not None else None
