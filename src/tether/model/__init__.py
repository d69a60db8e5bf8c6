"""Tether's specs as pydantic models, with Argo CD compatible field names."""

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

__all__ = [
    "ApplicationSource",
    "DirectorySource",
    "HelmFileParameter",
    "HelmParameter",
    "HelmSource",
    "JsonnetSource",
    "JsonnetVar",
    "KustomizeReplica",
    "KustomizeSource",
    "SourceType",
]
