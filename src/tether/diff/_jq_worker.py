"""Evaluate jq programs in a child process (run by ``tether.diff.jq``).

libjq cannot be interrupted from Python, so a runaway expression (``def f: f; f``,
``[range(1e9)]``) must run where it can be killed: here, under a per-evaluation deadline
the parent enforces and an address-space cap set below. One JSON request ``{expr, doc}`` per stdin line,
one JSON reply per stdout line, so one process serves a whole diff.
"""

from __future__ import annotations

import json
import resource
import sys
from typing import Any


def _limit_memory(max_bytes: int) -> None:
    try:
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))
    except (ValueError, OSError):
        pass  # a lower hard limit is already in force


def evaluate(request: dict[str, Any], programs: dict[str, Any]) -> dict[str, Any]:
    """``[path(expr)]`` on the document: the paths ``del(expr)`` would delete (jq defines del that way)."""
    import jq

    source = f"[path({request['expr']})]"
    program = programs.get(source)
    if program is None:
        try:
            program = programs[source] = jq.compile(source)
        except ValueError as exc:
            return {"error": str(exc), "compile": True}
    try:
        return {"ok": program.input_value(request["doc"]).first()}
    except (ValueError, StopIteration) as exc:
        return {"error": str(exc) or type(exc).__name__}
    except MemoryError:
        return {"error": "out of memory", "memory": True}


def main() -> None:
    _limit_memory(int(sys.argv[2]))
    programs: dict[str, Any] = {}
    sys.stdout.write('{"ready": true}\n')
    sys.stdout.flush()
    for line in sys.stdin:
        reply = evaluate(json.loads(line), programs)
        sys.stdout.write(json.dumps(reply, separators=(",", ":")) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
