"""Parse manifest text into Kubernetes objects the way Argo CD's repo server does.

YAML is read like Go's sigs.k8s.io/yaml reads it: no timestamps (they stay strings),
no sexagesimal numbers, no ``=`` value tag, so a ConfigMap value such as ``12:30`` or
``2024-01-01`` keeps its text. Empty documents are skipped; every other document must be
a mapping with ``apiVersion`` and ``kind``; ``kind: *List`` objects are flattened into
their items (Argo CD flattens lists from every source type).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_INT = re.compile(
    r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+)$""",
    re.X,
)
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class KubeYamlLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """A safe loader whose implicit types match Go's YAML libraries used by Kubernetes tools."""


_REPLACED_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("timestamp", "value", "int", "float")}
KubeYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED_TAGS]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
KubeYamlLoader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
KubeYamlLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


class ManifestError(ValueError):
    """Text that is not a set of Kubernetes objects; the message says which document and why."""


def load_yaml_documents(text: str) -> Iterator[Any]:
    """Every document of a multi-document YAML stream, with Kubernetes-compatible scalars."""
    try:
        yield from yaml.load_all(text, Loader=KubeYamlLoader)
    except yaml.YAMLError as exc:
        raise ManifestError(f"invalid YAML: {exc}") from None


def load_yaml(text: str) -> Any:
    """One YAML document (a kustomization, a Chart.yaml) with Kubernetes-compatible scalars."""
    try:
        return yaml.load(text, Loader=KubeYamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ManifestError(f"invalid YAML: {exc}") from None


def objects_from_yaml(text: str) -> list[dict[str, Any]]:
    """Objects of a YAML stream: empty documents skipped, lists flattened, each checked."""
    objects: list[dict[str, Any]] = []
    for number, document in enumerate(load_yaml_documents(text), start=1):
        if document is None:
            continue
        objects.extend(flatten([document], where=f"document {number}"))
    return objects


def objects_from_json(text: str) -> list[dict[str, Any]]:
    """Objects of a JSON file: one object (Argo CD allows exactly one), a List flattened."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"invalid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ManifestError("a JSON manifest must hold one object")
    return flatten([document], where="the object")


def flatten(values: list[Any], *, where: str) -> list[dict[str, Any]]:
    """Check that each value is an object and replace ``kind: *List`` objects by their items."""
    objects: list[dict[str, Any]] = []
    for value in values:
        require_object(value, where=where)
        if is_list(value):
            items = value.get("items") or []
            for item in items:
                require_object(item, where=f"an item of the {value['kind']} in {where}")
            objects.extend(items)
        else:
            objects.append(value)
    return objects


def is_list(value: dict[str, Any]) -> bool:
    return str(value.get("kind", "")).endswith("List") and isinstance(value.get("items", []), (list, type(None)))


def require_object(value: Any, *, where: str) -> None:
    if not isinstance(value, dict):
        raise ManifestError(f"{where} is a {type(value).__name__}, not a Kubernetes object")
    missing = [key for key in ("apiVersion", "kind") if not isinstance(value.get(key), str) or not value.get(key)]
    if missing:
        raise ManifestError(f"{where} is not a Kubernetes object (no {' or '.join(missing)})")
