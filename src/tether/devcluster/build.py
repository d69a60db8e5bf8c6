"""Build the devcluster's binaries from the Go module proxy, once per version.

Kubernetes publishes no binaries we can fetch here, so kube-apiserver, kube-controller-manager
and kube-scheduler are built from ``k8s.io/kubernetes`` through small wrapper modules kept in
``devcluster/go/`` of the repository; etcd and kwok likewise. A stamp beside each binary
records what it was built from, so a warm cache skips straight to starting the cluster.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tether.devcluster.versions import (
    KUBE_VERSION,
    KWOK_STAGES,
    KWOK_VERSION,
    bin_dir,
    go_env,
)
from tether.errors import TetherError

BUILD_TIMEOUT = 60 * 60


@dataclass(frozen=True)
class Target:
    """One binary: which wrapper module builds which Go package, with which ldflags."""

    binary: str
    module: str
    package: str
    ldflags: str = "-s -w"


def _kube_ldflags() -> str:
    major, minor = KUBE_VERSION.lstrip("v").split(".")[:2]
    values = {
        "gitVersion": KUBE_VERSION,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
    }
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {package}.{key}={value}" for key, value in values.items()]
    return " ".join(flags)


TARGETS = (
    Target("etcd", "etcd", "."),
    Target("kube-apiserver", "kube", "k8s.io/kubernetes/cmd/kube-apiserver", _kube_ldflags()),
    Target("kube-controller-manager", "kube", "k8s.io/kubernetes/cmd/kube-controller-manager", _kube_ldflags()),
    Target("kube-scheduler", "kube", "k8s.io/kubernetes/cmd/kube-scheduler", _kube_ldflags()),
    Target(
        "kwok",
        "kwok",
        "sigs.k8s.io/kwok/cmd/kwok",
        f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={KWOK_VERSION.lstrip('v')}",
    ),
)
COMPONENTS = tuple(target.binary for target in TARGETS)


def modules_dir() -> Path:
    """The repository's ``devcluster/go`` directory (the devcluster is a development tool)."""
    override = os.environ.get("TETHER_DEVCLUSTER_GO")
    if override:
        return Path(override)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "devcluster" / "go"
        if (candidate / "kube" / "go.mod").is_file():
            return candidate
    raise TetherError("devcluster/go not found: run from a Tether source checkout (make install)")


def _stamp(target: Target, module_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((module_dir / name).read_bytes())
    digest.update(f"{target.package}\0{target.ldflags}\0{_go_version()}".encode())
    return digest.hexdigest()


def _go_version() -> str:
    go = shutil.which("go")
    if not go:
        raise TetherError("the Go toolchain (`go`) is needed to build the devcluster; install Go ≥ 1.26")
    return subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, timeout=60).stdout.strip()


def is_built() -> bool:
    """True when every binary and the kwok stages exist for the pinned versions."""
    out = bin_dir()
    return all((out / name).is_file() for name in COMPONENTS) and (out / "kwok-stages.yaml").is_file()


def _stale(target: Target, out: Path, module_dir: Path) -> bool:
    binary, stamp = out / target.binary, out / f"{target.binary}.stamp"
    return not (binary.is_file() and stamp.is_file() and stamp.read_text() == _stamp(target, module_dir))


def build(log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)) -> Path:
    """Build what is missing or stale and return the bin directory; one progress line per step.

    Holds an exclusive lock on the bin directory, so concurrent callers (two test sessions,
    `make -j`) wait for one build instead of racing on the same files.
    """
    out = bin_dir()
    out.mkdir(parents=True, exist_ok=True)
    with (out / ".build.lock").open("w") as lock:
        if _try_lock(lock):
            return _build_locked(out, log)
        log(f"devcluster: another build holds {out / '.build.lock'}; waiting for it")
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(out, log)


def _try_lock(lock: IO[str]) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _build_locked(out: Path, log: Callable[[str], None]) -> Path:
    modules = modules_dir()
    started = time.monotonic()
    steps = [t for t in TARGETS if _stale(t, out, modules / t.module)]
    if not steps and (out / "kwok-stages.yaml").is_file():
        return out
    log(
        f"devcluster: building {len(steps)} binaries for Kubernetes {KUBE_VERSION} into {out} (cold builds take a while)"
    )
    for index, target in enumerate(steps, 1):
        step_started = time.monotonic()
        log(f"[{index}/{len(steps)}] go build {target.package} -> {target.binary} …")
        _go_build(target, modules / target.module, out)
        log(
            f"[{index}/{len(steps)}] {target.binary} built in {time.monotonic() - step_started:.0f}s "
            f"(elapsed {time.monotonic() - started:.0f}s)"
        )
    _write_kwok_stages(modules / "kwok", out / "kwok-stages.yaml")
    log(f"devcluster: build complete in {time.monotonic() - started:.0f}s")
    return out


def _go_build(target: Target, module_dir: Path, out: Path) -> None:
    env = {**os.environ, **go_env(), "CGO_ENABLED": "0"}
    partial = out / f".{target.binary}.partial"
    argv = ["go", "build", "-trimpath", "-ldflags", target.ldflags, "-o", str(partial), target.package]
    log_file = out / f"{target.binary}.build.log"
    with log_file.open("wb") as sink:
        try:
            result = subprocess.run(
                argv, cwd=module_dir, env=env, stdout=sink, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT
            )
        except subprocess.TimeoutExpired:
            raise TetherError(f"building {target.binary} timed out after {BUILD_TIMEOUT}s; see {log_file}") from None
    if result.returncode != 0:
        tail = log_file.read_text(errors="replace").strip().splitlines()[-15:]
        raise TetherError(
            f"building {target.binary} failed (exit {result.returncode}); log: {log_file}\n" + "\n".join(tail)
        )
    partial.replace(out / target.binary)
    (out / f"{target.binary}.stamp").write_text(_stamp(target, module_dir))


def _write_kwok_stages(kwok_module: Path, dest: Path) -> None:
    """Concatenate the stage manifests shipped in the kwok module into one kwok --config file."""
    env = {**os.environ, **go_env()}
    result = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kwok"],
        cwd=kwok_module,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise TetherError(f"cannot locate the kwok module source: {result.stderr.strip()}")
    stage_root = Path(result.stdout.strip()) / "kustomize" / "stage"
    documents = [(stage_root / stage).read_text().strip() for stage in KWOK_STAGES]
    dest.write_text("\n---\n".join(documents) + "\n")


def main() -> int:
    """``python -m tether.devcluster.build``: what `make install` runs."""
    try:
        build()
    except TetherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
