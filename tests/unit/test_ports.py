"""Loopback ports for the processes the devcluster, demo, tests and bench start."""

from __future__ import annotations

import socket

from tether.devcluster.demo import free_listen
from tether.devcluster.ports import free_port, free_ports, port_taken


def test_the_ports_of_one_call_are_distinct() -> None:
    for _ in range(20):
        ports = free_ports(6)
        assert len(set(ports)) == 6


def test_a_listened_port_is_taken_and_free_again_once_closed() -> None:
    port = free_port()
    assert not port_taken(port)
    with socket.create_server(("127.0.0.1", port)):
        assert port_taken(port)
    assert not port_taken(port)


def test_free_listen_keeps_a_free_preferred_port_and_moves_off_a_taken_one() -> None:
    port = free_port()
    assert free_listen(port) == f"127.0.0.1:{port}"
    with socket.create_server(("127.0.0.1", port)):
        other = free_listen(port)
    assert other.startswith("127.0.0.1:") and other != f"127.0.0.1:{port}"
