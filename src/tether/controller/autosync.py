"""Whether to start an automated sync now: Argo CD's rules, in Argo CD's order, as one pure function.

The reconcile loop gathers plain facts (the comparison, the last operation, the sync window's
verdict, the time) and ``decide`` says what to do, so every rule is testable without a cluster
and behaves as in Argo CD's ``autoSync``:

1. automated sync must be on (``automated`` present, ``enabled`` not false);
2. never while an operation is running, nor while the app is being deleted;
3. only when the app is OutOfSync;
4. not when pruning is all there is to do and ``prune`` is off;
5. the last sync went to these revisions with this compared spec (sources, destination,
   ignoreDifferences): after a failure, never again (a ``SyncError`` says so; the next commit
   or spec change syncs); after a success, only self-heal does anything — a partial sync of
   the resources that are not Synced, backed off from the last operation's ``finishedAt``
   by ``backoff.self_heal_delay`` of the attempts so far at this revision;
6. with ``prune`` on and ``allowEmpty`` off, refuse a sync that would prune every resource;
7. a sync window that denies automated syncs stops it last, so the errors above still show
   while the window is closed.

Hook resources never count: they are not part of the app's sync status, self-heal never runs
them (a partial sync runs no hooks), and a set of hooks alone does not keep an app "not empty".
"""

from __future__ import annotations

from dataclasses import dataclass

from tether.controller.backoff import self_heal_delay
from tether.resource import ResourceKey

SYNCED = "Synced"
OUT_OF_SYNC = "OutOfSync"
SUCCEEDED = "Succeeded"
# An operation in one of these phases is still going on, whatever ``operation_running`` says.
ACTIVE_PHASES = frozenset({"Running", "Terminating"})


@dataclass(frozen=True)
class ResourceState:
    """One row of the comparison: a managed resource and where it stands."""

    key: ResourceKey
    status: str  # "Synced" | "OutOfSync" | "Unknown"
    requires_pruning: bool
    hook: bool = False


@dataclass(frozen=True)
class LastOperation:
    """The app's last sync operation, as ``status.operationState`` records it."""

    revisions: tuple[str, ...]
    compared_digest: str  # digest of the sources + destination + ignoreDifferences it synced
    phase: str  # Succeeded | Failed | Error
    message: str
    finished_at: float | None  # epoch seconds
    automated: bool
    self_heal_attempts: int  # self-heal syncs so far at this revision


@dataclass(frozen=True)
class AutoSyncInputs:
    """Everything ``decide`` looks at; nothing else is read."""

    automated: bool
    enabled: bool
    prune: bool
    self_heal: bool
    allow_empty: bool
    sync_status: str
    operation_running: bool
    deleting: bool
    revisions: tuple[str, ...]
    compared_digest: str
    resources: tuple[ResourceState, ...]
    last: LastOperation | None
    window_allows: bool
    window_reason: str
    now: float


@dataclass(frozen=True)
class AutoSyncDecision:
    """What to do: sync or not, why, and for self-heal which resources and when to look again."""

    sync: bool
    reason: str  # why (for logs/events), always set
    partial: tuple[ResourceKey, ...] | None = None  # self-heal: only these
    self_heal_attempt: int = 0  # the attempt number this sync is (0 for a normal sync)
    requeue_after: float | None = None  # self-heal backoff still running: look again then
    error: str | None = None  # a SyncError condition message to show, or None


def decide(inputs: AutoSyncInputs) -> AutoSyncDecision:
    """Whether an automated sync starts now (see the module docstring for the rules and their order)."""
    if not (inputs.automated and inputs.enabled):
        return _skip("automated sync is off")
    last = inputs.last
    if inputs.operation_running or (last is not None and last.phase in ACTIVE_PHASES):
        return _skip("another operation is in progress")
    if inputs.deleting:
        return _skip("deletion in progress")
    if inputs.sync_status != OUT_OF_SYNC:
        return _skip(f"application status is {inputs.sync_status or 'unknown'}")

    managed = [r for r in inputs.resources if not r.hook]
    if not inputs.prune and all(r.status == SYNCED or r.requires_pruning for r in managed):
        return _skip("need to prune extra resources only but automated prune is disabled")

    target = describe_revisions(inputs.revisions)
    partial: tuple[ResourceKey, ...] | None = None
    attempt = 0
    if last is not None and last.revisions == inputs.revisions and last.compared_digest == inputs.compared_digest:
        if last.phase != SUCCEEDED:
            return AutoSyncDecision(
                sync=False,
                reason=f"failed previous sync attempt to {target}; not retrying this revision",
                error=f"Failed sync attempt to {target}: {last.message}",
            )
        if not inputs.self_heal:
            return _skip(f"most recent sync already to {target} and self-heal is off")
        elapsed = 0.0 if last.finished_at is None else max(0.0, inputs.now - last.finished_at)
        remaining = self_heal_delay(last.self_heal_attempts) - elapsed
        if remaining > 0:
            return AutoSyncDecision(
                sync=False,
                reason=f"self-heal of {target} backs off after {last.self_heal_attempts} attempt(s): "
                f"retrying in {remaining:.1f}s",
                requeue_after=remaining,
            )
        partial = tuple(r.key for r in managed if r.status != SYNCED)
        if not partial:
            return _skip(f"most recent sync already to {target} and no resource drifted")
        attempt = last.self_heal_attempts + 1

    if inputs.prune and not inputs.allow_empty and all(r.requires_pruning for r in managed):
        message = f"Skipping sync attempt to {target}: auto-sync will wipe out all resources"
        return AutoSyncDecision(sync=False, reason=message, error=message)

    if not inputs.window_allows:
        return _skip(f"a sync window denies automated syncs: {inputs.window_reason or 'no reason given'}")

    if partial is not None:
        return AutoSyncDecision(
            sync=True,
            reason=f"self-heal attempt {attempt} at {target}: {len(partial)} drifted resource(s)",
            partial=partial,
            self_heal_attempt=attempt,
        )
    return AutoSyncDecision(sync=True, reason=f"automated sync to {target}")


def describe_revisions(revisions: tuple[str, ...]) -> str:
    """One revision as it is, several joined by ", " (as Argo CD's messages show them)."""
    return ", ".join(revisions) if revisions else "(no revision)"


def _skip(reason: str) -> AutoSyncDecision:
    return AutoSyncDecision(sync=False, reason=reason)
