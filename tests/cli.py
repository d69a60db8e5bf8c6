"""Run the `tether` command as a person does: a separate process, through the `tether` group
(which sets up logging on stderr), with a timeout."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Mapping

TETHER = (sys.executable, "-m", "tether.cli")


def tether(*args: str, env: Mapping[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run ``tether ARGS``; ``env`` is added to this process's environment."""
    return subprocess.run(
        [*TETHER, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


async def tether_async(*args: str, timeout: float = 240) -> tuple[int, str, str]:
    """Run ``tether ARGS`` without blocking the event loop: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        *TETHER,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=timeout)
    return process.returncode or 0, out.decode(), err.decode()
