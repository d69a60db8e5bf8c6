"""Reading fields of a Kubernetes object given as plain dicts, the way the typed Go structs would.

Argo CD converts an object to its typed struct before looking at it, so an absent field
reads as the zero value and a field of the wrong type fails the whole check. These
helpers do the same: absent gives the default, a wrong type raises ``FieldError``, which
the caller turns into ``Unknown`` with the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class FieldError(ValueError):
    """A field holds a value of the wrong type for its kind."""


def field(obj: Mapping[str, Any], *path: str) -> Any:
    """The value at ``path`` (e.g. ``"status", "replicas"``), or None when any step is absent."""
    value: Any = obj
    walked: list[str] = []
    for key in path:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise FieldError(f".{'.'.join(walked)} is a {type(value).__name__}, not an object")
        value = value.get(key)
        walked.append(key)
    return value


def integer(obj: Mapping[str, Any], *path: str, default: int = 0) -> int:
    """An integer field; ``default`` when absent (Go's zero value unless said otherwise)."""
    value = field(obj, *path)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise FieldError(f".{'.'.join(path)} is {value!r}, not an integer")
    return int(value)


def optional_integer(obj: Mapping[str, Any], *path: str) -> int | None:
    """An integer field whose absence means something (Go's ``*int32``), e.g. ``spec.replicas``."""
    if field(obj, *path) is None:
        return None
    return integer(obj, *path)


def text(obj: Mapping[str, Any], *path: str) -> str:
    """A string field; empty when absent."""
    value = field(obj, *path)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FieldError(f".{'.'.join(path)} is {value!r}, not a string")
    return value


def flag(obj: Mapping[str, Any], *path: str) -> bool:
    """A boolean field; false when absent."""
    value = field(obj, *path)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise FieldError(f".{'.'.join(path)} is {value!r}, not a boolean")
    return value


def items(obj: Mapping[str, Any], *path: str) -> list[Any]:
    """A list field; empty when absent."""
    value = field(obj, *path)
    if value is None:
        return []
    if not isinstance(value, list):
        raise FieldError(f".{'.'.join(path)} is a {type(value).__name__}, not a list")
    return value


def conditions(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``status.conditions``, each checked to be an object."""
    found = items(obj, "status", "conditions")
    for condition in found:
        if not isinstance(condition, Mapping):
            raise FieldError(f".status.conditions holds a {type(condition).__name__}, not an object")
    return found


def condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    """The first condition of type ``kind``, if any."""
    for found in conditions(obj):
        if found.get("type") == kind:
            return found
    return None


def condition_text(found: Mapping[str, Any], key: str) -> str:
    """``status``, ``reason`` or ``message`` of a condition, as a string."""
    value = found.get(key)
    return "" if value is None else str(value)
