"""Normalisation, masking, JSON pointers, managedFields and ignore rules on plain data (no cluster)."""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from tether.diff import (
    DiffError,
    IgnoreRule,
    JqTimeout,
    apply_ignores,
    mask_secret,
    normalise,
    parse_ignore_differences,
    pointer,
    respect_ignored,
)
from tether.diff.app import AppDiff, ResourceDiff, overlay
from tether.diff.compare import changed_paths, to_yaml, unified
from tether.diff.ignore import manager_paths, resolve, strip_ignored
from tether.diff.jq import JqRunner
from tether.resource import TRACKING_ANNOTATION, ResourceKey


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def live_deployment() -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "uid": "u-1",
            "resourceVersion": "42",
            "generation": 3,
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "selfLink": "/x",
            "annotations": {
                TRACKING_ANNOTATION: "a:apps/Deployment:ns/web",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
            },
            "labels": {"app": "web"},
            "managedFields": [
                {
                    "manager": "tether",
                    "operation": "Apply",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:spec": {
                            "f:template": {
                                "f:spec": {"f:containers": {'k:{"name":"web"}': {".": {}, "f:name": {}, "f:image": {}}}}
                            }
                        }
                    },
                },
                {
                    "manager": "hpa",
                    "operation": "Update",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:spec": {
                            "f:replicas": {},
                            "f:template": {
                                "f:spec": {
                                    "f:containers": {
                                        'k:{"name":"sidecar"}': {".": {}, "f:resources": {"f:limits": {"f:cpu": {}}}}
                                    }
                                }
                            },
                        }
                    },
                },
            ],
        },
        "spec": {
            "replicas": 5,
            "template": {
                "spec": {
                    "containers": [
                        {"name": "sidecar", "image": "envoy", "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}},
                        {"name": "web", "image": "nginx:1.27"},
                    ]
                }
            },
        },
        "status": {"readyReplicas": 5},
    }


def test_normalise_drops_bookkeeping_status_and_tracking_id_but_keeps_the_rest() -> None:
    out = normalise(live_deployment())
    assert set(out["metadata"]) == {"name", "namespace", "labels"}
    assert "status" not in out
    assert out["spec"]["replicas"] == 5


def test_normalise_does_not_touch_its_input() -> None:
    obj = live_deployment()
    obj["metadata"]["annotations"] = {TRACKING_ANNOTATION: "app:apps/Deployment:ns/web", "team": "a"}
    before = json.loads(json.dumps(obj))
    out = normalise(obj)
    assert out["metadata"]["annotations"] == {"team": "a"}
    assert obj == before  # it shares what it does not change (the spec), and changes nothing it shares


def test_normalise_folds_string_data_without_changing_the_input_data() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"a": b64("x")}}
    secret["stringData"] = {"b": "y"}
    normalise(secret)
    assert secret["data"] == {"a": b64("x")} and secret["stringData"] == {"b": "y"}


async def test_strip_ignored_copies_what_it_strips_and_leaves_its_inputs_alone() -> None:
    live, predicted = normalise(live_deployment()), normalise(live_deployment())
    before = json.loads(json.dumps(live))
    rules = parse_ignore_differences([{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}])
    async with JqRunner(5.0) as jq:
        key = ResourceKey.of(live)
        stripped_live, stripped_predicted = await strip_ignored(live, predicted, key, rules, managed_from=None, jq=jq)
        other = ResourceKey("", "ConfigMap", "ns", "web")
        assert await strip_ignored(live, predicted, other, rules, managed_from=None, jq=jq) == (live, predicted)
    assert stripped_live is not None and stripped_predicted is not None
    assert "replicas" not in stripped_live["spec"] and "replicas" not in stripped_predicted["spec"]
    assert live == before and predicted == before


def test_normalise_folds_string_data_into_data_like_the_server() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"a": b64("x")},
        "stringData": {"b": "y"},
    }
    assert normalise(secret)["data"] == {"a": b64("x"), "b": b64("y")}
    assert "stringData" not in normalise(secret)


def test_mask_secret_marks_changed_keys_and_hides_every_value() -> None:
    live = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"same": b64("keep"), "diff": b64("old-canary"), "gone": b64("bye")},
    }
    desired = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"same": b64("keep"), "diff": b64("new-canary"), "new": b64("hello")},
    }
    masked_live, masked_desired = mask_secret(live, desired)
    assert masked_live["data"] == {"same": "++++++++", "diff": "++++++++", "gone": "++++++++"}
    assert masked_desired["data"] == {"same": "++++++++", "diff": "++++++++ (changed)", "new": "++++++++ (changed)"}
    text = json.dumps([masked_live, masked_desired])
    for value in ("keep", "old-canary", "new-canary", "hello", "bye"):
        assert value not in text and b64(value) not in text
    assert live["data"]["diff"] == b64("old-canary")  # inputs untouched


def test_mask_secret_leaves_other_kinds_alone() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}
    assert mask_secret(cm, cm) == (cm, cm)


def test_mask_secret_masks_placeholder_fields_on_both_sides_whatever_they_hold() -> None:
    """The live side holds the value the pass entry had before it changed: no redactor knows it."""

    def deployment(value: str, note: str) -> dict:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "annotations": {"note": note}},
            "spec": {"template": {"spec": {"containers": [{"env": [{"name": "K", "value": value}]}]}}},
        }

    live, desired = deployment("old-canary-1", "same-canary"), deployment("new-canary-2", "same-canary")
    fields = ["/spec/template/spec/containers/0/env/0/value", "/metadata/annotations/note", "/spec/absent"]
    masked_live, masked_desired = mask_secret(live, desired, fields)
    env = lambda obj: obj["spec"]["template"]["spec"]["containers"][0]["env"][0]  # noqa: E731
    assert env(masked_live) == {"name": "K", "value": "++++++++"}
    assert env(masked_desired) == {"name": "K", "value": "++++++++ (changed)"}
    assert masked_live["metadata"]["annotations"]["note"] == masked_desired["metadata"]["annotations"]["note"]
    assert "/spec/absent" not in json.dumps(masked_desired) and "absent" not in masked_desired["spec"]
    text = unified(masked_live, masked_desired, "Deployment web") + json.dumps([masked_live, masked_desired])
    assert "++++++++ (changed)" in text
    for value in ("old-canary-1", "new-canary-2", "same-canary"):
        assert value not in text
    # one side only: a field the app stopped reading from pass, or one it starts to
    only_live, only_desired = mask_secret(live, None, fields)
    assert env(only_live)["value"] == "++++++++" and only_desired is None


def test_mask_secret_finds_a_secret_string_data_field_where_normalise_moved_it() -> None:
    live = normalise({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "old-c"}})
    desired = normalise({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "new"}})
    masked_live, masked_desired = mask_secret(live, desired, ["/stringData/k"])
    assert masked_live["data"] == {"k": "++++++++"} and masked_desired["data"] == {"k": "++++++++ (changed)"}


def test_json_pointer_escapes_and_list_indexes() -> None:
    doc = {"metadata": {"labels": {"a/b": "1", "c~d": "2"}}, "items": [{"x": 1}, {"x": 2}]}
    assert pointer.parse("/metadata/labels/a~1b") == ("metadata", "labels", "a/b")
    assert pointer.get(doc, pointer.resolve(doc, pointer.parse("/metadata/labels/c~0d"))) == "2"
    assert pointer.resolve(doc, pointer.parse("/items/1/x")) == ("items", 1, "x")
    assert pointer.resolve(doc, pointer.parse("/items/01/x")) is None  # no leading zeros (RFC 6901)
    assert pointer.resolve(doc, pointer.parse("/items/9")) is None
    assert pointer.format_path(("metadata", "labels", "a/b", "c~d")) == "/metadata/labels/a~1b/c~0d"
    with pytest.raises(DiffError):
        pointer.parse("spec/replicas")


def test_remove_all_keeps_list_indexes_valid() -> None:
    doc = {"l": [0, 1, 2, 3]}
    pointer.remove_all(doc, [("l", 0), ("l", 2)])
    assert doc == {"l": [1, 3]}


def test_changed_paths_and_unified_text() -> None:
    live = {"spec": {"replicas": 5, "a": {"b": 1}, "list": [1, 2]}}
    predicted = {"spec": {"replicas": 2, "a": {"b": 1, "c": 2}, "list": [1, 2, 3]}}
    assert changed_paths(live, predicted) == ["/spec/a/c", "/spec/list", "/spec/replicas"]
    text = unified(live, predicted, "Deployment ns/web")
    assert "-  replicas: 5" in text and "+  replicas: 2" in text
    assert unified(live, live, "x") == ""


def test_diff_yaml_reads_back_unchanged_and_keeps_emoji_readable() -> None:
    edge = {
        "long": "x" * 2000,
        "emoji": "ship it \U0001f680",
        "accents": "déjà vu 中文",
        "big": 2**70,
        "float": 1.5e300,
        "multiline": "line one\nline two\n",
        "looks-like": ["yes", "null", "0x1F", "2026-12-01", "~", "1e3"],
        "control": "a\x01b\u2028c\x85d",
        "": {"nested": [None, True, {"k": []}]},
    }
    text = to_yaml(edge)
    assert yaml.safe_load(text) == edge
    assert "ship it \U0001f680" in text  # not the escape \\U0001F680
    assert "déjà vu 中文" in text
    assert to_yaml({"b": 1, "a": {"d": 2, "c": 3}}) == "a:\n  c: 3\n  d: 2\nb: 1\n"


def test_manager_paths_are_leaves_matched_by_list_item_keys() -> None:
    live = live_deployment()
    paths = manager_paths(live, ["hpa"])
    concrete = sorted(resolve(live, p) for p in paths)
    assert concrete == [
        ("spec", "replicas"),
        ("spec", "template", "spec", "containers", 0, "resources", "limits", "cpu"),
    ]
    assert manager_paths(live, ["nobody"]) == []


def test_ignore_rule_parsing_and_matching() -> None:
    rule = IgnoreRule.from_spec({"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]})
    assert rule.matches(ResourceKey("apps", "Deployment", "ns", "web"))
    assert not rule.matches(ResourceKey("", "ConfigMap", "ns", "web"))
    wildcard = IgnoreRule.from_spec({"group": "*", "kind": "*", "name": "web"})
    assert wildcard.matches(ResourceKey("", "Service", "x", "web")) and not wildcard.matches(
        ResourceKey("", "Service", "x", "db")
    )
    with pytest.raises(DiffError, match=r"ignoreDifferences\[0\].jsonPointers\[0\]"):
        parse_ignore_differences([{"kind": "Deployment", "jsonPointers": ["spec"]}])
    with pytest.raises(DiffError, match="unknown field"):
        parse_ignore_differences([{"kind": "Deployment", "jsonPointer": ["/spec"]}])


async def test_apply_ignores_pointers_jq_and_managers() -> None:
    live = live_deployment()
    rules = [
        {"group": "apps", "kind": "Deployment", "jsonPointers": ["/metadata/labels"]},
        {
            "group": "apps",
            "kind": "Deployment",
            "jqPathExpressions": ['.spec.template.spec.containers[] | select(.name == "web") | .image'],
        },
        {"group": "apps", "kind": "Deployment", "managedFieldsManagers": ["hpa"]},
    ]
    out = await apply_ignores(live, rules)
    assert "labels" not in out["metadata"]
    assert "replicas" not in out["spec"]
    sidecar, web = out["spec"]["template"]["spec"]["containers"]
    assert web == {"name": "web"}
    assert sidecar["resources"] == {"limits": {"memory": "1Gi"}}  # only the leaf hpa owns


async def test_jq_runtime_error_on_an_object_ignores_nothing_there() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    rules = [{"kind": "ConfigMap", "jqPathExpressions": [".spec.containers[].image"]}]
    assert await apply_ignores(obj, rules) == obj


async def test_jq_compile_error_is_reported() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    with pytest.raises(DiffError, match="does not compile"):
        await apply_ignores(obj, [{"kind": "ConfigMap", "jqPathExpressions": [".data | ]["]}], app="shop")


@pytest.mark.parametrize("expr", ["def f: f; f", "[range(1e9)] | .[0]", "last(range(1e12))"])
async def test_runaway_jq_is_stopped_with_a_clear_error(expr: str) -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    with pytest.raises(
        JqTimeout, match=r"app 'shop': ConfigMap c: jq expression .* (did not finish within 0.5s|memory cap)"
    ):
        await apply_ignores(obj, [{"kind": "ConfigMap", "jqPathExpressions": [expr]}], jq_timeout=0.5, app="shop")


async def test_respect_ignored_takes_live_values_or_drops_the_field() -> None:
    live = live_deployment()
    desired = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {
            "replicas": 2,
            "paused": False,
            "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}},
        },
    }
    rules = [
        {"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas", "/spec/paused"]},
        {"group": "apps", "kind": "Deployment", "jqPathExpressions": [".spec.template.spec.containers[0].image"]},
    ]
    out = await respect_ignored(desired, live, rules)
    assert out["spec"]["replicas"] == 5  # live's value
    assert "paused" not in out["spec"]  # live lacks it: left to the cluster
    # jq paths are looked up at the same place in live: containers[0] there is the sidecar.
    assert out["spec"]["template"]["spec"]["containers"][0]["image"] == "envoy"
    assert desired["spec"]["replicas"] == 2
    assert await respect_ignored(desired, None, rules) == desired


async def test_respect_ignored_with_managers_matches_list_items_by_key() -> None:
    live = live_deployment()
    desired = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {
            "replicas": 1,
            "template": {
                "spec": {
                    "containers": [
                        {"name": "web", "image": "nginx"},
                        {"name": "sidecar", "image": "envoy", "resources": {"limits": {"cpu": "1"}}},
                    ]
                }
            },
        },
    }
    out = await respect_ignored(
        desired, live, [{"group": "apps", "kind": "Deployment", "managedFieldsManagers": ["hpa"]}]
    )
    assert out["spec"]["replicas"] == 5
    assert out["spec"]["template"]["spec"]["containers"][1]["resources"]["limits"]["cpu"] == "2"


def test_overlay_merges_maps_and_same_length_lists_of_maps() -> None:
    live = {
        "spec": {
            "replicas": 1,
            "strategy": {"type": "RollingUpdate"},
            "containers": [{"name": "a", "imagePullPolicy": "Always"}],
        }
    }
    desired = {"spec": {"replicas": 3, "containers": [{"name": "a", "image": "x"}]}}
    assert overlay(live, desired) == {
        "spec": {
            "replicas": 3,
            "strategy": {"type": "RollingUpdate"},
            "containers": [{"name": "a", "imagePullPolicy": "Always", "image": "x"}],
        }
    }


def test_app_in_sync_ignores_ignore_extraneous_leftovers() -> None:
    key = ResourceKey("", "ConfigMap", "ns", "old")
    assert AppDiff("a", [ResourceDiff(key, "Extraneous", ignore_extraneous=True)]).in_sync
    assert not AppDiff("a", [ResourceDiff(key, "Extraneous")]).in_sync
    assert AppDiff("a", [ResourceDiff(key, "Synced")]).text() == ""
