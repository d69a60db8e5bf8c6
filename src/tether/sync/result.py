"""What a sync did, per object and overall, as plain data for the CLI, the controller and status.

Per object: what was done (``action``: ``failed`` when Tether tried and the server refused or
never answered), how it ended (``status``, Argo CD's result codes), why (``message``), and
where in the plan it ran (``phase``, ``wave``). Hooks also carry ``hook_phase``: Running,
Succeeded or Failed. A prune held back for safety lists ``blocked_by``: the objects in the
way. Overall: Succeeded, Failed (an object or a hook failed, a wait timed out, the sync was
refused) or Error (the cluster could not be reached, ``reason`` ClusterUnreachable, or Tether
itself failed), with start and end times.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from tether.hooks import Phase
from tether.resource import ResourceKey


class ResourceAction(str, Enum):
    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"
    PRUNED = "pruned"
    PRUNE_SKIPPED = "pruneSkipped"
    HOOK = "hook"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


class ResultStatus(str, Enum):
    SYNCED = "Synced"
    SYNC_FAILED = "SyncFailed"
    PRUNED = "Pruned"
    PRUNE_SKIPPED = "PruneSkipped"

    def __str__(self) -> str:
        return self.value


class OperationPhase(str, Enum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"

    def __str__(self) -> str:
        return self.value


@dataclass
class ResourceResult:
    """The outcome for one object in one phase (a hook run in two phases has two).

    ``health`` is what ``tether.health`` said when the sync waited for the object (None when
    it did not wait: the last wave of plain resources, or an object without health).
    ``blocked_by`` names what kept a prune from running (a Namespace's contents), else empty.
    """

    group: str
    kind: str
    namespace: str
    name: str
    action: ResourceAction
    status: ResultStatus
    message: str
    phase: Phase
    wave: int
    hook_phase: OperationPhase | None = None
    health: str | None = None
    blocked_by: list[str] = field(default_factory=list)

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.group, self.kind, self.namespace, self.name)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data, camelCase as in Kubernetes status (and Argo CD's sync results)."""
        data = asdict(self)
        for name in ("action", "status", "phase", "hook_phase"):
            data[name] = None if data[name] is None else str(data[name].value)
        data["hookPhase"] = data.pop("hook_phase")
        data["blockedBy"] = data.pop("blocked_by")
        return data


@dataclass
class SyncResult:
    """One sync of one app. ``resources`` is in the order the objects were acted on.

    ``reason`` is a machine-readable cause for an Error (``ClusterUnreachable``), else empty.
    """

    app: str
    phase: OperationPhase
    message: str
    started_at: datetime
    finished_at: datetime
    dry_run: bool = False
    revision: str = ""
    resources: list[ResourceResult] = field(default_factory=list)
    reason: str = ""

    @property
    def succeeded(self) -> bool:
        return self.phase is OperationPhase.SUCCEEDED

    def find(self, kind: str, name: str, phase: Phase | None = None) -> ResourceResult | None:
        """The result for ``kind``/``name`` (in ``phase`` if given): handy for callers and tests."""
        for result in self.resources:
            if result.kind == kind and result.name == name and (phase is None or result.phase == phase):
                return result
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "phase": self.phase.value,
            "reason": self.reason,
            "message": self.message,
            "startedAt": self.started_at.isoformat(),
            "finishedAt": self.finished_at.isoformat(),
            "dryRun": self.dry_run,
            "revision": self.revision,
            "resources": [r.to_dict() for r in self.resources],
        }


@dataclass(frozen=True)
class SyncEvent:
    """Progress of a running sync, for a live display.

    ``type`` is ``step`` (a phase/wave starts), ``resource`` (an object's result changed),
    ``waiting`` (what the sync is waiting for) or ``done`` (``result`` is final).
    """

    type: str
    phase: Phase | None = None
    wave: int | None = None
    message: str = ""
    resource: ResourceResult | None = None
    result: SyncResult | None = None
