"""Client-side apply migration: Argo CD's ``ClientSideApplyMigration`` (on by default), after Kubernetes' ``csaupgrade``.

An object written by ``kubectl apply`` without ``--server-side`` (by a person, or by Argo CD
before it moved to server-side apply) has its fields owned by the manager
``kubectl-client-side-apply`` through an ``Update`` entry of ``metadata.managedFields``.
Server-side apply as ``tether`` never removes a field another manager owns, so a field deleted
from git would stay live for ever, and a comparison that asks the server what an apply would do
would call the object Synced.

So before the sync applies such an object it moves that manager's fields to ``tether``
(``migration_patch``: one JSON patch of ``managedFields`` guarded by the resourceVersion), and
the apply after it removes what git no longer holds. The comparison predicts that removal
(``without_released``) from plain data: a field of the manager's set that the object's
``last-applied-configuration`` holds (what was last applied by hand or by Argo CD, so no server
default), that desired lacks and that no other manager owns, is shown removed. The object is
then OutOfSync and automated sync migrates it. The manager is named by the Application's
``client-side-apply-migration-manager`` annotation; ``ClientSideApplyMigration=false`` (on the
app or on one object's ``sync-options``) turns the migration off.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from tether.cluster.client import FIELD_MANAGER
from tether.diff import pointer
from tether.diff.ignore import Step, field_paths, resolve
from tether.resource import annotation_options, json_copy

CSA_MANAGER = "kubectl-client-side-apply"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
OPTION = "ClientSideApplyMigration"
MIGRATION_MANAGER_ANNOTATION = "client-side-apply-migration-manager"  # on the Application, under either prefix
_LAST_APPLIED_PATH = ("f:metadata", "f:annotations", f"f:{LAST_APPLIED}")


def app_manager(sync_options: Sequence[str], annotation: str | None) -> str | None:
    """An app's manager to migrate from: its ``client-side-apply-migration-manager`` annotation, else
    ``kubectl-client-side-apply``; None when its sync options say ``ClientSideApplyMigration=false``."""
    for item in sync_options:
        name, _, value = str(item).strip().partition("=")
        if name == OPTION and value.strip().lower() == "false":
            return None
    return annotation or CSA_MANAGER


def manager_for(obj: Mapping[str, Any], app_manager: str | None) -> str | None:
    """The manager whose fields ``obj`` migrates (None: no migration): the app's, unless the
    object's ``sync-options`` say ``ClientSideApplyMigration=false`` (or ``=true`` when the app's is off)."""
    value = annotation_options(obj, "sync-options").get(OPTION)
    if value is None:
        return app_manager
    if value.strip().lower() == "false":
        return None
    return app_manager or CSA_MANAGER


def pending(live: Mapping[str, Any] | None, manager: str | None) -> bool:
    """Whether ``live`` still has fields owned by ``manager`` through a client-side (``Update``) write."""
    return manager is not None and live is not None and any(_is_csa(e, manager) for e in _entries(live))


def migration_patch(
    live: Mapping[str, Any], manager: str, ssa_manager: str = FIELD_MANAGER
) -> list[dict[str, Any]] | None:
    """The JSON patch that gives ``manager``'s fields to ``ssa_manager`` (None: nothing to move).

    As ``csaupgrade.UpgradeManagedFieldsPatch``: the resourceVersion is "replaced" with the one
    read, so the API server answers 409 Conflict if the object changed since.
    """
    if not pending(live, manager):
        return None
    entries = [dict(e) for e in _entries(live)]
    target = next((i for i, e in enumerate(entries) if _is_ssa(e, ssa_manager)), None)
    if target is None:
        target = next((i for i, e in enumerate(entries) if _is_csa(e, manager)), None)
        if target is None:
            return None
        entries[target].update(manager=ssa_manager, operation="Apply")
    fields = dict(entries[target].get("fieldsV1") or {})
    source = next(
        (
            e
            for i, e in enumerate(entries)
            if i != target and _is_csa(e, manager) and e.get("apiVersion") == entries[target].get("apiVersion")
        ),
        None,
    )
    if source is not None:
        fields = _union(fields, source.get("fieldsV1") or {})
    entries[target]["fieldsV1"] = _without(fields, _LAST_APPLIED_PATH)  # nobody keeps kubectl's annotation alive
    entries = [e for i, e in enumerate(entries) if i == target or not _is_csa(e, manager)]
    version = (live.get("metadata") or {}).get("resourceVersion")
    return [
        {"op": "replace", "path": "/metadata/managedFields", "value": entries},
        {"op": "replace", "path": "/metadata/resourceVersion", "value": version},
    ]


def released(live: Mapping[str, Any], desired: Mapping[str, Any], manager: str | None) -> list[tuple[Step, ...]]:
    """The fields the migration and the apply after it would remove from ``live`` (see the module docstring)."""
    if not pending(live, manager):
        return []
    last = _last_applied(live)
    if last is None:
        return []
    owned: list[tuple[Step, ...]] = []
    kept: list[tuple[Step, ...]] = []
    for entry in _entries(live):
        fields = entry.get("fieldsV1")
        if not isinstance(fields, Mapping) or entry.get("fieldsType", "FieldsV1") != "FieldsV1":
            continue
        if _is_csa(entry, str(manager)):
            field_paths(fields, owned, members=True)
        elif not _is_ssa(entry, FIELD_MANAGER):
            field_paths(fields, kept, members=True)
    gone = []
    for path in owned:
        if path[:1] == ("status",) or path == ("metadata", "annotations", LAST_APPLIED):
            continue
        if resolve(desired, path) is not None or resolve(last, path) is None or resolve(live, path) is None:
            continue
        if any(other[: len(path)] == path for other in kept):
            continue  # another manager holds it (or a field inside it): the apply leaves it
        gone.append(path)
    return gone


def without_released(predicted: Mapping[str, Any], paths: Sequence[tuple[Step, ...]]) -> dict[str, Any]:
    """A copy of ``predicted`` without the fields ``paths`` name (those it holds)."""
    copy: dict[str, Any] = json_copy(predicted)
    concrete = [found for found in (resolve(copy, p) for p in paths) if found]
    pointer.remove_all(copy, concrete)
    return copy


# --------------------------------------------------------------------- managedFields


def _entries(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    entries = (obj.get("metadata") or {}).get("managedFields") or []
    return [e for e in entries if isinstance(e, Mapping)]


def _is_csa(entry: Mapping[str, Any], manager: str) -> bool:
    return entry.get("manager") == manager and entry.get("operation") == "Update" and not entry.get("subresource")


def _is_ssa(entry: Mapping[str, Any], manager: str) -> bool:
    return entry.get("manager") == manager and entry.get("operation") == "Apply" and not entry.get("subresource")


def _last_applied(live: Mapping[str, Any]) -> Mapping[str, Any] | None:
    text = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not isinstance(text, str):
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, Mapping) else None


def _union(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Two fieldsV1 tries as one. A child ``{}`` is a member with no children; joined with a child
    that has children, the result keeps both: the children and ``"."`` (the member itself)."""
    out: dict[str, Any] = {}
    for key in a.keys() | b.keys():
        if key == ".":
            out["."] = {}
        elif key in a and key in b:
            x, y = a[key] or {}, b[key] or {}
            merged = _union(x, y)
            if merged and (not x or not y):
                merged["."] = {}
            out[key] = merged
        else:
            out[key] = json_copy(a[key] if key in a else b[key])
    return out


def _without(fields: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """``fields`` without the member ``path``; a parent left with no member and no child goes too."""
    out = dict(fields)
    if not path or path[0] not in out:
        return out
    if len(path) == 1:
        del out[path[0]]
        return out
    child = out[path[0]] or {}
    if not child:
        return out  # the parent itself is a leaf member: nothing below it to remove
    rest = _without(child, path[1:])
    if rest:
        out[path[0]] = rest
    else:
        del out[path[0]]
    return out
