"""Run the `tether` command as a person does: a separate process, through the `tether` group
(which sets up logging on stderr), with a timeout.

Each command is its own process with its own argv, environment, stdio and exit status, but it
does not import Tether again: a *zygote* (one per test process, started on first use) imports
``tether.cli`` once and forks a child per command, as Android and Chromium start processes.
Importing takes 1.5-2.5 s per process on this machine, and the suite runs a hundred commands.
The child runs ``tether.cli``'s ``__main__`` exactly as ``python -m tether.cli`` does, after
setting the environment, and ends as the interpreter ends (atexit handlers run, streams are
flushed) but without tearing down its modules. Set
``TETHER_TEST_SPAWN=1`` to spawn a fresh interpreter per command instead.

``TETHER`` is the plain command line, for tests that manage the process themselves (signals,
``tether serve``).
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

TETHER = (sys.executable, "-m", "tether.cli")
ROOT = Path(__file__).resolve().parent.parent
MAX_REQUEST = 1 << 20


def tether(*args: str, env: Mapping[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run ``tether ARGS``; ``env`` is added to this process's environment."""
    environment = {**os.environ, **(env or {})}
    if os.environ.get("TETHER_TEST_SPAWN") == "1":
        return subprocess.run([*TETHER, *args], capture_output=True, text=True, timeout=timeout, env=environment)
    return _ZYGOTE.run(list(args), environment, timeout)


async def tether_async(*args: str, timeout: float = 240) -> tuple[int, str, str]:
    """Run ``tether ARGS`` without blocking the event loop: (exit code, stdout, stderr)."""
    result = await asyncio.to_thread(tether, *args, timeout=timeout)
    return result.returncode, result.stdout, result.stderr


def _text(data: bytes) -> str:
    """What ``subprocess.run(text=True)`` gives: UTF-8 with universal newlines."""
    return data.decode().replace("\r\n", "\n").replace("\r", "\n")


class _Zygote:
    """The forking server's client side: one control socket, one request per command."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: socket.socket | None = None
        atexit.register(self.close)

    def _ensure(self) -> socket.socket:
        if self._process is not None and self._process.poll() is None and self._socket is not None:
            return self._socket
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._process = subprocess.Popen(
            [sys.executable, "-c", f"from tests.cli import _serve; _serve({theirs.fileno()})"],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))},
        )
        theirs.close()
        self._socket = ours
        return ours

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()  # the zygote sees EOF and exits
            self._socket = None
        if self._process is not None:
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
            self._process = None

    def run(self, args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
        command = [*TETHER, *args]
        pipes = [os.pipe() for _ in range(3)]  # stdout, stderr, status ("pid N", then "exit CODE")
        request = json.dumps({"args": args, "env": env, "cwd": os.getcwd()}).encode()
        try:
            with self._lock:
                socket.send_fds(self._ensure(), [request], [w for _, w in pipes])
        finally:
            for _, w in pipes:
                os.close(w)
        reads = [r for r, _ in pipes]
        try:
            out, err, status = _collect(reads, time.monotonic() + timeout)
            lines = status.decode().split()
            if len(lines) < 4:  # the deadline passed: kill the command, as subprocess.run does
                if len(lines) < 2:  # its pid is on its way
                    lines = (status + _collect(reads[2:], time.monotonic() + 10)[0]).decode().split()
                if len(lines) >= 2:
                    _kill(int(lines[1]))
                raise subprocess.TimeoutExpired(command, timeout, _text(out), _text(err))
        finally:
            for fd in reads:
                os.close(fd)
        return subprocess.CompletedProcess(command, int(lines[3]), _text(out), _text(err))


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _collect(fds: list[int], deadline: float) -> list[bytes]:
    """What each pipe gave until its end, or until the deadline."""
    chunks: dict[int, list[bytes]] = {fd: [] for fd in fds}
    with selectors.DefaultSelector() as selector:
        for fd in fds:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _ in selector.select(left):
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.fd].append(data)
                else:
                    selector.unregister(key.fd)
    return [b"".join(chunks[fd]) for fd in fds]


def _report(status: int, line: str) -> None:
    try:
        os.write(status, line.encode())
    except OSError:  # the caller gave up (its timeout) and closed the pipe
        pass


def _serve(control: int) -> None:
    """The zygote: import Tether, then fork a waiter per request, which forks the command and reports its exit."""
    import runpy

    import tether.cli  # noqa: F401  (the point: imported once, here)

    gc.freeze()  # the collector need not visit (and so copy) what every child shares

    sock = socket.socket(fileno=control)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # waiters are reaped by the kernel
    while True:
        message, fds, _, _ = socket.recv_fds(sock, MAX_REQUEST, 3)
        if not message:
            return
        if os.fork() != 0:
            for fd in fds:
                os.close(fd)
            continue
        # the waiter
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sock.close()
        stdout, stderr, status = fds
        child = os.fork()
        if child != 0:
            os.close(stdout)
            os.close(stderr)
            _report(status, f"pid {child}\n")
            _, code = os.waitpid(child, 0)
            _report(status, f"exit {os.waitstatus_to_exitcode(code)}\n")
            os._exit(0)
        # the command: a process as `python -m tether.cli ARGS` starts it, but with Tether imported
        os.close(status)
        request = json.loads(message)
        null = os.open(os.devnull, os.O_RDONLY)
        for fd, target in ((null, 0), (stdout, 1), (stderr, 2)):
            os.dup2(fd, target)
            os.close(fd)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = [TETHER[-1], *request["args"]]
        os._exit(_main(lambda: runpy.run_module("tether.cli", run_name="__main__", alter_sys=True)))


def _main(run: Callable[[], object]) -> int:
    """Run ``run`` as the interpreter runs a main module, and end as it ends, but for tearing down
    the modules: that touches every object and so copies most of the zygote's pages (0.3 s)."""
    try:
        run()
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    return code


_ZYGOTE = _Zygote()
