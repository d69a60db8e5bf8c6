"""The kube wrapper module's replace list is derived from upstream, not typed by hand."""

from pathlib import Path

import pytest

from tether.devcluster.gomod import staging_modules, staging_version, wrapper_gomod
from tether.devcluster.versions import KUBE_VERSION

UPSTREAM = """module k8s.io/kubernetes

go 1.26.0

require (
\tk8s.io/api v0.0.0
\tgithub.com/foo/bar v1.2.3
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tgithub.com/foo/bar => github.com/foo/bar v1.2.4
)
"""


def test_only_staging_replaces_are_taken() -> None:
    assert staging_modules(UPSTREAM) == ["k8s.io/api", "k8s.io/client-go"]


def test_staging_version_maps_minor_and_patch() -> None:
    assert staging_version("v1.36.3") == "v0.36.3"
    with pytest.raises(ValueError):
        staging_version("v2.0.0")


def test_wrapper_requires_kubernetes_and_replaces_each_staging_module() -> None:
    text = wrapper_gomod(UPSTREAM, "v1.36.3", "1.26.0")
    assert "require k8s.io/kubernetes v1.36.3" in text
    assert "\tk8s.io/api => k8s.io/api v0.36.3" in text
    assert "\tk8s.io/client-go => k8s.io/client-go v0.36.3" in text
    assert "github.com/foo/bar =>" not in text


def test_committed_gomod_matches_the_pinned_version() -> None:
    gomod = (Path(__file__).parents[2] / "devcluster" / "go" / "kube" / "go.mod").read_text()
    assert f"k8s.io/kubernetes {KUBE_VERSION}" in gomod
    replaced = [line for line in gomod.splitlines() if "=>" in line]
    assert len(replaced) >= 30
    assert all(line.strip().endswith(staging_version(KUBE_VERSION)) for line in replaced)


@pytest.mark.parametrize(
    ("module", "path", "version"),
    [
        ("etcd", "go.etcd.io/etcd/server/v3", "ETCD_VERSION"),
        ("kwok", "sigs.k8s.io/kwok", "KWOK_VERSION"),
    ],
)
def test_wrapper_modules_pin_the_versions_tether_reports(module: str, path: str, version: str) -> None:
    from tether.devcluster import versions

    gomod = (Path(__file__).parents[2] / "devcluster" / "go" / module / "go.mod").read_text()
    assert f"require {path} {getattr(versions, version)}" in gomod
