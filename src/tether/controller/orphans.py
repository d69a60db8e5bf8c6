"""Orphaned resources (Argo CD's opt-in per project): top-level objects in an app's destination namespace
that no app manages. Only listed for projects with ``orphanedResources`` and on triggers that may
have changed what exists (polls, refreshes, spec changes), never on a drift event: it costs one
LIST per namespaced kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.cluster import Cluster
from tether.model import Project
from tether.model.windows import glob_match
from tether.resource import APP_LABEL, TRACKING_ANNOTATION
from tether.sync.contents import SYSTEM_OBJECTS, namespace_contents


def _managed(meta: Mapping[str, Any]) -> bool:
    return APP_LABEL in (meta.get("labels") or {}) or TRACKING_ANNOTATION in (meta.get("annotations") or {})


def _ignored(project: Project, group: str, kind: str, name: str) -> bool:
    rules = project.spec.orphaned_resources.ignore if project.spec.orphaned_resources else ()
    return any(
        glob_match(rule.group or "*", group)
        and glob_match(rule.kind or "*", kind)
        and glob_match(rule.name or "*", name)
        for rule in rules
    )


async def orphans(cluster: Cluster, namespace: str, project: Project) -> list[str]:
    """``Kind/name`` of each orphaned object in ``namespace``, sorted."""
    objects, _ = await namespace_contents(cluster, namespace)
    found = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        group = str(obj.get("apiVersion") or "").rpartition("/")[0]
        kind, name = str(obj.get("kind") or ""), str(meta.get("name") or "")
        if meta.get("ownerReferences") or _managed(meta) or (group, kind, name) in SYSTEM_OBJECTS:
            continue
        if _ignored(project, group, kind, name):
            continue
        found.append(f"{kind}/{name}")
    return sorted(found)
