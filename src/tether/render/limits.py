"""How long a render tool may run and how much it may print (defaults shared with tether.proc)."""

from __future__ import annotations

from dataclasses import dataclass

from tether.proc import DEFAULT_MAX_OUTPUT, DEFAULT_TIMEOUT


@dataclass(frozen=True)
class RenderLimits:
    """Per tool call: ``timeout`` seconds and ``max_output`` bytes of stdout (and of stderr)."""

    timeout: float = DEFAULT_TIMEOUT
    max_output: int = DEFAULT_MAX_OUTPUT
