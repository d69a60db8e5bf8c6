"""The git sources of an Application as the informer holds it: what the poller lists and webhooks match.

Walked on the raw object, not the validated model, because both run over the whole fleet often
(every poll interval, every webhook batch). Helm repository charts, OCI registries and local
directories are not git remotes and are left out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from tether.model.source import is_oci
from tether.pipeline import is_local_source


class GitSource(NamedTuple):
    position: int  # index in ``spec.sources`` (0 for ``spec.source``)
    url: str  # repoURL as the app spells it
    revision: str  # targetRevision; HEAD when unset


def git_sources(obj: Mapping[str, Any]) -> Iterator[GitSource]:
    """Each git source of the Application object ``obj``; malformed parts are skipped, never raised."""
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return
    sources = spec.get("sources") or [spec.get("source")]
    for position, source in enumerate(sources if isinstance(sources, list) else []):
        if not isinstance(source, Mapping) or source.get("chart"):
            continue
        url = source.get("repoURL")
        if not isinstance(url, str) or not url or is_local_source(url) or is_oci(url):
            continue
        revision = source.get("targetRevision")
        yield GitSource(position, url, revision if isinstance(revision, str) and revision else "HEAD")
