"""Jsonnet files of directory apps, evaluated with Argo CD's options and a repository sandbox.

Options come from ``directory.jsonnet``: ``extVars`` and ``tlas`` (each a string, or
Jsonnet code with ``code: true``) and ``libs`` — library paths relative to the
repository root, searched after the importing file's directory (the app directory is
always a library path, as in Argo CD; a library path that does not exist is skipped).
Imports that resolve outside the checkout are refused. Evaluation runs in a child process
so the render timeout and output cap apply. A file may produce one object or an array.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import tether
from tether.errors import ProcessError
from tether.model.source import JsonnetSource
from tether.proc import base_env, run
from tether.render.errors import render_error
from tether.render.manifests import ManifestError, flatten
from tether.render.paths import Checkout
from tether.render.request import RenderRequest

_SRC = str(Path(tether.__file__).resolve().parent.parent)
_BOOTSTRAP = "import sys; sys.path.insert(0, sys.argv[1]); from tether.render._jsonnet_worker import main; main()"


async def evaluate_jsonnet(
    checkout: Checkout, app_dir: Path, files: list[Path], spec: JsonnetSource, request: RenderRequest
) -> dict[Path, list[dict[str, Any]]]:
    """Objects of each Jsonnet file, evaluated together in one child process."""
    search = [str(app_dir)]
    for index, lib in enumerate(spec.libs):
        what = f"source.directory.jsonnet.libs[{index}]"
        resolved = checkout.resolve(checkout.root, lib, what=what, must_exist=False)
        if resolved is not None:  # a missing library path is skipped, as go-jsonnet does
            search.append(str(resolved))
    payload = {
        "root": str(checkout.root),
        "files": [str(f) for f in files],
        "search": search,
        "ext_vars": {v.name: v.value for v in spec.ext_vars if not v.code},
        "ext_codes": {v.name: v.value for v in spec.ext_vars if v.code},
        "tla_vars": {v.name: v.value for v in spec.tlas if not v.code},
        "tla_codes": {v.name: v.value for v in spec.tlas if v.code},
    }
    try:
        done = await run(
            [sys.executable, "-I", "-c", _BOOTSTRAP, _SRC],
            input=json.dumps(payload).encode(),
            env=base_env(),
            cwd=checkout.root,
            timeout=request.limits.timeout,
            max_output=request.limits.max_output,
            what="jsonnet",
        )
        reply = json.loads(done.stdout)
    except ProcessError as exc:
        raise render_error(request.app, f"jsonnet in {checkout.relative(app_dir)}", str(exc)) from None
    except json.JSONDecodeError as exc:
        detail = f"bad evaluator reply: {exc}"
        raise render_error(request.app, f"jsonnet in {checkout.relative(app_dir)}", detail) from None
    for imported in reply["imports"]:
        # The whole directory: an import from a file there is looked up there first, so a
        # file added next to it later can change what an import resolves to.
        checkout.record(Path(imported).parent)
    if "error" in reply:
        failed = checkout.relative(reply["error"]["file"])
        raise render_error(request.app, f"jsonnet {failed}", reply["error"]["message"].strip())
    objects: dict[Path, list[dict[str, Any]]] = {}
    for path in files:
        relative = checkout.relative(path)
        try:
            value = json.loads(reply["results"][str(path)])
            values = value if isinstance(value, list) else [] if value is None else [value]
            objects[path] = flatten(values, where="an output value")
        except (ManifestError, json.JSONDecodeError, RecursionError) as exc:
            raise render_error(request.app, f"jsonnet {relative}", str(exc)) from None
    return objects


def jsonnet_version() -> str:
    """Version of the Jsonnet evaluator (part of the render cache key)."""
    import _jsonnet

    return str(_jsonnet.version)
