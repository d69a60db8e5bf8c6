"""RFC 6901 JSON pointers over plain dicts and lists: parse, read, remove and set.

Ignore rules, changed-path reports and ``respect_ignored`` all speak in pointers, so one
small, strict implementation serves them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.diff.errors import DiffError

Path = tuple[str | int, ...]
_MISSING = object()


def parse(pointer: str) -> tuple[str, ...]:
    """``/a/b~1c/0`` → (``a``, ``b/c``, ``0``); ``""`` is the whole document."""
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise DiffError(f"JSON pointer {pointer!r} must start with '/'")
    return tuple(token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/"))


def format_path(path: Sequence[str | int]) -> str:
    """The pointer naming ``path``: (``metadata``, ``labels``, ``a/b``) → ``/metadata/labels/a~1b``."""
    return "".join("/" + str(step).replace("~", "~0").replace("/", "~1") for step in path)


def _step(node: Any, token: str | int) -> tuple[Any, str | int] | None:
    """The child of ``node`` named by ``token`` and the index/key it resolved to, or None."""
    if isinstance(node, dict):
        key = str(token)
        return (node[key], key) if key in node else None
    if isinstance(node, list):
        if isinstance(token, int):
            index = token
        elif token.isdigit() and (token == "0" or not token.startswith("0")):
            index = int(token)
        else:
            return None
        return (node[index], index) if 0 <= index < len(node) else None
    return None


def resolve(doc: Any, tokens: Sequence[str | int]) -> Path | None:
    """The concrete path (list indexes as ints) that ``tokens`` name in ``doc``, or None if absent."""
    node, path = doc, []
    for token in tokens:
        found = _step(node, token)
        if found is None:
            return None
        node, key = found
        path.append(key)
    return tuple(path)


def get(doc: Any, path: Sequence[str | int], default: Any = None) -> Any:
    """The value at a concrete path, or ``default``."""
    node = doc
    for token in path:
        found = _step(node, token)
        if found is None:
            return default
        node = found[0]
    return node


def has(doc: Any, path: Sequence[str | int]) -> bool:
    return get(doc, path, _MISSING) is not _MISSING


def remove(doc: Any, path: Sequence[str | int]) -> bool:
    """Delete the value at a concrete path in place; False when it was not there. The root stays."""
    if not path:
        return False
    parent = get(doc, path[:-1], _MISSING)
    if parent is _MISSING:
        return False
    found = _step(parent, path[-1])
    if found is None:
        return False
    del parent[found[1]]
    return True


def set_value(doc: Any, path: Sequence[str | int], value: Any) -> bool:
    """Replace (or add, for a dict key) the value at a concrete path in place; False when the parent is absent."""
    if not path:
        return False
    parent = get(doc, path[:-1], _MISSING)
    if isinstance(parent, dict):
        parent[str(path[-1])] = value
        return True
    found = _step(parent, path[-1]) if isinstance(parent, list) else None
    if found is None:
        return False
    parent[found[1]] = value
    return True


def remove_all(doc: Any, paths: Sequence[Sequence[str | int]]) -> None:
    """Delete several concrete paths; deepest and highest list index first, so indexes stay valid."""
    for path in sorted({tuple(p) for p in paths}, key=_removal_order, reverse=True):
        remove(doc, path)


def _removal_order(path: tuple[str | int, ...]) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, step) if isinstance(step, int) else (1, step) for step in path)
