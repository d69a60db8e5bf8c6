"""What a sync may do: app-level options, and the per-object overrides from ``sync-options``.

Options use Argo CD's names (``CreateNamespace=true``, ``PruneLast=true``, …) so an
Application's ``syncPolicy.syncOptions`` list and an object's ``sync-options`` annotation
read the same way. An object's annotation overrides the app for that object only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from tether.diff.migration import CSA_MANAGER
from tether.diff.migration import OPTION as MIGRATION_OPTION
from tether.errors import TetherError
from tether.resource import ResourceKey, annotation_options

PROPAGATION_POLICIES = {"foreground": "Foreground", "background": "Background", "orphan": "Orphan"}

# Option name in Argo CD spelling → SyncOptions field (booleans only).
_BOOL_OPTIONS = {
    "CreateNamespace": "create_namespace",
    "ServerSideApply": "server_side_apply",
    "Replace": "replace",
    "Force": "force",
    "ApplyOutOfSyncOnly": "apply_out_of_sync_only",
    "Validate": "validate",
    "SkipDryRunOnMissingResource": "skip_dry_run_on_missing_resource",
    "FailOnSharedResource": "fail_on_shared_resource",
    "PruneLast": "prune_last",
    "RespectIgnoreDifferences": "respect_ignore_differences",
    "Prune": "prune_allowed",
    "PruneNamespaceContents": "prune_namespace_contents",
}
# Options that only make sense for the whole app; on an object they are ignored.
_APP_ONLY = {"CreateNamespace", "PrunePropagationPolicy"}


def _parse_bool(name: str, value: str, where: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", ""):
        return True
    if lowered == "false":
        return False
    raise TetherError(f"{where}: sync option {name}={value!r} must be true or false")


@dataclass(frozen=True)
class SyncOptions:
    """Everything that steers one sync of one app.

    ``namespace`` is the destination namespace: the default for namespaced objects and the
    one ``create_namespace`` makes. ``resources`` selects a selective sync (hooks are then
    skipped, as in Argo CD). ``hooks`` false is Argo CD's ``apply`` sync strategy: the objects
    are applied and no hook runs. ``timeout`` bounds every single wait (a wave's health, a hook,
    a deletion), not the whole sync. ``prune_namespace_contents`` lets prune delete a
    Namespace that still holds objects other than the ones this sync prunes (off: skipped).
    """

    namespace: str = ""
    prune: bool = False
    dry_run: bool = False
    allow_empty: bool = False
    resources: tuple[Selector, ...] | None = None
    hooks: bool = True
    create_namespace: bool = False
    server_side_apply: bool = True
    force_conflicts: bool = True
    replace: bool = False
    force: bool = False
    apply_out_of_sync_only: bool = False
    validate: bool = True
    skip_dry_run_on_missing_resource: bool = False
    fail_on_shared_resource: bool = False
    prune_last: bool = False
    prune_allowed: bool = True
    prune_namespace_contents: bool = False
    prune_propagation_policy: str = "foreground"
    respect_ignore_differences: bool = False
    ignore_differences: tuple[Any, ...] = ()
    timeout: float = 300.0
    # whose client-side apply fields become Tether's before an apply (tether.diff.migration, which also
    # reads an object's own ClientSideApplyMigration); None: the app's ClientSideApplyMigration=false
    csa_manager: str | None = CSA_MANAGER
    revision: str = ""
    revisions: tuple[str, ...] = ()  # each source's, for an app of several: saved, so a resume renders them
    # managedNamespaceMetadata: labels and annotations put on the namespace CreateNamespace makes (and kept there)
    namespace_labels: tuple[tuple[str, str], ...] = ()
    namespace_annotations: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.prune_propagation_policy.lower() not in PROPAGATION_POLICIES:
            raise TetherError(
                f"PrunePropagationPolicy={self.prune_propagation_policy!r}: use foreground, background or orphan"
            )
        if self.timeout <= 0:
            raise TetherError(f"sync timeout must be positive, not {self.timeout}")

    @property
    def propagation(self) -> str:
        """The DeleteOptions propagationPolicy for prune (``Foreground`` by default, as Argo CD)."""
        return PROPAGATION_POLICIES[self.prune_propagation_policy.lower()]

    @classmethod
    def from_strings(cls, items: Iterable[str], **fields: Any) -> SyncOptions:
        """Options from an Argo CD ``syncOptions`` list (``["CreateNamespace=true", …]``) plus fields."""
        values: dict[str, Any] = {}
        for item in items:
            name, _, value = str(item).strip().partition("=")
            if not name:
                continue
            if name == "PrunePropagationPolicy":
                values["prune_propagation_policy"] = value.strip()
            elif name == MIGRATION_OPTION:
                if not _parse_bool(name, value, "syncOptions"):
                    values["csa_manager"] = None
            elif name in _BOOL_OPTIONS:
                values[_BOOL_OPTIONS[name]] = _parse_bool(name, value, "syncOptions")
            else:
                raise TetherError(f"syncOptions: unknown sync option {name!r}")
        values.update(fields)
        return cls(**values)

    def selects(self, key: ResourceKey) -> bool:
        """Whether a selective sync (if any) includes ``key``."""
        return self.resources is None or any(selector.matches(key) for selector in self.resources)

    def for_object(self, obj: Mapping[str, Any]) -> SyncOptions:
        """These options as they apply to ``obj``: its ``sync-options`` annotation wins, key by key."""
        overrides: dict[str, Any] = {}
        for name, value in annotation_options(obj, "sync-options").items():
            if name in _APP_ONLY or name not in _BOOL_OPTIONS:
                continue  # unknown or app-only keys on one object change nothing
            if name == "Prune" and value.strip().lower() == "confirm":
                overrides["prune_allowed"] = False  # Tether has no confirmation step: never prune it
                continue
            try:
                overrides[_BOOL_OPTIONS[name]] = _parse_bool(name, value, f"{ResourceKey.of(obj)}")
            except TetherError:
                continue  # a malformed value on one object keeps the app's setting
        return replace(self, **overrides) if overrides else self


@dataclass(frozen=True)
class Selector:
    """One object of a selective sync; an empty namespace matches any (as Argo CD's ``--resource``)."""

    group: str
    kind: str
    name: str
    namespace: str = ""

    def matches(self, key: ResourceKey) -> bool:
        return (self.group, self.kind, self.name) == (key.group, key.kind, key.name) and (
            not self.namespace or self.namespace == key.namespace
        )

    @classmethod
    def parse(cls, spec: str) -> Selector:
        """``GROUP:KIND:NAME`` or ``GROUP:KIND:NAMESPACE/NAME`` (the group is empty for core kinds)."""
        parts = spec.split(":")
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise TetherError(f"resource {spec!r}: use GROUP:KIND:NAME or GROUP:KIND:NAMESPACE/NAME")
        group, kind, rest = parts
        namespace, _, name = rest.rpartition("/")
        if not name:
            raise TetherError(f"resource {spec!r}: the name is missing")
        return cls(group, kind, name, namespace)
