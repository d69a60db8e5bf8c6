"""Conditions on an Application's status: Kubernetes' convention plus Argo CD's condition types.

A condition is a plain dict ``{"type", "status", "reason", "message", "lastTransitionTime"}``.
``lastTransitionTime`` moves only when ``status`` changes, so "since when" stays true while
the reason or message is refreshed (the Kubernetes API convention, as Flux's Ready /
Reconciling / Stalled do). Every message passes through the redactor and is capped, because
conditions are read by anyone who can read the Application.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from tether.secrets import REDACTOR

# Kubernetes' summary conditions (Flux uses the same three).
READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"

# Argo CD's application condition types, with Argo CD's names.
COMPARISON_ERROR = "ComparisonError"
INVALID_SPEC_ERROR = "InvalidSpecError"
SYNC_ERROR = "SyncError"
SHARED_RESOURCE_WARNING = "SharedResourceWarning"
ORPHANED_RESOURCE_WARNING = "OrphanedResourceWarning"
DELETION_ERROR = "DeletionError"

ARGO_TYPES = frozenset(
    {
        COMPARISON_ERROR,
        INVALID_SPEC_ERROR,
        SYNC_ERROR,
        SHARED_RESOURCE_WARNING,
        ORPHANED_RESOURCE_WARNING,
        DELETION_ERROR,
    }
)

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"
STATUSES = frozenset({TRUE, FALSE, UNKNOWN})
MAX_MESSAGE = 1024
TRUNCATED = " …(truncated)"
# metav1.Condition's rule for reason: CamelCase words, digits, "_", "," and ":".
_REASON = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-/]{0,315}$")


def set_condition(
    conditions: Sequence[Mapping[str, Any]],
    type: str,
    status: str,
    reason: str,
    message: str,
    now: str,
) -> list[dict[str, Any]]:
    """A new list with condition ``type`` set; ``lastTransitionTime`` kept unless ``status`` changed.

    A new type is appended; an existing one keeps its place. The input is left untouched.
    """
    if not _TYPE.match(type or ""):
        raise ValueError(f"condition type {type!r} is not a valid condition type")
    if status not in STATUSES:
        raise ValueError(f"condition {type}: status must be True, False or Unknown, not {status!r}")
    if not _REASON.match(reason or "") or len(reason) > 1024:
        raise ValueError(f"condition {type}: reason {reason!r} must be a CamelCase word (letters, digits, _ , :)")
    if not now:
        raise ValueError(f"condition {type}: lastTransitionTime must be a timestamp, got {now!r}")
    updated: list[dict[str, Any]] = []
    found = False
    for condition in conditions:
        if condition.get("type") != type:
            updated.append(dict(condition))
            continue
        if found:  # a duplicate of the type: keep only the first
            continue
        found = True
        same = condition.get("status") == status and condition.get("lastTransitionTime")
        updated.append(_condition(type, status, reason, message, condition["lastTransitionTime"] if same else now))
    if not found:
        updated.append(_condition(type, status, reason, message, now))
    return updated


def remove_condition(conditions: Sequence[Mapping[str, Any]], type: str) -> list[dict[str, Any]]:
    """A new list without condition ``type`` (the same list's contents when it is not there)."""
    return [dict(condition) for condition in conditions if condition.get("type") != type]


def get_condition(conditions: Sequence[Mapping[str, Any]], type: str) -> dict[str, Any] | None:
    """Condition ``type`` (a copy), or None."""
    for condition in conditions:
        if condition.get("type") == type:
            return dict(condition)
    return None


def clean_message(message: str) -> str:
    """``message`` with every known secret masked and cut to ``MAX_MESSAGE`` characters."""
    text = REDACTOR.redact(str(message))
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - len(TRUNCATED)] + TRUNCATED
    return text


def _condition(type: str, status: str, reason: str, message: str, when: str) -> dict[str, Any]:
    return {
        "type": type,
        "status": status,
        "reason": reason,
        "message": clean_message(message),
        "lastTransitionTime": when,
    }
