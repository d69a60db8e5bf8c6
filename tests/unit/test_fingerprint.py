"""Which watch events ask for a new diff: ``fingerprint`` and ``declared_metadata`` on plain data."""

from __future__ import annotations

import copy
from typing import Any

from tether.controller.compare import declared_metadata, fingerprint

MANIFEST: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "annotations": {"team": "a"}, "labels": {"app": "web"}},
    "spec": {"replicas": 0},
}


def live(**meta: Any) -> dict[str, Any]:
    obj = copy.deepcopy(MANIFEST)
    obj["metadata"].update({"namespace": "shop", "resourceVersion": "7", "generation": 1, **meta})
    obj["status"] = {"observedGeneration": 1}
    return obj


DECLARED = declared_metadata([MANIFEST])[("apps", "Deployment", "web")]


def test_the_manifests_keys_are_indexed_by_group_kind_and_name() -> None:
    other_namespace = {**MANIFEST, "metadata": {**MANIFEST["metadata"], "namespace": "b", "annotations": {"x": "1"}}}
    declared = declared_metadata([MANIFEST, other_namespace])
    assert declared == {("apps", "Deployment", "web"): (frozenset({"team", "x"}), frozenset({"app"}))}


def test_status_and_bookkeeping_alone_do_not_change_it() -> None:
    before = live()
    after = live(resourceVersion="8", generation=2, managedFields=[{"manager": "kube-controller-manager"}])
    after["status"] = {"observedGeneration": 2, "availableReplicas": 0}
    assert fingerprint(after) == fingerprint(before)
    assert fingerprint(after, DECLARED) == fingerprint(before, DECLARED)


def test_a_key_the_manifest_does_not_set_asks_for_no_diff() -> None:
    before = live()
    after = live(annotations={"team": "a", "deployment.kubernetes.io/revision": "1"}, labels={"app": "web", "x": "y"})
    assert fingerprint(after, DECLARED) == fingerprint(before, DECLARED)
    assert fingerprint(after) != fingerprint(before)  # without the manifest's keys, every key counts


def test_a_key_the_manifest_sets_still_drifts() -> None:
    before = live()
    assert fingerprint(live(annotations={"team": "b"}), DECLARED) != fingerprint(before, DECLARED)
    assert fingerprint(live(annotations={}), DECLARED) != fingerprint(before, DECLARED)
    assert fingerprint(live(labels={}), DECLARED) != fingerprint(before, DECLARED)


def test_the_spec_and_other_metadata_still_drift() -> None:
    before = live()
    replicas = live()
    replicas["spec"]["replicas"] = 2
    assert fingerprint(replicas, DECLARED) != fingerprint(before, DECLARED)
    assert fingerprint(live(finalizers=["x"]), DECLARED) != fingerprint(before, DECLARED)
