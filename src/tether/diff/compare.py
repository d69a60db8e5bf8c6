"""What differs between two normalised objects: JSON-pointer paths and a unified YAML diff."""

from __future__ import annotations

import difflib
from typing import Any

import yaml

from tether.diff.pointer import format_path


def changed_paths(live: Any, predicted: Any) -> list[str]:
    """Pointers to every leaf that differs (a map key on one side only, or a list of another length, counts whole)."""
    found: list[str] = []
    _walk(live, predicted, (), found)
    return found


def _walk(a: Any, b: Any, path: tuple[str | int, ...], found: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() | b.keys()):
            if key not in a or key not in b:
                found.append(format_path(path + (key,)))
            else:
                _walk(a[key], b[key], path + (key,), found)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            _walk(x, y, path + (index,), found)
    elif a != b or type(a) is not type(b):
        found.append(format_path(path))


def to_yaml(obj: Any) -> str:
    """Stable YAML for a diff: keys sorted, no aliases, wide lines."""
    if obj is None:
        return ""
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False, width=1000, allow_unicode=True)


def unified(live: Any, predicted: Any, label: str) -> str:
    """A unified diff from the live object to the predicted one ('' when they are the same)."""
    lines = difflib.unified_diff(
        to_yaml(live).splitlines(),
        to_yaml(predicted).splitlines(),
        fromfile=f"live: {label}",
        tofile=f"desired: {label}",
        lineterm="",
    )
    return "\n".join(lines)
