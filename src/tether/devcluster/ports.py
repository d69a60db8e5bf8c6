"""Free loopback ports for the processes the devcluster, the demo, the tests and the bench start.

A port is free when nothing listens on it at the moment it is chosen; a process started later can
still lose it to another, so callers that start several processes take all their ports in one
``free_ports`` call, which at least never hands the same port out twice.
"""

from __future__ import annotations

import contextlib
import socket


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports: all held open until all are chosen, so the kernel
    cannot hand the same one out twice (it did: a scheduler once got the apiserver's port, and
    Flux's source-controller its own metrics port)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def free_port() -> int:
    """One free loopback port (see ``free_ports`` when a caller needs several)."""
    return free_ports(1)[0]


def port_taken(port: int) -> bool:
    """Whether something already holds ``port`` on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False
