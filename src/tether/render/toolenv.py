"""Running helm and kubectl for a render: private homes, the request's limits, clean errors.

Each render gets its own HELM_CACHE_HOME / HELM_CONFIG_HOME / HELM_DATA_HOME and a
kubeconfig path that does not exist: no repository index, plugin, registry login or
cluster context from the machine can change what a chart renders to.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tether.errors import ProcessError
from tether.proc import base_env, run
from tether.render.errors import render_error
from tether.render.manifests import ManifestError, objects_from_yaml
from tether.render.request import RenderRequest


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


async def run_tool(
    argv: Sequence[str],
    *,
    env: dict[str, str],
    cwd: Path,
    request: RenderRequest,
    what: str,
    where: str,
    hide: Sequence[Path] = (),
) -> list[dict[str, Any]]:
    """Run a render tool under the request's limits and parse its output as objects.

    A failure becomes a ``RenderError`` naming the app and ``where``, with the tool's stderr
    and the temporary locations in ``hide`` shown as repository-relative paths.
    """
    try:
        done = await run(
            argv, env=env, cwd=cwd, timeout=request.limits.timeout, max_output=request.limits.max_output, what=what
        )
    except ProcessError as exc:
        text = str(exc)
        for base in hide:
            text = text.replace(str(base) + "/", "").replace(str(base), ".")
        raise render_error(request.app, where, text) from None
    try:
        return objects_from_yaml(done.text)
    except ManifestError as exc:
        raise render_error(request.app, where, f"output: {exc}") from None
