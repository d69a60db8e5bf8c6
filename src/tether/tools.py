"""Find the pinned helper binaries (helm, kubectl) that `make install` puts beside Python.

Tether never uses whatever helm or kubectl happens to be on PATH first: the versions it
renders with are part of the render cache key and of the tests, so they must be the pinned ones.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tether.errors import TetherError

PINNED = ("helm", "kubectl")


def binary(name: str) -> Path:
    """Path of a pinned tool: ``$TETHER_<NAME>`` if set, else the one in this venv's bin/."""
    override = os.environ.get(f"TETHER_{name.upper()}")
    candidates = [Path(override)] if override else [Path(sys.prefix) / "bin" / name]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise TetherError(f"{name} not found at {candidates[0]}; run `make install` (or set TETHER_{name.upper()})")
