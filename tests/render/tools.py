"""Run the pinned tools by hand, the way a person would, to compare with Tether's renders."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tether.tools import binary


def _run(argv: list[str], cwd: Path | None = None) -> str:
    with tempfile.TemporaryDirectory() as home:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": home,
            "HELM_CACHE_HOME": f"{home}/c",
            "HELM_CONFIG_HOME": f"{home}/f",
            "HELM_DATA_HOME": f"{home}/d",
        }
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def kustomize_by_hand(directory: Path) -> list[dict[str, Any]]:
    return docs(_run([str(binary("kubectl")), "kustomize", str(directory)]))


def helm_template_by_hand(chart: Path, release: str, *args: str) -> list[dict[str, Any]]:
    return docs(_run([str(binary("helm")), "template", release, str(chart), "--include-crds", *args]))
