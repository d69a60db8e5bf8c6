"""Evaluate Jsonnet files in a child process (run by ``tether.render.jsonnet``).

The C++ evaluator cannot be interrupted from Python, so it runs here, under the timeout,
output cap and process-group kill of ``tether.proc.run``. Reads one JSON request on
stdin, writes one JSON reply on stdout. Every import goes through ``_Importer``, which
refuses anything that resolves outside the repository root.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


class _Importer:
    """Jsonnet import callback: the importing file's directory first, then the library paths (last wins)."""

    def __init__(self, root: str, search: list[str]) -> None:
        self.root = root
        self.search = search
        self.read: set[str] = set()

    def inside(self, path: str) -> bool:
        return path == self.root or path.startswith(self.root + os.sep)

    def __call__(self, directory: str, rel: str) -> tuple[str, bytes]:
        if os.path.isabs(rel):
            candidates = [rel]
        else:
            candidates = [os.path.join(directory, rel)] + [os.path.join(p, rel) for p in reversed(self.search)]
        for candidate in candidates:
            lexical = os.path.normpath(os.path.abspath(candidate))
            if not self.inside(lexical):
                raise RuntimeError(f"import {rel!r} resolves outside the repository")
            if not os.path.lexists(lexical):
                continue
            real = os.path.realpath(lexical)
            if not self.inside(real):
                raise RuntimeError(f"import {rel!r} is a symlink that points outside the repository")
            if not os.path.isfile(real):
                continue
            with open(real, "rb") as handle:
                content = handle.read()
            self.read.update({lexical, real})
            return lexical, content
        raise RuntimeError(f"import {rel!r} not found next to the importing file or in the library paths")


def evaluate(request: dict[str, Any]) -> dict[str, Any]:
    import _jsonnet

    root = os.path.realpath(request["root"])
    importer = _Importer(root, [os.path.realpath(p) for p in request["search"]])
    results: dict[str, str] = {}
    for path in request["files"]:
        try:
            results[path] = _jsonnet.evaluate_file(
                path,
                ext_vars=request["ext_vars"],
                ext_codes=request["ext_codes"],
                tla_vars=request["tla_vars"],
                tla_codes=request["tla_codes"],
                import_callback=importer,
            )
        except RuntimeError as exc:
            message = str(exc).replace(root + os.sep, "")
            return {"error": {"file": path, "message": message}, "imports": sorted(importer.read)}
    return {"results": results, "imports": sorted(importer.read)}


def main() -> None:
    reply = evaluate(json.load(sys.stdin))
    json.dump(reply, sys.stdout)


if __name__ == "__main__":
    main()
