"""The client-port I/O worker: a second process that owns the client sockets and moves bytes.

Opt-in (``clientPortWorkers=1`` in zoo.cfg, or ``ZKOPS_CLIENT_WORKER=1``). The server
process binds the client port and hands the listening socket to this process, which accepts,
reads and writes every client connection. Everything it reads in one turn of its loop goes to
the server in one write on a socketpair, as ``(connection id, bytes)`` messages; the server's
replies come back the same way, and this process writes each to its socket. Frame boundaries
are not kept: the server's ``ClientConnection`` reassembles frames as it does from a socket.

One message on the socketpair: a header ``>BII`` (kind, connection id, payload length) and the
payload. Worker to server: OPEN (payload: peer host, peer port, local host, local port, joined
by NUL), DATA, EOF (the client will send no more), CLOSED (the connection is gone; the payload
says why, if it failed). Server to worker: DATA, CLOSE (write what is queued, then close),
ABORT (close at once).

Backpressure is kept here: a client that reads slower than it is answered is not read from
until it catches up (what the in-process connection does), and while the server reads slower
than the clients send, no client is read from.

Standard library only (uvloop when present). The process ends when the server's end of the
socketpair closes, so it never outlives the server.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
from typing import Any

from . import eventloop

HEADER = struct.Struct(">BII")
OPEN, DATA, CLOSED, CLOSE, ABORT, EOF = 1, 2, 3, 4, 5, 6
READ_SIZE = 262144


def encode_names(peer: Any, local: Any) -> bytes:
    """OPEN's payload: the peer's and the local address (host and port of each)."""
    parts = []
    for addr in (peer, local):
        if isinstance(addr, tuple) and len(addr) >= 2:
            parts += [str(addr[0]), str(addr[1])]
        else:
            parts += ["", "0"]
    return "\0".join(parts).encode()


def decode_names(payload: bytes | memoryview) -> tuple[tuple[str, int], tuple[str, int]]:
    host, port, lhost, lport = bytes(payload).decode().split("\0")
    return (host, int(port)), (lhost, int(lport))


class PipeEnd(asyncio.Protocol):
    """One end of the socketpair, the server's or the worker's: messages out are batched into
    one write per loop turn; bytes in are split into messages for :meth:`message`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.out: list[Any] = []
        self.flush_scheduled = False
        self.pipe: asyncio.Transport | None = None
        self.rest = b""

    def send(self, kind: int, cid: int, payload: bytes = b"") -> None:
        self.out.append(HEADER.pack(kind, cid, len(payload)))
        if payload:
            self.out.append(payload)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        out = self.out
        if out and self.pipe is not None and not self.pipe.is_closing():
            self.pipe.write(b"".join(out))
        out.clear()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.pipe = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.rest:
            data = self.rest + data
        n = len(data)
        off = 0
        view = memoryview(data)
        unpack = HEADER.unpack_from
        message = self.message
        while n - off >= HEADER.size:
            kind, cid, length = unpack(data, off)
            end = off + HEADER.size + length
            if end > n:
                break
            message(kind, cid, view[off + HEADER.size:end])
            off = end
        self.rest = data[off:] if off < n else b""

    def message(self, kind: int, cid: int, payload: memoryview) -> None:
        raise NotImplementedError


class _Client(asyncio.Protocol):
    """One accepted client socket, in the worker."""

    __slots__ = ("hub", "cid", "transport", "client_paused", "reading")

    def __init__(self, hub: _WorkerHub) -> None:
        self.hub = hub
        self.cid = 0
        self.transport: asyncio.Transport | None = None
        self.client_paused = False
        self.reading = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        hub = self.hub
        self.transport = t = transport  # type: ignore[assignment]
        hub.next_id = (hub.next_id + 1) & 0xFFFFFFFF or 1
        self.cid = hub.next_id
        hub.clients[self.cid] = self
        hub.send(OPEN, self.cid, encode_names(t.get_extra_info("peername"), t.get_extra_info("sockname")))
        if hub.pipe_paused:
            self.set_reading()

    def data_received(self, data: bytes) -> None:
        hub = self.hub
        out = hub.out
        out.append(HEADER.pack(DATA, self.cid, len(data)))
        out.append(data)
        if not hub.flush_scheduled:
            hub.flush_scheduled = True
            hub.loop.call_soon(hub.flush)

    def eof_received(self) -> bool | None:
        # the server decides (it closes once it has answered what came before, as without the
        # worker): ``echo ruok | nc -N`` half-closes and still reads its answer
        self.hub.send(EOF, self.cid, b"")
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        hub = self.hub
        if hub.clients.pop(self.cid, None) is not None:
            hub.send(CLOSED, self.cid, str(exc).encode() if exc else b"")

    def pause_writing(self) -> None:
        self.client_paused = True
        self.set_reading()

    def resume_writing(self) -> None:
        self.client_paused = False
        self.set_reading()

    def set_reading(self) -> None:
        want = not self.client_paused and not self.hub.pipe_paused
        t = self.transport
        if want != self.reading and t is not None and not t.is_closing():
            self.reading = want
            if want:
                t.resume_reading()
            else:
                t.pause_reading()


class _WorkerHub(PipeEnd):
    """The worker's end of the socketpair to the server."""

    def __init__(self, loop: asyncio.AbstractEventLoop, done: asyncio.Future[None]) -> None:
        super().__init__(loop)
        self.done = done
        self.clients: dict[int, _Client] = {}
        self.next_id = 0
        self.pipe_paused = False

    # the socketpair
    def connection_lost(self, exc: Exception | None) -> None:
        for c in list(self.clients.values()):
            if c.transport is not None:
                c.transport.close()
        if not self.done.done():
            self.done.set_result(None)

    def pause_writing(self) -> None:  # the server reads slower than the clients send
        self.pipe_paused = True
        for c in self.clients.values():
            c.set_reading()

    def resume_writing(self) -> None:
        self.pipe_paused = False
        for c in list(self.clients.values()):
            c.set_reading()

    def message(self, kind: int, cid: int, payload: memoryview) -> None:
        c = self.clients.get(cid)
        if c is not None and c.transport is not None:
            if kind == DATA:
                c.transport.write(payload)
            elif kind == CLOSE:
                c.transport.close()
            elif kind == ABORT:
                c.transport.abort()


async def _serve(listen_fds: list[int], pipe_fd: int) -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    hub = _WorkerHub(loop, done)
    pipe = socket.socket(fileno=pipe_fd)
    await loop.connect_accepted_socket(lambda: hub, pipe)
    servers = []
    for fd in listen_fds:
        sock = socket.socket(fileno=fd)
        servers.append(await loop.create_server(lambda: _Client(hub), sock=sock, backlog=1024))
    await done
    for srv in servers:
        srv.close()


def main(argv: list[str]) -> int:
    """``python -m zkops.server.clientworker PIPE_FD LISTEN_FD...`` (started by the server)."""
    pipe_fd = int(argv[0])
    listen_fds = [int(a) for a in argv[1:]]
    # the server's choice of loop ($ZKOPS_EVENT_LOOP; uvloop when installed), without OpenSSL:
    # the worker serves no TLS
    eventloop.choose(without_ssl=True)
    try:
        asyncio.run(_serve(listen_fds, pipe_fd))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
