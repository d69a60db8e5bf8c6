"""Pinned versions of the devcluster's components and where their builds are cached."""

from __future__ import annotations

from pathlib import Path

from tether.paths import cache_root

KUBE_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"

# Flux, the benchmarks' baseline: v1.9.6 is the newest source-/kustomize-controller pair whose
# dependencies the Go module proxy serves (v1.10.1's are refused). source-controller v1.9.6
# requires github.com/fluxcd/pkg/artifact v0.18.3, which the proxy refuses too; v0.18.0 builds.
FLUX_VERSION = "v1.9.6"
FLUX_PINS = {"github.com/fluxcd/pkg/artifact": "v0.18.0"}

# The kwok stages that make fake nodes Ready and let pods run, complete and go away;
# `pod-container-running-failed` only touches pods labelled for it, so tests can make a pod fail.
KWOK_STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat/node-heartbeat.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
    "pod/chaos/pod-container-running-failed.yaml",
)


def bin_dir() -> Path:
    """Where the built control-plane binaries for the pinned Kubernetes version live."""
    return cache_root() / "devcluster" / KUBE_VERSION / "bin"


def flux_bin_dir() -> Path:
    """Where the built Flux controllers for the pinned Flux version live."""
    return cache_root() / "flux" / FLUX_VERSION / "bin"


def go_env() -> dict[str, str]:
    """Go module and build caches, kept under the Tether cache so CI can keep them between runs."""
    root = cache_root() / "go"
    return {"GOMODCACHE": str(root / "mod"), "GOCACHE": str(root / "build"), "GOFLAGS": "-mod=mod"}
