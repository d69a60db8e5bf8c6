"""Running a sync plan against one cluster: check, dry run, then phase by phase, wave by wave.

Before anything is written: objects shared with another app are refused
(FailOnSharedResource), ApplyOutOfSyncOnly drops objects tether.diff finds Synced, and
every object is applied server-side with ``dryRun=All`` so a bad object fails the sync
while the cluster is untouched (objects whose CRD or namespace comes in the same sync
skip that check, as the server cannot judge them yet). Then each step (phase, wave)
applies its objects kind group by kind group, prunes, and — unless it is the last step
and runs no hook — waits on watch events (``tether.sync.wait``) until every object is
healthy and every hook completed, as judged by ``tether.health``. The first failure stops
the sync; what was applied stays applied and the result lists it; SyncFail hooks run.

A Namespace is pruned only when it holds nothing but what this sync prunes
(``tether.sync.contents``), unless ``PruneNamespaceContents=true``. A cluster that stops
answering (``ClusterUnreachable``, after the client's bounded retry) ends the sync at once
with phase Error: nothing more can be done there, and what was applied is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import structlog

from tether.cluster import Cluster, ClusterError, ClusterUnreachable, UnknownKind
from tether.cluster.cache import LiveCache
from tether.cluster.client import FIELD_MANAGER
from tether.cluster.errors import without_request
from tether.diff import SYNCED, assign_namespaces, diff_app, normalise, respect_ignored
from tether.diff.dryrun import DryRuns
from tether.diff.migration import manager_for, migration_patch, pending
from tether.errors import TetherError
from tether.health import LuaChecks, assess_async
from tether.hooks import DeletePolicy, Phase, delete_policies
from tether.resource import NO_ORIGINS, TRACKING_ANNOTATION, Origins, ResourceKey, mark, owner_app
from tether.sync.contents import InTheWay, in_the_way, namespace_contents
from tether.sync.operation import (
    FAILED,
    RUNNING,
    SKIPPED,
    STAGE_SYNC,
    STAGE_SYNC_FAIL,
    SUCCEEDED,
    OperationState,
    TaskState,
)
from tether.sync.options import SyncOptions
from tether.sync.plan import Action, Step, SyncPlan, Task, crds_in, plan
from tether.sync.result import (
    OperationPhase,
    ResourceAction,
    ResourceResult,
    ResultStatus,
    SyncEvent,
    SyncResult,
)
from tether.sync.wait import WaitFailed, until_established, until_gone, until_ready, until_served

log = structlog.get_logger(__name__)

CONCURRENCY = 16
CRD_TIMEOUT = 60.0
ABSENCE_TRUSTED = 5.0  # seconds a GET that found no object stands for the sync (LiveCache.ensure)
MAX_BLOCKERS = 100  # objects named in a pruneSkipped result (the count is always complete)
CLUSTER_UNREACHABLE = "ClusterUnreachable"

Progress = Callable[[SyncEvent], None]
StateSink = Callable[[OperationState], None]
Idle = Callable[[], AbstractAsyncContextManager[None]]
RUN_ANNOTATION = "tether.dev/sync-run"  # on each hook instance: the run that created it (resume adopts its own)
TERMINATE_TIMEOUT = 15.0  # for deleting the running hooks of a terminated sync
MIGRATION_ATTEMPTS = 3  # a client-side apply migration read again after a 409 (the object changed meanwhile)


class SyncOperation:
    """One sync as an operation that can be watched, resumed and terminated (gitops-engine's sync context).

    ``state`` is the small saved state (also given to ``on_state`` after every change);
    ``resume`` is such a state from an earlier process: the sync continues where it stopped.
    ``terminate()`` (or cancelling the task running ``run()``) ends the sync in phase Failed.
    ``idle`` is entered around each wait of a step for health or a hook's completion, where the
    sync writes nothing: the controller gives its sync slot back for that time.
    """

    def __init__(
        self,
        app: str,
        desired: Iterable[Mapping[str, Any]],
        *,
        cluster: Cluster,
        cache: LiveCache | None = None,
        options: SyncOptions,
        progress: Progress | None = None,
        lua: LuaChecks | None = None,
        dry_runs: DryRuns | None = None,
        on_state: StateSink | None = None,
        resume: OperationState | None = None,
        origins: Origins = NO_ORIGINS,
        idle: Idle = contextlib.nullcontext,
    ) -> None:
        self.desired = list(desired)
        self.cluster, self.cache = cluster, cache
        self._run = _Run(app, cluster, options, progress, lua, dry_runs or DryRuns(), on_state, resume, origins, idle)

    @property
    def state(self) -> OperationState:
        return self._run.state()

    def terminate(self) -> None:
        """Stop the sync: running hooks are deleted, SyncFail hooks do not run (as Argo CD), phase Failed."""
        self._run.terminate()

    def suspend(self) -> None:
        """Stop the sync where it is, to be resumed by another process (a controller shutting down).

        Unlike ``terminate`` nothing is deleted and no state is saved after this call: ``run()``
        raises ``CancelledError``, and the last state given to ``on_state`` is where a resumed
        sync continues, exactly as after the process was killed.
        """
        self._run.suspend()

    async def run(self) -> SyncResult:
        """Run (or resume) the sync to its end; never raises for what happens on the cluster."""
        own_cache = self.cache is None
        live_cache = self.cache if self.cache is not None else LiveCache(self.cluster)
        try:
            return await self._run.execute(live_cache, self.desired)
        finally:
            if own_cache:
                await live_cache.close()


async def sync_app(
    app: str,
    desired: Iterable[Mapping[str, Any]],
    *,
    cluster: Cluster,
    cache: LiveCache | None = None,
    options: SyncOptions,
    progress: Progress | None = None,
    lua: LuaChecks | None = None,
    dry_runs: DryRuns | None = None,
    on_state: StateSink | None = None,
    resume: OperationState | None = None,
    origins: Origins = NO_ORIGINS,
) -> SyncResult:
    """Make the cluster match ``desired`` for ``app``; never raises for what happens on the cluster.

    ``cache`` is a LiveCache of ``cluster`` (the controller's); without one, a cache is made for
    this sync and closed after it. Either way every served kind is tracked, so prune sees
    owned objects of kinds no longer in git. ``lua`` adds custom health checks to the waits.
    ``dry_runs`` is the store of dry-run outcomes shared with ``diff_app`` (a new one when None).
    ``on_state`` gets the operation's small state after every change; ``resume`` continues
    the sync that state describes. ``origins`` (``DesiredState.origins``) lets a failure name the
    file an object came from. Cancelling the task ends the sync with a Failed result.
    """
    operation = SyncOperation(
        app,
        desired,
        cluster=cluster,
        cache=cache,
        options=options,
        progress=progress,
        lua=lua,
        dry_runs=dry_runs,
        on_state=on_state,
        resume=resume,
        origins=origins,
    )
    return await operation.run()


def _now() -> datetime:
    return datetime.now(UTC)


def _carries_metadata(live: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether ``live`` already has every label and annotation ``wanted`` names (managedNamespaceMetadata)."""
    have, want = live.get("metadata") or {}, wanted.get("metadata") or {}
    return all(
        (have.get(section) or {}).get(key) == value
        for section in ("labels", "annotations")
        for key, value in (want.get(section) or {}).items()
    )


def _rv(obj: Mapping[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")


def _undeclared_field(exc: ClusterError) -> bool:
    """Whether server-side apply refused the object for a field its schema does not declare."""
    return "field not declared in schema" in str(exc)


def _unchanged(written: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """Whether an apply left the object as it was.

    The same resourceVersion proves it; but ``live`` is the cache's copy from before the
    apply and may lag behind a controller's status update, so equal content outside
    ``status`` and server bookkeeping counts as unchanged too.
    """
    return _rv(written) == _rv(live) or normalise(written) == normalise(live)


def _immutable(exc: ClusterError) -> bool:
    return exc.status == 422 and "immutable" in str(exc).lower()


def _terminating(obj: Mapping[str, Any] | None) -> bool:
    return bool(((obj or {}).get("metadata") or {}).get("deletionTimestamp"))


def _note(task: Task) -> str:
    if task.options.server_side_apply or task.options.replace:
        return ""
    return " (ServerSideApply=false ignored: Tether applies server-side, or use Replace=true)"


def _names(keys: Sequence[object], limit: int = 5) -> str:
    shown = ", ".join(str(k) for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _is_namespace(key: ResourceKey) -> bool:
    return key.group == "" and key.kind == "Namespace"


async def _all_ok(runs: Iterable[Awaitable[bool]]) -> bool:
    """Run concurrently; True when every one returned True.

    When one raises (the cluster is gone), the others are cancelled before the error goes on,
    so nothing keeps writing to the result after the sync has ended.
    """
    tasks = [asyncio.ensure_future(run) for run in runs]
    try:
        return all(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class _Run:
    """The state of one sync while it runs."""

    def __init__(
        self,
        app: str,
        cluster: Cluster,
        options: SyncOptions,
        progress: Progress | None,
        lua: LuaChecks | None,
        dry_runs: DryRuns,
        on_state: StateSink | None,
        resume: OperationState | None,
        origins: Origins,
        idle: Idle,
    ) -> None:
        self.app, self.cluster, self.options, self.progress = app, cluster, options, progress
        self.lua, self.dry_runs, self.on_state, self.resume = lua, dry_runs, on_state, resume
        self.origins, self.idle = origins, idle
        self.cache: LiveCache  # set by execute
        self.log = log.bind(app=app, cluster=cluster.name)
        if resume is not None and resume.app != app:
            raise TetherError(f"app {app}: cannot resume the operation of app {resume.app}")
        self.run_id = resume.run_id if resume is not None else secrets.token_hex(3)
        self.started = datetime.fromisoformat(resume.started_at) if resume is not None else _now()
        self.results: dict[tuple[ResourceKey, Phase, str], ResourceResult] = {}
        self.live: dict[int, dict[str, Any] | None] = {}
        self.written_rv: dict[int, str] = {}
        self.skip: set[int] = set()
        self.in_sync: set[int] = set()
        self.done_writes: set[int] = set()
        self.hook_done: dict[int, bool] = {}
        self.bodies: dict[int, dict[str, Any]] = {}
        self.recreated: set[int] = set()
        self.unvalidated: dict[int, str] = {}
        self.unvalidated_writes: set[int] = set()
        self.shared: dict[int, str] = {}
        self.hooks_run: list[Task] = []
        self.hook_outcome: dict[int, bool] = {}
        self.failures: list[str] = []
        self.limit = asyncio.Semaphore(CONCURRENCY)
        self.plan: SyncPlan | None = None
        self.held_namespaces: list[str] = []
        self.task_states: dict[int, TaskState] = {}
        self.op_phase = OperationPhase.RUNNING.value
        self.op_message = ""
        self.stage, self.step_index, self.step_phase, self.step_wave = STAGE_SYNC, -1, "", 0
        self.terminating = False
        self.suspending = False
        self.task: asyncio.Task[Any] | None = None

    # ----------------------------------------------------------------- operation state

    def state(self) -> OperationState:
        """The small saved state: each task's phase, wave, key, action, status, and where the sync is."""
        tasks = list(self.task_states.values())
        if not tasks and self.resume is not None:
            tasks = list(self.resume.tasks)
        return OperationState(
            app=self.app,
            run_id=self.run_id,
            started_at=self.started.isoformat(),
            phase=self.op_phase,
            message=self.op_message,
            revision=self.options.revision,
            revisions=list(self.options.revisions),
            stage=self.stage,
            step=self.step_index,
            sync_phase=self.step_phase,
            wave=self.step_wave,
            tasks=[TaskState(**vars(t)) for t in tasks],
        )

    def _save(self) -> None:
        if self.on_state is None or self.options.dry_run or self.suspending:
            return
        try:
            self.on_state(self.state())
        except Exception:
            self.log.exception("sync state callback failed")

    def _status(self, task: Task, status: str) -> None:
        state = self.task_states.get(id(task))
        if state is not None and state.status != status:
            state.status = status
            self._save()

    def _track(self, tasks: Iterable[Task]) -> None:
        """One TaskState per task; a resumed sync takes each task's status from the saved state."""
        saved = {t.slot: t for t in self.resume.tasks} if self.resume is not None else {}
        for task in tasks:
            state = TaskState(
                str(task.phase),
                task.wave,
                task.key.group,
                task.key.kind,
                task.key.namespace,
                task.key.name,
                str(task.action),
                hook_name=task.key.name if task.is_hook else "",
            )
            before = saved.get(state.slot)
            if before is not None:
                state.status = before.status
            self.task_states[id(task)] = state

    def terminate(self) -> None:
        self.terminating = True
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def suspend(self) -> None:
        self.suspending = True
        if self.task is not None and not self.task.done():
            self.task.cancel()

    # ----------------------------------------------------------------- reporting

    def _emit(self, event: SyncEvent) -> None:
        if self.progress is None:
            return
        try:
            self.progress(event)
        except Exception:
            self.log.exception("sync progress callback failed")

    def _notes(self, task: Task) -> str:
        """What the result adds to an applied object's message: a shared object taken over, an ignored option."""
        owner = self.shared.get(id(task))
        shared = f" (shared: taken over from app {owner})" if owner else ""
        unvalidated = (
            " (Validate=false: written with Replace; fields the schema lacks were dropped)"
            if id(task) in self.unvalidated_writes
            else ""
        )
        return shared + unvalidated + _note(task)

    def _record(
        self,
        task: Task,
        action: ResourceAction,
        status: ResultStatus,
        message: str,
        *,
        hook_phase: OperationPhase | None = None,
        health: str | None = None,
        blocked_by: Sequence[InTheWay] = (),
    ) -> ResourceResult:
        slot = (task.key, task.phase, "prune" if task.action is Action.PRUNE else "apply")
        result = self.results.get(slot)
        if result is None:
            result = ResourceResult(
                task.key.group,
                task.key.kind,
                task.key.namespace,
                task.key.name,
                action,
                status,
                message,
                task.phase,
                task.wave,
                hook_phase,
                health,
                [str(b) for b in blocked_by[:MAX_BLOCKERS]],
            )
            self.results[slot] = result
        else:
            result.action, result.status, result.message = action, status, message
            result.hook_phase = hook_phase if hook_phase is not None else result.hook_phase
            result.health = health if health is not None else result.health
            result.blocked_by = [str(b) for b in blocked_by[:MAX_BLOCKERS]] or result.blocked_by
        self.log.info(
            "sync resource",
            resource=str(task.key),
            phase=str(task.phase),
            wave=task.wave,
            action=str(action),
            status=str(status),
            message=message,
        )
        self._emit(SyncEvent("resource", task.phase, task.wave, message, resource=result))
        return result

    def _problem(self, task: Task, failure: BaseException | str) -> str:
        """``Kind namespace/name (its file): why``, naming the object once: a request's error names it
        too, so only the server's answer follows (or the failure, without the key it may start with)."""
        why = failure if isinstance(failure, str) else without_request(failure)
        return f"{self.origins.named(task.key)}: {why.removeprefix(f'{task.key}: ')}"

    def _fail(self, message: str) -> None:
        self.failures.append(message)
        self.log.info("sync failure", message=message)

    def _finish(self, phase: OperationPhase, message: str, reason: str = "") -> SyncResult:
        result = SyncResult(
            app=self.app,
            phase=phase,
            message=message,
            started_at=self.started,
            finished_at=_now(),
            dry_run=self.options.dry_run,
            revision=self.options.revision,
            resources=list(self.results.values()),
            reason=reason,
        )
        self.op_phase, self.op_message = phase.value, message
        self._save()
        self.log.info(
            "sync finished", phase=str(phase), reason=reason, message=message, resources=len(result.resources)
        )
        self._emit(SyncEvent("done", message=message, result=result))
        return result

    # ----------------------------------------------------------------- the whole sync

    async def execute(self, cache: LiveCache, desired: list[Mapping[str, Any]]) -> SyncResult:
        self.cache = cache
        self.task = asyncio.current_task()
        try:
            if self.terminating:
                raise asyncio.CancelledError
            return await self._execute(desired)
        except asyncio.CancelledError:
            if self.suspending:
                raise  # left for another process to resume from the last saved state
            if self.task is not None:
                self.task.uncancel()
            return await self._terminated()
        except ClusterUnreachable as exc:
            self._fail(str(exc))
            return self._finish(
                OperationPhase.ERROR,
                self._failure_message("sync stopped, the cluster stopped answering"),
                CLUSTER_UNREACHABLE,
            )
        except TetherError as exc:
            message = str(exc.for_app(self.app))
            phase = OperationPhase.ERROR if isinstance(exc, ClusterError) and exc.status == 0 else OperationPhase.FAILED
            return self._finish(phase, message)
        except Exception as exc:
            self.log.exception("sync crashed")
            return self._finish(OperationPhase.ERROR, f"app {self.app}: internal error during sync: {exc!r}")

    async def _terminated(self) -> SyncResult:
        """As gitops-engine's Terminate: delete the hooks still running, run no SyncFail hook, end Failed."""
        self.terminating = True
        self.op_phase = "Terminating"
        self._save()
        self.log.info("sync terminating")
        running = [t for t in self.hooks_run if id(t) not in self.hook_outcome]
        errors = []

        async def delete(task: Task) -> None:
            try:
                await self.cluster.delete(
                    task.api_version, task.key.kind, task.key.name, task.key.namespace or None, propagation="Background"
                )
                message = "terminated: deleted while running"
            except ClusterError as exc:
                message = f"terminated: cannot delete: {exc}"
                errors.append(message)
            self.hook_outcome[id(task)] = False
            self._status(task, FAILED)
            self._record(task, ResourceAction.HOOK, ResultStatus.SYNCED, message, hook_phase=OperationPhase.FAILED)

        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.gather(*(delete(t) for t in running)), TERMINATE_TIMEOUT)
        self._fail("the operation was terminated")
        phase = OperationPhase.ERROR if errors else OperationPhase.FAILED
        return self._finish(phase, self._failure_message("sync terminated"), "Terminated")

    async def _execute(self, desired: list[Mapping[str, Any]]) -> SyncResult:
        self.log.info(
            "sync started",
            objects=len(desired),
            prune=self.options.prune,
            dry_run=self.options.dry_run,
            resumed=self.resume is not None,
            run_id=self.run_id,
        )
        if self.resume is not None and not self.resume.running:
            return self._finish(OperationPhase(self.resume.phase), self.resume.message or "already finished")
        objects = _cluster_scoped_crs(
            await assign_namespaces(desired, cluster=self.cluster, namespace=self.options.namespace or None)
        )
        await self.cache.track_all()
        the_plan = plan(objects, self.cache.owned_view(self.app), self.options, app=self.app, run_id=self.run_id)
        self.plan = the_plan
        if the_plan.refusal:
            return self._finish(OperationPhase.FAILED, the_plan.refusal)
        everything = list(the_plan.tasks) + list(the_plan.sync_fail)
        # An absence the comparison just saw stands: a controller's sync follows its comparison at once.
        await self.cache.ensure([t.obj for t in everything if t.action is not Action.PRUNE], absent_for=ABSENCE_TRUSTED)
        for task in everything:
            self.live[id(task)] = self.cache.get(task.key)
        self._track(everything)
        steps = the_plan.steps()
        first = self._resume_point(steps, the_plan.sync_fail_steps())
        self._save()

        if not self._check_shared(the_plan):
            return self._finish(OperationPhase.FAILED, self._failure_message("refused"))
        await self._skip_in_sync(the_plan)
        if not await self._dry_run(the_plan, objects):
            return self._finish(
                OperationPhase.FAILED, self._failure_message("one or more objects failed to apply (dry run)")
            )
        if self.options.dry_run:
            await self._report_dry_run(the_plan)
            return self._finish(OperationPhase.SUCCEEDED, f"app {self.app}: dry run: nothing was written")

        ok = self.stage == STAGE_SYNC
        if ok:
            for index in range(first, len(steps)):
                self._at(STAGE_SYNC, index, steps[index])
                if not await self._run_step(steps[index], final=index == len(steps) - 1):
                    ok = False
                    break
        if not ok:
            await self._run_sync_fail(the_plan, first if self.stage == STAGE_SYNC_FAIL else 0)
            await self._delete_finished_hooks()
            return self._finish(OperationPhase.FAILED, self._failure_message("sync failed"))
        await self._delete_finished_hooks()
        done = sum(1 for t in the_plan.tasks if id(t) not in self.skip)
        message = f"app {self.app}: successfully synced ({done} tasks run)"
        if self.held_namespaces:
            message += (
                f"; not pruned, still holding objects that are not pruned with them: {_names(self.held_namespaces)}"
                " (see pruneSkipped; PruneNamespaceContents=true deletes them anyway)"
            )
        return self._finish(OperationPhase.SUCCEEDED, message)

    def _at(self, stage: str, index: int, step: Step) -> None:
        self.stage, self.step_index, self.step_phase, self.step_wave = stage, index, str(step.phase), step.wave
        self._save()

    def _resume_point(self, steps: list[Step], fail_steps: list[Step]) -> int:
        """Where a resumed sync goes on: the saved step; what the saved state says is done is not done again.

        Tasks of earlier steps are reported as they were. In the current step, an object already
        written is not written again and a hook already created is not created again (one whose
        instance carries this run's annotation was created just before the old process died):
        both are waited for. A finished hook keeps its outcome.
        """
        if self.resume is None:
            return 0
        self.stage = self.resume.stage
        first = max(self.resume.step, 0)
        if self.stage == STAGE_SYNC and self.resume.sync_phase:
            # By phase and wave, not index: a step that only pruned is gone from a plan made after it.
            where = (Phase(self.resume.sync_phase).order, self.resume.wave)
            first = next((i for i, s in enumerate(steps) if (s.phase.order, s.wave) >= where), len(steps))
        earlier = steps[:first] if self.stage == STAGE_SYNC else steps
        current = (steps if self.stage == STAGE_SYNC else fail_steps)[first : first + 1]
        for step in earlier:
            for task in step.tasks:
                self.skip.add(id(task))
                self._report_resumed(task)
        for step in current:
            for task in step.tasks:
                self._adopt(task)
        self.log.info("sync resumed", stage=self.stage, step=first, run_id=self.run_id)
        return first

    def _adopt(self, task: Task) -> None:
        state = self.task_states[id(task)]
        live = self.live[id(task)]
        if task.is_hook:
            if state.status in (SUCCEEDED, FAILED):
                self.hook_done[id(task)] = state.status == SUCCEEDED
            elif state.status == RUNNING or (
                live is not None and _annotations(live).get(RUN_ANNOTATION) == self.run_id
            ):
                self.done_writes.add(id(task))
        elif task.action is Action.APPLY and state.status in (RUNNING, SUCCEEDED):
            self.done_writes.add(id(task))

    def _report_resumed(self, task: Task) -> None:
        """A task of a step finished before the restart: its result, and its hook's delete policy later."""
        state = self.task_states[id(task)]
        if task.is_hook:
            ok = state.status == SUCCEEDED
            if self.live[id(task)] is not None:
                self.hooks_run.append(task)
                self.hook_outcome[id(task)] = ok
            phase = OperationPhase.SUCCEEDED if ok else OperationPhase.FAILED
            self._record(
                task, ResourceAction.HOOK, ResultStatus.SYNCED, "completed before the restart", hook_phase=phase
            )
        elif task.action is Action.PRUNE and state.status == SUCCEEDED:
            self._record(task, ResourceAction.PRUNED, ResultStatus.PRUNED, "pruned before the restart")
        elif task.action is Action.PRUNE:
            self._record(
                task, ResourceAction.PRUNE_SKIPPED, ResultStatus.PRUNE_SKIPPED, "not pruned before the restart"
            )
        elif task.action is Action.APPLY:
            self._record(task, ResourceAction.CONFIGURED, ResultStatus.SYNCED, "applied before the restart")

    def _failure_message(self, headline: str) -> str:
        reasons = "; ".join(self.failures) or "see the resources"
        applied = [
            r.key
            for r in self.results.values()
            if r.status is ResultStatus.SYNCED and r.action in (ResourceAction.CREATED, ResourceAction.CONFIGURED)
        ]
        pruned = [r.key for r in self.results.values() if r.status is ResultStatus.PRUNED]
        message = f"app {self.app}: {headline}: {reasons}"
        if applied:
            message += f". Already applied, left in place: {_names(applied)}"
        if pruned:
            message += f". Already pruned: {_names(pruned)}"
        not_run = self._not_run()
        if not_run:
            message += f". Not applied (the sync stopped first): {_names(not_run)}"
        return message

    def _not_run(self) -> list[ResourceKey]:
        """Objects of the plan the sync never got to (no result at all), in plan order; not the ones its
        dry run found in sync, which it would not have written anyway."""
        if self.plan is None or self.options.dry_run:
            return []
        done = {(key, phase) for key, phase, _ in self.results}
        return [
            t.key
            for t in self.plan.tasks
            if id(t) not in self.skip
            and id(t) not in self.in_sync
            and t.action is not Action.NAMESPACE
            and (t.key, t.phase) not in done
        ]

    # ----------------------------------------------------------------- checks before writing

    def _check_shared(self, the_plan: SyncPlan) -> bool:
        ok = True
        for task in the_plan.tasks:
            if task.action is not Action.APPLY:
                continue
            owner = owner_app(self.live[id(task)] or {})
            if owner is None or owner == self.app:
                continue
            if task.options.fail_on_shared_resource:
                message = f"{task.key} is already managed by app {owner} (FailOnSharedResource)"
                self._record(task, ResourceAction.FAILED, ResultStatus.SYNC_FAILED, message)
                self._fail(message)
                ok = False
            else:
                self.shared[id(task)] = owner
                self.log.warning("taking over an object of another app", resource=str(task.key), owner=owner)
        return ok

    async def _diff_status(self, tasks: list[Task]) -> dict[ResourceKey, str]:
        """tether.diff's verdict (Synced, OutOfSync, Missing) for each task's object."""
        if not tasks:
            return {}
        report = await diff_app(
            self.app,
            [t.obj for t in tasks],
            cluster=self.cluster,
            cache=self.cache,
            ignore_differences=self.options.ignore_differences,
            namespace=self.options.namespace or None,
            dry_runs=self.dry_runs,
            csa_manager=self.options.csa_manager,
            origins=self.origins,
        )
        return {r.key: r.status for r in report.resources}

    async def _skip_in_sync(self, the_plan: SyncPlan) -> None:
        """ApplyOutOfSyncOnly: objects tether.diff finds Synced are not applied (nor waited for)."""
        candidates = [
            t
            for t in the_plan.tasks
            if t.action is Action.APPLY
            and t.options.apply_out_of_sync_only
            and id(t) not in self.skip
            and id(t) not in self.done_writes
        ]
        status = await self._diff_status(candidates)
        synced = {key for key, verdict in status.items() if verdict == SYNCED}
        for task in candidates:
            if task.key in synced and self.live[id(task)] is not None:
                self.skip.add(id(task))
                self._status(task, SKIPPED)
                self._record(
                    task, ResourceAction.UNCHANGED, ResultStatus.SYNCED, "in sync: not applied (ApplyOutOfSyncOnly)"
                )

    async def _dry_run(self, the_plan: SyncPlan, objects: list[dict[str, Any]]) -> bool:
        """Server-side dry run of every object, so a bad one fails the sync before anything is written."""
        crds = crds_in(objects)
        created_namespaces = {
            t.key.name
            for t in the_plan.tasks
            if t.key.kind == "Namespace"
            and t.key.group == ""
            and t.action in (Action.APPLY, Action.NAMESPACE)
            and self.live[id(t)] is None
        }
        tasks = [
            t
            for t in list(the_plan.tasks) + list(the_plan.sync_fail)
            if t.action in (Action.APPLY, Action.HOOK)
            and id(t) not in self.skip
            and id(t) not in self.done_writes
            and id(t) not in self.hook_done
            and (self.stage == STAGE_SYNC or t.phase is Phase.SYNC_FAIL)
        ]

        async def check(task: Task) -> bool:
            if task.key.namespace and task.key.namespace in created_namespaces:
                self.unvalidated[id(task)] = f"namespace {task.key.namespace} is created by this sync"
                return True
            try:
                await self.cluster.resource(task.api_version, task.key.kind)
            except UnknownKind as exc:
                if f"{task.key.group}/{task.key.kind}" in crds:
                    self.unvalidated[id(task)] = "its CustomResourceDefinition is applied by this sync"
                    return True
                if task.options.skip_dry_run_on_missing_resource:
                    self.unvalidated[id(task)] = "its kind is not served yet (SkipDryRunOnMissingResource)"
                    return True
                message = self._problem(task, exc)
                self._record(task, ResourceAction.FAILED, ResultStatus.SYNC_FAILED, message)
                self._fail(message)
                return False
            try:
                async with self.limit:
                    predicted = await self._checked(task)
            except ClusterUnreachable:
                raise
            except TetherError as exc:
                message = self._problem(task, exc)
                self._record(task, ResourceAction.FAILED, ResultStatus.SYNC_FAILED, message)
                self._fail(message)
                return False
            live = self.live[id(task)]
            if (
                task.action is Action.APPLY
                and live is not None
                and predicted is not live  # Force: the dry run met an immutable change, the real run recreates
                and not _terminating(live)
                and _no_op(predicted, live)
                and self._migration(task, live) is None
            ):
                self.in_sync.add(id(task))
                self._status(task, SKIPPED)
            return True

        return await _all_ok(check(t) for t in tasks)

    async def _report_dry_run(self, the_plan: SyncPlan) -> None:
        """What a real sync would do; created/configured/unchanged is tether.diff's verdict."""
        status = await self._diff_status(
            [
                t
                for t in the_plan.tasks
                if t.action is Action.APPLY
                and id(t) not in self.skip
                and id(t) not in self.unvalidated
                and self.live[id(t)] is not None
            ]
        )
        for step in the_plan.steps():
            self._emit(SyncEvent("step", step.phase, step.wave, f"{step.phase} wave {step.wave} (dry run)"))
            for task in step.tasks:
                if id(task) in self.skip:
                    continue
                live = self.live[id(task)]
                reason = self.unvalidated.get(id(task))
                note = f" (dry run; not validated: {reason})" if reason else " (dry run)"
                if task.action is Action.HOOK:
                    self._record(task, ResourceAction.HOOK, ResultStatus.SYNCED, "would run" + note)
                elif task.action is Action.NAMESPACE:
                    action = ResourceAction.CREATED if live is None else ResourceAction.UNCHANGED
                    self._record(
                        task, action, ResultStatus.SYNCED, ("would be created" if live is None else "exists") + note
                    )
                elif task.action is Action.PRUNE:
                    if self._prune_verdict(task, live, dry_run=True) and await self._namespace_clear(
                        task, dry_run=True
                    ):
                        self._record(task, ResourceAction.PRUNED, ResultStatus.PRUNED, "pruned (dry run)")
                elif live is None:
                    self._record(task, ResourceAction.CREATED, ResultStatus.SYNCED, "would be created" + note)
                else:
                    same = status.get(task.key) == SYNCED
                    action = ResourceAction.UNCHANGED if same else ResourceAction.CONFIGURED
                    verdict = "unchanged" if same else "would be configured"
                    self._record(task, action, ResultStatus.SYNCED, verdict + self._notes(task) + note)

    # ----------------------------------------------------------------- writing

    def _mode(self, task: Task) -> str | None:
        """How ``task`` writes its object, as the DryRuns store names it (None: hooks, never stored)."""
        if task.action is not Action.APPLY:
            return None
        opts = task.options
        mode = "replace" if opts.replace else ("apply-force" if opts.force_conflicts else "apply")
        if opts.force:  # a refusal for an immutable field is not one with Force=true (it recreates)
            mode += ":recreate"
        return mode if opts.validate else f"{mode}:no-validate"

    async def _body(self, task: Task) -> dict[str, Any]:
        """What is sent for ``task``: the object with this app's tracking id (and ignored fields kept as live)."""
        body = self.bodies.get(id(task))
        if body is not None:
            return body
        body = mark(task.obj, self.app)
        live = self.live[id(task)]
        if task.is_hook:
            body["metadata"] = dict(body["metadata"])
            body["metadata"]["annotations"] = {
                **(body["metadata"].get("annotations") or {}),
                RUN_ANNOTATION: self.run_id,
            }
        elif task.options.respect_ignore_differences and live is not None and self.options.ignore_differences:
            body = await respect_ignored(body, live, self.options.ignore_differences)
        self.bodies[id(task)] = body
        return body

    async def _checked(self, task: Task) -> dict[str, Any]:
        """The pre-check dry run of ``task``: a still-valid outcome from the shared store, or one request.

        An outcome is valid while the object sent and the live resourceVersion are the same
        (tether.diff stores its comparisons' outcomes in the same store under ``apply-force``).
        A stored refusal is raised again.
        """
        mode, body, live = self._mode(task), await self._body(task), self.live[id(task)]
        if mode is not None:
            stored = self.dry_runs.lookup(task.key, mode, body, live)
            if isinstance(stored, ClusterError):
                raise stored
            if stored is not None:
                return stored
        try:
            predicted = await self._write(task, dry_run=True)
        except ClusterError as exc:
            if mode is not None and exc.status in (400, 422) and not isinstance(exc, UnknownKind):
                self.dry_runs.put(task.key, mode, body, _rv(live) or None, exc)
            raise
        if mode is not None and predicted is not live and id(task) not in self.unvalidated_writes:
            self.dry_runs.put(task.key, mode, body, _rv(predicted) or _rv(live) or None, predicted)
        return predicted

    async def _write(self, task: Task, *, dry_run: bool) -> dict[str, Any]:
        """Apply, replace or create one object (hooks are created); raises ClusterError."""
        opts = task.options
        obj = await self._body(task)
        live = self.live[id(task)]
        if task.action is Action.HOOK:
            if live is None or DeletePolicy.BEFORE_HOOK_CREATION in delete_policies(task.obj):
                if dry_run and live is not None:
                    # The real run deletes the old hook first; check the new one under a throwaway name.
                    obj = copy.deepcopy(obj)
                    obj["metadata"]["generateName"] = obj["metadata"].pop("name") + "-"
                return await self.cluster.create(obj, dry_run=dry_run)
            return await self.cluster.apply(obj, dry_run=dry_run, force=opts.force_conflicts, validate=opts.validate)
        try:
            if opts.replace:
                return await self.cluster.replace(obj, dry_run=dry_run, validate=opts.validate)
            manager = None if dry_run else self._migration(task, live)
            if manager is not None:
                await self._migrate(task, manager)
            return await self.cluster.apply(obj, dry_run=dry_run, force=opts.force_conflicts, validate=opts.validate)
        except ClusterError as exc:
            if not opts.validate and _undeclared_field(exc):
                # Server-side apply refuses fields the schema lacks even with fieldValidation=Ignore;
                # Validate=false means write the object anyway, so PUT it and let the server drop them.
                self.log.info("fields not in the schema; writing with Replace (Validate=false)", resource=str(task.key))
                self.unvalidated_writes.add(id(task))
                return await self.cluster.replace(obj, dry_run=dry_run, validate=False)
            if not (opts.force and _immutable(exc) and live is not None):
                raise
            if dry_run:
                return live  # Force: the real run deletes and recreates it
            self.log.info("immutable field changed; deleting and recreating (Force)", resource=str(task.key))
            await self.cluster.delete(
                task.api_version, task.key.kind, task.key.name, task.key.namespace or None, propagation="Background"
            )
            await self._wait_gone(task)
            self.recreated.add(id(task))
            return await self.cluster.apply(obj, force=opts.force_conflicts, validate=opts.validate)

    def _migration(self, task: Task, live: Mapping[str, Any] | None) -> str | None:
        """The manager whose client-side apply fields applying ``task`` first moves to Tether, if any
        (the comparison's rule, ``tether.diff.migration.manager_for``; Replace writes the whole object)."""
        manager = manager_for(task.obj, self.options.csa_manager)
        return manager if not task.options.replace and pending(live, manager) else None

    async def _migrate(self, task: Task, manager: str) -> None:
        """Argo CD's client-side apply migration: ``manager``'s fields become Tether's, read fresh and
        patched with the resourceVersion as a guard (a controller's write in between: read and try again)."""
        for attempt in range(MIGRATION_ATTEMPTS):
            live = await self.cluster.get(task.api_version, task.key.kind, task.key.name, task.key.namespace or None)
            patch = migration_patch(live, manager) if live is not None else None
            if patch is None:
                return
            try:
                await self.cluster.patch(
                    task.api_version, task.key.kind, task.key.name, task.key.namespace or None, patch, patch_type="json"
                )
            except ClusterError as exc:
                if exc.conflict and attempt + 1 < MIGRATION_ATTEMPTS:
                    continue
                raise ClusterError(
                    f"client-side apply migration of the fields of {manager!r}: {without_request(exc)}",
                    exc.status,
                    exc.reason,
                ) from None
            self.log.info("client-side apply fields moved to tether", resource=str(task.key), manager=manager)
            return

    def _wrote(self, task: Task, written: dict[str, Any]) -> None:
        """After a real write: the stored dry runs of the object are stale; the write's answer is the new one.

        Applying (or replacing with) the same object again to what the server now holds
        changes nothing, so the written object is the valid outcome for the written version.
        """
        self.dry_runs.forget(task.key)
        mode = self._mode(task)
        if mode is not None and id(task) not in self.unvalidated_writes and id(task) not in self.recreated:
            self.dry_runs.put(task.key, mode, self.bodies[id(task)], _rv(written) or None, written)

    async def _execute_task(self, task: Task) -> bool:
        live = self.live[id(task)]
        if id(task) in self.hook_done:
            ok = self.hook_done[id(task)]
            self.hook_outcome[id(task)] = ok
            if live is not None:
                self.hooks_run.append(task)
            phase = OperationPhase.SUCCEEDED if ok else OperationPhase.FAILED
            self._record(
                task, ResourceAction.HOOK, ResultStatus.SYNCED, "completed before the restart", hook_phase=phase
            )
            if not ok:
                self._fail(f"hook {task.key} failed before the restart")
            return ok
        if id(task) in self.done_writes:
            if task.is_hook:
                self.hooks_run.append(task)
                message = "hook created before the restart"
                self._record(task, ResourceAction.HOOK, ResultStatus.SYNCED, message, hook_phase=OperationPhase.RUNNING)
            else:
                self._record(task, ResourceAction.CONFIGURED, ResultStatus.SYNCED, "applied before the restart")
            return True
        if id(task) in self.in_sync:
            self._record(
                task, ResourceAction.UNCHANGED, ResultStatus.SYNCED, "in sync: not applied" + self._notes(task)
            )
            return True
        try:
            async with self.limit:
                if task.action is Action.NAMESPACE:
                    if live is not None and _carries_metadata(live, task.obj):
                        self._record(task, ResourceAction.UNCHANGED, ResultStatus.SYNCED, "namespace exists")
                        self._status(task, SKIPPED)
                        return True
                    if live is not None:  # managedNamespaceMetadata the live namespace lacks: applied, once
                        written = await self.cluster.apply(task.obj, force=True)
                        self.written_rv[id(task)] = _rv(written)
                        self._status(task, SUCCEEDED)
                        message = "namespace metadata applied (managedNamespaceMetadata)"
                        self._record(task, ResourceAction.CONFIGURED, ResultStatus.SYNCED, message)
                        return True
                    written = await self.cluster.create(task.obj)
                    self.written_rv[id(task)] = _rv(written)
                    self._status(task, SUCCEEDED)
                    self._record(
                        task, ResourceAction.CREATED, ResultStatus.SYNCED, "namespace created (CreateNamespace)"
                    )
                    return True
                written = await self._write(task, dry_run=False)
        except (TetherError, WaitFailed) as exc:
            message = self._problem(task, exc)
            self._status(task, FAILED)
            if task.action is Action.HOOK:
                self._record(
                    task, ResourceAction.HOOK, ResultStatus.SYNC_FAILED, message, hook_phase=OperationPhase.FAILED
                )
            else:
                self._record(task, ResourceAction.FAILED, ResultStatus.SYNC_FAILED, message)
            if isinstance(exc, ClusterUnreachable):
                raise
            self._fail(message)
            return False
        self.written_rv[id(task)] = _rv(written)
        self._wrote(task, written)
        self._status(task, RUNNING)
        if task.action is Action.HOOK:
            self.hooks_run.append(task)
            self._record(
                task, ResourceAction.HOOK, ResultStatus.SYNCED, "hook created", hook_phase=OperationPhase.RUNNING
            )
        elif live is None:
            self._record(task, ResourceAction.CREATED, ResultStatus.SYNCED, "created" + self._notes(task))
        elif id(task) in self.recreated:
            message = "deleted and recreated (Force: immutable field changed)"
            self._record(task, ResourceAction.CONFIGURED, ResultStatus.SYNCED, message)
        elif _unchanged(written, live):
            self._record(task, ResourceAction.UNCHANGED, ResultStatus.SYNCED, "unchanged" + self._notes(task))
        else:
            self._record(task, ResourceAction.CONFIGURED, ResultStatus.SYNCED, "configured" + self._notes(task))
        return True

    # ----------------------------------------------------------------- prune

    def _prune_verdict(self, task: Task, live: Mapping[str, Any] | None, *, dry_run: bool) -> bool:
        """Record why an object is not deleted and return False, or return True: delete it."""
        suffix = " (dry run)" if dry_run else ""
        if live is None:
            self._record(task, ResourceAction.PRUNED, ResultStatus.PRUNED, "already deleted" + suffix)
            return False
        if owner_app(live) != self.app:
            self._record(
                task,
                ResourceAction.PRUNE_SKIPPED,
                ResultStatus.PRUNE_SKIPPED,
                "no longer carries this app's tracking id; left alone" + suffix,
            )
            return False
        if not self.options.prune:
            self._record(
                task, ResourceAction.PRUNE_SKIPPED, ResultStatus.PRUNE_SKIPPED, "ignored (requires pruning)" + suffix
            )
            return False
        if not task.options.prune_allowed:
            self._record(
                task, ResourceAction.PRUNE_SKIPPED, ResultStatus.PRUNE_SKIPPED, "ignored (Prune=false)" + suffix
            )
            return False
        return True

    def _doomed(self) -> set[ResourceKey]:
        """What this sync prunes (so a Namespace holding only these may go)."""
        if self.plan is None or not self.options.prune:
            return set()
        return {t.key for t in self.plan.tasks if t.action is Action.PRUNE and t.options.prune_allowed}

    async def _namespace_clear(self, task: Task, *, dry_run: bool) -> bool:
        """True unless ``task`` prunes a Namespace that holds objects this sync does not prune.

        Deleting a Namespace deletes everything in it, so it is held back (and reported
        ``pruneSkipped`` with the objects in the way) unless ``PruneNamespaceContents=true``.
        """
        if not _is_namespace(task.key) or task.options.prune_namespace_contents:
            return True
        objects, unlisted = await namespace_contents(self.cluster, task.key.name)
        blockers = unlisted + in_the_way(objects, app=self.app, doomed=self._doomed())
        if not blockers:
            return True
        counts: dict[str, int] = {}
        for blocker in blockers:
            group = "another app" if blocker.why.startswith("app ") else blocker.why
            counts[group] = counts.get(group, 0) + 1
        summary = ", ".join(f"{n} {why}" for why, n in sorted(counts.items()))
        message = (
            f"not deleted: deleting Namespace {task.key.name} would delete {len(blockers)} object(s) in it"
            f" that this sync does not prune ({summary}): {_names(blockers, 3)}."
            " Sync option PruneNamespaceContents=true deletes it anyway" + (" (dry run)" if dry_run else "")
        )
        self._record(task, ResourceAction.PRUNE_SKIPPED, ResultStatus.PRUNE_SKIPPED, message, blocked_by=blockers)
        self.log.warning(
            "namespace prune skipped: not empty", namespace=task.key.name, objects=len(blockers), summary=summary
        )
        self.held_namespaces.append(task.key.name)
        return False

    async def _prune(self, task: Task) -> bool:
        live = self.cache.get(task.key)
        if not self._prune_verdict(task, live, dry_run=False) or not await self._namespace_clear(task, dry_run=False):
            self._status(task, SKIPPED)
            return True
        if not _terminating(live):
            try:
                async with self.limit:
                    await self.cluster.delete(
                        task.api_version,
                        task.key.kind,
                        task.key.name,
                        task.key.namespace or None,
                        propagation=self.options.propagation,
                    )
            except ClusterError as exc:
                message = self._problem(task, exc)
                self._status(task, FAILED)
                self._record(task, ResourceAction.FAILED, ResultStatus.SYNC_FAILED, message)
                if isinstance(exc, ClusterUnreachable):
                    raise
                self._fail(message)
                return False
        self._status(task, SUCCEEDED)
        self._record(task, ResourceAction.PRUNED, ResultStatus.PRUNED, "pruned")
        try:
            await self._wait_gone(task)
        except WaitFailed as exc:
            self._fail(str(exc))
            return False
        return True

    # ----------------------------------------------------------------- steps

    async def _run_step(self, step: Step, *, final: bool) -> bool:
        tasks = [t for t in step.tasks if id(t) not in self.skip]
        if not tasks:
            return True
        self._emit(SyncEvent("step", step.phase, step.wave, f"{step.phase} wave {step.wave}: {len(tasks)} task(s)"))
        self.log.info("sync step", phase=str(step.phase), wave=step.wave, tasks=len(tasks))
        if not await self._recreate_hooks([t for t in tasks if t.action is Action.HOOK and self._to_create(t)]):
            return False
        writes = [t for t in tasks if t.action is not Action.PRUNE]
        for group in _kind_groups(writes):
            if not await _all_ok(self._execute_task(t) for t in group):
                return False
            if not await self._crds_ready([t for t in group if t.key.kind == "CustomResourceDefinition"]):
                return False
        prunes = [t for t in tasks if t.action is Action.PRUNE]
        if not await _all_ok(self._prune(t) for t in prunes):
            return False
        if final and not step.has_hooks:
            return True  # as Argo CD: the last wave of plain resources is not waited for
        return await self._wait_step(
            [t for t in writes if t.action is not Action.NAMESPACE and id(t) not in self.hook_done]
        )

    def _to_create(self, task: Task) -> bool:
        """Whether a hook is still to be created (not by this run before a restart)."""
        return id(task) not in self.done_writes and id(task) not in self.hook_done

    async def _recreate_hooks(self, hooks: list[Task]) -> bool:
        """BeforeHookCreation: delete the previous run of a named hook before creating it again.

        The live state is read again here: a hook run in two phases was created by the first.
        """
        for task in hooks:
            self.live[id(task)] = self.cache.get(task.key)
        doomed = [
            t
            for t in hooks
            if self.live[id(t)] is not None and DeletePolicy.BEFORE_HOOK_CREATION in delete_policies(t.obj)
        ]

        async def delete(task: Task) -> bool:
            try:
                await self.cluster.delete(
                    task.api_version, task.key.kind, task.key.name, task.key.namespace or None, propagation="Background"
                )
                await self._wait_gone(task)
            except ClusterUnreachable:
                raise
            except (ClusterError, WaitFailed) as exc:
                message = f"hook {self._problem(task, exc)} (deleting the previous run, BeforeHookCreation)"
                self._record(
                    task, ResourceAction.HOOK, ResultStatus.SYNC_FAILED, message, hook_phase=OperationPhase.FAILED
                )
                self._fail(message)
                return False
            return True

        return await _all_ok(delete(t) for t in doomed)

    async def _crds_ready(self, crds: list[Task]) -> bool:
        """Wait until each CRD is Established and its kind is in discovery, so its resources can follow."""
        timeout = min(self.options.timeout, CRD_TIMEOUT)
        for task in crds:
            spec = task.obj.get("spec") or {}
            kind = (spec.get("names") or {}).get("kind", "")
            try:
                await until_established(self.cache, task.key, timeout=timeout)
                for version in spec.get("versions") or []:
                    if version.get("served", True):
                        api_version = f"{spec.get('group')}/{version.get('name')}"
                        self.cluster.discovery.invalidate(api_version)
                        await until_served(self.cluster, api_version, kind, timeout=timeout)
            except WaitFailed as exc:
                self._record(task, ResourceAction.CONFIGURED, ResultStatus.SYNC_FAILED, str(exc))
                self._fail(str(exc))
                return False
        return True

    async def _wait_gone(self, task: Task) -> None:
        await until_gone(self.cache, task.key, task.obj, timeout=self.options.timeout)

    async def _wait_step(self, tasks: list[Task]) -> bool:
        if not tasks:
            return True
        first = tasks[0]
        what = "completion of hook" if first.is_hook else "healthy state of"
        more = f" and {len(tasks) - 1} more" if len(tasks) > 1 else ""
        self._emit(SyncEvent("waiting", first.phase, first.wave, f"waiting for {what} {first.key}{more}"))
        async with self.idle():
            return await _all_ok(self._wait_task(t) for t in tasks)

    async def _wait_task(self, task: Task) -> bool:
        if not self.cache.tracks(task.key):
            await self.cache.ensure([task.obj])
        try:
            outcome = await until_ready(
                self.cache,
                task.key,
                task.api_version,
                self.written_rv.get(id(task), ""),
                hook=task.is_hook,
                judge=lambda obj: assess_async(obj, lua=self.lua),
                timeout=self.options.timeout,
            )
        except ClusterUnreachable:
            note = "not judged: the cluster stopped answering"
            if task.is_hook:
                self._record(task, ResourceAction.HOOK, ResultStatus.SYNCED, note, hook_phase=OperationPhase.RUNNING)
            else:
                self._settle(task, ok=False, message=note, health=None)
            raise
        message = outcome.message if outcome.ok else self._problem(task, outcome.message)
        self._settle(task, ok=outcome.ok, message=message, health=str(outcome.health) if outcome.health else None)
        if not outcome.ok:
            self._fail(message)
        return outcome.ok

    def _settle(self, task: Task, *, ok: bool, message: str, health: str | None) -> None:
        if id(task) not in self.in_sync:
            self._status(task, SUCCEEDED if ok else FAILED)
        if task.is_hook:
            self.hook_outcome[id(task)] = ok
            phase = OperationPhase.SUCCEEDED if ok else OperationPhase.FAILED
            self._record(task, ResourceAction.HOOK, ResultStatus.SYNCED, message, hook_phase=phase, health=health)
            return
        current = self.results.get((task.key, task.phase, "apply"))
        action = current.action if current is not None else ResourceAction.UNCHANGED
        self._record(
            task, action, ResultStatus.SYNCED, f"{current.message}; {message}" if current else message, health=health
        )

    # ----------------------------------------------------------------- failure and hook clean-up

    async def _run_sync_fail(self, the_plan: SyncPlan, first: int = 0) -> None:
        """SyncFail hooks run, wave by wave, once the sync has failed; their failure is added to the message."""
        steps = the_plan.sync_fail_steps()
        for index in range(first, len(steps)):
            step = steps[index]
            self._at(STAGE_SYNC_FAIL, index, step)
            self._emit(
                SyncEvent("step", step.phase, step.wave, f"{step.phase} wave {step.wave}: {len(step.tasks)} hook(s)")
            )
            if not await self._recreate_hooks([t for t in step.tasks if self._to_create(t)]):
                return
            if not await _all_ok(self._execute_task(t) for t in step.tasks):
                return
            if not await self._wait_step([t for t in step.tasks if id(t) not in self.hook_done]):
                return

    async def _delete_finished_hooks(self) -> None:
        """HookSucceeded / HookFailed: delete each hook whose own outcome matches its policy."""
        for task in self.hooks_run:
            outcome = self.hook_outcome.get(id(task))
            policies = delete_policies(task.obj)
            wanted = (outcome is True and DeletePolicy.HOOK_SUCCEEDED in policies) or (
                outcome is False and DeletePolicy.HOOK_FAILED in policies
            )
            if not wanted:
                continue
            policy = DeletePolicy.HOOK_SUCCEEDED if outcome else DeletePolicy.HOOK_FAILED
            try:
                await self.cluster.delete(
                    task.api_version, task.key.kind, task.key.name, task.key.namespace or None, propagation="Background"
                )
            except ClusterUnreachable:
                raise
            except ClusterError as exc:
                self.log.warning("cannot delete hook", resource=str(task.key), error=str(exc))
                continue
            result = self.results.get((task.key, task.phase, "apply"))
            if result is not None:
                self._record(task, result.action, result.status, f"{result.message}; deleted ({policy.value})")


def _cluster_scoped_crs(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Resources of a cluster-scoped CRD applied in this sync lose the namespace given to unknown kinds."""
    crds = crds_in(objects)
    for obj in objects:
        crd = crds.get(f"{ResourceKey.of(obj).group}/{obj.get('kind')}")
        if crd is not None and (crd.get("spec") or {}).get("scope") == "Cluster":
            (obj.get("metadata") or {}).pop("namespace", None)
    return objects


def _kind_groups(tasks: list[Task]) -> list[list[Task]]:
    """Consecutive tasks of the same kind run together; a new kind waits for the previous group."""
    groups: list[list[Task]] = []
    for task in tasks:
        if groups and groups[-1][0].key.kind == task.key.kind:
            groups[-1].append(task)
        else:
            groups.append([task])
    return groups


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def _own_fields(obj: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Tether's entries in managedFields, without their timestamps."""
    entries = (obj.get("metadata") or {}).get("managedFields") or []
    return sorted(
        (
            (str(e.get("operation")), str(e.get("apiVersion")), str(e.get("subresource", ""))),
            repr(e.get("fieldsV1")),
        )
        for e in entries
        if isinstance(e, Mapping) and e.get("manager") == FIELD_MANAGER
    )


def _no_op(predicted: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """Whether writing the object would change nothing on the server, judged from its dry run.

    The dry run met this very live version; the object comes out the same (tracking id
    included, which ``normalise`` drops) and Tether's field ownership is unchanged, so the
    server would store nothing new: skipping the write changes nothing for anyone.
    """
    if _rv(predicted) and _rv(predicted) != _rv(live):
        return False
    if _annotations(predicted).get(TRACKING_ANNOTATION) != _annotations(live).get(TRACKING_ANNOTATION):
        return False
    return normalise(predicted) == normalise(live) and _own_fields(predicted) == _own_fields(live)
