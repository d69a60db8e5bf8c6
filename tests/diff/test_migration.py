"""Client-side apply migration on plain data: which fields it releases, and the managedFields patch."""

from __future__ import annotations

import json
from typing import Any

from tether.diff.ignore import KeySelector
from tether.diff.migration import (
    CSA_MANAGER,
    LAST_APPLIED,
    app_manager,
    manager_for,
    migration_patch,
    pending,
    released,
    without_released,
)

WEB = KeySelector((("name", "web"),))
OLD = KeySelector((("name", "OLD"),))
ENV = ("spec", "template", "spec", "containers", WEB, "env")


def container(*env: str) -> dict[str, Any]:
    return {"name": "web", "image": "nginx", "env": [{"name": n, "value": "1"} for n in env]}


def deployment(*env: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "mig", "namespace": "ns"},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [container(*env)]}}},
    }


def env_fields(*names: str) -> dict[str, Any]:
    return {".": {}, **{f'k:{{"name":"{n}"}}': {".": {}, "f:name": {}, "f:value": {}} for n in names}}


# What `kubectl apply` (client-side) recorded for a Deployment with env OLD and KEEP: its Update entry
# owns the fields it sent, defaults such as dnsPolicy included, and its annotation.
CSA_FIELDS = {
    "f:metadata": {"f:annotations": {".": {}, f"f:{LAST_APPLIED}": {}}},
    "f:spec": {
        "f:replicas": {},
        "f:template": {
            "f:spec": {
                "f:containers": {
                    'k:{"name":"web"}': {".": {}, "f:env": env_fields("KEEP", "OLD"), "f:image": {}, "f:name": {}}
                },
                "f:dnsPolicy": {},
            }
        },
    },
}


def live_object(*, tether_fields: dict[str, Any] | None = None, other: dict[str, Any] | None = None) -> dict[str, Any]:
    obj = deployment("KEEP", "OLD")
    obj["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst"  # a default: not in last-applied
    obj["metadata"]["resourceVersion"] = "42"
    obj["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(deployment("KEEP", "OLD"))}
    entries: list[dict[str, Any]] = [
        {"manager": CSA_MANAGER, "operation": "Update", "apiVersion": "apps/v1", "fieldsV1": CSA_FIELDS}
    ]
    if tether_fields is not None:
        entries.insert(
            0, {"manager": "tether", "operation": "Apply", "apiVersion": "apps/v1", "fieldsV1": tether_fields}
        )
    if other is not None:
        entries.append({"manager": "kubectl-edit", "operation": "Update", "apiVersion": "apps/v1", "fieldsV1": other})
    obj["metadata"]["managedFields"] = entries
    return obj


def test_a_field_git_dropped_is_released_and_defaults_and_kept_fields_are_not() -> None:
    live = live_object()
    gone = released(live, deployment("KEEP"), CSA_MANAGER)
    assert set(gone) == {ENV + (OLD,), ENV + (OLD, "name"), ENV + (OLD, "value")}
    predicted = without_released(live, gone)
    assert [e["name"] for e in predicted["spec"]["template"]["spec"]["containers"][0]["env"]] == ["KEEP"]
    assert predicted["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"  # defaults stay
    assert [e["name"] for e in live["spec"]["template"]["spec"]["containers"][0]["env"]] == ["KEEP", "OLD"]


def test_nothing_is_released_without_the_manager_its_last_applied_config_or_when_another_manager_holds_it() -> None:
    live = live_object()
    assert released(live, deployment("KEEP", "OLD"), CSA_MANAGER) == []
    assert released(live, deployment("KEEP"), "someone-else") == []
    assert released(live, deployment("KEEP"), None) == []
    without_annotation = live_object()
    del without_annotation["metadata"]["annotations"][LAST_APPLIED]
    assert released(without_annotation, deployment("KEEP"), CSA_MANAGER) == []
    edited = live_object(
        other={
            "f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"web"}': {"f:env": env_fields("OLD")}}}}}
        }
    )
    assert released(edited, deployment("KEEP"), CSA_MANAGER) == []


def test_the_patch_moves_the_fields_to_tether_and_guards_with_the_resource_version() -> None:
    tether_fields = {
        "f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"web"}': {"f:env": env_fields("KEEP")}}}}}
    }
    live = live_object(tether_fields=tether_fields)
    patch = migration_patch(live, CSA_MANAGER)
    assert patch is not None
    entries, version = patch[0]["value"], patch[1]
    assert version == {"op": "replace", "path": "/metadata/resourceVersion", "value": "42"}
    assert [(e["manager"], e["operation"]) for e in entries] == [("tether", "Apply")]
    fields = entries[0]["fieldsV1"]
    web = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert set(web["f:env"]) == {".", 'k:{"name":"KEEP"}', 'k:{"name":"OLD"}'}
    assert fields["f:spec"]["f:template"]["f:spec"]["f:dnsPolicy"] == {}
    # kubectl's own annotation is left to nobody, so the apply after the move does not delete it
    assert fields["f:metadata"] == {"f:annotations": {".": {}}}
    assert pending(live, CSA_MANAGER) and not pending({"metadata": {"managedFields": entries}}, CSA_MANAGER)
    assert migration_patch({"metadata": {"managedFields": entries}}, CSA_MANAGER) is None


def test_without_a_tether_entry_the_client_side_one_becomes_it() -> None:
    patch = migration_patch(live_object(), CSA_MANAGER)
    assert patch is not None
    (entry,) = patch[0]["value"]
    assert (entry["manager"], entry["operation"]) == ("tether", "Apply")
    assert "f:replicas" in entry["fieldsV1"]["f:spec"]


def test_a_leaf_member_joined_with_children_keeps_both() -> None:
    tether_fields = {"f:spec": {"f:template": {}}}  # tether owns template as a whole (a leaf)
    entry = migration_patch(live_object(tether_fields=tether_fields), CSA_MANAGER)[0]["value"][0]  # type: ignore[index]
    template = entry["fieldsV1"]["f:spec"]["f:template"]
    assert "." in template and "f:spec" in template


def test_the_option_and_the_annotation_choose_the_manager() -> None:
    assert app_manager([], None) == CSA_MANAGER
    assert app_manager(["ClientSideApplyMigration=false"], "x") is None
    assert app_manager(["CreateNamespace=true"], "argocd-controller") == "argocd-controller"
    off = {"metadata": {"annotations": {"argocd.argoproj.io/sync-options": "ClientSideApplyMigration=false"}}}
    on = {"metadata": {"annotations": {"tether.dev/sync-options": "ClientSideApplyMigration=true"}}}
    assert manager_for(off, CSA_MANAGER) is None
    assert manager_for(on, None) == CSA_MANAGER
    assert manager_for({"metadata": {}}, "m") == "m"
