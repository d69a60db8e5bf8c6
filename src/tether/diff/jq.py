"""``jqPathExpressions`` evaluated where a runaway expression can be stopped.

Argo CD had to fix a denial of service through ignoreDifferences jq expressions
(CVE-2024-32476, GHSA-9m6p-x4h2-6frq: an expression could exhaust the controller's
memory; the fix added an evaluation timeout). libjq
cannot be interrupted in-process, so every evaluation runs in a worker process
(``_jq_worker``) that is killed — whole process group — when one evaluation passes its
deadline (``timeout`` seconds, default 2) or the worker exceeds its address-space cap
(512 MiB). Inputs are bounded too: a document larger than ``MAX_DOC_BYTES`` is refused,
and a reply line is read up to ``MAX_REPLY_BYTES``. One worker serves a whole diff.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import tether
from tether.diff.errors import JqError, JqTimeout
from tether.proc import base_env

DEFAULT_TIMEOUT = 2.0
START_TIMEOUT = 20.0
MAX_DOC_BYTES = 2 * 1024 * 1024
MAX_REPLY_BYTES = 8 * 1024 * 1024
MEMORY_CAP = 512 * 1024 * 1024

_SRC = str(Path(tether.__file__).resolve().parent.parent)
_BOOTSTRAP = "import sys; sys.path.insert(0, sys.argv[1]); from tether.diff._jq_worker import main; main()"


class JqRunner:
    """A jq worker process for a batch of evaluations: ``async with JqRunner(timeout) as jq: ...``."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    async def __aenter__(self) -> JqRunner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def paths(self, expr: str, doc: Any, *, what: str) -> list[tuple[str | int, ...]]:
        """The concrete paths ``expr`` selects in ``doc`` (jq ``[path(expr)]``, what ``del(expr)`` deletes).

        Raises ``JqTimeout`` when stopped, ``JqError`` otherwise (``fatal`` False for a runtime
        error on this document, whose message is jq's and may quote the document).
        """
        found = await self._evaluate(expr, doc, what)
        return [tuple(p) for p in found or []]

    async def _evaluate(self, expr: str, doc: Any, what: str) -> Any:
        line = json.dumps({"expr": expr, "doc": doc}, separators=(",", ":")).encode() + b"\n"
        if len(line) > MAX_DOC_BYTES:
            raise JqError(f"{what}: jq expression {expr!r}: object larger than {MAX_DOC_BYTES} bytes; not evaluated")
        async with self._lock:
            process = await self._ensure_started(what)
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(line)
                await asyncio.wait_for(process.stdin.drain(), self.timeout)
                raw = await asyncio.wait_for(process.stdout.readline(), self.timeout)
            except TimeoutError:
                await self._kill()
                raise JqTimeout(
                    f"{what}: jq expression {expr!r} did not finish within {self.timeout:g}s and was stopped"
                ) from None
            except (ValueError, ConnectionError) as exc:  # reply over the limit, or the pipe broke
                await self._kill()
                raise JqError(f"{what}: jq expression {expr!r}: worker failed: {exc}") from None
            except BaseException:
                await self._kill()
                raise
            if not raw:
                await self._kill()
                raise JqTimeout(
                    f"{what}: jq expression {expr!r} was stopped: the worker exceeded its "
                    f"{MEMORY_CAP // (1024 * 1024)} MiB memory cap or died"
                )
        reply = json.loads(raw)
        if "error" in reply:
            if reply.get("memory"):
                await self._kill()
                raise JqTimeout(
                    f"{what}: jq expression {expr!r} was stopped: it exceeded the {MEMORY_CAP // (1024 * 1024)} MiB memory cap"
                )
            if reply.get("compile"):
                raise JqError(f"{what}: jq expression {expr!r} does not compile: {reply['error']}")
            raise JqError(f"{what}: jq expression {expr!r} failed: {reply['error']}", fatal=False)
        return reply["ok"]

    async def _ensure_started(self, what: str) -> asyncio.subprocess.Process:
        if self._process is not None and self._process.returncode is None:
            return self._process
        if self._closed:
            raise JqError(f"{what}: the jq worker was stopped")
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-c",
            _BOOTSTRAP,
            _SRC,
            str(MEMORY_CAP),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=base_env(),
            start_new_session=True,
            limit=MAX_REPLY_BYTES,
        )
        assert self._process.stdout is not None
        try:
            ready = await asyncio.wait_for(self._process.stdout.readline(), START_TIMEOUT)
        except BaseException:
            await self._kill()
            raise
        if not ready:
            await self._kill()
            raise JqError(f"{what}: the jq worker did not start")
        return self._process

    async def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        await process.wait()

    async def close(self) -> None:
        """Stop the worker for good (it holds no state worth keeping)."""
        self._closed = True
        await self._kill()
