"""Private, throwaway homes for Helm (and kustomize's Helm) so renders share no state.

Each render gets its own HELM_CACHE_HOME / HELM_CONFIG_HOME / HELM_DATA_HOME and a
kubeconfig path that does not exist: no repository index, plugin, registry login or
cluster context from the machine can change what a chart renders to.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tether.proc import base_env


@contextmanager
def private_tool_env() -> Iterator[tuple[dict[str, str], Path]]:
    """(environment for helm/kubectl, a scratch directory), both removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="tether-render-") as scratch:
        base = Path(scratch)
        homes = {name: base / name for name in ("home", "cache", "config", "data")}
        for home in homes.values():
            home.mkdir()
        env = base_env(
            {
                "HOME": str(homes["home"]),
                "HELM_CACHE_HOME": str(homes["cache"]),
                "HELM_CONFIG_HOME": str(homes["config"]),
                "HELM_DATA_HOME": str(homes["data"]),
                "KUBECONFIG": str(base / "no-kubeconfig"),
            }
        )
        yield env, base
