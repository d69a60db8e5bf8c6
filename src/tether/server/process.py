"""`tether serve`'s front process: its address, the webhook receiver, and a proxy to the controller's app.

Why a process of its own: a provider's delivery must be answered in milliseconds while the
controller may be busy with a fleet (hundreds of apps moving to a pushed revision, status writes,
renders). In one interpreter the HTTP thread waits for the controller's threads to hand over the
interpreter lock, and on a loaded machine that wait is what the slowest answers are made of.
Apart, the front process answers on its own; the kernel schedules it like any other process.
It also keeps hostile input away from what matters: the code that parses bodies from the
internet holds the webhook secrets and nothing else (no cluster credentials, no `pass` values).

The parent (``FrontProcess``):

- binds the listening socket itself, so a taken address fails `tether serve` at once;
- starts the child with that socket and starts it again if it dies;
- sends it the webhook secrets now and whenever they change, through a pipe (never a file);
- takes accepted deliveries from a queue on a thread and hands them to the webhook worker.

The child (``_front_main``) runs uvicorn with the front app on the inherited socket and exits when
the pipe from its parent closes, so a killed `tether serve` leaves nothing holding the port. Room
for pushes is reserved in a ``PushGate`` shared by both, so a full queue is answered 503 in the child.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

import structlog

from tether import log as logging_setup
from tether.server.webhook.events import Event
from tether.server.webhook.gate import PushGate
from tether.server.webhook.receiver import ReceiverLimits
from tether.server.webhook.secrets import WebhookSecrets

log = structlog.get_logger(__name__)

RESTART_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # seconds before each restart of a child that keeps dying
STOP_WAIT = 5.0


def listen(host: str, port: int) -> socket.socket:
    """The listening socket for ``host:port`` (port 0: any free port; ``getsockname`` tells which).

    Made with ``IPPROTO_TCP`` named: asyncio turns Nagle's algorithm off only on connections whose
    socket says TCP, and with it on, a response written in two parts waits for the client's
    delayed ACK (40 ms on Linux).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class FrontProcess:
    """The parent's handle on the front process (see the module docstring)."""

    def __init__(
        self,
        sock: socket.socket,
        limits: ReceiverLimits,
        gate: PushGate,
        accept: Callable[[Sequence[Event]], None],
        upstream: str,
    ) -> None:
        self.sock, self.limits, self.gate, self.accept, self.upstream = sock, limits, gate, accept, upstream
        self.restarts = 0
        self._ctx = multiprocessing.get_context("spawn")
        self._deliveries: Any = self._ctx.Queue()
        self._secrets: WebhookSecrets | None = None
        self._pipe: Connection | None = None
        self._process: Any = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the child, the thread handing its deliveries over, and the thread restarting it."""
        self._spawn()
        for target, name in ((self._hand_over, "webhook deliveries"), (self._supervise, "front process")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def send_secrets(self, secrets: WebhookSecrets) -> None:
        """The webhook secrets of the moment, for this child and any later one (from any thread)."""
        with self._lock:
            self._secrets = secrets
            self._send_secrets()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        """Stop the child (it finishes the answers under way) and the threads."""
        self._stopping.set()
        with self._lock:
            process, pipe = self._process, self._pipe
        if process is not None and process.is_alive():
            process.terminate()
            process.join(STOP_WAIT)
            if process.is_alive():
                process.kill()
                process.join(STOP_WAIT)
        if pipe is not None:
            pipe.close()
        self._deliveries.put(None)
        for thread in self._threads:
            thread.join(STOP_WAIT)

    def _spawn(self) -> None:
        theirs, ours = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(
            target=_front_main,
            args=(self.sock, self.limits, self.upstream, self.gate, self._deliveries, theirs, logging_setup.current()),
            name="tether-front",
            daemon=True,
        )
        process.start()
        theirs.close()  # only the child holds the reading end: when this process dies, the child sees EOF
        with self._lock:
            self._process, self._pipe = process, ours
            self._send_secrets()

    def _send_secrets(self) -> None:
        if self._pipe is None or self._secrets is None:
            return
        try:
            self._pipe.send(self._secrets)
        except OSError as exc:  # the child is gone; the supervisor starts another and sends them again
            log.warning("front process: cannot send the webhook secrets", error=str(exc))

    def _hand_over(self) -> None:
        while (events := self._deliveries.get()) is not None:
            try:
                self.accept(events)
            except Exception:  # one bad hand-over must not stop the rest
                log.exception("front process: a delivery could not be handed to the webhook worker")

    def _supervise(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            started = time.monotonic()
            self._process.join()
            if self._stopping.is_set():
                return
            code = self._process.exitcode
            failures = 0 if time.monotonic() - started > 60 else failures + 1
            pause = RESTART_BACKOFF[min(failures, len(RESTART_BACKOFF) - 1)]
            log.error("front process exited; starting it again", exit_code=code, after_seconds=pause)
            if self._stopping.wait(pause):
                return
            self.restarts += 1
            self._spawn()


def _front_main(
    sock: socket.socket,
    limits: ReceiverLimits,
    upstream: str,
    gate: PushGate,
    deliveries: Any,
    secrets_pipe: Connection,
    log_settings: tuple[int, bool],
) -> None:
    """The child: serve the front app on ``sock`` until SIGTERM or until the parent is gone."""
    import uvicorn

    from tether.server.front import UpstreamProxy, create_front_app
    from tether.server.protocol import with_header_timeout

    level, json_output = log_settings
    logging_setup.configure(level, json_output=json_output)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent decides
    current: list[WebhookSecrets | None] = [None]

    def read_secrets() -> None:
        while True:
            try:
                current[0] = secrets_pipe.recv()
            except (EOFError, OSError):
                os._exit(0)  # the parent is gone: so is the reason to answer

    threading.Thread(target=read_secrets, name="secrets", daemon=True).start()

    def deliver(events: Sequence[Event]) -> bool:
        if not gate.admit(events):
            return False
        deliveries.put(list(events))
        return True

    app = create_front_app(limits, lambda: current[0], deliver, UpstreamProxy(upstream))
    config = uvicorn.Config(app, log_level="warning", lifespan="off", http=with_header_timeout(limits.read_timeout))
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]  # SIGTERM below
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    asyncio.run(server.serve(sockets=[sock]))
