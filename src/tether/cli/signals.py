"""SIGINT and SIGTERM end every `tether` command within a second, whatever it is doing.

(A signal the parent process set to be ignored, as a shell does with SIGINT for ``cmd &``,
stays ignored, as Python itself does.)

The Python handler raises ``SystemExit(128 + signal)`` in the main thread: inside
``asyncio.run`` that unwinds the running task, and ``asyncio.run`` then cancels the
others, so ``tether.proc`` kills each tool's process group on the way out. A Python
handler only runs between bytecodes, though, and a command can be stuck where none run:
inside one long C call (a huge YAML document being composed), or waiting for a thread
(a Lua check) on exit. So a watchdog thread, woken by ``signal.set_wakeup_fd`` straight
from the C-level handler, ends the process with ``os._exit`` if it is still alive
``GRACE`` seconds after the signal.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

GRACE = 0.8  # seconds between the signal and the hard exit; the whole stop stays under one second
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalGuard:
    """Handlers for SIGINT/SIGTERM plus the watchdog; ``restore`` puts the previous handlers back."""

    def __init__(self, grace: float = GRACE) -> None:
        self.grace = grace
        self.received: int | None = None
        self._raised = False
        self._fired = threading.Event()
        self._stopped = threading.Event()
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self._previous: dict[int, Any] = {}
        self._previous_wakeup = -1
        self._thread = threading.Thread(target=self._watch, name="tether-signal-watchdog", daemon=True)

    def install(self) -> None:
        """Take over SIGINT and SIGTERM (main thread only, as Python requires)."""
        for signum in SIGNALS:
            if signal.getsignal(signum) is not signal.SIG_IGN:  # a parent's "ignore" (nohup, `cmd &`) stands
                self._previous[signum] = signal.signal(signum, self._handle)
        self._previous_wakeup = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        self._thread.start()

    def restore(self) -> None:
        """Previous handlers and wake-up fd back, watchdog stopped (for in-process callers such as tests)."""
        if self._stopped.is_set():
            return
        signal.set_wakeup_fd(self._previous_wakeup)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._stopped.set()
        self._wake()
        self._thread.join(timeout=1)
        os.close(self._read_fd)
        os.close(self._write_fd)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._note(signum)
        self._wake()  # in case something else took the wake-up fd since
        if not self._raised:  # once: a second Ctrl-C must not break the clean-up the first one started
            self._raised = True
            os.write(2, f"error: stopped by {signal.Signals(signum).name}\n".encode())
            raise SystemExit(128 + signum)

    def _note(self, signum: int) -> None:
        if self.received is None:
            self.received = signum
        self._fired.set()

    def _wake(self) -> None:
        try:
            os.write(self._write_fd, b"\0")
        except OSError:
            pass

    def _watch(self) -> None:
        while not self._stopped.is_set():
            byte = os.read(self._read_fd, 1)
            if self._stopped.is_set():
                return
            if byte and byte[0] in SIGNALS:
                self._note(byte[0])
            if self._fired.is_set():
                break
        if self._stopped.wait(self.grace):
            return
        _hard_exit(self.received or signal.SIGTERM)


def _hard_exit(signum: int) -> None:
    """The process is stuck past its grace period: kill its children's process groups and end it now."""
    try:
        kill_children()
        os.write(2, f"error: not stopped within {GRACE}s of the signal; exiting at once\n".encode())
    finally:
        os._exit(128 + signum)


def kill_children() -> None:
    """SIGKILL every child of this process, with its process group when it leads one (``tether.proc``'s do).

    The normal path (cancellation) kills them through ``tether.proc``; this is for when that
    path cannot run because the main thread is stuck.
    """
    for children in Path("/proc/self/task").glob("*/children"):
        try:
            pids = [int(pid) for pid in children.read_text().split()]
        except (OSError, ValueError):
            continue
        for pid in pids:
            try:
                if os.getpgid(pid) == pid:
                    os.killpg(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def guard_signals(on_close: Callable[[Callable[[], None]], Any]) -> SignalGuard | None:
    """Install a ``SignalGuard`` when on the main thread; ``on_close`` gets its ``restore``."""
    if threading.current_thread() is not threading.main_thread():
        return None
    guard = SignalGuard()
    guard.install()
    on_close(guard.restore)
    return guard
