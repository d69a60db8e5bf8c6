"""`tether health` through click's CliRunner: tables, JSON, Lua directories and bad files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from tether.cli import main

LUA_DIR = Path(__file__).parent / "lua"

OBJECTS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, generation: 2}
spec: {replicas: 2}
status: {observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 1}
---
# an empty document is skipped
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: settings, namespace: shop}
  - apiVersion: v1
    kind: Namespace
    metadata: {name: shop}
    status: {phase: Active}
  - apiVersion: cert-manager.io/v1
    kind: Certificate
    metadata: {name: shop-tls, namespace: shop}
    status:
      conditions:
        - {type: Ready, status: "False", message: issuer not found}
"""


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, ["health", *args], catch_exceptions=False)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "objects.yaml"
    path.write_text(text)
    return path


def test_prints_a_table_of_every_object(tmp_path: Path) -> None:
    result = invoke(str(write(tmp_path, OBJECTS)))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["KIND", "NAMESPACE/NAME", "STATUS", "MESSAGE"]
    rows = [line.split(None, 3) for line in lines[1:]]
    assert rows == [
        [
            "Deployment",
            "shop/web",
            "Progressing",
            "Waiting for rollout to finish: 1 of 2 updated replicas are available...",
        ],
        ["ConfigMap", "shop/settings", "-", "no health for this kind"],
        ["Namespace", "shop", "Healthy"],
        ["Certificate", "shop/shop-tls", "Degraded", "issuer not found"],
    ]
    assert lines[0].index("STATUS") == lines[1].index("Progressing")


def test_json_output_with_lua_checks(tmp_path: Path) -> None:
    result = invoke(str(write(tmp_path, OBJECTS)), "--lua-dir", str(LUA_DIR), "-o", "json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(row["kind"], row["status"], row["message"]) for row in rows] == [
        ("Deployment", "Progressing", "Waiting for rollout to finish: 1 of 2 updated replicas are available..."),
        ("ConfigMap", "Healthy", "ConfigMap looks fine"),
        ("Namespace", "Healthy", ""),
        ("Certificate", "Degraded", "issuer not found"),
    ]
    assert rows[0]["check"] == "built-in apps/Deployment"
    assert rows[3]["check"] == f"lua {LUA_DIR / 'cert-manager.io' / 'Certificate' / 'health.lua'}"
    assert rows[2] | {"check": None} == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "namespace": "",
        "name": "shop",
        "status": "Healthy",
        "message": "",
        "check": None,
        "printed": [],
    }


def test_open_libs_and_printed_lines_help_debug_a_check(tmp_path: Path) -> None:
    scripts = tmp_path / "checks"
    (scripts / "example.com" / "Thing").mkdir(parents=True)
    (scripts / "example.com" / "Thing" / "health.lua").write_text(
        'print("phase is", obj.status.phase)\nreturn {status = "Healthy", message = string.lower(obj.status.phase)}\n'
    )
    objects = write(tmp_path, "apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: t}\nstatus: {phase: READY}\n")
    closed = invoke(str(objects), "--lua-dir", str(scripts), "-o", "json")
    assert json.loads(closed.stdout)[0]["status"] == "Unknown"
    opened = invoke(str(objects), "--lua-dir", str(scripts), "--open-libs")
    assert opened.exit_code == 0
    assert opened.stdout.splitlines()[1].split() == ["Thing", "t", "Healthy", "ready"]
    assert opened.stderr == "print from Thing t: phase is\tREADY\n"


def test_malformed_yaml_names_the_file_and_the_document(tmp_path: Path) -> None:
    path = write(tmp_path, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: [unclosed\n")
    result = invoke(str(path))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {path}: invalid YAML in document 2:")


def test_a_document_that_is_not_an_object_names_its_index(tmp_path: Path) -> None:
    path = write(tmp_path, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n- just\n- a list\n")
    result = invoke(str(path))
    assert result.exit_code == 2
    assert result.stderr == f"error: {path}: document 2 is a list, not a Kubernetes object\n"


def test_a_list_item_without_kind_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    metadata: {name: a}\n")
    result = invoke(str(path))
    assert result.exit_code == 2
    assert result.stderr == f"error: {path}: document 1: items[0] (of the List) is not a Kubernetes object (no kind)\n"


def test_unreadable_file_and_lua_dir(tmp_path: Path) -> None:
    missing = invoke(str(tmp_path / "missing.yaml"))
    assert missing.exit_code == 2
    assert missing.stderr.startswith(f"error: {tmp_path / 'missing.yaml'}: cannot read:")
    no_dir = invoke(str(write(tmp_path, OBJECTS)), "--lua-dir", str(tmp_path / "no-such-dir"))
    assert no_dir.exit_code == 2
    assert str(tmp_path / "no-such-dir") in no_dir.stderr


def test_several_files_are_read_in_order(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: one}\nstatus: {phase: Active}\n")
    second.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: two}\nstatus: {phase: Terminating}\n")
    result = invoke(str(first), str(second), "-o", "json")
    assert result.exit_code == 0
    assert [(row["name"], row["status"]) for row in json.loads(result.stdout)] == [
        ("one", "Healthy"),
        ("two", "Progressing"),
    ]
