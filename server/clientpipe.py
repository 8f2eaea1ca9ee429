"""The server's side of the client-port I/O worker (``server/clientworker.py``).

The worker process accepts and reads the client sockets; here each connection it forwards
gets a ``PipeTransport``, which offers what ``ClientConnection`` uses of an asyncio transport
(write, close, abort, is_closing, get_extra_info, pause/resume_reading), so the connection's
code is the same whether its bytes come from a socket or from the worker. Every write of one
turn of the loop, for every connection, goes to the worker in one write on the socketpair.

If the worker dies, its connections are lost (their clients reconnect, their sessions live
on), the loss is logged, and the server accepts on its listening sockets itself from then on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from .clientworker import ABORT, CLOSE, CLOSED, DATA, EOF, HEADER, OPEN, PipeEnd, decode_names

log = logging.getLogger("zkops.server.clientworker")

ENV = "ZKOPS_CLIENT_WORKER"


def wanted(cfg: Any) -> bool:
    """Whether the client port's I/O runs in a worker process (zoo.cfg, else the environment)."""
    n = getattr(cfg, "client_port_workers", None)
    if n is None:
        n = 1 if os.environ.get(ENV, "").strip() not in ("", "0") else 0
    return bool(n)


class PipeTransport(asyncio.Transport):
    """One client connection, as the server sees it through the worker."""

    def __init__(self, hub: ClientHub, cid: int, protocol: asyncio.Protocol,
                 peer: tuple[str, int], local: tuple[str, int]) -> None:
        super().__init__({"peername": peer, "sockname": local})
        self.hub = hub
        self.cid = cid
        self.protocol = protocol
        self.closing = False
        self.lost = False

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.protocol

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closing or not data:
            return
        hub = self.hub
        out = hub.out
        out.append(HEADER.pack(DATA, self.cid, len(data)))
        out.append(data)
        if not hub.flush_scheduled:
            hub.flush_scheduled = True
            hub.loop.call_soon(hub.flush)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return False

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.hub.send(CLOSE, self.cid)

    def abort(self) -> None:
        if not self.closing:
            self.closing = True
            self.hub.send(ABORT, self.cid)

    def pause_reading(self) -> None:
        pass  # the worker stops reading a client that does not read its replies itself

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return not self.closing

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def _lost(self, exc: Exception | None) -> None:
        if not self.lost:
            self.lost = True
            self.closing = True
            self.protocol.connection_lost(exc)


class ClientHub(PipeEnd):
    """The server's end of the socketpair to the worker: a transport per forwarded connection."""

    def __init__(self, loop: asyncio.AbstractEventLoop, factory: Callable[[], asyncio.Protocol],
                 on_worker_lost: Callable[[], None]) -> None:
        super().__init__(loop)
        self.factory = factory
        self.on_worker_lost = on_worker_lost
        self.conns: dict[int, PipeTransport] = {}
        self.stopping = False

    # ------------------------------------------------------------ the socketpair
    def connection_lost(self, exc: Exception | None) -> None:
        self.pipe = None
        conns = list(self.conns.values())
        self.conns.clear()
        for t in conns:
            t._lost(ConnectionResetError("the client I/O worker is gone"))
        if not self.stopping:
            self.on_worker_lost()

    def message(self, kind: int, cid: int, payload: memoryview) -> None:
        if kind == DATA:
            t = self.conns.get(cid)
            if t is not None and not t.closing:
                t.protocol.data_received(payload)  # type: ignore[arg-type]
        elif kind == OPEN:
            peer, local = decode_names(payload)
            proto = self.factory()
            t = PipeTransport(self, cid, proto, peer, local)
            self.conns[cid] = t
            proto.connection_made(t)
        elif kind == EOF:
            t = self.conns.get(cid)
            if t is not None and not t.closing and not t.protocol.eof_received():
                t.close()
        elif kind == CLOSED:
            t = self.conns.pop(cid, None)
            if t is not None:
                why = bytes(payload).decode(errors="replace")
                t._lost(ConnectionResetError(why) if why else None)


class ClientWorker:
    """The worker process and the server's hub to it, for the listening sockets of one port."""

    def __init__(self, loop: asyncio.AbstractEventLoop, server: asyncio.base_events.Server,
                 factory: Callable[[], asyncio.Protocol]) -> None:
        self.loop = loop
        self.server = server  # created with start_serving=False: the worker accepts on its sockets
        self.factory = factory
        self.proc: subprocess.Popen[bytes] | None = None
        self.hub: ClientHub | None = None
        self.fell_back = False

    async def start(self) -> None:
        ours, theirs = socket.socketpair()
        listen_fds = [s.fileno() for s in self.server.sockets]
        for s in self.server.sockets:  # listening now: connections wait in the backlog for the worker
            dup = socket.socket(s.family, s.type, fileno=os.dup(s.fileno()))
            dup.listen(1024)
            dup.close()
        module = (__package__ or "zkops.server") + ".clientworker"
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module, str(theirs.fileno()), *map(str, listen_fds)],
                pass_fds=[theirs.fileno(), *listen_fds], stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        self.hub = hub = ClientHub(self.loop, self.factory, self._worker_lost)
        await self.loop.connect_accepted_socket(lambda: hub, ours)
        log.info("client port I/O worker started (pid %d)", self.proc.pid)

    def _worker_lost(self) -> None:
        code = self.proc.poll() if self.proc is not None else None
        log.error("the client I/O worker (pid %s) is gone (exit status %s); its connections are lost, "
                  "and this process accepts on the client port itself from now on",
                  self.proc.pid if self.proc else "?", code)
        self.fell_back = True
        self.loop.create_task(self.server.start_serving())
        self.loop.call_later(1.0, self._reap)

    def _reap(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.loop.call_later(1.0, self._reap)

    async def stop(self) -> None:
        hub = self.hub
        if hub is not None:
            hub.stopping = True
            hub.flush()
            if hub.pipe is not None:
                hub.pipe.close()
        proc = self.proc
        if proc is None:
            return
        for _ in range(100):
            if proc.poll() is not None:
                return
            await asyncio.sleep(0.02)
        proc.kill()
        proc.wait()
