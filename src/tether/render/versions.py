"""Versions of the render tools, part of every render cache key.

A new helm, kubectl (kustomize) or Jsonnet may render the same files differently, so the
versions in use go into the key. They are asked once per binary path per process
(two concurrent first calls may both ask; the answers are the same). ``tether serve`` asks at
start-up, so the first app's render does not wait for them.
"""

from __future__ import annotations

import asyncio
import json

from tether.errors import ProcessError, TetherError
from tether.proc import base_env, run
from tether.render.jsonnet import jsonnet_version
from tether.tools import binary

_known: dict[str, str] = {}


async def tool_versions() -> dict[str, str]:
    """``{"helm": ..., "kubectl": ..., "kustomize": ..., "jsonnet": ...}`` for the pinned tools."""
    helm, kubectl = str(binary("helm")), str(binary("kubectl"))
    await asyncio.gather(_ask_helm(helm), _ask_kubectl(kubectl))  # two process starts at once, not one after the other
    kubectl_version, kustomize_version = json.loads(_known[kubectl])
    return {
        "helm": _known[helm],
        "kubectl": kubectl_version,
        "kustomize": kustomize_version,
        "jsonnet": jsonnet_version(),
    }


async def _ask_helm(helm: str) -> None:
    if helm not in _known:
        _known[helm] = (await _ask([helm, "version", "--template", "{{.Version}}"], "helm version")).strip()


async def _ask_kubectl(kubectl: str) -> None:
    if kubectl not in _known:
        done = await _ask([kubectl, "version", "--client", "-o", "json"], "kubectl version")
        try:
            info = json.loads(done)
            _known[kubectl] = json.dumps([info["clientVersion"]["gitVersion"], info.get("kustomizeVersion", "")])
        except (ValueError, KeyError, TypeError) as exc:
            raise TetherError(f"kubectl version: unexpected output: {exc}") from None


async def _ask(argv: list[str], what: str) -> str:
    try:
        return (await run(argv, env=base_env(), timeout=30, max_output=1024 * 1024, what=what)).text
    except ProcessError as exc:
        raise TetherError(f"cannot tell the render tool versions: {exc}") from None
