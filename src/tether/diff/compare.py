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


# libyaml's emitter, when PyYAML was built with it, is several times faster than the pure-Python
# one. It escapes characters beyond the Basic Multilingual Plane (an emoji becomes ``\U0001F600``),
# so output holding such an escape is emitted again by the Python emitter, which keeps them readable.
# Both read back to the same object; they differ only in how they quote rare control characters and an empty key.
_FAST_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_DUMP_OPTIONS: dict[str, Any] = {"sort_keys": True, "default_flow_style": False, "width": 1000, "allow_unicode": True}


def to_yaml(obj: Any) -> str:
    """Stable YAML for a diff: keys sorted, no aliases, wide lines."""
    if obj is None:
        return ""
    text: str = yaml.dump(obj, Dumper=_FAST_DUMPER, **_DUMP_OPTIONS)
    if "\\U" in text:
        text = yaml.dump(obj, Dumper=yaml.SafeDumper, **_DUMP_OPTIONS)
    return text


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
