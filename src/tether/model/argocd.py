"""Argo CD ``Application`` / ``AppProject`` manifests turned into Tether ``Application`` / ``Project`` ones.

The spec fields are the same, so most of a conversion is renaming: the API group, the kind
``AppProject`` → ``Project``, Argo CD's namespace → Tether's, Argo CD's resources finalizer →
Tether's. What Tether cannot carry over is dropped, and every drop is reported as one
note naming the object, the field path and why, so nothing changes silently. Fields Tether
keeps but does not act on (helm repository charts, config management plugins, project
roles) are kept and reported too: such an app fails with a clear error instead of
rendering something else. Annotations under ``argocd.argoproj.io/`` stay: Tether reads
both prefixes.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from tether.model.application import (
    API_VERSION,
    ARGOCD_RESOURCES_FINALIZER,
    RESOURCES_FINALIZER,
    Application,
    check_sync_option,
    describe_errors,
    skips_reconcile,
)
from tether.model.project import Project

ARGOCD_GROUP = "argoproj.io"
ARGOCD_NAMESPACE = "argocd"
DEFAULT_NAMESPACE = "tether-system"

_KINDS: dict[str, tuple[str, type[BaseModel]]] = {
    "Application": ("Application", Application),
    "AppProject": ("Project", Project),
}

# Set by the API server: meaningless in a manifest that is to be applied again.
_SERVER_SET = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
)
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# Why a field Tether refuses is dropped, by field name (the generic reason covers the rest).
_DROP_REASONS = {
    "sourceHydrator": "source hydration is not supported",
    "permitOnlyProjectScopedClusters": "project-scoped clusters are not supported: the project's destinations alone decide",
    "destinationServiceAccounts": "service account impersonation is not supported: Tether applies with its own identity",
}

# Kept but not acted on: (field name, where it may appear) → why the user should know.
_KEPT_NOTES = {
    "plugin": "config management plugins are not supported: kept, so the app fails to render with that error",
    "chart": "helm repository charts are not fetched: kept, so the app fails to render until the chart is in git",
    "roles": "project roles are kept but not enforced (Tether has no per-project RBAC yet)",
    "sourceNamespaces": "kept; Tether reads Applications only in its own namespace",
    "signatureKeys": "commits are verified with the public keys in ConfigMap tether-gpg-keys (copy argocd-gpg-keys-cm's data)",
}


@dataclass
class Conversion:
    """What an import produced: Tether objects, notes on what changed, and objects that failed."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def convert(objects: Iterable[Mapping[str, Any]], namespace: str = DEFAULT_NAMESPACE) -> Conversion:
    """Every Argo CD Application and AppProject in ``objects`` as a Tether manifest; others are skipped."""
    result = Conversion()
    for obj in objects:
        kind = str(obj.get("kind") or "")
        group = str(obj.get("apiVersion") or "").partition("/")[0]
        label = _label(obj)
        if group != ARGOCD_GROUP:
            result.skipped.append(f"{label}: not an Argo CD object ({obj.get('apiVersion')}); skipped")
            continue
        if kind == "ApplicationSet":
            result.skipped.append(f"{label}: ApplicationSets are not supported (import the Applications it generates)")
            continue
        if kind not in _KINDS:
            result.skipped.append(f"{label}: only Application and AppProject are converted; skipped")
            continue
        converted, notes, error = convert_object(obj, namespace)
        result.notes.extend(f"{label}: {note}" for note in notes)
        if error is not None:
            result.errors.append(f"{label}: {error}")
        elif converted is not None:
            result.objects.append(converted)
    return result


def convert_object(
    obj: Mapping[str, Any], namespace: str = DEFAULT_NAMESPACE
) -> tuple[dict[str, Any] | None, list[str], str | None]:
    """(the Tether object, notes, None) or (None, notes, why it cannot be converted) for one Argo CD object."""
    new_kind, model = _KINDS[str(obj["kind"])]
    notes: list[str] = []
    out: dict[str, Any] = {"apiVersion": API_VERSION, "kind": new_kind}
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata":
            out["metadata"] = _metadata(value if isinstance(value, Mapping) else {}, namespace, notes)
        elif key == "spec":
            out["spec"] = copy.deepcopy(value)
        elif key == "status":
            notes.append("status: dropped (Tether's controller writes its own)")
        elif key == "operation":
            notes.append("operation: dropped (an Argo CD operation in flight is not carried over)")
        else:
            notes.append(f"{key}: not part of an {new_kind}; dropped")
    spec = out.get("spec")
    if isinstance(spec, dict):
        _drop_unknown_sync_options(spec, notes)
    error = _validate(out, model, notes)
    if error is not None:
        return None, notes, error
    notes.extend(_kept_notes(out.get("spec") or {}, "spec"))
    return out, notes, None


def _label(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    return f"{obj.get('kind') or '?'}/{(meta or {}).get('name') or '?'}"


def _metadata(meta: Mapping[str, Any], namespace: str, notes: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if key in _SERVER_SET:
            notes.append(f"metadata.{key}: dropped (set by the API server)")
        elif key == "namespace":
            if value in (None, "", ARGOCD_NAMESPACE):
                out["namespace"] = namespace
            else:
                out["namespace"] = value
                notes.append(f"metadata.namespace: {value!r} kept; Tether reads Applications only in its own namespace")
        elif key == "finalizers":
            out["finalizers"] = _finalizers(value or [], notes)
        elif key == "annotations":
            annotations = dict(value or {})
            if annotations.pop(_LAST_APPLIED, None) is not None:
                notes.append(f"metadata.annotations.{_LAST_APPLIED}: dropped (kubectl's copy of the Argo CD object)")
            if skips_reconcile({"metadata": {"annotations": annotations}}):
                notes.append(
                    "metadata.annotations: skip-reconcile kept: Tether reads it too and leaves the app alone "
                    "until it is removed"
                )
            out["annotations"] = annotations
        elif key in ("ownerReferences", "generateName"):
            notes.append(f"metadata.{key}: dropped (an imported object is created by name and owned by nobody)")
        else:
            out[key] = copy.deepcopy(value)
    out.setdefault("namespace", namespace)
    ordered = {key: out[key] for key in ("name", "namespace") if key in out}
    return ordered | out


def _finalizers(finalizers: list[Any], notes: list[str]) -> list[str]:
    out: list[str] = []
    for index, finalizer in enumerate(finalizers):
        if finalizer == ARGOCD_RESOURCES_FINALIZER:
            out.append(RESOURCES_FINALIZER)
        elif isinstance(finalizer, str) and finalizer.startswith(ARGOCD_RESOURCES_FINALIZER + "/"):
            out.append(RESOURCES_FINALIZER)
            policy = finalizer.rsplit("/", 1)[1]
            notes.append(
                f"metadata.finalizers[{index}]: {finalizer} became {RESOURCES_FINALIZER} ({policy} deletion is not kept)"
            )
        else:
            notes.append(f"metadata.finalizers[{index}]: {finalizer} dropped (nothing in Tether would ever remove it)")
    return list(dict.fromkeys(out))


def _drop_unknown_sync_options(spec: dict[str, Any], notes: list[str]) -> None:
    policy = spec.get("syncPolicy")
    if not isinstance(policy, dict) or not isinstance(policy.get("syncOptions"), list):
        return
    kept = []
    for index, option in enumerate(policy["syncOptions"]):
        try:
            kept.append(check_sync_option(str(option)))
        except ValueError as exc:
            notes.append(f"spec.syncPolicy.syncOptions[{index}]: {exc}; dropped")
    policy["syncOptions"] = kept


def _validate(out: dict[str, Any], model: type[BaseModel], notes: list[str]) -> str | None:
    """Validate ``out`` in place, dropping (and noting) each field the model refuses as unknown."""
    for _ in range(200):
        try:
            model.model_validate(out)
            return None
        except ValidationError as exc:
            unknown = [error for error in exc.errors() if error["type"] == "extra_forbidden"]
            if not unknown:
                return "; ".join(describe_errors(exc))
            for error in unknown:
                path = [step for step in error["loc"] if isinstance(step, int) or not _is_tag(step)]
                _remove(out, path)
                name = str(path[-1])
                notes.append(f"{_dotted(path)}: {_DROP_REASONS.get(name, 'not supported by Tether')}; dropped")
    return "too many unsupported fields"


def _is_tag(step: Any) -> bool:
    return isinstance(step, str) and (step in ("str", "int", "float", "bool") or "[" in step or "-" in step)


def _remove(obj: Any, path: list[Any]) -> None:
    node = obj
    for step in path[:-1]:
        node = node[step]
    del node[path[-1]]


def _dotted(path: list[Any]) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


def _kept_notes(node: Any, path: str) -> list[str]:
    """Notes for fields kept although Tether does not act on them, wherever they sit in the spec."""
    notes: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}"
            if key in _KEPT_NOTES and value not in (None, "", [], {}):
                notes.append(f"{where}: {_KEPT_NOTES[key]}")
            elif key in ("helm", "kustomize") and isinstance(value, dict) and value.get("version"):
                notes.append(f"{where}.version: accepted and ignored (Tether uses its pinned {key})")
            notes.extend(_kept_notes(value, where))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            notes.extend(_kept_notes(item, f"{path}[{index}]"))
    return notes
