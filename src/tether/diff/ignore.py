"""``ignoreDifferences`` in Argo CD's format: fields that never count as drift.

A rule names objects by ``group`` and ``kind`` (``*`` globs allowed, ``""`` is the core
group) and optionally ``name`` and ``namespace``, and the fields to ignore three ways:

- ``jsonPointers``: RFC 6901 pointers (``/spec/replicas``).
- ``jqPathExpressions``: jq path expressions; what ``del(expr)`` would delete is ignored.
  Evaluated in a killable worker with a deadline (see ``tether.diff.jq``). An expression
  that fails on a particular object (``Cannot iterate over null``) ignores nothing there,
  as in Argo CD; one that does not compile, or runs past its deadline, fails the diff.
- ``managedFieldsManagers``: every leaf field the named field managers own in the *live*
  object's ``managedFields`` (``fieldsV1``), on both sides. Only leaves are ignored, not the
  maps or list items a manager also claims (``.``), so another field inside them still counts.

Ignored fields are removed from both the live and the predicted object before they are
compared. With ``RespectIgnoreDifferences=true`` sync calls ``respect_ignored`` so an
apply does not overwrite them either.
"""

from __future__ import annotations

import copy
import fnmatch
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from tether.diff import pointer
from tether.diff.errors import DiffError, JqError
from tether.diff.jq import DEFAULT_TIMEOUT, JqRunner
from tether.resource import ResourceKey, json_copy

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class KeySelector:
    """``k:{"name":"web"}`` in fieldsV1: the list item whose fields have these values."""

    fields: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class ValueSelector:
    """``v:"x"`` in fieldsV1: the set-like list item equal to this value."""

    value: Any


Step = str | int | KeySelector | ValueSelector


@dataclass(frozen=True)
class IgnoreRule:
    """One ``ignoreDifferences`` entry."""

    group: str = "*"
    kind: str = "*"
    name: str | None = None
    namespace: str | None = None
    json_pointers: tuple[str, ...] = ()
    jq_path_expressions: tuple[str, ...] = ()
    managed_fields_managers: tuple[str, ...] = ()

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | IgnoreRule, *, where: str = "ignoreDifferences") -> IgnoreRule:
        """Read an Argo CD ``ignoreDifferences`` entry; pointers are checked here, so mistakes show early."""
        if isinstance(spec, IgnoreRule):
            return spec
        if not isinstance(spec, Mapping):
            raise DiffError(f"{where}: expected a mapping, got {type(spec).__name__}")
        known = {"group", "kind", "name", "namespace", "jsonPointers", "jqPathExpressions", "managedFieldsManagers"}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise DiffError(f"{where}: unknown field(s) {', '.join(unknown)}")

        def strings(field: str) -> tuple[str, ...]:
            value = spec.get(field) or []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise DiffError(f"{where}.{field}: expected a list of strings")
            return tuple(value)

        pointers = strings("jsonPointers")
        for index, value in enumerate(pointers):
            try:
                pointer.parse(value)
            except DiffError as exc:
                raise DiffError(f"{where}.jsonPointers[{index}]: {exc}") from None
        kind = spec.get("kind")
        if not kind:
            raise DiffError(f'{where}.kind: required (use "*" for every kind)')
        return cls(
            group=str(spec.get("group") if spec.get("group") is not None else ""),
            kind=str(kind),
            name=spec.get("name") or None,
            namespace=spec.get("namespace") or None,
            json_pointers=pointers,
            jq_path_expressions=strings("jqPathExpressions"),
            managed_fields_managers=strings("managedFieldsManagers"),
        )

    def matches(self, key: ResourceKey) -> bool:
        return (
            fnmatch.fnmatchcase(key.group, self.group)
            and fnmatch.fnmatchcase(key.kind, self.kind)
            and (self.name is None or self.name == key.name)
            and (self.namespace is None or self.namespace == key.namespace)
        )


def parse_ignore_differences(specs: Iterable[Mapping[str, Any] | IgnoreRule]) -> list[IgnoreRule]:
    """Rules from an app's ``spec.ignoreDifferences`` list (entries already parsed pass through)."""
    return [IgnoreRule.from_spec(spec, where=f"ignoreDifferences[{index}]") for index, spec in enumerate(specs)]


# --------------------------------------------------------------------- managedFields


def manager_paths(live: Mapping[str, Any] | None, managers: Iterable[str]) -> list[tuple[Step, ...]]:
    """The leaf fields ``managers`` own in ``live``'s managedFields, as symbolic paths."""
    wanted = set(managers)
    paths: list[tuple[Step, ...]] = []
    if not wanted or not live:
        return paths
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") in wanted and entry.get("fieldsType", "FieldsV1") == "FieldsV1":
            field_paths(entry.get("fieldsV1") or {}, paths)
    return paths


def field_paths(
    node: Mapping[str, Any], out: list[tuple[Step, ...]], *, members: bool = False, prefix: tuple[Step, ...] = ()
) -> None:
    """Append the paths of a fieldsV1 trie to ``out``: its leaves, and with ``members`` also the maps
    and list items it claims itself (``"."``) besides fields inside them."""
    for raw, child in node.items():
        if raw == ".":
            continue
        step = _fields_step(raw)
        if step is None:
            continue
        if isinstance(child, Mapping) and any(k != "." for k in child):
            if members and "." in child:
                out.append(prefix + (step,))
            field_paths(child, out, members=members, prefix=prefix + (step,))
        else:
            out.append(prefix + (step,))


def _fields_step(raw: str) -> Step | None:
    kind, _, rest = raw.partition(":")
    try:
        if kind == "f":
            return rest
        if kind == "i":
            return int(rest)
        if kind == "k":
            fields = json.loads(rest)
            return KeySelector(tuple(sorted(fields.items()))) if isinstance(fields, dict) else None
        if kind == "v":
            return ValueSelector(json.loads(rest))
    except ValueError:
        return None
    return None


def resolve(doc: Any, steps: Sequence[Step]) -> pointer.Path | None:
    """The concrete path ``steps`` name in ``doc`` (selectors matched against list items), or None."""
    node, path = doc, list[str | int]()
    for step in steps:
        if isinstance(step, (KeySelector, ValueSelector)):
            if not isinstance(node, list):
                return None
            index = next((i for i, item in enumerate(node) if _selected(item, step)), None)
            if index is None:
                return None
            node = node[index]
            path.append(index)
        else:
            concrete = pointer.resolve(node, (step,))
            if concrete is None:
                return None
            node = pointer.get(node, concrete)
            path.append(concrete[0])
    return tuple(path)


def _selected(item: Any, step: KeySelector | ValueSelector) -> bool:
    if isinstance(step, ValueSelector):
        return item == step.value
    return isinstance(item, dict) and all(item.get(k) == v for k, v in step.fields)


# --------------------------------------------------------------------- applying rules


def _what(key: ResourceKey, app: str | None) -> str:
    return f"app {app!r}: {key}" if app else str(key)


async def _ignored(
    doc: Mapping[str, Any],
    key: ResourceKey,
    rules: Sequence[IgnoreRule],
    managed: Sequence[tuple[Step, ...]],
    jq: JqRunner,
    app: str | None,
) -> list[pointer.Path]:
    """Concrete paths of ``doc`` that the rules matching ``key`` ignore."""
    found: list[pointer.Path] = []
    for rule in rules:
        if not rule.matches(key):
            continue
        for value in rule.json_pointers:
            path = pointer.resolve(doc, pointer.parse(value))
            if path:
                found.append(path)
        for expr in rule.jq_path_expressions:
            try:
                found.extend(p for p in await jq.paths(expr, doc, what=_what(key, app)) if p)
            except JqError as exc:
                if exc.fatal:
                    raise
                # Fails on this object only (e.g. iterates over a missing list): nothing to ignore here.
                log.debug("jq expression ignores nothing on this object", app=app, object=str(key), expr=expr)
    for steps in managed:
        path = resolve(doc, steps)
        if path:
            found.append(path)
    return found


def _managed_for(
    key: ResourceKey, live: Mapping[str, Any] | None, rules: Sequence[IgnoreRule]
) -> list[tuple[Step, ...]]:
    managers = {m for rule in rules if rule.matches(key) for m in rule.managed_fields_managers}
    return manager_paths(live, managers)


async def strip_ignored(
    live: dict[str, Any] | None,
    predicted: dict[str, Any] | None,
    key: ResourceKey,
    rules: Sequence[IgnoreRule],
    *,
    managed_from: Mapping[str, Any] | None,
    jq: JqRunner,
    app: str | None = None,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Both sides without the fields the rules ignore (managedFields read from ``managed_from``).

    Sides a rule applies to are copied first, so what the caller passed (which may share maps
    with the live cache, see ``normalise``) is never changed; the others are returned as they are.
    """
    if not any(rule.matches(key) for rule in rules):
        return live, predicted
    managed = _managed_for(key, managed_from, rules)
    stripped: list[dict[str, Any] | None] = []
    for doc in (live, predicted):
        if doc is not None:
            doc = json_copy(doc)
            pointer.remove_all(doc, await _ignored(doc, key, rules, managed, jq, app))
        stripped.append(doc)
    return stripped[0], stripped[1]


async def apply_ignores(
    obj: Mapping[str, Any],
    rules: Sequence[IgnoreRule | Mapping[str, Any]],
    *,
    managed_from: Mapping[str, Any] | None = None,
    jq_timeout: float = DEFAULT_TIMEOUT,
    app: str | None = None,
) -> dict[str, Any]:
    """A copy of ``obj`` without the fields ``rules`` ignore (managers read from ``managed_from``, default ``obj``)."""
    parsed = parse_ignore_differences(rules)
    async with JqRunner(jq_timeout) as jq:
        out, _ = await strip_ignored(
            json_copy(dict(obj)), None, ResourceKey.of(obj), parsed, managed_from=managed_from or obj, jq=jq, app=app
        )
    assert out is not None
    return out


async def respect_ignored(
    desired: Mapping[str, Any],
    live: Mapping[str, Any] | None,
    rules: Sequence[IgnoreRule | Mapping[str, Any]],
    *,
    jq_timeout: float = DEFAULT_TIMEOUT,
    app: str | None = None,
) -> dict[str, Any]:
    """``desired`` with each ignored field it sets given ``live``'s value, or removed when live lacks it.

    For ``RespectIgnoreDifferences=true``: applying the result leaves ignored fields as they
    are in the cluster. Fields desired does not set are not added. jq and pointer paths are
    found in desired and looked up at the same path in live; managedFields paths are matched
    on each side by their list-item keys. With no live object, desired comes back unchanged
    (a create has nothing to respect).
    """
    out = json_copy(dict(desired))
    if live is None:
        return out
    parsed = parse_ignore_differences(rules)
    key = ResourceKey.of(desired)
    if not any(rule.matches(key) for rule in parsed):
        return out
    async with JqRunner(jq_timeout) as jq:
        paths = await _ignored(out, key, parsed, [], jq, app)
    pairs = [(path, path) for path in paths]
    for steps in _managed_for(key, live, parsed):
        mine = resolve(out, steps)
        if mine:
            pairs.append((mine, resolve(live, steps) or ()))
    sentinel = object()
    removals = []
    for mine, theirs in pairs:
        value = pointer.get(live, theirs, sentinel) if theirs else sentinel
        if value is sentinel:
            removals.append(mine)
        else:
            pointer.set_value(out, mine, copy.deepcopy(value))
    pointer.remove_all(out, removals)
    return out
