"""Identity of Kubernetes objects and Tether's marks on them, shared by every stage.

A resource is known by (group, kind, namespace, name). Tether marks what it applies with
the annotation ``tether.dev/tracking-id: <app>:<group>/<Kind>:<namespace>/<name>`` and the
label ``tether.dev/app: <app>``; prune trusts only the annotation, because a label can be
copied by anyone. Steering annotations are read under both ``tether.dev/`` and
``argocd.argoproj.io/`` so repositories written for Argo CD work unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

TRACKING_ANNOTATION = "tether.dev/tracking-id"
APP_LABEL = "tether.dev/app"
PREFIXES = ("tether.dev/", "argocd.argoproj.io/")


@dataclass(frozen=True, order=True)
class ResourceKey:
    """What makes an object the same object across git, the cache and the cluster."""

    group: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ResourceKey:
        group = str(obj.get("apiVersion", "")).rpartition("/")[0]
        meta = obj.get("metadata") or {}
        return cls(group, str(obj.get("kind", "")), str(meta.get("namespace") or ""), str(meta.get("name") or ""))

    def __str__(self) -> str:
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        return f"{kind} {self.namespace + '/' if self.namespace else ''}{self.name}"


class Origins:
    """Which file of the repository each desired object came from, so an error about it can say where to look.

    Keyed on the object's key as written: an object that names no namespace is found under any
    namespace it is placed in (the destination's, or none for a cluster-scoped kind). Paths
    only, never contents, so a message may carry them anywhere.
    """

    def __init__(self, files: Mapping[ResourceKey, str] | None = None) -> None:
        self._files = dict(files or {})

    @classmethod
    def of(cls, objects: Iterable[Mapping[str, Any]], files: Iterable[str]) -> Origins:
        """The origins of ``objects`` from the file beside each ("" where unknown); a later object of a key wins."""
        return cls({ResourceKey.of(obj): file for obj, file in zip(objects, files, strict=False) if file})

    def __or__(self, later: Origins) -> Origins:
        return Origins({**self._files, **later._files})

    def file(self, key: ResourceKey) -> str:
        """The file ``key``'s object came from, "" when not known (a generated hook name, a live object)."""
        found = self._files.get(key)
        if found is None and key.namespace:
            found = self._files.get(ResourceKey(key.group, key.kind, "", key.name))
        return found or ""

    def named(self, key: ResourceKey) -> str:
        """``Kind namespace/name (path/file.yaml)``, or the key alone when its file is not known."""
        file = self.file(key)
        return f"{key} ({file})" if file else str(key)


NO_ORIGINS = Origins()


def json_copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, tuples, scalars), about 2.5× faster than ``copy.deepcopy``.

    Objects from the API server and from manifests are trees of these; the hot paths (the live
    cache's copies, normalising both sides of a diff, status writes) copy thousands of them.
    Anything else is shared, not copied: only immutable values should reach it.
    """
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    if isinstance(value, tuple):
        return tuple(json_copy(v) for v in value)
    return value


def tracking_id(app: str, key: ResourceKey) -> str:
    """The value of ``tether.dev/tracking-id`` for ``key`` owned by ``app``."""
    return f"{app}:{key.group}/{key.kind}:{key.namespace}/{key.name}"


def parse_tracking_id(value: str) -> tuple[str, ResourceKey] | None:
    """(app, key) from a tracking id, or None when it is not one of ours."""
    try:
        app, group_kind, namespaced_name = value.split(":", 2)
        group, kind = group_kind.split("/", 1)
        namespace, name = namespaced_name.split("/", 1)
    except ValueError:
        return None
    if not app or not kind or not name:
        return None
    return app, ResourceKey(group, kind, namespace, name)


def owner_app(obj: Mapping[str, Any]) -> str | None:
    """The app whose tracking id this live object carries, if the id matches the object itself.

    An id copied onto another object (a different name or kind) names no owner, so it can
    never make prune delete something it does not describe.
    """
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    parsed = parse_tracking_id(str(annotations.get(TRACKING_ANNOTATION, "")))
    if parsed is None:
        return None
    app, key = parsed
    return app if key == ResourceKey.of(obj) else None


def mark(obj: Mapping[str, Any], app: str) -> dict[str, Any]:
    """A copy of ``obj`` as Tether writes it (and so compares it): with ``app``'s tracking annotation and label.

    An aggregated ClusterRole's ``rules`` are left out: the control plane's aggregation controller
    owns them and overwrites whatever a manifest says (often ``rules: []``), so writing them would
    revoke what the role grants until it runs again, and comparing them would never be in sync.
    """
    marked = dict(obj)
    aggregated = marked.get("aggregationRule") and marked.get("kind") == "ClusterRole"
    if aggregated and str(marked.get("apiVersion", "")).startswith("rbac.authorization.k8s.io/"):
        marked.pop("rules", None)
    meta = dict(marked.get("metadata") or {})
    meta["annotations"] = {
        **(meta.get("annotations") or {}),
        TRACKING_ANNOTATION: tracking_id(app, ResourceKey.of(obj)),
    }
    meta["labels"] = {**(meta.get("labels") or {}), APP_LABEL: app}
    marked["metadata"] = meta
    return marked


def annotation(obj: Mapping[str, Any], name: str) -> str | None:
    """A steering annotation (``sync-wave``, ``hook``, …) under either prefix; tether.dev/ wins."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    for prefix in PREFIXES:
        value = annotations.get(prefix + name)
        if value is not None:
            return str(value)
    return None


def annotation_options(obj: Mapping[str, Any], name: str) -> dict[str, str]:
    """Comma-separated ``Key=Value`` options from ``sync-options``/``compare-options`` (both prefixes merged)."""
    options: dict[str, str] = {}
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    for prefix in reversed(PREFIXES):
        for item in str(annotations.get(prefix + name, "")).split(","):
            key, _, value = item.strip().partition("=")
            if key:
                options[key] = value
    return options
