import pytest

from tether.render.manifests import ManifestError, objects_from_json, objects_from_yaml


def test_yaml_scalars_keep_their_text_like_go_yaml() -> None:
    (obj,) = objects_from_yaml("apiVersion: v1\nkind: ConfigMap\ndata: {a: 12:30, b: 2024-01-01, c: '='}\n")
    assert obj["data"] == {"a": "12:30", "b": "2024-01-01", "c": "="}


def test_empty_documents_are_skipped_and_lists_flattened() -> None:
    text = """
---
# only a comment
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}
---
apiVersion: v1
kind: ConfigMapList
items: null
"""
    assert [o["metadata"]["name"] for o in objects_from_yaml(text)] == ["a", "b"]


def test_non_manifest_documents_are_errors_naming_the_document() -> None:
    with pytest.raises(ManifestError, match="document 2 is not a Kubernetes object"):
        objects_from_yaml("apiVersion: v1\nkind: ConfigMap\n---\nreplicaCount: 1\n")
    with pytest.raises(ManifestError, match="not a Kubernetes object"):
        objects_from_yaml("- just\n- a list\n")


def test_json_holds_one_object() -> None:
    assert (
        objects_from_json('{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}')[0]["kind"]
        == "Namespace"
    )
    with pytest.raises(ManifestError, match="one object"):
        objects_from_json("[]")
    with pytest.raises(ManifestError, match="invalid JSON"):
        objects_from_json("{")
