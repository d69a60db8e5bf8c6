"""Flux's published go.mod is made buildable from the proxy: local replaces dropped, refused versions pinned."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tether.devcluster.flux import gomod_edits, local_replaces, required_modules
from tether.devcluster.versions import FLUX_PINS

# The shape of source-controller v1.9.6's go.mod: a single-line local replace, a versioned replace
# that must stay, a replace block, and the refused pkg/artifact version among the requirements.
PUBLISHED = """module github.com/fluxcd/source-controller

go 1.26.0

replace github.com/fluxcd/source-controller/api => ./api

// Replace digest lib to master to gather access to BLAKE3.
replace github.com/opencontainers/go-digest => github.com/opencontainers/go-digest v1.0.1-0.20220411205349-bde1400a84be

replace (
\tgithub.com/example/sibling v0.1.0 => ../sibling
\tsigs.k8s.io/kustomize/api => sigs.k8s.io/kustomize/api v0.21.1
)

require (
\tgithub.com/fluxcd/pkg/artifact v0.18.3
\tgithub.com/fluxcd/source-controller/api v1.9.6
\tgithub.com/opencontainers/go-digest v1.0.0
)

require github.com/example/sibling v0.1.0

require (
\tgithub.com/pkg/errors v0.9.1 // indirect
)
"""


def test_only_directory_replaces_are_local() -> None:
    assert local_replaces(PUBLISHED) == ["github.com/example/sibling@v0.1.0", "github.com/fluxcd/source-controller/api"]


def test_required_modules_reads_lines_and_blocks() -> None:
    assert required_modules(PUBLISHED) == {
        "github.com/fluxcd/pkg/artifact",
        "github.com/fluxcd/source-controller/api",
        "github.com/opencontainers/go-digest",
        "github.com/example/sibling",
        "github.com/pkg/errors",
    }


def test_edits_drop_local_replaces_and_pin_only_required_modules() -> None:
    pins = {"github.com/fluxcd/pkg/artifact": "v0.18.0", "github.com/not/required": "v1.0.0"}
    assert gomod_edits(PUBLISHED, pins) == [
        "-dropreplace=github.com/example/sibling@v0.1.0",
        "-dropreplace=github.com/fluxcd/source-controller/api",
        "-replace=github.com/fluxcd/pkg/artifact=github.com/fluxcd/pkg/artifact@v0.18.0",
    ]


def test_the_refused_artifact_version_is_pinned_by_default() -> None:
    assert FLUX_PINS == {"github.com/fluxcd/pkg/artifact": "v0.18.0"}
    assert "-replace=github.com/fluxcd/pkg/artifact=github.com/fluxcd/pkg/artifact@v0.18.0" in gomod_edits(PUBLISHED)


@pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain")
def test_go_mod_edit_accepts_the_edits(tmp_path: Path) -> None:
    """``go mod edit`` (offline) applies the flags; the result has no local replace and keeps the others."""
    (tmp_path / "go.mod").write_text(PUBLISHED)
    subprocess.run(["go", "mod", "edit", *gomod_edits(PUBLISHED)], cwd=tmp_path, check=True, timeout=60)
    edited = (tmp_path / "go.mod").read_text()
    assert local_replaces(edited) == []
    assert "github.com/fluxcd/pkg/artifact => github.com/fluxcd/pkg/artifact v0.18.0" in edited
    assert "sigs.k8s.io/kustomize/api => sigs.k8s.io/kustomize/api v0.21.1" in edited
    assert "github.com/opencontainers/go-digest => github.com/opencontainers/go-digest v1.0.1-" in edited
