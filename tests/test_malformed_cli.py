"""Every command, given a malformed object, exits 2 with one line on stderr naming the app, the file and the field.

The real `tether` command runs as a process (issue 7, sections 2, 3 and the stdout/stderr
rule of section 7): nothing on stdout, no traceback. diff and sync render before they
touch a cluster, so they are given a kubeconfig that does not exist: a malformed
manifest must be reported as that, before any cluster is needed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import tether

HEAD = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n"
CASES = {
    "metadata-not-a-mapping": ("bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: hello\n", "metadata"),
    "label-not-a-string": ("bad.yaml", HEAD + "  labels: {app: 1}\n", "metadata.labels.app"),
    "binary-data": ("bad.yaml", HEAD + "data: {a: !!binary aGVsbG8=}\n", "data.a: !!binary"),
    "set": ("bad.yaml", HEAD + "data: !!set {a, b}\n", "data: !!set"),
    "null-key": ("bad.yaml", HEAD + "data: {null: x}\n", "data: a key must be a string"),
    "recursive-alias": ("bad.yaml", HEAD + "spec: &a [*a]\n", "spec[0]: a recursive alias"),
    "alias-bomb": (
        "bad.yaml",
        "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
        + "".join(f"{b}: &{b} [{','.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)),
        "expands to more than 1000000 nodes",
    ),
    "deep-json": ("bad.json", "[" * 100_000 + "]" * 100_000, "nested more than 128 levels"),
    "huge-int": ("bad.json", '{"apiVersion": "v1", "kind": "X", "n": ' + "9" * 5000 + "}", "more than 4300 digits"),
}


def _app(tmp_path: Path, name: str) -> Path:
    filename, text, _ = CASES[name]
    app = tmp_path / "app"
    app.mkdir()
    (app / "good.yaml").write_text(HEAD)
    (app / filename).write_text(text)
    return app


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("command", ["render", "diff", "sync"])
def test_app_commands_report_a_malformed_manifest_in_one_line(tmp_path: Path, name: str, command: str) -> None:
    app = _app(tmp_path, name)
    filename, _, field = CASES[name]
    args = [command, str(app)]
    if command == "render":
        args += ["--app", "web"]
    else:
        args += ["--app", "web", "--dest-namespace", "ns", "--kubeconfig", str(tmp_path / "no-kubeconfig")]
    result = tether(*args, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    line = _one_error_line(result.stderr)
    assert line.startswith(f"error: app 'web': manifest {filename}: ")
    assert field in line


@pytest.mark.parametrize("name", [name for name in sorted(CASES) if CASES[name][0].endswith(".yaml")])
def test_health_reports_a_malformed_object_in_one_line(tmp_path: Path, name: str) -> None:
    _, text, field = CASES[name]
    path = tmp_path / "objects.yaml"
    path.write_text(HEAD + "---\n" + text)
    result = tether("health", str(path), timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    line = _one_error_line(result.stderr)
    assert line.startswith(f"error: {path}: document 2: ")
    assert field in line
