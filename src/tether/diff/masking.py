"""Secret values never leave the diff: each value becomes ``++++++++``, with a mark when it changed.

Masking happens on the normalised objects, before paths, text or results are made from
them, so neither the text diff nor the structured result can carry a value. Whether a key
changed is decided on the real values first; only the verdict survives.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from tether.diff.normalise import is_secret

SECRET_MASK = "++++++++"
CHANGED_MASK = SECRET_MASK + " (changed)"
SECRET_FIELDS = ("data", "stringData")


def mask_secret(
    live: Mapping[str, Any] | None, desired: Mapping[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Copies of a live and a desired Secret with every ``data``/``stringData`` value masked.

    A key whose value differs (or exists on one side only) shows ``++++++++ (changed)`` on the
    desired side and ``++++++++`` on the live side, so a text diff shows which keys change
    and nothing else. Objects that are not Secrets come back as plain copies.
    """
    live_out = copy.deepcopy(dict(live)) if live is not None else None
    desired_out = copy.deepcopy(dict(desired)) if desired is not None else None
    if not (is_secret(live) or is_secret(desired)):
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
