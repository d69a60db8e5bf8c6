"""The Application and Project CustomResourceDefinitions, generated from the pydantic models.

pydantic's JSON schema is turned into the structural OpenAPI v3 schema the API server
accepts: references inlined, ``X | None`` as ``nullable``, free-form values (helm
``valuesObject``, plugin sections, roles) kept whole with ``x-kubernetes-preserve-unknown-fields``,
and no ``default`` (the API server would write defaults into stored objects, so what a
user applied would not read back unchanged). ``status`` and ``operation`` keep every field
the controller or a client writes. Descriptions are left out: the models' docstrings speak
to Python readers; docs/applications.md is the field reference.

``python -m tether.model.crd`` rewrites the checked-in YAML next to this module; a unit test
fails when it is stale.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from tether.model.application import GROUP, VERSION, ApplicationSpec, Operation
from tether.model.project import ProjectSpec

CRD_DIR = Path(__file__).parent / "crds"
APPLICATION_CRD = f"applications.{GROUP}"
PROJECT_CRD = f"projects.{GROUP}"

_KEPT = ("enum", "minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems")
_PRESERVE = "x-kubernetes-preserve-unknown-fields"


def structural(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema (with ``$defs``) as a structural OpenAPI v3 schema."""
    defs = schema.get("$defs", {})
    return _convert(schema, defs, ())


def _convert(node: dict[str, Any], defs: dict[str, Any], seen: tuple[str, ...]) -> dict[str, Any]:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            raise ValueError(f"recursive schema {' -> '.join((*seen, name))}: cannot inline it in a CRD")
        inlined = _convert(defs[name], defs, (*seen, name))
        return {**inlined, **_annotations(node)}
    for union in ("anyOf", "oneOf"):
        if union in node:
            return _union(node, node[union], defs, seen)
    if "allOf" in node and len(node["allOf"]) == 1:
        return {**_convert(node["allOf"][0], defs, seen), **_annotations(node)}
    out = _annotations(node)
    kind = node.get("type")
    if "const" in node:
        out["enum"] = [node["const"]]
        kind = kind or _type_of(node["const"])
    if kind is None:
        out[_PRESERVE] = True  # Any: keep whatever is there
        return out
    out["type"] = kind
    if kind == "object":
        properties = node.get("properties")
        extra = node.get("additionalProperties")
        if properties:
            out["properties"] = {key: _convert(value, defs, seen) for key, value in properties.items()}
            required = [key for key in node.get("required", []) if key in properties]
            if required:
                out["required"] = required
        elif (isinstance(extra, dict) and extra.get("type") is not None) or (
            isinstance(extra, dict) and "$ref" in extra
        ):
            out["additionalProperties"] = _convert(extra, defs, seen)
        elif extra is not False:
            out[_PRESERVE] = True  # dict[str, Any] or a free-form object
    elif kind == "array":
        items = node.get("items")
        out["items"] = _convert(items, defs, seen) if items else {_PRESERVE: True}
    return out


def _union(node: dict[str, Any], options: list[dict[str, Any]], defs: dict[str, Any], seen: tuple[str, ...]) -> dict:
    nullable = any(option.get("type") == "null" for option in options)
    rest = [option for option in options if option.get("type") != "null"]
    if len(rest) == 1:
        out = _convert(rest[0], defs, seen)
    elif {option.get("type") for option in rest} == {"integer", "string"}:
        out = {"x-kubernetes-int-or-string": True}
    else:
        out = {_PRESERVE: True}  # e.g. helm values: a YAML string or an object; no structural type fits
    out.update(_annotations(node))
    if nullable:
        out["nullable"] = True
    return out


def _annotations(node: dict[str, Any]) -> dict[str, Any]:
    return {key: node[key] for key in _KEPT if key in node}


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def _root(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": required,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            **properties,
        },
    }


def _free_object(description: str, documented: dict[str, Any] | None = None) -> dict[str, Any]:
    """An object that keeps every field written to it; ``documented`` shapes the top level only."""
    out: dict[str, Any] = {"type": "object", "description": description, _PRESERVE: True}
    if documented:
        out["properties"] = {key: _keep_everything(value) for key, value in documented.items()}
    return out


def _keep_everything(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every object below it preserving unknown fields, so nothing is pruned."""
    out = copy.deepcopy(schema)
    stack = [out]
    while stack:
        node = stack.pop()
        if node.get("type") == "object":
            node[_PRESERVE] = True
        stack.extend(value for value in node.get("properties", {}).values())
        if isinstance(node.get("items"), dict):
            stack.append(node["items"])
        if isinstance(node.get("additionalProperties"), dict):
            stack.append(node["additionalProperties"])
    return out


_STATUS_FIELDS: dict[str, Any] = {
    "sync": {"type": "object", "description": "status (Synced, OutOfSync, Unknown), revision(s), comparedTo"},
    "health": {"type": "object", "description": "status (Healthy, Progressing, ...), message, lastTransitionTime"},
    "resources": {"type": "array", "items": {"type": "object"}, "description": "per-object sync and health"},
    "conditions": {"type": "array", "items": {"type": "object"}, "description": "Ready, Reconciling, Stalled, errors"},
    "summary": {"type": "object", "description": "images and external URLs"},
    "history": {"type": "array", "items": {"type": "object"}, "description": "full successful syncs, newest last"},
    "operationState": {"type": "object", "description": "the current or last operation and its results"},
    "reconciledAt": {"type": "string", "description": "when the app was last compared"},
    "sourceType": {"type": "string"},
    "sourceTypes": {"type": "array", "items": {"type": "string"}},
}


def _definition(
    plural: str, kind: str, short: list[str], schema: dict[str, Any], *, status: bool, columns: list[dict[str, Any]]
) -> dict[str, Any]:
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": schema},
    }
    if status:
        version["subresources"] = {"status": {}}
    if columns:
        version["additionalPrinterColumns"] = columns
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": plural,
                "singular": kind.lower(),
                "kind": kind,
                "listKind": f"{kind}List",
                "shortNames": short,
            },
            "versions": [version],
        },
    }


def application_crd() -> dict[str, Any]:
    spec = structural(ApplicationSpec.model_json_schema(by_alias=True))
    operation = structural(Operation.model_json_schema(by_alias=True))
    operation[_PRESERVE] = True
    operation["description"] = "A sync requested by a user or the API; the controller starts it and clears this."
    schema = _root(
        {
            "spec": spec,
            "operation": operation,
            "status": _free_object("Written by the controller (Argo CD's ApplicationStatus shape).", _STATUS_FIELDS),
        },
        ["spec"],
    )
    columns: list[dict[str, Any]] = [
        {"name": "Sync Status", "type": "string", "jsonPath": ".status.sync.status"},
        {"name": "Health Status", "type": "string", "jsonPath": ".status.health.status"},
        {"name": "Revision", "type": "string", "jsonPath": ".status.sync.revision", "priority": 10},
        {"name": "Project", "type": "string", "jsonPath": ".spec.project", "priority": 10},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return _definition("applications", "Application", ["app", "apps"], schema, status=True, columns=columns)


def project_crd() -> dict[str, Any]:
    spec = structural(ProjectSpec.model_json_schema(by_alias=True))
    schema = _root({"spec": spec, "status": _free_object("Written by Tether.")}, [])
    columns: list[dict[str, Any]] = [
        {"name": "Description", "type": "string", "jsonPath": ".spec.description"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return _definition("projects", "Project", ["proj", "projs"], schema, status=False, columns=columns)


def crds() -> list[dict[str, Any]]:
    """The CustomResourceDefinitions of Application and Project, as ``tether install`` applies them."""
    return [application_crd(), project_crd()]


def render_yaml(crd: dict[str, Any]) -> str:
    """The YAML text a CRD is checked in as (and what ``kubectl apply -f`` reads)."""
    header = "# Generated by `python -m tether.model.crd` from the pydantic models; do not edit.\n"
    return header + yaml.safe_dump(crd, sort_keys=False, width=120)


def crd_files() -> dict[Path, str]:
    """Where each CRD is checked in, and the text it must have."""
    return {CRD_DIR / f"{crd['metadata']['name']}.yaml": render_yaml(crd) for crd in crds()}


def main() -> int:
    CRD_DIR.mkdir(exist_ok=True)
    for path, text in crd_files().items():
        path.write_text(text)
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
