"""A failed devcluster build says which binary failed and where its log is, and installs nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.devcluster import build as build_mod
from tether.errors import TetherError


def test_failed_build_names_the_binary_and_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    modules = tmp_path / "go"
    for name in ("etcd", "kube", "kwok"):
        (modules / name).mkdir(parents=True)
        (modules / name / "go.mod").write_text(f"module example.com/{name}\n\ngo 1.22\n")
        (modules / name / "go.sum").write_text("")
    (modules / "etcd" / "main.go").write_text("package main\n\nfunc main() { this is not Go }\n")
    monkeypatch.setenv("TETHER_DEVCLUSTER_GO", str(modules))
    monkeypatch.setenv("TETHER_CACHE", str(tmp_path / "cache"))
    lines: list[str] = []

    with pytest.raises(TetherError) as failure:
        build_mod.build(log=lines.append)

    message = str(failure.value)
    log_file = tmp_path / "cache" / "devcluster" / build_mod.KUBE_VERSION / "bin" / "etcd.build.log"
    assert "building etcd failed" in message and str(log_file) in message
    assert "syntax error" in log_file.read_text()
    assert not (log_file.parent / "etcd").exists()
    assert any(line.startswith("[1/5] go build") for line in lines)
