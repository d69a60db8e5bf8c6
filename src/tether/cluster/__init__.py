"""Talking to clusters: one connection per destination, discovery, reads, watches and writes."""

from tether.cluster.cache import CacheEvent, LiveCache, Subscription, WaitTimeout
from tether.cluster.client import FIELD_MANAGER, Cluster, WatchEvent, describe
from tether.cluster.discovery import ResourceInfo, split_api_version
from tether.cluster.errors import ClusterError, ClusterUnreachable, UnknownKind, WatchExpired
from tether.cluster.requests import RequestCounter, RequestCounts

__all__ = [
    "FIELD_MANAGER",
    "CacheEvent",
    "Cluster",
    "ClusterError",
    "ClusterUnreachable",
    "LiveCache",
    "RequestCounter",
    "RequestCounts",
    "ResourceInfo",
    "Subscription",
    "UnknownKind",
    "WaitTimeout",
    "WatchEvent",
    "WatchExpired",
    "describe",
    "split_api_version",
]
