"""Predicting a no-op server-side apply from the live object and its managedFields, on plain data."""

from __future__ import annotations

import copy
from typing import Any

from tether.diff.noop import apply_is_noop

DESIRED: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop", "labels": {"tether.dev/app": "shop"}},
    "spec": {
        "replicas": 0,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {"name": "web", "image": "nginx:1", "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                ],
                "finalizersLike": ["a", "b"],
            },
        },
    },
}

FIELDS: dict[str, Any] = {
    "f:metadata": {"f:labels": {"f:tether.dev/app": {}}},
    "f:spec": {
        "f:replicas": {},
        "f:selector": {},
        "f:template": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:containers": {
                    'k:{"name":"web"}': {
                        ".": {},
                        "f:image": {},
                        "f:name": {},
                        "f:ports": {
                            'k:{"containerPort":80,"protocol":"TCP"}': {
                                ".": {},
                                "f:containerPort": {},
                                "f:protocol": {},
                            }
                        },
                    }
                },
                "f:finalizersLike": {'v:"a"': {}, 'v:"b"': {}},
            },
        },
    },
}


def live_of(desired: dict[str, Any], fields: dict[str, Any], operation: str = "Apply") -> dict[str, Any]:
    """What the server holds: the object plus defaults, status, server metadata and the owner entry."""
    live = copy.deepcopy(desired)
    live["metadata"].update(
        resourceVersion="7",
        uid="u",
        managedFields=[
            {"manager": "tether", "operation": operation, "fieldsType": "FieldsV1", "fieldsV1": fields},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status", "fieldsV1": {}},
        ],
    )
    live["spec"]["strategy"] = {"type": "RollingUpdate"}
    live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    live["status"] = {"observedGeneration": 1}
    return live


def test_an_object_applied_as_it_is_needs_no_write() -> None:
    assert apply_is_noop(DESIRED, live_of(DESIRED, FIELDS))


def test_a_changed_value_needs_a_write() -> None:
    changed = copy.deepcopy(DESIRED)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    assert not apply_is_noop(changed, live_of(DESIRED, FIELDS))


def test_a_field_dropped_from_the_manifest_needs_a_write_to_release_it() -> None:
    fewer = copy.deepcopy(DESIRED)
    del fewer["metadata"]["labels"]
    assert not apply_is_noop(fewer, live_of(DESIRED, FIELDS))


def test_a_field_set_but_owned_by_someone_else_needs_a_write_to_claim_it() -> None:
    fields = copy.deepcopy(FIELDS)
    del fields["f:spec"]["f:replicas"]
    assert not apply_is_noop(DESIRED, live_of(DESIRED, fields))


def test_a_port_without_its_protocol_is_the_servers_tcp_port() -> None:
    partial = copy.deepcopy(DESIRED)
    del partial["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"]  # the server defaults it
    fields = copy.deepcopy(FIELDS)
    ports = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']["f:ports"]
    del ports['k:{"containerPort":80,"protocol":"TCP"}']["f:protocol"]  # set by the server, owned by nobody
    assert apply_is_noop(partial, live_of(DESIRED, fields))
    udp = copy.deepcopy(fields)
    udp_ports = udp["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']["f:ports"]
    udp_ports['k:{"containerPort":80,"protocol":"UDP"}'] = udp_ports.pop('k:{"containerPort":80,"protocol":"TCP"}')
    assert not apply_is_noop(partial, live_of(DESIRED, udp))


def test_a_list_element_named_by_part_of_another_key_goes_to_the_server() -> None:
    partial = copy.deepcopy(DESIRED)
    del partial["spec"]["template"]["spec"]["containers"][0]["name"]
    assert not apply_is_noop(partial, live_of(DESIRED, FIELDS))


def test_values_the_server_would_normalise_go_to_the_server() -> None:
    floaty = copy.deepcopy(DESIRED)
    floaty["spec"]["replicas"] = 0.0
    assert not apply_is_noop(floaty, live_of(DESIRED, FIELDS))


def test_no_apply_entry_or_an_update_entry_means_a_write() -> None:
    assert not apply_is_noop(DESIRED, None)
    assert not apply_is_noop(DESIRED, live_of(DESIRED, FIELDS, operation="Update"))
    bare = live_of(DESIRED, FIELDS)
    del bare["metadata"]["managedFields"]
    assert not apply_is_noop(DESIRED, bare)


def test_set_members_must_match_exactly() -> None:
    fields = copy.deepcopy(FIELDS)
    fields["f:spec"]["f:template"]["f:spec"]["f:finalizersLike"] = {'v:"a"': {}, 'v:"c"': {}}
    assert not apply_is_noop(DESIRED, live_of(DESIRED, fields))
