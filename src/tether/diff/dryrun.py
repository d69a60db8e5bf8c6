"""Server-side dry-run outcomes, reused while neither side of the comparison changed.

A dry run is a write request, and a reconcile that finds nothing changed must send none
(DESIGN.md, Requests). The server's answer to a dry run depends only on the object sent,
how it was sent (apply with or without force, create, replace) and the live object it met,
so an outcome stays valid until the desired object (its hash) or the live object (its
resourceVersion) changes. Diff and sync share one ``DryRuns`` per cluster: a comparison's
outcomes serve the sync's pre-check that follows it.

``lookup`` goes one step further for server-side apply: when the live object shows that
applying the object would change nothing (``tether.diff.noop``: every value already there,
and exactly these fields owned by ``tether``), the live object *is* the outcome, and no dry
run is needed even by a fresh process whose store is empty.

Outcomes hold resolved secret values, like every desired object in memory; they are kept
in memory only, bounded by ``max_entries`` (least recently used first out), and never
serialised.

Public surface::

    dry_runs = DryRuns()
    outcome = dry_runs.lookup(key, mode, desired, live)      # as get, and a predicted no-op apply is live itself
    outcome = dry_runs.get(key, mode, desired, live_rv)      # dict, a ClusterError, or None (unknown)
    dry_runs.put(key, mode, desired, live_rv, outcome)        # outcome: the server's object or its refusal
    dry_runs.forget(key)                                      # after a real write to key
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from tether.cluster.errors import ClusterError
from tether.diff.noop import apply_is_noop
from tether.jsonfast import digest
from tether.resource import ResourceKey

DEFAULT_MAX_ENTRIES = 50_000

Outcome = dict[str, Any] | ClusterError


def object_hash(obj: Mapping[str, Any]) -> str:
    """A stable digest of an object's content (key order does not matter)."""
    return digest(obj)


class DryRuns:
    """A bounded map from (object, write mode, desired hash, live resourceVersion) to a dry-run outcome."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, *, predict: bool = True) -> None:
        """``predict=False`` turns the no-op prediction off: every unknown outcome costs a dry run
        (for clusters whose admission webhooks change objects on every write)."""
        self.max_entries = max_entries
        self.predict = predict
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[ResourceKey, str], tuple[str, str | None, Outcome]] = OrderedDict()
        self._modes: set[str] = set()
        self.hits = 0
        self.predicted = 0
        self.misses = 0

    def get(self, key: ResourceKey, mode: str, desired: Mapping[str, Any], live_rv: str | None) -> Outcome | None:
        """The stored outcome while it is still valid, else None (a dry run must be sent)."""
        digest = object_hash(desired)
        with self._lock:
            entry = self._entries.get((key, mode))
            if entry is None or entry[0] != digest or entry[1] != (live_rv or None):
                self.misses += 1
                return None
            self._entries.move_to_end((key, mode))
            self.hits += 1
            return entry[2]

    def lookup(
        self, key: ResourceKey, mode: str, desired: Mapping[str, Any], live: Mapping[str, Any] | None
    ) -> Outcome | None:
        """``live`` itself when ``mode`` is an apply that ``live`` shows would change nothing, else ``get``.

        A prediction is not stored: it costs less to make again than to copy the live object into the store.
        """
        if self.predict and live is not None and mode.startswith("apply") and apply_is_noop(desired, live):
            with self._lock:
                self.predicted += 1
            return dict(live)
        return self.get(key, mode, desired, _resource_version(live))

    def put(
        self, key: ResourceKey, mode: str, desired: Mapping[str, Any], live_rv: str | None, outcome: Outcome
    ) -> None:
        """Remember the server's answer to a dry run of ``desired`` against live at ``live_rv``."""
        digest = object_hash(desired)
        with self._lock:
            self._modes.add(mode)
            self._entries[(key, mode)] = (digest, live_rv or None, outcome)
            self._entries.move_to_end((key, mode))
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget(self, key: ResourceKey) -> None:
        """Drop every outcome for ``key`` (after a real write, whose result supersedes them)."""
        with self._lock:
            for mode in self._modes:
                self._entries.pop((key, mode), None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def _resource_version(obj: Mapping[str, Any] | None) -> str | None:
    metadata = obj.get("metadata") if obj is not None else None
    version = metadata.get("resourceVersion") if isinstance(metadata, Mapping) else None
    return str(version) if version else None
