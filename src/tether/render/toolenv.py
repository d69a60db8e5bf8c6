"""Running helm and kubectl for a render: private homes, no network, the request's limits, clean errors.

Each render gets its own HELM_CACHE_HOME / HELM_CONFIG_HOME / HELM_DATA_HOME, an empty
helm repository and registry configuration and a kubeconfig path that does not exist: no
repository index, plugin, registry login or cluster context from the machine can change
what a chart renders to.

The network is closed as a second line of defence behind the reference checks (which
refuse every remote form before a tool starts): every proxy variable points at a closed
loopback port, so HTTP(S) clients in kustomize, helm and git fail at once instead of
connecting; ``GIT_ALLOW_PROTOCOL`` is empty, so git refuses every transport, ``file``
and local paths included; git reads no system or global configuration and never prompts.
``TMPDIR`` is the scratch directory, so whatever a tool writes lands there and is removed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tether.errors import ProcessError
from tether.proc import base_env, run
from tether.render.errors import render_error
from tether.render.manifests import ManifestError, Manifests, objects_by_document
from tether.render.request import RenderRequest

# Port 1 (tcpmux) is reserved and never served on loopback: a connection is refused at once.
CLOSED_PROXY = "http://127.0.0.1:1"
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def offline_env() -> dict[str, str]:
    """Variables that make HTTP clients and git fail fast instead of reaching any host."""
    env = dict.fromkeys(_PROXY_VARIABLES, CLOSED_PROXY)
    env.update(
        {
            "NO_PROXY": "",
            "no_proxy": "",
            "GIT_ALLOW_PROTOCOL": "",  # an empty allow-list: every transport is refused, file included
            "GIT_PROTOCOL_FROM_USER": "0",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_SSH_COMMAND": "false",
        }
    )
    return env


@contextmanager
def private_tool_env() -> Iterator[tuple[dict[str, str], Path]]:
    """(environment for helm/kubectl, a scratch directory), both removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="tether-render-") as scratch:
        base = Path(scratch)
        homes = {
            name: base / name for name in ("home", "cache", "config", "data", "plugins", "repository-cache", "tmp")
        }
        for home in homes.values():
            home.mkdir()
        repositories = base / "config" / "repositories.yaml"
        repositories.write_text("apiVersion: ''\nrepositories: []\n")
        registry = base / "config" / "registry.json"
        registry.write_text('{"auths": {}}\n')
        env = base_env(
            {
                "HOME": str(homes["home"]),
                "TMPDIR": str(homes["tmp"]),
                "HELM_CACHE_HOME": str(homes["cache"]),
                "HELM_CONFIG_HOME": str(homes["config"]),
                "HELM_DATA_HOME": str(homes["data"]),
                "HELM_PLUGINS": str(homes["plugins"]),
                "HELM_REPOSITORY_CONFIG": str(repositories),
                "HELM_REPOSITORY_CACHE": str(homes["repository-cache"]),
                "HELM_REGISTRY_CONFIG": str(registry),
                "KUBECONFIG": str(base / "no-kubeconfig"),
                **offline_env(),
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
    file: str = "",
    document_files: Callable[[str], list[str] | None] | None = None,
) -> Manifests:
    """Run a render tool under the request's limits and parse its output as objects.

    A failure becomes a ``RenderError`` naming the app and ``where``, with the tool's stderr
    and the temporary locations in ``hide`` shown as repository-relative paths. Each object is
    said to come from ``file``, unless ``document_files`` finds, in the output, the file of each
    document (Helm's ``# Source:`` comments).
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
        numbered = objects_by_document(done.text)
    except ManifestError as exc:
        raise render_error(request.app, where, f"output: {exc}") from None
    per_document = document_files(done.text) if document_files is not None else None
    if per_document is None or (numbered and numbered[-1][0] > len(per_document)):
        return Manifests.all_from([obj for _, obj in numbered], file)
    return Manifests([obj for _, obj in numbered], tuple(per_document[n - 1] or file for n, _ in numbered))
