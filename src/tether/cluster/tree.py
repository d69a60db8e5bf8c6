"""Nodes of an app's resource tree: its managed objects and their descendants through ownerReferences.

A node is small on purpose: descendants (ReplicaSets, Pods, a Job's Pods, EndpointSlices)
are kept only as nodes, their health computed when their watch event arrives, so a cluster
with many Pods costs a few hundred bytes per Pod rather than a full copy. A UI that wants a
Pod's details asks for it (``LiveCache.details``: one GET).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from tether.cluster.index import owner_uids
from tether.health.assess import assess
from tether.health.lua_checks import LuaChecks
from tether.resource import ResourceKey

# Kinds whose objects the tree follows below an app's managed objects (apiVersion, kind).
DESCENDANT_KINDS: tuple[tuple[str, str], ...] = (
    ("apps/v1", "ReplicaSet"),
    ("v1", "Pod"),
    ("batch/v1", "Job"),
    ("discovery.k8s.io/v1", "EndpointSlice"),
)


@dataclass(frozen=True, slots=True)
class TreeNode:
    """One object of an app's tree. ``parents`` are the owner uids; ``health`` is None for kinds without one."""

    key: ResourceKey
    api_version: str
    uid: str
    parents: tuple[str, ...]
    health: str | None
    message: str
    resource_version: str
    managed: bool

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for an API or the UI."""
        out = asdict(self)
        out["key"] = asdict(self.key)
        out["parents"] = list(self.parents)
        return out


def node_of(obj: Mapping[str, Any], *, managed: bool, lua: LuaChecks | None = None) -> TreeNode:
    """The node of a live object, its health assessed now (built-in checks, Lua ones when given)."""
    meta = obj.get("metadata") or {}
    status: str | None
    try:
        health = assess(obj, lua=lua)
    except Exception as exc:  # a malformed live object must not take the tree down
        status, message = "Unknown", f"health check failed: {exc}"
    else:
        status, message = (str(health.status), health.message) if health is not None else (None, "")
    return TreeNode(
        key=ResourceKey.of(obj),
        api_version=str(obj.get("apiVersion") or ""),
        uid=str(meta.get("uid") or ""),
        parents=owner_uids(meta.get("ownerReferences") or ()),
        health=status,
        message=message,
        resource_version=str(meta.get("resourceVersion") or ""),
        managed=managed,
    )
