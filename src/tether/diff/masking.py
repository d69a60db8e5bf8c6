"""Secret values never leave the diff: each value becomes ``++++++++``, with a mark when it changed.

Masking happens on the normalised objects, before paths, text or results are made from
them, so neither the text diff nor the structured result can carry a value. Whether a key
changed is decided on the real values first; only the verdict survives.

Two kinds of field are secret: every ``data``/``stringData`` value of a Secret, and every
field that was filled from a ``pass`` placeholder (its JSON pointer, recorded when the
placeholder resolved). Both are masked on both sides: the live side may still hold the value
the entry had before it changed, which no redactor knows.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from tether.diff import pointer
from tether.diff.normalise import is_secret
from tether.resource import json_copy

SECRET_MASK = "++++++++"
CHANGED_MASK = SECRET_MASK + " (changed)"
SECRET_FIELDS = ("data", "stringData")


def mask_secret(
    live: Mapping[str, Any] | None, desired: Mapping[str, Any] | None, fields: Collection[str] = ()
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Copies of a live and a desired object with every secret field masked on both sides.

    ``fields`` are the JSON pointers of the fields filled from placeholders (as rendered:
    ``/stringData/x`` of a Secret is looked for at ``/data/x``, where ``normalise`` put it).
    A field or Secret key whose value differs (or exists on one side only) shows
    ``++++++++ (changed)`` on the desired side and ``++++++++`` on the live side, so a text
    diff shows which fields change and nothing else.
    """
    live_out = json_copy(dict(live)) if live is not None else None
    desired_out = json_copy(dict(desired)) if desired is not None else None
    secret = is_secret(live) or is_secret(desired)
    for field in fields:
        _mask_field(live_out, desired_out, _placed(field, secret))
    if not secret:
        return live_out, desired_out
    for name in SECRET_FIELDS:
        live_values = _values(live_out, name)
        desired_values = _values(desired_out, name)
        for key in live_values.keys() | desired_values.keys():
            changed = key not in live_values or key not in desired_values or live_values[key] != desired_values[key]
            if key in live_values:
                live_values[key] = SECRET_MASK
            if key in desired_values:
                desired_values[key] = CHANGED_MASK if changed else SECRET_MASK
    for obj in (live_out, desired_out):
        if obj is not None:
            _mask_last_applied(obj)
    return live_out, desired_out


def _placed(field: str, secret: bool) -> tuple[str, ...]:
    """The pointer's tokens where the normalised object has the field."""
    tokens = pointer.parse(field) if field.startswith("/") else ()
    if secret and tokens[:1] == ("stringData",):
        return ("data", *tokens[1:])
    return tokens


def _mask_field(live: dict[str, Any] | None, desired: dict[str, Any] | None, tokens: tuple[str, ...]) -> None:
    """Mask the field ``tokens`` name on both sides (in place), marking the desired side when it differs."""
    if not tokens:
        return
    live_path = pointer.resolve(live, tokens) if live is not None else None
    desired_path = pointer.resolve(desired, tokens) if desired is not None else None
    if live_path is None and desired_path is None:
        return
    changed = (
        live_path is None or desired_path is None or pointer.get(live, live_path) != pointer.get(desired, desired_path)
    )
    if live_path is not None:
        pointer.set_value(live, live_path, SECRET_MASK)
    if desired_path is not None:
        pointer.set_value(desired, desired_path, CHANGED_MASK if changed else SECRET_MASK)


def _values(obj: dict[str, Any] | None, name: str) -> dict[str, Any]:
    if obj is None:
        return {}
    values = obj.get(name)
    if isinstance(values, dict):
        return values
    if values is not None:
        obj[name] = SECRET_MASK  # not a map: the server will reject it, but never show it
    return {}


def _mask_last_applied(obj: dict[str, Any]) -> None:
    """kubectl's last-applied annotation holds a Secret's values in clear text."""
    annotations = (obj.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict) and "kubectl.kubernetes.io/last-applied-configuration" in annotations:
        annotations["kubectl.kubernetes.io/last-applied-configuration"] = SECRET_MASK
