"""Reading hooks and waves off an object, in Argo CD's terms: the one definition diff and sync share.

As in gitops-engine, an object is a hook when it has a ``hook`` annotation (either prefix)
other than ``Skip`` alone, whatever types it names, or, without one, any ``helm.sh/hook``
except ``crd-install`` (Helm's CRDs are ordinary resources). A hook is never applied as a
resource, never pruned and takes no part in a diff. It *runs* only in the sync phases it
names: PreSync, Sync, PostSync, SyncFail, and Helm's pre-install/pre-upgrade (PreSync) and
post-install/post-upgrade (PostSync). Argo CD's ``PreDelete`` and ``PostDelete`` (Helm's
``pre-delete`` and ``post-delete``) run when an app is deleted, before and after its
resources go (``tether.controller.deletion``). Other hooks — Helm's ``test``, unknown types —
run in no sync. ``Skip`` alone means "never apply". Helm's ``hook-weight`` is the wave when
``sync-wave`` is absent, and Helm's delete policies map onto Argo CD's.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from tether.resource import annotation


class Phase(str, Enum):
    """A sync phase; SyncFail runs only when the sync failed."""

    PRE_SYNC = "PreSync"
    SYNC = "Sync"
    POST_SYNC = "PostSync"
    SYNC_FAIL = "SyncFail"

    @property
    def order(self) -> int:
        return _PHASE_ORDER[self]

    def __str__(self) -> str:
        return self.value


_PHASE_ORDER = {Phase.PRE_SYNC: -1, Phase.SYNC: 0, Phase.POST_SYNC: 1, Phase.SYNC_FAIL: 2}


class DeletePolicy(str, Enum):
    """When a hook object is deleted: before it is created again (default), or after it succeeded/failed."""

    BEFORE_HOOK_CREATION = "BeforeHookCreation"
    HOOK_SUCCEEDED = "HookSucceeded"
    HOOK_FAILED = "HookFailed"


SKIP = "Skip"
PRE_DELETE = "PreDelete"
POST_DELETE = "PostDelete"
HELM_CRD_INSTALL = "crd-install"
HELM_HOOK = "helm.sh/hook"
HELM_WEIGHT = "helm.sh/hook-weight"
HELM_DELETE_POLICY = "helm.sh/hook-delete-policy"

_HELM_PHASES = {
    "pre-install": Phase.PRE_SYNC,
    "pre-upgrade": Phase.PRE_SYNC,
    "post-install": Phase.POST_SYNC,
    "post-upgrade": Phase.POST_SYNC,
}
_HELM_DELETION = {"pre-delete": PRE_DELETE, "post-delete": POST_DELETE}
_HELM_POLICIES = {
    "before-hook-creation": DeletePolicy.BEFORE_HOOK_CREATION,
    "hook-succeeded": DeletePolicy.HOOK_SUCCEEDED,
    "hook-failed": DeletePolicy.HOOK_FAILED,
}


def _csv(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _helm_annotation(obj: Mapping[str, Any], name: str) -> str | None:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(name)
    return None if value is None else str(value)


_KNOWN_TYPES = frozenset({p.value for p in Phase} | {SKIP, PRE_DELETE, POST_DELETE})


def hook_types(obj: Mapping[str, Any]) -> list[str]:
    """Hook types named on ``obj`` (``PreSync``…, ``PreDelete``, ``PostDelete``, ``Skip``); Helm's count only
    without an Argo CD one."""
    argo = annotation(obj, "hook")
    if argo is not None:
        return [t for t in _csv(argo) if t in _KNOWN_TYPES]
    helm = _csv(_helm_annotation(obj, HELM_HOOK))
    return [_HELM_PHASES[t].value for t in helm if t in _HELM_PHASES] + [
        _HELM_DELETION[t] for t in helm if t in _HELM_DELETION
    ]


def is_skipped(obj: Mapping[str, Any]) -> bool:
    """``hook: Skip`` and nothing else: the object is never applied."""
    return hook_types(obj) == [SKIP]


def is_hook(obj: Mapping[str, Any]) -> bool:
    """A hook: never applied as a resource, never pruned, not diffed (it may run in no sync phase at all)."""
    if annotation(obj, "hook") is not None:
        return not is_skipped(obj)
    helm = _helm_annotation(obj, HELM_HOOK)
    return helm is not None and HELM_CRD_INSTALL not in _csv(helm)


def hook_phases(obj: Mapping[str, Any]) -> list[Phase]:
    """The phases a hook runs in (one object can run in several), in phase order."""
    phases = {Phase(t) for t in hook_types(obj) if t in Phase._value2member_map_}
    return sorted(phases, key=lambda p: p.order)


def delete_policies(obj: Mapping[str, Any]) -> frozenset[DeletePolicy]:
    """The hook's delete policies; BeforeHookCreation when none is given."""
    policies = {
        DeletePolicy(p) for p in _csv(annotation(obj, "hook-delete-policy")) if p in DeletePolicy._value2member_map_
    }
    policies |= {_HELM_POLICIES[p] for p in _csv(_helm_annotation(obj, HELM_DELETE_POLICY)) if p in _HELM_POLICIES}
    return frozenset(policies or {DeletePolicy.BEFORE_HOOK_CREATION})


def wave(obj: Mapping[str, Any]) -> int:
    """``sync-wave`` (negative allowed), else Helm's ``hook-weight``, else 0; unreadable values count as 0."""
    for value in (annotation(obj, "sync-wave"), _helm_annotation(obj, HELM_WEIGHT)):
        if value is not None:
            try:
                return int(value.strip())
            except ValueError:
                continue
    return 0
