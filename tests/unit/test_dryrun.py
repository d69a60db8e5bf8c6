"""The dry-run outcome store: valid exactly while neither side changed, bounded, per write mode."""

from __future__ import annotations

from tether.cluster.errors import ClusterError
from tether.diff.dryrun import DryRuns, object_hash
from tether.resource import ResourceKey

KEY = ResourceKey("", "ConfigMap", "ns", "a")
DESIRED = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "ns"}, "data": {"k": "v"}}


def test_an_outcome_is_reused_until_either_side_changes() -> None:
    store = DryRuns()
    assert store.get(KEY, "apply", DESIRED, "10") is None
    store.put(KEY, "apply", DESIRED, "10", {"predicted": True})
    assert store.get(KEY, "apply", dict(reversed(list(DESIRED.items()))), "10") == {"predicted": True}
    assert store.get(KEY, "apply", DESIRED, "11") is None  # the live object moved
    assert store.get(KEY, "apply", {**DESIRED, "data": {"k": "w"}}, "10") is None  # the desired object changed
    assert store.get(KEY, "apply-force", DESIRED, "10") is None  # another way of writing it
    assert (store.hits, store.misses) == (1, 4)


def test_missing_live_objects_and_refusals_are_outcomes_too() -> None:
    store = DryRuns()
    refusal = ClusterError("apply ConfigMap ns/a: 422 invalid", status=422)
    store.put(KEY, "apply", DESIRED, None, refusal)
    assert store.get(KEY, "apply", DESIRED, None) is refusal
    assert store.get(KEY, "apply", DESIRED, "1") is None


def test_forget_drops_every_mode_and_the_store_is_bounded() -> None:
    store = DryRuns(max_entries=2)
    store.put(KEY, "apply", DESIRED, "1", {})
    store.put(KEY, "create", DESIRED, "1", {})
    store.forget(KEY)
    assert len(store) == 0
    for name in "abc":
        store.put(ResourceKey("", "ConfigMap", "ns", name), "apply", DESIRED, "1", {})
    assert len(store) == 2
    assert store.get(ResourceKey("", "ConfigMap", "ns", "a"), "apply", DESIRED, "1") is None  # oldest went first


def test_object_hash_ignores_key_order_only() -> None:
    assert object_hash({"a": 1, "b": 2}) == object_hash({"b": 2, "a": 1})
    assert object_hash({"a": 1}) != object_hash({"a": "1"})
