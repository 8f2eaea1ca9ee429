"""server/listening.py: the sockets a numeric address is bound on, as the event loop binds them."""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest

from zkops.server.listening import listen_on, numeric_listener


def test_an_ipv4_literal_is_bound_here_with_the_loops_options() -> None:
    sock = numeric_listener("127.0.0.1", 0)
    assert sock is not None
    try:
        assert sock.family == socket.AF_INET and sock.type == socket.SOCK_STREAM
        assert sock.getsockname()[0] == "127.0.0.1" and sock.getsockname()[1] > 0
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
        assert not sock.getblocking()
    finally:
        sock.close()


def test_an_ipv6_literal_is_bound_v6_only() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this kernel")
    try:
        sock = numeric_listener("::1", 0)
    except OSError as exc:  # ::1 not configured on loopback
        pytest.skip(f"::1 cannot be bound here: {exc}")
    assert sock is not None
    try:
        assert sock.family == socket.AF_INET6
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
    finally:
        sock.close()


@pytest.mark.parametrize("host", ["localhost", "zk1.example", "fe80::1%lo", "", "1.2.3", "127.0.0.1\0"])
def test_names_and_scoped_addresses_are_left_to_the_loop(host: str) -> None:
    assert numeric_listener(host, 0) is None
    assert listen_on(host, 2181) == {"host": host, "port": 2181, "reuse_address": True}


def test_a_taken_port_fails_as_the_loops_bind_does() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(OSError) as ours:
            numeric_listener("127.0.0.1", port)
        with pytest.raises(OSError) as loops:
            asyncio.run(_create_server("127.0.0.1", port))
        assert ours.value.errno == loops.value.errno == errno.EADDRINUSE
        assert str(ours.value) == str(loops.value)
    finally:
        taken.close()


async def _create_server(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(asyncio.Protocol, host, port, reuse_address=True)
    srv.close()


def test_a_bound_socket_serves_through_the_loop() -> None:
    async def main() -> bytes:
        loop = asyncio.get_running_loop()

        class Echo(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.t = transport

            def data_received(self, data: bytes) -> None:
                self.t.write(data)  # type: ignore[attr-defined]

        srv = await loop.create_server(Echo, **listen_on("127.0.0.1", 0), backlog=16)
        port = srv.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"ping")
        got = await r.readexactly(4)
        w.close()
        srv.close()
        await srv.wait_closed()
        return got

    assert asyncio.run(main()) == b"ping"
