"""Knowing, without asking the server, that a server-side apply would change nothing.

A dry run is a write request; a reconcile that finds nothing changed must send none, even
in a fresh process whose store of dry-run outcomes is empty. Server-side apply of an
object by manager ``tether`` changes nothing when both hold:

- every field the object sets is already live with the same value (the live object may
  have more: defaults, other managers' fields, status);
- the fields ``tether`` owns through an ``Apply`` entry in ``metadata.managedFields``
  (``fieldsV1``) are exactly the fields the object sets: none would be released (and so
  removed), none newly claimed.

``apply_is_noop`` checks both on plain data. It is conservative: whatever it cannot match
exactly — a list element the object names only by part of its key (a port without its
defaulted ``protocol``), a value the server would normalise (``cpu: 0.5`` stored as
``500m``), an owner entry of another operation — answers False, and the caller sends the
dry run as before. A wrong True would skip a needed write, so every rule errs to False.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

FIELD_MANAGER = "tether"
_NOT_COMPARED = frozenset({"status"})
_SERVER_METADATA = frozenset(
    {"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink", "deletionTimestamp"}
)


def apply_is_noop(desired: Mapping[str, Any], live: Mapping[str, Any] | None, manager: str = FIELD_MANAGER) -> bool:
    """True when applying ``desired`` as ``manager`` would leave ``live`` exactly as it is."""
    if live is None:
        return False
    fields = _applied_fields(live, manager)
    if fields is None:
        return False
    body = _applied_body(desired)
    return _contains(live, _as_stored(body)) and _owned_exactly(fields, _tracked_part(body))


def _applied_body(desired: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``desired`` an apply sets: no status, no server-set metadata."""
    body = {k: v for k, v in desired.items() if k not in _NOT_COMPARED}
    metadata = body.get("metadata")
    if isinstance(metadata, Mapping):
        body["metadata"] = {k: v for k, v in metadata.items() if k not in _SERVER_METADATA}
    return body


def _as_stored(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as the server stores it where that is certain: a Secret's write-only ``stringData``
    lands base64-encoded in ``data`` (and wins over a ``data`` key of the same name)."""
    string_data = body.get("stringData")
    if body.get("kind") != "Secret" or body.get("apiVersion") != "v1" or not isinstance(string_data, Mapping):
        return body
    if not all(isinstance(v, str) for v in string_data.values()):
        return body
    stored = {k: v for k, v in body.items() if k != "stringData"}
    data = dict(stored.get("data") or {})
    data.update({k: base64.b64encode(v.encode("utf-8")).decode("ascii") for k, v in string_data.items()})
    stored["data"] = data
    return stored


def _tracked_part(body: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an applied body ``fieldsV1`` tracks: not the type, not the name and namespace."""
    tracked = {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}
    metadata = tracked.get("metadata")
    if isinstance(metadata, Mapping):
        tracked["metadata"] = {k: v for k, v in metadata.items() if k not in ("name", "namespace", "generateName")}
        if not tracked["metadata"]:
            del tracked["metadata"]
    return tracked


def _applied_fields(live: Mapping[str, Any], manager: str) -> dict[str, Any] | None:
    """The ``fieldsV1`` of ``manager``'s single Apply entry on the main resource, or None."""
    metadata = live.get("metadata")
    entries = metadata.get("managedFields") if isinstance(metadata, Mapping) else None
    if not isinstance(entries, list):
        return None
    mine = [e for e in entries if isinstance(e, Mapping) and e.get("manager") == manager and not e.get("subresource")]
    if len(mine) != 1 or mine[0].get("operation") != "Apply" or mine[0].get("fieldsType") != "FieldsV1":
        return None  # an Update entry too (create, replace) would move to Apply: a change
    fields = mine[0].get("fieldsV1")
    return dict(fields) if isinstance(fields, Mapping) else None


def _contains(live: Any, desired: Any) -> bool:
    """Whether every value ``desired`` sets is in ``live`` unchanged (lists: same length, element-wise)."""
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        for key, value in desired.items():
            if value is None:
                if live.get(key) is not None:
                    return False
            elif key not in live or not _contains(live[key], value):
                return False
        return True
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(_contains(a, b) for a, b in zip(live, desired, strict=True))
        )
    return type(live) is type(desired) and live == desired


def _owned_exactly(fields: Mapping[str, Any], desired: Any) -> bool:
    """Whether the owned field set ``fields`` names exactly the fields ``desired`` sets."""
    if not fields:
        return True  # a leaf: the whole value (scalar, atomic list or map) is owned
    if isinstance(desired, Mapping):
        return _map_owned(fields, desired)
    if isinstance(desired, list):
        return _list_owned(fields, desired)
    return False  # fields below a scalar


def _map_owned(fields: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    wanted = {f"f:{key}" for key, value in desired.items() if value is not None}
    owned = {name for name in fields if name != "."}
    if owned != wanted:
        return False
    return all(_owned_exactly(fields[f"f:{key}"], value) for key, value in desired.items() if value is not None)


def _list_owned(fields: Mapping[str, Any], desired: list[Any]) -> bool:
    """Associative lists (``k:``) and sets (``v:``): one owned entry per element, matched exactly."""
    entries = [name for name in fields if name != "."]
    if len(entries) != len(desired):
        return False
    remaining = list(desired)
    for name in entries:
        kind, _, raw = name.partition(":")
        try:
            value = json.loads(raw)
        except ValueError:
            return False
        if kind == "v":
            match = next((i for i, item in enumerate(remaining) if type(item) is type(value) and item == value), None)
            if match is None:
                return False
            remaining.pop(match)
        elif kind == "k" and isinstance(value, Mapping):
            match = next((i for i, item in enumerate(remaining) if _keyed(item, value)), None)
            if match is None or not _owned_exactly(fields[name], remaining[match]):
                return False
            remaining.pop(match)
        else:
            return False  # "i:" (positional) entries: let the server judge
    return not remaining


# Key fields the server fills in when a manifest leaves them out (ports of containers, Services, Endpoints).
_KEY_DEFAULTS = {"protocol": "TCP"}


def _keyed(item: Any, key: Mapping[str, Any]) -> bool:
    """Whether a list element carries these merge-key values (a missing ``protocol`` is the server's TCP)."""
    if not isinstance(item, Mapping):
        return False
    for name, value in key.items():
        if name in item:
            have = item[name]
        elif name in _KEY_DEFAULTS:
            have = _KEY_DEFAULTS[name]
        else:
            return False
        if type(have) is not type(value) or have != value:
            return False
    return True
