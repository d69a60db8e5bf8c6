"""The comparable form of a Kubernetes object: what the server or Tether adds, taken away.

Both sides of every comparison go through ``normalise``, so bookkeeping the API server
writes (resourceVersion, uid, managedFields, status…) and Tether's own tracking id never
count as drift. A Secret's ``stringData`` is folded into ``data`` the way the API server
does it, so a client-side comparison of a Secret matches what the server stores.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from tether.resource import TRACKING_ANNOTATION

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
DROPPED_METADATA = ("managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink")
DROPPED_ANNOTATIONS = (TRACKING_ANNOTATION, LAST_APPLIED)


def is_secret(obj: Mapping[str, Any] | None) -> bool:
    """A core ``v1`` Secret."""
    return bool(obj) and obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"  # type: ignore[union-attr]


def normalise(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` without server bookkeeping, ``status`` and Tether's tracking id.

    The result is new down to the maps it changes (the object, ``metadata``, its annotations, a
    Secret's ``data``) and shares every other value with ``obj``: copy it before changing it in
    place. A diff normalises each object on both sides of every comparison, and copying whole
    objects there was most of a comparison's cost.
    """
    out = {key: value for key, value in obj.items() if key != "status"}
    meta = out.get("metadata")
    if isinstance(meta, Mapping):
        meta = out["metadata"] = {key: value for key, value in meta.items() if key not in DROPPED_METADATA}
        annotations = meta.get("annotations")
        if isinstance(annotations, Mapping):
            kept = {key: value for key, value in annotations.items() if key not in DROPPED_ANNOTATIONS}
            if kept:
                meta["annotations"] = kept
            else:
                del meta["annotations"]
        if meta.get("labels") == {}:
            del meta["labels"]
    if is_secret(out):
        fold_string_data(out)
    return out


def fold_string_data(secret: dict[str, Any]) -> None:
    """Move ``stringData`` into ``data`` (base64), as the API server does on write.

    ``secret`` itself changes; its ``data`` map is replaced by a new one, never changed in place.
    """
    string_data = secret.pop("stringData", None)
    if not isinstance(string_data, dict) or not string_data:
        return
    data = secret.get("data")
    data = secret["data"] = dict(data) if isinstance(data, dict) else {}
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode("utf-8")).decode("ascii")
