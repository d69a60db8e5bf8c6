"""The shape of a Kubernetes object, checked once where manifests are parsed.

The stages after parsing (secrets, diff, sync, health) read ``metadata``, its names,
labels and annotations, a Secret's or ConfigMap's data and a CRD's names without
checking types again, so an object whose fields the API server would refuse to decode
(``metadata: hello``, ``labels: {app: 1}``) is refused here with the field's path.
Only fields the engine reads, or that Kubernetes types for every object, are checked;
the rest of a custom resource is the API server's business.

As the API server does, a null label, annotation or data value reads as the empty
string (Helm prints ``key:`` for a missing value), so it is replaced by ``""``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


class ShapeError(ValueError):
    """A field of an object has a type Kubernetes would not decode; the message starts with its path."""


def _type(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "string", bool: "bool", int: "int", float: "number"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def field_path(parent: str, key: str | int) -> str:
    """``parent.key``, ``parent[3]`` or ``parent["app.kubernetes.io/name"]`` (a dot in a key would mislead)."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if key.replace("-", "_").isidentifier() else f"{parent}[{json.dumps(key)}]"


def _mapping(value: Any, where: str) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise ShapeError(f"{where}: must be a mapping, not {_type(value)}")
    return value


def _list(value: Any, where: str) -> list[Any] | None:
    if value is not None and not isinstance(value, list):
        raise ShapeError(f"{where}: must be a list, not {_type(value)}")
    return value


def _string(value: Any, where: str) -> None:
    if value is not None and not isinstance(value, str):
        raise ShapeError(f"{where}: must be a string, not {_type(value)}")


def _string_map(parent: dict[str, Any], field: str, where: str) -> None:
    """``parent[field]`` maps strings to strings; null values become ``""`` as the API server reads them."""
    mapping = _mapping(parent.get(field), where)
    for key, value in (mapping or {}).items():
        if value is None:
            mapping[key] = ""  # type: ignore[index]
        elif not isinstance(value, str):
            raise ShapeError(f"{field_path(where, key)}: must be a string, not {_type(value)}")


def _strings(value: Any, where: str) -> None:
    for index, item in enumerate(_list(value, where) or []):
        if not isinstance(item, str):
            raise ShapeError(f"{field_path(where, index)}: must be a string, not {_type(item)}")


def _mappings(value: Any, where: str, strings: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    found = []
    for index, item in enumerate(_list(value, where) or []):
        entry = _mapping(item, field_path(where, index))
        if entry is None:
            raise ShapeError(f"{field_path(where, index)}: must be a mapping, not null")
        for name in strings:
            _string(entry.get(name), field_path(field_path(where, index), name))
        found.append(entry)
    return found


_METADATA_STRINGS = (
    "name",
    "namespace",
    "generateName",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
)


def _metadata(obj: dict[str, Any]) -> None:
    meta = _mapping(obj.get("metadata"), "metadata")
    if meta is None:
        return
    for name in _METADATA_STRINGS:
        _string(meta.get(name), f"metadata.{name}")
    _string_map(meta, "labels", "metadata.labels")
    _string_map(meta, "annotations", "metadata.annotations")
    _strings(meta.get("finalizers"), "metadata.finalizers")
    _mappings(meta.get("ownerReferences"), "metadata.ownerReferences", ("apiVersion", "kind", "name", "uid"))
    _mappings(meta.get("managedFields"), "metadata.managedFields", ("manager", "operation", "apiVersion"))


def _config_map(obj: dict[str, Any]) -> None:
    _string_map(obj, "data", "data")
    _string_map(obj, "binaryData", "binaryData")


def _secret(obj: dict[str, Any]) -> None:
    _string_map(obj, "data", "data")
    _string_map(obj, "stringData", "stringData")
    _string(obj.get("type"), "type")


def _crd(obj: dict[str, Any]) -> None:
    spec = _mapping(obj.get("spec"), "spec") or {}
    _string(spec.get("group"), "spec.group")
    _string(spec.get("scope"), "spec.scope")
    names = _mapping(spec.get("names"), "spec.names") or {}
    for name in ("kind", "plural", "singular", "listKind"):
        _string(names.get(name), f"spec.names.{name}")
    _mappings(spec.get("versions"), "spec.versions", ("name",))


_KINDS: dict[tuple[str, str], Callable[[dict[str, Any]], None]] = {
    ("", "ConfigMap"): _config_map,
    ("", "Secret"): _secret,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}


def is_builtin_group(group: str) -> bool:
    """Kubernetes' own API groups: the core group, dot-less names (``apps``) and ``*.k8s.io``."""
    return "." not in group or group.endswith(".k8s.io")


def check_object(obj: dict[str, Any]) -> None:
    """Raise ``ShapeError`` when a field the engine reads has a type Kubernetes would refuse.

    ``obj`` is JSON data with string ``apiVersion`` and ``kind`` (the parser's guarantee).
    """
    group = str(obj["apiVersion"]).rpartition("/")[0]
    _metadata(obj)
    if is_builtin_group(group):  # every built-in kind's spec and status are structs
        _mapping(obj.get("spec"), "spec")
        _mapping(obj.get("status"), "status")
    check = _KINDS.get((group, str(obj["kind"])))
    if check is not None:
        check(obj)
