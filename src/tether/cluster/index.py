"""Indexes over the live cache's keys: by app, by namespace, by owner uid, and uid to key.

They let a reader find an app's objects, a namespace's objects or an object's children in
time proportional to the answer, never to the size of the cluster. The cache calls ``put``
after every change of a key and ``drop`` when the key leaves; each key's indexed facts are
remembered, so removal is exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tether.resource import ResourceKey


@dataclass(frozen=True, slots=True)
class Facts:
    """What one key is indexed by."""

    app: str | None
    uid: str | None
    owners: tuple[str, ...]


class Index:
    """Sets of keys per app, namespace and owner uid; key per uid."""

    def __init__(self) -> None:
        self._facts: dict[ResourceKey, Facts] = {}
        self._by_app: dict[str, set[ResourceKey]] = {}
        self._by_namespace: dict[str, set[ResourceKey]] = {}
        self._by_owner: dict[str, set[ResourceKey]] = {}
        self._by_uid: dict[str, ResourceKey] = {}

    def __len__(self) -> int:
        return len(self._facts)

    def put(self, key: ResourceKey, facts: Facts) -> None:
        """Index ``key`` by ``facts``, replacing what it was indexed by before."""
        if self._facts.get(key) == facts:
            return
        self.drop(key)
        self._facts[key] = facts
        if facts.app is not None:
            self._by_app.setdefault(facts.app, set()).add(key)
        self._by_namespace.setdefault(key.namespace, set()).add(key)
        for owner in facts.owners:
            self._by_owner.setdefault(owner, set()).add(key)
        if facts.uid:
            self._by_uid[facts.uid] = key

    def drop(self, key: ResourceKey) -> None:
        facts = self._facts.pop(key, None)
        if facts is None:
            return
        if facts.app is not None:
            _discard(self._by_app, facts.app, key)
        _discard(self._by_namespace, key.namespace, key)
        for owner in facts.owners:
            _discard(self._by_owner, owner, key)
        if facts.uid and self._by_uid.get(facts.uid) == key:
            del self._by_uid[facts.uid]

    def app(self, app: str) -> frozenset[ResourceKey]:
        return frozenset(self._by_app.get(app, ()))

    def namespace(self, namespace: str) -> frozenset[ResourceKey]:
        """Keys in ``namespace`` ("" for cluster-scoped objects)."""
        return frozenset(self._by_namespace.get(namespace, ()))

    def children(self, uid: str) -> frozenset[ResourceKey]:
        """Keys whose ownerReferences name ``uid``."""
        return frozenset(self._by_owner.get(uid, ()))

    def key_of(self, uid: str) -> ResourceKey | None:
        return self._by_uid.get(uid)

    def facts(self, key: ResourceKey) -> Facts | None:
        return self._facts.get(key)


def _discard(index: dict[str, set[ResourceKey]], name: str, key: ResourceKey) -> None:
    keys = index.get(name)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del index[name]


def owner_uids(references: Iterable[object]) -> tuple[str, ...]:
    """The uids of ``metadata.ownerReferences`` entries (malformed entries are skipped)."""
    return tuple(str(ref["uid"]) for ref in references if isinstance(ref, dict) and ref.get("uid"))
