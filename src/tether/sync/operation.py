"""The saved state of a running sync: small, JSON-ready, with no manifests and no secrets.

A sync reports this state after every change (``on_state``); the caller keeps it anywhere
(the controller in ``status.operationState``, a test in a file). Given the state back and the
same desired objects, a new process resumes the sync (``sync_app(..., resume=state)``): the
run id makes hook names the same again, each task's status says what is already done, and
``stage``/``step`` say where the sync had got to.

Task statuses: ``Pending`` (not started), ``Running`` (written or created, not yet judged),
``Succeeded``, ``Failed``, ``Skipped`` (nothing to do: in sync, or not pruned).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tether.errors import TetherError
from tether.resource import ResourceKey

PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED = "Pending", "Running", "Succeeded", "Failed", "Skipped"
TASK_STATUSES = (PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED)
STAGE_SYNC, STAGE_SYNC_FAIL = "Sync", "SyncFail"  # the regular steps, then (after a failure) SyncFail hooks


@dataclass
class TaskState:
    """One task of the plan. ``hook_name`` is the name a hook instance was given (empty otherwise)."""

    phase: str
    wave: int
    group: str
    kind: str
    namespace: str
    name: str
    action: str
    status: str = PENDING
    hook_name: str = ""

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.group, self.kind, self.namespace, self.name)

    @property
    def slot(self) -> tuple[str, ResourceKey, str]:
        """What identifies a task across processes: phase, object and action."""
        return (self.phase, self.key, self.action)

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "wave": self.wave,
            "group": self.group,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "action": self.action,
            "status": self.status,
            "hookName": self.hook_name,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskState:
        status = str(data.get("status", PENDING))
        if status not in TASK_STATUSES:
            raise TetherError(f"operation state: unknown task status {status!r}")
        return cls(
            phase=str(data["phase"]),
            wave=int(data["wave"]),
            group=str(data.get("group", "")),
            kind=str(data["kind"]),
            namespace=str(data.get("namespace", "")),
            name=str(data["name"]),
            action=str(data["action"]),
            status=status,
            hook_name=str(data.get("hookName", "")),
        )


@dataclass
class OperationState:
    """Where one sync has got to. ``step`` indexes the steps of ``stage`` (-1: not started)."""

    app: str
    run_id: str
    started_at: str
    phase: str = "Running"
    message: str = ""
    revision: str = ""
    revisions: list[str] = field(default_factory=list)  # each source's, for an app of several sources
    stage: str = STAGE_SYNC
    step: int = -1
    sync_phase: str = ""
    wave: int = 0
    tasks: list[TaskState] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.phase in ("Running", "Terminating")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "app": self.app,
            "runId": self.run_id,
            "startedAt": self.started_at,
            "phase": self.phase,
            "message": self.message,
            "revision": self.revision,
            "stage": self.stage,
            "step": self.step,
            "syncPhase": self.sync_phase,
            "wave": self.wave,
            "tasks": [t.to_dict() for t in self.tasks],
        }
        if self.revisions:
            data["revisions"] = list(self.revisions)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OperationState:
        try:
            return cls(
                app=str(data["app"]),
                run_id=str(data["runId"]),
                started_at=str(data["startedAt"]),
                phase=str(data.get("phase", "Running")),
                message=str(data.get("message", "")),
                revision=str(data.get("revision", "")),
                revisions=[str(r) for r in data.get("revisions") or []],
                stage=str(data.get("stage", STAGE_SYNC)),
                step=int(data.get("step", -1)),
                sync_phase=str(data.get("syncPhase", "")),
                wave=int(data.get("wave", 0)),
                tasks=[TaskState.from_dict(t) for t in data.get("tasks") or []],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TetherError(f"operation state: malformed ({exc!r})") from None
