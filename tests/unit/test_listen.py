"""`tether serve`'s listening socket: connections accepted from it have Nagle's algorithm off."""

from __future__ import annotations

import asyncio
import socket

from tether.server.process import listen


async def test_connections_accepted_on_the_listening_socket_have_nodelay() -> None:
    sock = listen("127.0.0.1", 0)
    nodelay: list[int] = []

    def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nodelay.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(accepted, sock=sock)
    async with server:
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        for _ in range(100):
            if nodelay:
                break
            await asyncio.sleep(0.01)
        writer.close()
    assert nodelay and nodelay[0] != 0  # with it on, a two-part response waits 40 ms for a delayed ACK
