"""Run external programs (git, helm, kubectl, pass, gpg) safely.

One place for the rules every subprocess follows: a minimal explicit environment, a
timeout, a cap on how much output is read, and stderr trimmed for error messages.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tether.errors import ProcessError, Reason

DEFAULT_TIMEOUT = 90.0
DEFAULT_MAX_OUTPUT = 50 * 1024 * 1024
STDERR_SHOWN = 4000


@dataclass(frozen=True)
class Completed:
    """What a finished program produced."""

    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment: PATH, a UTF-8 locale and what the caller adds; nothing else leaks in."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    if extra:
        env.update(extra)
    return env


def trim(text: str, limit: int = STDERR_SHOWN) -> str:
    """Shorten tool output for an error message, keeping the end, where tools put the cause."""
    text = text.strip()
    if len(text) <= limit:
        return text
    return "…" + text[-limit:]


async def _read_capped(stream: asyncio.StreamReader, cap: int, name: str, argv0: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > cap:
            raise ProcessError(f"{argv0}: {name} exceeded the limit of {cap} bytes")
        chunks.append(chunk)


async def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    input: bytes | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_output: int = DEFAULT_MAX_OUTPUT,
    check: bool = True,
    what: str | None = None,
) -> Completed:
    """Run a program to completion within ``timeout`` seconds, reading at most ``max_output`` bytes.

    ``env`` replaces the environment entirely (see ``base_env``). With ``check``, a non-zero
    exit raises ``ProcessError`` naming ``what`` (default: the program) and its trimmed stderr.
    The whole process group is killed on timeout or cancellation so no child outlives us.
    """
    args = tuple(os.fspath(a) for a in argv)
    label = what or Path(args[0]).name
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env) if env is not None else base_env(),
            cwd=str(cwd) if cwd is not None else None,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise ProcessError(f"{label}: program not found: {args[0]}") from exc

    async def communicate() -> tuple[bytes, bytes]:
        assert process.stdout is not None and process.stderr is not None
        if input is not None:
            assert process.stdin is not None
            process.stdin.write(input)
            await process.stdin.drain()
            process.stdin.close()
        out, err = await asyncio.gather(
            _read_capped(process.stdout, max_output, "output", label),
            _read_capped(process.stderr, max_output, "error output", label),
        )
        await process.wait()
        return out, err

    try:
        stdout, stderr = await asyncio.wait_for(communicate(), timeout)
    except TimeoutError:
        _kill_group(process)
        await process.wait()
        raise ProcessError(f"{label}: timed out after {timeout:g}s", reason=Reason.TIMEOUT, retryable=True) from None
    except BaseException:
        _kill_group(process)
        await process.wait()
        raise
    result = Completed(args, process.returncode or 0, stdout, stderr)
    if check and result.returncode != 0:
        detail = trim(stderr.decode("utf-8", errors="replace")) or trim(result.text)
        raise ProcessError(f"{label} failed (exit {result.returncode}): {detail}")
    return result


def _kill_group(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
