"""The Project custom resource (``tether.dev/v1alpha1``), compatible with Argo CD's AppProject.

A project bounds what its apps may do: which repositories they render from, which
clusters and namespaces they deploy to, which kinds of object they may create, and when
they may sync. The checks are pure functions returning human-readable violations (empty:
allowed) worded as Argo CD words them, so the controller can put them in an
``InvalidSpecError`` condition and apply nothing.

Matching follows Argo CD: globs are gobwas globs (``*`` does not cross ``/`` in repository
URLs), a ``!`` prefix negates a ``sourceRepos`` or ``destinations`` entry, and anything a
negated entry excludes is refused even when another entry allows it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from tether.model.application import (
    API_VERSION,
    ApplicationSpec,
    ObjectMeta,
    validate_resource,
)
from tether.model.windows import SyncWindow, SyncWindows, glob_match

PROJECT_KIND = "Project"


class _Spec(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class ProjectDestination(_Spec):
    """An allowed destination: cluster by ``server`` or ``name`` glob, and a ``namespace`` glob; ``!`` negates."""

    server: str = ""
    name: str = ""
    namespace: str = ""


class GroupKind(_Spec):
    """A resource kind by API group (``""`` is the core group) and kind, both globs."""

    group: str = ""
    kind: str = Field(min_length=1)

    @field_validator("group", mode="before")
    @classmethod
    def _none_group_is_core(cls, value: Any) -> Any:
        return "" if value is None else value

    def matches(self, group: str, kind: str) -> bool:
        return glob_match(self.group, group) and glob_match(self.kind, kind)


class OrphanedResourceKey(_Spec):
    group: str = ""
    kind: str = ""
    name: str = ""


class OrphanedResources(_Spec):
    """Report objects in the destination namespace that no app owns (``warn``, default on), except ``ignore``."""

    warn: bool = True
    ignore: tuple[OrphanedResourceKey, ...] = ()


class SignatureKey(_Spec):
    key_id: str = Field(alias="keyID")


class ProjectSpec(_Spec):
    """Argo CD's AppProject spec. ``roles`` and ``sourceNamespaces`` are kept, not enforced; ``signatureKeys``
    are enforced where commits are resolved (``tether.controller.signatures``)."""

    description: str = ""
    source_repos: tuple[str, ...] = ()
    destinations: tuple[ProjectDestination, ...] = ()
    cluster_resource_whitelist: tuple[GroupKind, ...] = ()
    cluster_resource_blacklist: tuple[GroupKind, ...] = ()
    namespace_resource_whitelist: tuple[GroupKind, ...] = ()
    namespace_resource_blacklist: tuple[GroupKind, ...] = ()
    sync_windows: tuple[SyncWindow, ...] = ()
    orphaned_resources: OrphanedResources | None = None
    source_namespaces: tuple[str, ...] = ()
    signature_keys: tuple[SignatureKey, ...] = ()
    roles: tuple[dict[str, Any], ...] = ()

    @field_validator(
        "source_repos",
        "destinations",
        "cluster_resource_whitelist",
        "cluster_resource_blacklist",
        "namespace_resource_whitelist",
        "namespace_resource_blacklist",
        "sync_windows",
        "source_namespaces",
        "signature_keys",
        "roles",
        mode="before",
    )
    @classmethod
    def _none_list_is_empty(cls, value: Any) -> Any:
        return () if value is None else value


class Project(BaseModel):
    """A whole Project custom resource, with the enforcement checks its apps go through."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: str = PROJECT_KIND
    metadata: ObjectMeta
    spec: ProjectSpec = ProjectSpec()
    status: dict[str, Any] = {}

    @field_validator("spec", "status", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Project:
        """Validate a Project custom resource; errors are ``InvalidSpec`` and name the project and field."""
        return validate_resource(cls, obj, API_VERSION, PROJECT_KIND)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def windows(self) -> SyncWindows:
        return SyncWindows(self.spec.sync_windows)

    @property
    def warns_orphans(self) -> bool:
        """Whether apps of this project report orphaned resources (Argo CD: opt-in per project)."""
        orphans = self.spec.orphaned_resources
        return orphans is not None and orphans.warn

    # ----------------------------------------------------------------- enforcement

    def source_violations(self, repo_urls: Iterable[str]) -> list[str]:
        """One message per repository the project does not permit (each URL once)."""
        seen: set[str] = set()
        out = []
        for url in repo_urls:
            if url in seen:
                continue
            seen.add(url)
            if not self._source_permitted(url):
                out.append(f"application repo {url} is not permitted in project {self.name!r}")
        return out

    def _source_permitted(self, url: str) -> bool:
        wanted = normalize_repo_url(url)
        matched = False
        for pattern in self.spec.source_repos:
            if pattern.startswith("!"):
                if glob_match(normalize_repo_url(pattern[1:]), wanted, "/"):
                    return False
            elif pattern == "*" or glob_match(normalize_repo_url(pattern), wanted, "/"):
                matched = True
        return matched

    def destination_violations(self, server: str, name: str, namespace: str) -> list[str]:
        """Empty when the destination (the cluster known by ``server`` and ``name``) is permitted.

        An entry matches when its server glob matches ``server`` or its name glob matches
        ``name``, and its namespace glob matches ``namespace``. A negated (``!``) part that
        the destination fails refuses it, whatever other entries allow (Argo CD's rule).
        """
        if self._destination_permitted(server, name, namespace):
            return []
        cluster = f"server {server!r}" if server else f"name {name!r}"
        return [
            f"application destination {cluster} and namespace {namespace!r} do not match any of the allowed "
            f"destinations in project {self.name!r}"
        ]

    def _destination_permitted(self, server: str, name: str, namespace: str) -> bool:
        matched, refused = False, False
        for item in self.spec.destinations:
            name_ok = bool(name) and _negatable(item.name, name)
            server_ok = bool(server) and _negatable(item.server, server)
            namespace_ok = _negatable(item.namespace, namespace)
            if (server_ok or name_ok) and namespace_ok:
                matched = True
            elif (
                (not name_ok and item.name.startswith("!"))
                or (not server_ok and item.server.startswith("!"))
                or (not namespace_ok and item.namespace.startswith("!"))
            ):
                refused = True
        return matched and not refused

    def resource_violations(self, objects: Iterable[tuple[str, str, bool]]) -> list[str]:
        """One message per (group, kind) the project does not permit; ``namespaced`` says which lists apply.

        Cluster-scoped kinds are refused unless ``clusterResourceWhitelist`` lists them (and
        the blacklist does not); namespaced kinds are allowed unless the blacklist lists
        them or a non-empty ``namespaceResourceWhitelist`` leaves them out.
        """
        seen: set[tuple[str, str, bool]] = set()
        out = []
        for group, kind, namespaced in objects:
            key = (group, kind, namespaced)
            if key in seen:
                continue
            seen.add(key)
            if not self.kind_permitted(group, kind, namespaced):
                out.append(f"resource {group}:{kind} is not permitted in project {self.name!r}")
        return out

    def kind_permitted(self, group: str, kind: str, namespaced: bool) -> bool:
        spec = self.spec
        if namespaced:
            white, black = spec.namespace_resource_whitelist, spec.namespace_resource_blacklist
            listed = not white or any(entry.matches(group, kind) for entry in white)
        else:
            white, black = spec.cluster_resource_whitelist, spec.cluster_resource_blacklist
            listed = any(entry.matches(group, kind) for entry in white)
        return listed and not any(entry.matches(group, kind) for entry in black)

    def app_violations(self, spec: ApplicationSpec, server: str, cluster_name: str) -> list[str]:
        """Sources and destination of an app together; the destination cluster is known by both names."""
        return self.source_violations(source.repo_url for source in spec.sources_list()) + (
            self.destination_violations(server, cluster_name, spec.destination.namespace)
        )


def _negatable(pattern: str, value: str) -> bool:
    """Argo CD's globMatch with negation: ``!p`` matches whatever ``p`` does not."""
    if pattern.startswith("!"):
        return not glob_match(pattern[1:], value)
    return glob_match(pattern, value)


_SCP_LIKE = re.compile(r"^(?P<user>[^@/:]+@)?(?P<host>[^/:]+):(?P<path>(?!//).*)$")


def normalize_repo_url(url: str) -> str:
    """A repository URL in the form projects compare: ``git@host:org/repo`` becomes ``ssh://git@host/org/repo``,
    scheme and host lower-cased, a trailing ``/`` and ``.git`` dropped. Globs survive unchanged."""
    text = url.strip()
    scp = _SCP_LIKE.match(text)
    if scp and "://" not in text:
        text = f"ssh://{scp.group('user') or ''}{scp.group('host')}/{scp.group('path')}"
    text = text.rstrip("/").removesuffix(".git").rstrip("/")
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    if not parts.scheme or not parts.netloc:
        return text
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, parts.fragment))


DEFAULT_PROJECT = Project(
    metadata=ObjectMeta(name="default"),
    spec=ProjectSpec(
        description="Built-in project: every repository, destination and kind is allowed",
        source_repos=("*",),
        destinations=(ProjectDestination(server="*", name="*", namespace="*"),),
        cluster_resource_whitelist=(GroupKind(group="*", kind="*"),),
    ),
)
"""Argo CD's ``default`` project; a Project object named ``default`` replaces it."""
