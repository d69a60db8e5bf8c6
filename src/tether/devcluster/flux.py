"""Build Flux's source-controller and kustomize-controller from the Go module proxy, once per version.

The controller benchmarks measure Flux itself on the same devcluster as Tether. Flux publishes
container images, not binaries we can fetch here, so the controllers are built from their
published module source, the way the devcluster's binaries are. That source does not build as
published: each go.mod replaces the controller's own ``api`` module with the directory
``./api``, which is not in the module zip, and source-controller requires a
``github.com/fluxcd/pkg/artifact`` version the proxy refuses. So each module is copied to a
scratch directory, its go.mod edited (local replaces dropped, so the published ``api`` module of
the same version is used; ``FLUX_PINS`` applied) and built there. A stamp beside each binary
records what it was built from, so a warm cache costs nothing.

``python -m tether.devcluster.flux`` builds what is missing and prints the bin directory; the
CRDs are read from the same module sources (``crd_paths``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tether.devcluster.versions import FLUX_PINS, FLUX_VERSION, flux_bin_dir, go_env
from tether.errors import TetherError

BUILD_TIMEOUT = 60 * 60
DOWNLOAD_TIMEOUT = 600
LDFLAGS = "-s -w"


@dataclass(frozen=True)
class FluxTarget:
    """One controller: its binary name and the module that builds it (the module root is ``main``)."""

    binary: str
    module: str


TARGETS = (
    FluxTarget("source-controller", "github.com/fluxcd/source-controller"),
    FluxTarget("kustomize-controller", "github.com/fluxcd/kustomize-controller"),
)
CONTROLLERS = tuple(target.binary for target in TARGETS)

# `X => ./dir` or `X vN => ../dir`, on its own `replace` line or inside a `replace (...)` block.
_LOCAL_REPLACE = re.compile(r"^[ \t]*(?:replace[ \t]+)?([^\s()]+)(?:[ \t]+(v\S+))?[ \t]*=>[ \t]*\.\.?/\S*[ \t]*$", re.M)
_REQUIRE_BLOCK = re.compile(r"^require[ \t]*\((.*?)^\)", re.M | re.S)
_REQUIRE_LINE = re.compile(r"^require[ \t]+(\S+)[ \t]+\S+", re.M)


def local_replaces(gomod: str) -> list[str]:
    """Modules a go.mod replaces with a directory, which a published module zip does not hold.

    As ``go mod edit -dropreplace`` names them: ``path``, or ``path@version`` for a replace of one version.
    """
    return sorted({f"{module}@{version}" if version else module for module, version in _LOCAL_REPLACE.findall(gomod)})


def required_modules(gomod: str) -> set[str]:
    """Every module a go.mod requires, direct or indirect."""
    found = set(_REQUIRE_LINE.findall(gomod))
    for block in _REQUIRE_BLOCK.findall(gomod):
        for line in block.splitlines():
            words = line.split("//", 1)[0].split()
            if len(words) >= 2:
                found.add(words[0])
    return found


def gomod_edits(gomod: str, pins: Mapping[str, str] = FLUX_PINS) -> list[str]:
    """The ``go mod edit`` flags that make a published Flux module buildable from the proxy.

    Local replaces are dropped; each pinned module the go.mod requires is replaced by the pinned
    version (a replace, not a require, so no dependency's higher requirement can pull back the
    refused version).
    """
    required = required_modules(gomod)
    edits = [f"-dropreplace={module}" for module in local_replaces(gomod)]
    edits += [f"-replace={module}={module}@{version}" for module, version in sorted(pins.items()) if module in required]
    return edits


def _go(args: list[str], *, cwd: Path, timeout: float, what: str) -> str:
    env = {**os.environ, **go_env(), "CGO_ENABLED": "0"}
    try:
        done = subprocess.run(["go", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise TetherError("the Go toolchain (`go`) is needed to build Flux; install Go ≥ 1.26") from None
    except subprocess.TimeoutExpired:
        raise TetherError(f"{what} timed out after {timeout:g}s") from None
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise TetherError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


def module_dir(module: str, version: str = FLUX_VERSION) -> Path:
    """The read-only source directory of ``module@version`` in the Go module cache (downloaded if missing)."""
    with tempfile.TemporaryDirectory(prefix="tether-flux-") as scratch:
        out = _go(
            ["mod", "download", "-json", f"{module}@{version}"],
            cwd=Path(scratch),
            timeout=DOWNLOAD_TIMEOUT,
            what=f"go mod download {module}@{version}",
        )
    info = json.loads(out)
    if info.get("Error") or not info.get("Dir"):
        raise TetherError(f"go mod download {module}@{version}: {info.get('Error') or 'no source directory reported'}")
    return Path(info["Dir"])


def crd_paths(version: str = FLUX_VERSION) -> list[Path]:
    """The CRD manifests of both controllers (``config/crd/bases/*.yaml`` of their module sources)."""
    paths: list[Path] = []
    for target in TARGETS:
        bases = module_dir(target.module, version) / "config" / "crd" / "bases"
        found = sorted(bases.glob("*.yaml"))
        if not found:
            raise TetherError(f"{target.module}@{version}: no CRDs under {bases}")
        paths += found
    return paths


def _go_version() -> str:
    return _go(["env", "GOVERSION"], cwd=Path(tempfile.gettempdir()), timeout=60, what="go env GOVERSION").strip()


def _stamp(target: FluxTarget, edits: list[str]) -> str:
    digest = hashlib.sha256()
    digest.update(f"{target.module}@{FLUX_VERSION}\0{' '.join(edits)}\0{LDFLAGS}\0{_go_version()}".encode())
    return digest.hexdigest()


def is_built() -> bool:
    """True when both controller binaries exist for the pinned Flux version."""
    out = flux_bin_dir()
    return all((out / name).is_file() and (out / f"{name}.stamp").is_file() for name in CONTROLLERS)


def build(log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)) -> Path:
    """Build the controllers that are missing or stale and return the bin directory.

    An exclusive lock on the bin directory makes a second caller wait for the first build.
    """
    out = flux_bin_dir()
    out.mkdir(parents=True, exist_ok=True)
    with (out / ".build.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"flux: another build holds {out / '.build.lock'}; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        started = time.monotonic()
        for target in TARGETS:
            source = module_dir(target.module)
            edits = gomod_edits((source / "go.mod").read_text())
            stamp = _stamp(target, edits)
            binary, stamp_file = out / target.binary, out / f"{target.binary}.stamp"
            if binary.is_file() and stamp_file.is_file() and stamp_file.read_text() == stamp:
                continue
            step = time.monotonic()
            log(f"flux: go build {target.module}@{FLUX_VERSION} -> {binary} (edits: {' '.join(edits)}) …")
            _build_one(target, source, edits, out)
            stamp_file.write_text(stamp)
            log(f"flux: {target.binary} built in {time.monotonic() - step:.0f}s")
        log(f"flux: {', '.join(CONTROLLERS)} ready in {out} ({time.monotonic() - started:.0f}s)")
    return out


def _writable_copy(source: Path, dest: Path) -> None:
    """Copy a module-cache tree (read-only files and directories) to ``dest``, writable."""
    shutil.copytree(source, dest, copy_function=shutil.copyfile)
    for root, dirs, _files in os.walk(dest):
        for name in dirs:
            os.chmod(Path(root) / name, 0o755)
    os.chmod(dest, 0o755)


def _build_one(target: FluxTarget, source: Path, edits: list[str], out: Path) -> None:
    log_file = out / f"{target.binary}.build.log"
    partial = out / f".{target.binary}.partial"
    with tempfile.TemporaryDirectory(prefix=f"tether-flux-{target.binary}-") as scratch:
        work = Path(scratch) / "src"
        _writable_copy(source, work)
        if edits:
            _go(["mod", "edit", *edits], cwd=work, timeout=60, what=f"go mod edit in {target.module}")
        env = {**os.environ, **go_env(), "CGO_ENABLED": "0"}
        argv = ["go", "build", "-trimpath", "-ldflags", LDFLAGS, "-o", str(partial), "."]
        with log_file.open("wb") as sink:
            try:
                result = subprocess.run(
                    argv, cwd=work, env=env, stdout=sink, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT
                )
            except subprocess.TimeoutExpired:
                raise TetherError(
                    f"building {target.binary} timed out after {BUILD_TIMEOUT}s; see {log_file}"
                ) from None
    if result.returncode != 0:
        lines = [line for line in log_file.read_text(errors="replace").splitlines() if "go: downloading" not in line]
        raise TetherError(
            f"building {target.binary} failed (exit {result.returncode}); log: {log_file}\n" + "\n".join(lines[-15:])
        )
    partial.replace(out / target.binary)


def main() -> int:
    """``python -m tether.devcluster.flux``: build the controllers (the benchmark runs this in the background)."""
    try:
        print(build())
    except TetherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
