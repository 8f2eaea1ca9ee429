"""TCP links between servers, for the election and quorum ports.

Each server keeps one outgoing connection to every peer (reconnecting with capped
back-off) and accepts the peers' connections; a direction is one TCP stream, so
messages from A to B arrive in order or not at all. The receiving side learns who
is talking from a hello frame, which also names the port the sender listens on, so a
server that is not yet in our membership (one joining by reconfig) can be answered.
Undecodable frames or a wrong hello close only that link. Callbacks tell the owner when
a link to a peer comes up or goes down.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable
from typing import Any

from .peerwire import PeerWireError, Registry

log = logging.getLogger("zkops.server.peers")

_LEN = struct.Struct(">I")
_HELLO = struct.Struct(">4sqI")  # magic, sender sid, cluster tag length follows
_PORT = struct.Struct(">H")  # after the tag: the port the sender listens on
MAGIC = b"ZKOP"
MAX_FRAME = 256 * 1024 * 1024  # a SNAP of a large tree travels as one frame


class _Outgoing:
    """The link we send to one peer over; it reconnects while the network runs."""

    def __init__(self, net: PeerNetwork, sid: int, host: str, port: int) -> None:
        self.net = net
        self.sid = sid
        self.host = host
        self.port = port
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task | None = None
        self.backoff = 0.05
        self.wake = asyncio.Event()

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"peer-out-{self.sid}")

    async def _run(self) -> None:
        while self.net.running:
            try:
                tls = self.net.tls_client
                reader, writer = await asyncio.wait_for(asyncio.open_connection(
                    self.host, self.port, ssl=tls, server_hostname=self.host if tls is not None else None), 5.0)
            except (OSError, asyncio.TimeoutError):
                await self._sleep()
                continue
            hello = _HELLO.pack(MAGIC, self.net.my_sid, len(self.net.tag)) + self.net.tag + self.net.advertised
            writer.write(_LEN.pack(len(hello)) + hello)
            self.writer = writer
            self.backoff = 0.05
            self.net._up(self.sid, outgoing=True)
            try:
                # the peer never sends on this stream; EOF means it went away
                await reader.read()
            except OSError:
                pass
            self.writer = None
            writer.close()
            self.net._down(self.sid, outgoing=True)
            await self._sleep()

    async def _sleep(self) -> None:
        try:
            await asyncio.wait_for(self.wake.wait(), self.backoff)
        except asyncio.TimeoutError:
            pass
        self.wake.clear()
        self.backoff = min(self.backoff * 2, self.net.max_backoff)

    def send(self, frame: bytes) -> bool:
        w = self.writer
        if w is None or w.is_closing():
            return False
        w.write(frame)
        return True

    def drop(self) -> None:
        """Close the current connection (the run loop reconnects later)."""
        if self.writer is not None:
            self.writer.close()

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.writer is not None:
            self.writer.close()


class PeerNetwork:
    """All links of one port kind (election or quorum) for one server."""

    def __init__(self, my_sid: int, bind: tuple[str, int], peers: dict[int, tuple[str, int]],
                 registry: Registry, on_message: Callable[[int, Any], None],
                 on_link: Callable[[int, bool], None] | None = None, tag: bytes = b"",
                 max_backoff: float = 1.0, tls: tuple[Any, Any] | None = None) -> None:
        self.my_sid = my_sid
        self.tls_server, self.tls_client = tls if tls is not None else (None, None)  # sslQuorum
        self.bind = bind
        self.registry = registry
        self.on_message = on_message
        self.on_link = on_link
        self.tag = tag
        self.max_backoff = max_backoff
        self.running = False
        self.out: dict[int, _Outgoing] = {sid: _Outgoing(self, sid, h, p) for sid, (h, p) in peers.items()
                                         if sid != my_sid}
        self.configured = set(self.out)  # from the membership; others were learned from hellos
        self.advertised = _PORT.pack(bind[1])
        self.incoming: dict[int, asyncio.StreamWriter] = {}
        self.server: asyncio.base_events.Server | None = None
        self.sent = 0
        self.received = 0

    async def start(self) -> None:
        self.running = True
        self.server = await asyncio.start_server(self._accept, self.bind[0], self.bind[1], reuse_address=True,
                                                 ssl=self.tls_server)
        for link in self.out.values():
            link.start()

    async def stop(self) -> None:
        self.running = False
        for link in self.out.values():
            link.stop()
        for w in list(self.incoming.values()):
            w.close()
        if self.server is not None:
            self.server.close()

    def send(self, sid: int, msg: Any) -> bool:
        """Queue ``msg`` for ``sid``; False when there is no live link (the message is lost)."""
        link = self.out.get(sid)
        if link is None:
            return False
        payload = self.registry.encode(msg)
        ok = link.send(_LEN.pack(len(payload)) + payload)
        if ok:
            self.sent += 1
        return ok

    def set_peers(self, peers: dict[int, tuple[str, int]]) -> None:
        """A reconfig changed the membership: link to new members (or moved ones), drop the
        links to servers no longer in it."""
        for sid, (host, port) in peers.items():
            if sid == self.my_sid:
                continue
            link = self.out.get(sid)
            if link is not None and (link.host, link.port) == (host, port):
                continue
            self._replace(sid, _Outgoing(self, sid, host, port))
        for sid in list(self.out):
            if sid not in peers:
                self._replace(sid, None)
                w = self.incoming.pop(sid, None)
                if w is not None:
                    w.close()
        self.configured = set(peers) - {self.my_sid}

    def _replace(self, sid: int, link: _Outgoing | None) -> None:
        old = self.out.pop(sid, None)
        if old is not None:
            old.stop()
        if link is not None:
            self.out[sid] = link
            if self.running:
                link.start()

    def connected(self, sid: int) -> bool:
        link = self.out.get(sid)
        return link is not None and link.writer is not None and sid in self.incoming

    def reset(self, sid: int) -> None:
        """Drop both directions to ``sid`` (a protocol error or a new epoch)."""
        link = self.out.get(sid)
        if link is not None:
            link.drop()
        w = self.incoming.pop(sid, None)
        if w is not None:
            w.close()

    def kick(self) -> None:
        """Retry unreachable peers now instead of after the back-off."""
        for link in self.out.values():
            link.backoff = 0.05
            link.wake.set()

    # ------------------------------------------------------------ internals
    def _up(self, sid: int, outgoing: bool) -> None:
        if self.on_link is not None:
            self.on_link(sid, True)

    def _down(self, sid: int, outgoing: bool) -> None:
        if self.on_link is not None:
            self.on_link(sid, False)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        sid = None
        try:
            (n,) = _LEN.unpack(await reader.readexactly(4))
            if n > 4096:
                raise PeerWireError(f"hello of {n} bytes")
            hello = await reader.readexactly(n)
            magic, sid, taglen = _HELLO.unpack_from(hello, 0)
            tag = hello[_HELLO.size:_HELLO.size + taglen]
            rest = hello[_HELLO.size + taglen:]
            if magic != MAGIC or tag != self.tag or sid == self.my_sid:
                raise PeerWireError(f"unexpected hello from {peer}: magic={magic!r} sid={sid}")
            if sid not in self.out:
                if len(rest) != _PORT.size or not peer:
                    raise PeerWireError(f"hello from unknown server {sid} at {peer} without a port to answer on")
                # a server outside our membership (joining by reconfig): answer it where it listens
                (port,) = _PORT.unpack(rest)
                log.info("server %s at %s is not in our membership; linking back to port %d", sid, peer[0], port)
                self._replace(sid, _Outgoing(self, sid, peer[0], port))
            old = self.incoming.pop(sid, None)
            if old is not None:
                old.close()
            self.incoming[sid] = writer
            while True:
                (n,) = _LEN.unpack(await reader.readexactly(4))
                if n > MAX_FRAME:
                    raise PeerWireError(f"frame of {n} bytes from server {sid}")
                msg = self.registry.decode(await reader.readexactly(n))
                self.received += 1
                self.on_message(sid, msg)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except (PeerWireError, struct.error) as exc:
            log.warning("closing peer link from %s (server %s): %s", peer, sid, exc)
        finally:
            if sid is not None and self.incoming.get(sid) is writer:
                del self.incoming[sid]
                self._down(sid, outgoing=False)
                if sid not in self.configured:
                    self._replace(sid, None)  # a learned link lives as long as the peer talks to us
            writer.close()
