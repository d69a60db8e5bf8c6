"""Parse manifest text into Kubernetes objects the way Argo CD's repo server does, within bounds.

YAML is read like Go's sigs.k8s.io/yaml reads it: no timestamps (they stay strings),
no sexagesimal numbers, no ``=`` value tag, so a ConfigMap value such as ``12:30`` or
``2024-01-01`` keeps its text; integer and boolean mapping keys become their text
(``8080: x`` is ``"8080": x``), as Go's YAML-to-JSON conversion does. Empty documents
are skipped; every other document must be a mapping with ``apiVersion`` and ``kind``;
``kind: *List`` objects are flattened into their items (Argo CD flattens lists from
every source type).

Everything here reads untrusted text (a repository, a tool's output, a file given to
``tether health``), so parsing is bounded *before* any Python object is built: each YAML
document is composed into its node graph first (cheap: an alias is a shared node), the
graph is measured with aliases counted as expanded (``ParseLimits``), and only then
constructed. Recursive aliases, values that are not JSON (``!!binary``, ``!!set``,
``!!timestamp``, NaN, null keys, …), over-deep nesting and huge integers are errors, so
every stage after this one can trust that an object is plain JSON data with
Kubernetes' shape (see ``tether.render.shape``).
"""

from __future__ import annotations

import gc
import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from tether.errors import Reason, TetherError
from tether.render.shape import ShapeError, check_object, field_path

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

_TAG = "tag:yaml.org,2002:"
_STR, _INT_TAG, _FLOAT_TAG, _BOOL, _NULL = (_TAG + n for n in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ, _MERGE = _TAG + "map", _TAG + "seq", _TAG + "merge"
MAX_INT_DIGITS = 4300  # Python's own limit on int <-> str conversion (sys.get_int_max_str_digits)


@dataclass(frozen=True)
class ParseLimits:
    """What one YAML/JSON document may expand to; aliases count as often as they are used.

    The defaults are far above real manifests: the API server refuses objects over ~1.5 MB
    (about 100,000 nodes), and the deepest CRD schemas (a pod template inside an
    OpenAPI schema) nest about 50 levels. They stay below what the rest of the engine can
    walk recursively (Python's recursion limit, ~1,000 frames, is reached near 300 levels).
    """

    max_nodes: int = 1_000_000  # nodes of one document, aliases expanded
    max_depth: int = 128  # nesting levels of one document
    max_scalar: int = 4 * 1024 * 1024  # characters of one string, key or number
    max_chars: int = 64 * 1024 * 1024  # characters of all scalars of one document, aliases expanded


DEFAULT_LIMITS = ParseLimits()


class ManifestError(TetherError, ValueError):
    """Text that is not a set of Kubernetes objects; the message says which document, field and why."""

    reason = Reason.RENDER_FAILED


class YamlSyntaxError(ManifestError):
    """Text that is not YAML at all (as opposed to YAML refused by a limit or holding a malformed object)."""


def load_yaml_documents(text: str, limits: ParseLimits = DEFAULT_LIMITS) -> Iterator[Any]:
    """Every document of a multi-document YAML stream, bounded by ``limits``, as JSON-compatible data.

    Errors say ``document N: <field>: <why>``. Aliases may add at most ``limits.max_nodes``
    nodes to the whole stream, so many small bombs cannot add up to a big one.
    """
    loader = KubeYamlLoader(text)
    budget = limits.max_nodes + 2 * len(text)  # alias-free text never has more nodes than that
    number = 0
    try:
        while True:
            number += 1
            try:
                with _gc_paused():
                    if not loader.check_node():
                        return
                    node = loader.get_node()
                    size = _measure(loader, node, limits)
                    budget -= size
                    if budget < 0:
                        raise _Refused(f"aliases expand the file to more than {limits.max_nodes} nodes beyond its text")
                    document = loader.construct_document(node)
                yield document
            except yaml.YAMLError as exc:
                raise YamlSyntaxError(f"invalid YAML in document {number}: {exc}") from None
            except _Refused as exc:
                raise ManifestError(f"document {number}: {exc}") from None
            except RecursionError:
                raise ManifestError(f"document {number}: nested too deeply") from None
    finally:
        loader.dispose()


def load_yaml(text: str, limits: ParseLimits = DEFAULT_LIMITS) -> Any:
    """One YAML document (a kustomization, a Chart.yaml, values), bounded and JSON-compatible."""
    documents = load_yaml_documents(text, limits)
    first = next(documents, None)
    if next(documents, None) is not None:
        raise ManifestError("expected a single YAML document, found several")
    return first


@dataclass(frozen=True)
class Manifests:
    """A render's objects in order and, beside each, the repository file it came from ("" where not known)."""

    objects: list[dict[str, Any]]
    files: tuple[str, ...]

    @classmethod
    def all_from(cls, objects: list[dict[str, Any]], file: str) -> Manifests:
        return cls(objects, (file,) * len(objects))


def objects_from_yaml(text: str, limits: ParseLimits = DEFAULT_LIMITS) -> list[dict[str, Any]]:
    """Objects of a YAML stream: empty documents skipped, lists flattened, each checked."""
    return [obj for _, obj in objects_by_document(text, limits)]


def objects_by_document(text: str, limits: ParseLimits = DEFAULT_LIMITS) -> list[tuple[int, dict[str, Any]]]:
    """(document number, object) for each object of a YAML stream, as ``objects_from_yaml`` finds them."""
    objects: list[tuple[int, dict[str, Any]]] = []
    for number, document in enumerate(load_yaml_documents(text, limits), start=1):
        if document is not None:
            objects.extend((number, obj) for obj in flatten_checked([document], where=f"document {number}"))
    return objects


_DOCUMENT_START = re.compile(r"^---(?:[ \t]|$)")
_SOURCE_COMMENT = re.compile(r"^# Source: (\S.*?)\s*$")


def source_comments(text: str) -> list[str] | None:
    """Helm's ``# Source: chart/templates/x.yaml`` of each document of ``text`` ("" where it has none).

    Numbered as ``load_yaml_documents`` numbers documents: each ``---`` starts one, and text before
    the first counts only if it holds more than comments. None when the stream uses other YAML
    markers (``...``, directives), where counting by lines could not be trusted.
    """
    found: list[str] = []
    preamble: list[str] = []
    for line in text.splitlines():
        if line.startswith(("...", "%")):
            return None
        if _DOCUMENT_START.match(line):
            found.append("")
            continue
        if not found:
            preamble.append(line)
            continue
        match = _SOURCE_COMMENT.match(line)
        if match and not found[-1]:
            found[-1] = match.group(1)
    if any(line.strip() and not line.lstrip().startswith("#") for line in preamble):
        found.insert(0, "")
    return found


def objects_from_json(text: str, limits: ParseLimits = DEFAULT_LIMITS) -> list[dict[str, Any]]:
    """Objects of a JSON file: one object (Argo CD allows exactly one), a List flattened."""
    try:
        document = json.loads(text, parse_constant=_no_constant, parse_int=_json_int)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise ManifestError(f"invalid JSON: nested more than {limits.max_depth} levels") from None
    except _Refused as exc:
        raise ManifestError(f"invalid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ManifestError("a JSON manifest must hold one object")
    return flatten([document], where="the object", limits=limits)


def flatten(values: list[Any], *, where: str, limits: ParseLimits = DEFAULT_LIMITS) -> list[dict[str, Any]]:
    """Check that each value is JSON data within ``limits`` and an object; replace ``kind: *List`` by its items.

    For values parsed elsewhere (JSON, Jsonnet output); YAML documents are checked while parsing.
    """
    for value in values:
        try:
            check_value(value, limits)
        except _Refused as exc:
            raise ManifestError(f"{where}: {exc}") from None
    return flatten_checked(values, where=where)


def flatten_checked(values: list[Any], *, where: str) -> list[dict[str, Any]]:
    """Values already checked against the limits, each required to be an object, ``*List`` kinds flattened."""
    objects: list[dict[str, Any]] = []
    for value in values:
        require_object(value, where=where)
        if is_list(value):
            items = value.get("items") or []
            for index, item in enumerate(items):
                require_object(item, where=f"{where}: items[{index}] (of the {value['kind']})")
            objects.extend(items)
        else:
            objects.append(value)
    return objects


def is_list(value: dict[str, Any]) -> bool:
    return str(value.get("kind", "")).endswith("List") and isinstance(value.get("items", []), (list, type(None)))


def is_kube_object(value: Any) -> bool:
    """Whether ``value`` claims to be a Kubernetes object: a mapping with a string apiVersion and kind."""
    return isinstance(value, dict) and all(
        isinstance(value.get(key), str) and value.get(key) for key in ("apiVersion", "kind")
    )


def require_object(value: Any, *, where: str) -> None:
    """``value`` is a Kubernetes object whose fields the engine reads have the right types."""
    if not isinstance(value, dict):
        raise ManifestError(f"{where} is a {_type_name(value)}, not a Kubernetes object")
    missing = [key for key in ("apiVersion", "kind") if not isinstance(value.get(key), str) or not value.get(key)]
    if missing:
        raise ManifestError(f"{where} is not a Kubernetes object (no {' or '.join(missing)})")
    try:
        check_object(value)
    except ShapeError as exc:
        raise ManifestError(f"{where}: {exc}") from None


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while one document is parsed.

    Composing a document creates an object per node and keeps them all alive, so the
    collector's full passes, triggered by allocations, rescan the whole growing graph again
    and again: a 4 MB single-document ``kind: List`` took 7 s to compose instead of 2 s.
    The parse creates no garbage cycles except a refused recursive alias, collected later.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Refused(Exception):
    """A limit or a JSON rule broken while parsing; turned into a ManifestError naming the document."""


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"an integer has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _type_name(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "string", type(None): "null"}.get(type(value), type(value).__name__)


def _label(path: list[str | int]) -> str:
    """``spec.template.metadata.labels["app.kubernetes.io/name"]`` for a path of keys and indexes."""
    if len(path) > 12:  # an over-deep path: its start and end say enough
        return f"{_label(path[:8])}…{_label(path[-2:])}"
    shown = ""
    for part in path:
        shown = field_path(shown, part)
    return shown.lstrip(".") or "the document"


def _scalar(loader: Any, node: ScalarNode, limits: ParseLimits, path: list[str | int]) -> int:
    """Check one scalar (tag allowed, size, number well-formed and finite); returns its length."""
    tag, value = node.tag, node.value
    if len(value) > limits.max_scalar:
        raise _Refused(f"{_label(path)}: a value longer than {limits.max_scalar} characters")
    if tag in (_STR, _NULL):
        return len(value)
    if tag not in (_INT_TAG, _FLOAT_TAG, _BOOL):
        raise _Refused(f"{_label(path)}: {_shown_tag(tag)} {value[:40]!r} is not JSON data")
    if tag == _INT_TAG and len(value) > MAX_INT_DIGITS:
        raise _Refused(f"{_label(path)}: an integer of more than {MAX_INT_DIGITS} digits")
    try:
        if tag == _INT_TAG:
            loader.construct_yaml_int(node)
        elif tag == _BOOL:
            loader.construct_yaml_bool(node)
        elif not math.isfinite(loader.construct_yaml_float(node)):
            raise _Refused(f"{_label(path)}: {value!r} is not a finite number (JSON has no NaN or infinity)")
    except (ValueError, IndexError, KeyError):
        raise _Refused(f"{_label(path)}: {value[:40]!r} is not a valid {tag.removeprefix(_TAG)}") from None
    return len(value)


def _shown_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag


def _key(loader: Any, node: Node, limits: ParseLimits, path: list[str | int]) -> None:
    """Check a mapping key that is not a plain string: integer and boolean keys become their text, as in Go."""
    if not isinstance(node, ScalarNode):
        kind = "mapping" if isinstance(node, MappingNode) else "list"
        raise _Refused(f"{_label(path)}: a key must be a string, not a {kind}")
    if len(node.value) > limits.max_scalar:
        raise _Refused(f"{_label(path)}: a key longer than {limits.max_scalar} characters")
    if node.tag == _MERGE:
        return
    _scalar(loader, node, limits, path)
    if node.tag == _INT_TAG:
        node.value, node.tag = str(loader.construct_yaml_int(node)), _STR
    elif node.tag == _BOOL:
        node.value, node.tag = str(loader.construct_yaml_bool(node)).lower(), _STR
    elif node.tag != _STR:
        shown = "null" if node.tag == _NULL else f"{_shown_tag(node.tag)} {node.value!r}"
        raise _Refused(f"{_label(path)}: a key must be a string, not {shown}")


def _measure(loader: Any, root: Node, limits: ParseLimits) -> int:
    """Expanded size of a composed document (aliases counted each time), checked against ``limits``.

    Iterative post-order walk, memoised per node so an alias bomb costs as much as its
    text: (nodes, height, characters) per collection node, with the collections on the
    current path kept to spot a recursive alias. Plain string scalars, most of any
    manifest, take the inlined fast path. Raises ``_Refused`` naming the field.
    """
    if isinstance(root, ScalarNode):
        _scalar(loader, root, limits, [])
        return 1
    max_nodes, max_depth, max_chars, max_scalar = (
        limits.max_nodes,
        limits.max_depth,
        limits.max_chars,
        limits.max_scalar,
    )
    memo: dict[int, tuple[int, int, int]] = {}
    on_path: set[int] = set()
    # One frame per open collection: [node, is mapping, next child, nodes, height, characters].
    frames: list[list[Any]] = []
    path: list[str | int] = []

    def open_frame(node: Node) -> None:
        if len(frames) >= max_depth:
            raise _Refused(f"{_label(path)}: nested more than {max_depth} levels")
        if id(node) in on_path:
            raise _Refused(f"{_label(path)}: a recursive alias (a value that contains itself)")
        mapping = node.__class__ is MappingNode
        if node.tag != (_MAP if mapping else _SEQ):
            raise _Refused(f"{_label(path)}: {_shown_tag(node.tag)} is not JSON data")
        on_path.add(id(node))
        frames.append([node, mapping, 0, 1, 0, 0])

    def check(frame: list[Any], height: int) -> None:
        if frame[3] > max_nodes:
            raise _Refused(f"{_label(path)}: expands to more than {max_nodes} nodes (aliases expanded)")
        if frame[5] > max_chars:
            raise _Refused(f"{_label(path)}: expands to more than {max_chars} characters (aliases expanded)")
        if len(frames) + height > max_depth:
            raise _Refused(f"{_label(path)}: nested more than {max_depth} levels")

    open_frame(root)
    while True:
        frame = frames[-1]
        node, mapping, index, count, chars = frame[0], frame[1], frame[2], frame[3], frame[5]
        values = node.value
        opened = False
        while index < len(values):
            if mapping:
                key, child = values[index]
                if key.__class__ is not ScalarNode or key.tag != _STR or len(key.value) > max_scalar:
                    _key(loader, key, limits, path)  # converts int/bool keys, refuses the rest
                count += 1
                chars += len(key.value)
            else:
                child = values[index]
            index += 1
            if child.__class__ is ScalarNode:
                count += 1
                size = len(child.value)
                if size <= max_scalar and ((tag := child.tag) == _STR or tag == _NULL):
                    chars += size
                else:
                    chars += _scalar(loader, child, limits, [*path, key.value if mapping else index - 1])
                continue
            path.append(key.value if mapping else index - 1)
            known = memo.get(id(child))
            if known is None:
                frame[2], frame[3], frame[5] = index, count, chars
                open_frame(child)
                opened = True
                break
            count += known[0]
            chars += known[2]
            if known[1] > frame[4]:
                frame[4] = known[1]
            frame[3], frame[5] = count, chars
            check(frame, known[1])
            path.pop()
        if opened:
            continue
        frame[3], frame[5] = count, chars
        frames.pop()
        on_path.discard(id(node))
        result = (count, frame[4] + 1, chars)
        memo[id(node)] = result
        if not frames:
            check(frame, 0)
            return count
        parent = frames[-1]
        parent[3] += count
        parent[5] += chars
        if result[1] > parent[4]:
            parent[4] = result[1]
        check(parent, result[1])
        path.pop()


def check_value(value: Any, limits: ParseLimits = DEFAULT_LIMITS) -> None:
    """``value`` (parsed from JSON, made by Jsonnet) is JSON data within ``limits``; raises ``_Refused``.

    Iterative, so depth is checked before anything recursive touches the value.
    """
    nodes = chars = 0
    # (value, depth, parent entry, key or index): the path is rebuilt only for an error.
    stack: list[tuple[Any, int, Any, str | int | None]] = [(value, 1, None, None)]

    def where(entry: Any) -> str:
        parts: list[str | int] = []
        while entry is not None and entry[3] is not None:
            parts.append(entry[3])
            entry = entry[2]
        return _label(parts[::-1])

    while stack:
        entry = stack.pop()
        item, depth = entry[0], entry[1]
        nodes += 1
        if nodes > limits.max_nodes:
            raise _Refused(f"more than {limits.max_nodes} nodes")
        if depth > limits.max_depth:
            raise _Refused(f"{where(entry)}: nested more than {limits.max_depth} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise _Refused(f"{where(entry)}: a key must be a string, not {_type_name(key)}")
                chars += len(key)
                stack.append((child, depth + 1, entry, key))
        elif isinstance(item, list):
            stack.extend((child, depth + 1, entry, index) for index, child in enumerate(item))
        elif isinstance(item, str):
            if len(item) > limits.max_scalar:
                raise _Refused(f"{where(entry)}: a value longer than {limits.max_scalar} characters")
            chars += len(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise _Refused(f"{where(entry)}: {item!r} is not a finite number")
        elif not isinstance(item, (int, type(None))):
            raise _Refused(f"{where(entry)}: a {_type_name(item)} is not JSON data")
        if chars > limits.max_chars:
            raise _Refused(f"more than {limits.max_chars} characters")
