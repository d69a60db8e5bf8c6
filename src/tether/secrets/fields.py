"""Which fields of which objects hold secret values: JSON pointers, recorded when placeholders resolve.

A value is secret because of where it came from, not because of what it looks like: once a
``pass`` entry changes, the old value still sits in the live object and no redactor knows it.
So resolution records, per object, the pointer of every field it filled from a placeholder
(``/spec/template/spec/containers/0/env/1/value``), and every display masks those fields on
both sides, live and desired, whatever they hold.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from tether.resource import ResourceKey


def pointer(tokens: Iterable[str | int]) -> str:
    """The RFC 6901 pointer naming ``tokens``: (``data``, ``a/b``) → ``/data/a~1b``."""
    return "".join("/" + str(token).replace("~", "~0").replace("/", "~1") for token in tokens)


def tokens(pointer_text: str) -> list[str]:
    """``/a/b~1c/0`` → [``a``, ``b/c``, ``0``]; ``""`` is the whole document."""
    if not pointer_text:
        return []
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer_text[1:].split("/")]


def mask_field(obj: Any, pointer_text: str, mask: str) -> bool:
    """Replace the value at ``pointer_text`` in place with ``mask``; False when the object has no such field."""
    path = tokens(pointer_text)
    if not path:
        return False
    node = obj
    for token in path[:-1]:
        node = _child(node, token)
        if node is None:
            return False
    last = path[-1]
    if isinstance(node, dict) and last in node:
        node[last] = mask
        return True
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = mask
        return True
    return False


def _child(node: Any, token: str) -> Any:
    if isinstance(node, dict):
        return node.get(token)
    if isinstance(node, list) and token.isdigit() and int(token) < len(node):
        return node[int(token)]
    return None


class SecretFields:
    """A thread-safe, grow-only record of the placeholder fields of every object resolved in this process.

    Keyed by (group, kind, name) and then namespace, because resolution sees objects before
    the destination namespace is filled in (``""``), while a diff sees them after. Entries
    are never removed: a stale entry only masks a field that no longer needs it, while a
    dropped one could show an old value.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fields: dict[tuple[str, str, str], dict[str, frozenset[str]]] = {}

    def add(self, key: ResourceKey, pointers: Iterable[str]) -> None:
        """Record that ``key``'s fields at ``pointers`` hold secret values."""
        new = frozenset(pointers)
        if not new:
            return
        with self._lock:
            by_namespace = self._fields.setdefault((key.group, key.kind, key.name), {})
            by_namespace[key.namespace] = by_namespace.get(key.namespace, frozenset()) | new

    def add_all(self, fields: Mapping[ResourceKey, Iterable[str]]) -> None:
        for key, pointers in fields.items():
            self.add(key, pointers)

    def of(self, key: ResourceKey) -> frozenset[str]:
        """The secret fields of ``key``: its own, those recorded without a namespace, or, for a
        key without one (a cluster-scoped kind), those recorded under any namespace."""
        with self._lock:
            by_namespace = self._fields.get((key.group, key.kind, key.name))
            if not by_namespace:
                return frozenset()
            if not key.namespace:
                return frozenset().union(*by_namespace.values())
            return by_namespace.get(key.namespace, frozenset()) | by_namespace.get("", frozenset())
