"""Tether's specs as pydantic models, with Argo CD compatible field names."""

from typing import TYPE_CHECKING, Any

from tether.model.application import (
    API_VERSION,
    ARGOCD_RESOURCES_FINALIZER,
    GROUP,
    RESOURCES_FINALIZER,
    VERSION,
    Application,
    ApplicationSpec,
    Automated,
    Backoff,
    Destination,
    IgnoreDifference,
    ManagedNamespaceMetadata,
    ObjectMeta,
    Operation,
    OperationInitiator,
    RetryStrategy,
    SyncOperation,
    SyncOperationResource,
    SyncPolicy,
    SyncStrategy,
    parse_duration,
    sync_option,
)
from tether.model.project import DEFAULT_PROJECT, GroupKind, Project, ProjectDestination, ProjectSpec
from tether.model.source import (
    ApplicationSource,
    DirectorySource,
    HelmFileParameter,
    HelmParameter,
    HelmSource,
    JsonnetSource,
    JsonnetVar,
    KustomizeReplica,
    KustomizeSource,
    SourceType,
)
from tether.model.windows import SyncWindow, SyncWindows, WindowVerdict

__all__ = [
    "API_VERSION",
    "ARGOCD_RESOURCES_FINALIZER",
    "DEFAULT_PROJECT",
    "GROUP",
    "RESOURCES_FINALIZER",
    "VERSION",
    "Application",
    "ApplicationSource",
    "ApplicationSpec",
    "Automated",
    "Backoff",
    "Destination",
    "DirectorySource",
    "GroupKind",
    "HelmFileParameter",
    "HelmParameter",
    "HelmSource",
    "IgnoreDifference",
    "JsonnetSource",
    "JsonnetVar",
    "KustomizeReplica",
    "KustomizeSource",
    "ManagedNamespaceMetadata",
    "ObjectMeta",
    "Operation",
    "OperationInitiator",
    "Project",
    "ProjectDestination",
    "ProjectSpec",
    "RetryStrategy",
    "SourceType",
    "SyncOperation",
    "SyncOperationResource",
    "SyncPolicy",
    "SyncStrategy",
    "SyncWindow",
    "SyncWindows",
    "WindowVerdict",
    "crds",
    "parse_duration",
    "sync_option",
]

if TYPE_CHECKING:
    from tether.model.crd import crds


def __getattr__(name: str) -> Any:
    """``crds`` is imported on first use, so ``python -m tether.model.crd`` runs the module only once."""
    if name == "crds":
        from tether.model.crd import crds

        return crds
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
