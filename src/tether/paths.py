"""Where Tether keeps what is slow to rebuild: one root for every cache."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$TETHER_CACHE``, else ``$XDG_CACHE_HOME/tether``, else ``~/.cache/tether``."""
    if os.environ.get("TETHER_CACHE"):
        return Path(os.environ["TETHER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tether"
