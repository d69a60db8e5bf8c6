"""How long a render tool may run, how much it may print, and how large a local directory may be."""

from __future__ import annotations

from dataclasses import dataclass

from tether.proc import DEFAULT_MAX_OUTPUT, DEFAULT_TIMEOUT

# The git cache's default bound on a checkout (tether.source.cache.DEFAULT_MAX_CHECKOUT_BYTES).
DEFAULT_MAX_CHECKOUT_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class RenderLimits:
    """Per tool call: ``timeout`` seconds and ``max_output`` bytes of stdout (and of stderr).

    ``max_checkout_bytes`` bounds a *local directory* source (files, ``.git`` not counted),
    as ``GitCache(max_checkout_bytes=...)`` bounds a git checkout.
    """

    timeout: float = DEFAULT_TIMEOUT
    max_output: int = DEFAULT_MAX_OUTPUT
    max_checkout_bytes: int = DEFAULT_MAX_CHECKOUT_BYTES
