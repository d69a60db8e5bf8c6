"""Sync: make a cluster match the desired objects of one app, with Argo CD's phases, waves and hooks.

Public surface::

    plan(desired, live_owned, options, *, app="", run_id="") -> SyncPlan      (pure)
        SyncPlan.tasks / .sync_fail: tuple[Task]; .steps() -> [Step(phase, wave, tasks)];
        .skipped (hook: Skip); .refusal (set: write nothing, fail with it)
        Task(action: apply|hook|prune|namespace, phase, wave, key, api_version, obj, options)
    await sync_app(app, desired, *, cluster, cache=None, options, progress=None, lua=None,
                   dry_runs=None, on_state=None, resume=None) -> SyncResult
        never raises for what happens on the cluster; ``progress`` gets SyncEvents;
        ``on_state`` gets the OperationState after each change; ``resume`` continues one;
        cancelling the task ends it Failed ("terminated")
    SyncOperation(same arguments).run() / .state / .terminate()    the sync as an operation
    OperationState(app, run_id, started_at, phase, stage, step, sync_phase, wave, tasks=[TaskState])
        .to_dict() / .from_dict(d): small JSON, no manifests, no secrets
    SyncOptions(namespace=, prune=, dry_run=, allow_empty=, resources=(Selector, ...), ...)
        SyncOptions.from_strings(["CreateNamespace=true", ...], prune=True, ...)
        options.for_object(obj): the object's ``sync-options`` annotation applied on top
    Selector.parse("apps:Deployment:ns/web")   selective sync (hooks are then skipped)
    SyncResult(app, phase: Succeeded|Failed|Error, message, started_at, finished_at,
               dry_run, revision, resources: [ResourceResult], reason: ""|ClusterUnreachable)
               .to_dict(), .find(kind, name)
    ResourceResult(group, kind, namespace, name, action, status, message, phase, wave,
                   hook_phase, health, blocked_by)     action "failed": tried, not done
    contents.namespace_contents(cluster, ns), contents.in_the_way(objects, app=, doomed=)
        what a Namespace prune would take along (held back unless PruneNamespaceContents=true)
    hooks: Phase, DeletePolicy, hook_phases(obj), is_hook(obj), is_skipped(obj),
           delete_policies(obj), wave(obj)        (Helm's hook annotations mapped as Argo CD)

Ordering, waiting and safety rules are in docs/sync.md.
"""

from tether.hooks import DeletePolicy, Phase, delete_policies, hook_phases, is_hook, is_skipped, wave
from tether.sync.operation import OperationState, TaskState
from tether.sync.options import Selector, SyncOptions
from tether.sync.plan import KIND_ORDER, Action, Step, SyncPlan, Task, kind_rank, plan
from tether.sync.result import (
    OperationPhase,
    ResourceAction,
    ResourceResult,
    ResultStatus,
    SyncEvent,
    SyncResult,
)
from tether.sync.run import Progress, SyncOperation, sync_app

__all__ = [
    "KIND_ORDER",
    "Action",
    "DeletePolicy",
    "OperationPhase",
    "OperationState",
    "Phase",
    "Progress",
    "ResourceAction",
    "ResourceResult",
    "ResultStatus",
    "Selector",
    "Step",
    "SyncEvent",
    "SyncOperation",
    "SyncOptions",
    "SyncPlan",
    "SyncResult",
    "Task",
    "TaskState",
    "delete_policies",
    "hook_phases",
    "is_hook",
    "is_skipped",
    "kind_rank",
    "plan",
    "sync_app",
    "wave",
]
