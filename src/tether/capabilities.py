"""What Helm's ``.Capabilities`` should say about a destination cluster, and reading it from one.

Argo CD renders Helm charts (and kustomize's ``helmCharts``) with the destination's version
and API versions, so a chart that asks ``.Capabilities.APIVersions.Has "monitoring.coreos.com/v1"``
renders what that cluster can take. Tether does the same wherever a cluster is at hand: the
controller (per destination) and ``tether diff`` / ``tether sync``. ``tether render`` has no
cluster and renders with Helm's defaults. Renders ask through a ``CapabilitiesSource``, so a
plain-YAML app never costs a discovery request.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tether.cluster import Cluster

_KUBE_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Capabilities:
    """The destination cluster as Helm's ``.Capabilities`` sees it: its version and every API version it serves."""

    kube_version: str  # "1.34.1": major.minor.patch, without the build metadata Helm may refuse
    api_versions: tuple[str, ...]  # "apps/v1", "apps/v1/Deployment", "v1", "v1/Pod" …

    @classmethod
    def of(cls, git_version: str, api_versions: Sequence[str]) -> Capabilities:
        """From the API server's ``/version`` ``gitVersion`` (``v1.34.1+k3s1``) and its API versions."""
        found = _KUBE_VERSION.match(git_version.strip())
        version = f"{found.group(1)}.{found.group(2)}.{found.group(3) or 0}" if found else ""
        return cls(kube_version=version, api_versions=tuple(sorted(set(api_versions))))

    @cached_property
    def digest(self) -> str:
        """What the render cache keys a render that used them on."""
        text = json.dumps([self.kube_version, self.api_versions], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


CapabilitiesSource = Callable[[], Awaitable[Capabilities]]
"""Where a render gets the destination's capabilities: asked only by a render that uses them (Helm, kustomize)."""


async def read_capabilities(cluster: Cluster) -> Capabilities:
    """The cluster's ``/version`` and every API version it serves (discovery's cached listing)."""
    version, api_versions = await asyncio.gather(cluster.version(), cluster.discovery.api_versions())
    return Capabilities.of(str(version.get("gitVersion") or ""), api_versions)
