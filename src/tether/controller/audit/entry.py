"""What one audit record holds: an operation and its per-resource results, as plain frozen data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class AuditResource:
    """One per-resource result of an operation, as the sync result table shows it."""

    group: str
    kind: str
    namespace: str | None
    name: str
    action: str  # created, configured, unchanged, pruned, failed, hook …
    status: str  # Synced, SyncFailed, PruneSkipped, Pruned, Running, Succeeded …
    message: str = ""
    hook_phase: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One operation: a sync, a rollback or an app deletion, who started it, against what, and how it ended."""

    app: str  # "<namespace>/<name>" of the Application
    operation_id: str  # unique id of the operation (the sync run id); recording it again updates the record
    kind: str  # "sync", "rollback", "delete"
    initiated_by: str  # a username, or "automated"
    automated: bool
    revisions: tuple[str, ...]
    phase: str  # Running, Succeeded, Failed, Error, Terminated …
    message: str
    started_at: datetime  # timezone-aware
    finished_at: datetime | None
    resources: tuple[AuditResource, ...] = ()
    id: int | None = None  # assigned by the database
